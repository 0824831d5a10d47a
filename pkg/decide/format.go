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

// pct formats a fraction as a signed percentage: one decimal from 1% up,
// two significant digits below ("+4.2%", "+0.83%", "-0.051%").
func pct(f float64) string {
	m := magnitude(math.Abs(f) * 100)
	switch {
	case m == "0":
		return "0%"
	case f > 0:
		return "+" + m + "%"
	}
	return "-" + m + "%"
}

// share formats a fraction without a sign, trimmed: 0.5 → "50%",
// 1/3 → "33.3%", 0.602 → "60.2%".
func share(f float64) string {
	v := math.Round(f*1000) / 10
	return strconv.FormatFloat(v, 'f', -1, 64) + "%"
}

// magnitude formats a non-negative percentage.
func magnitude(v float64) string {
	switch {
	case v == 0 || math.IsNaN(v):
		return "0"
	case v >= 1:
		return strings.TrimSuffix(strconv.FormatFloat(v, 'f', 1, 64), ".0")
	}
	d := min(int(-math.Floor(math.Log10(v)))+1, 6)
	s := strconv.FormatFloat(v, 'f', d, 64)
	s = strings.TrimRight(strings.TrimRight(s, "0"), ".")
	if s == "" || s == "0" {
		return "0"
	}
	return s
}

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

// count formats a whole number with thousands separators: 31204 → "31,204".
func count(n int64) string {
	s := strconv.FormatInt(n, 10)
	neg := strings.HasPrefix(s, "-")
	s = strings.TrimPrefix(s, "-")
	var b strings.Builder
	for i, r := range s {
		if i > 0 && (len(s)-i)%3 == 0 {
			b.WriteByte(',')
		}
		b.WriteRune(r)
	}
	if neg {
		return "-" + b.String()
	}
	return b.String()
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
