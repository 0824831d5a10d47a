package decide

import (
	"fmt"
	"math"
	"strconv"
	"strings"
	"time"
)

// Number formats for reasons: people read these, so they are short and
// signed where a direction matters ("+4.2%", "-0.83%", "+0.0123").

// num formats a signed absolute number with three significant digits.
func num(f float64) string {
	if f == 0 || math.IsNaN(f) {
		return "0"
	}
	a := math.Abs(f)
	s := strconv.FormatFloat(a, 'g', 3, 64)
	if a >= 1e-4 && a < 1e6 { // 3 significant digits without an exponent
		if x, err := strconv.ParseFloat(s, 64); err == nil {
			s = strconv.FormatFloat(x, 'f', -1, 64)
		}
	}
	if f > 0 {
		return "+" + s
	}
	return "-" + s
}

// pvalue formats a p-value for a sentence: "< 0.001" or "= 0.0042".
func pvalue(p float64) string {
	if p < 0.001 {
		return "< 0.001"
	}
	return "= " + strconv.FormatFloat(p, 'g', 2, 64)
}

// day formats a date for people, in UTC: "20 Nov 2026".
func day(t time.Time) string { return t.UTC().Format("2 Jan 2006") }

// join lists words: "a", "a and b", "a, b and c".
func join(words []string) string {
	switch len(words) {
	case 0:
		return ""
	case 1:
		return words[0]
	}
	return strings.Join(words[:len(words)-1], ", ") + " and " + words[len(words)-1]
}

// plural returns "1 thing" or "2 things".
func plural(n int, one, many string) string {
	if n == 1 {
		return fmt.Sprintf("1 %s", one)
	}
	return fmt.Sprintf("%d %s", n, many)
}
