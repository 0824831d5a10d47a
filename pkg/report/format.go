package report

import (
	"math"
	"strconv"
	"strings"
	"time"
	"unicode"
)

// Number formats match the reasons package decide writes, so the numbers in
// a table and in the sentence above it read the same: "+4.2%", "-0.83%".

// num formats a number with four significant digits and no exponent in the
// usual range; signed when signed is true.
func num(f float64, signed bool) string {
	if f == 0 || math.IsNaN(f) {
		return "0"
	}
	a := math.Abs(f)
	s := strconv.FormatFloat(a, 'g', 4, 64)
	if a >= 1e-4 && a < 1e7 {
		if x, err := strconv.ParseFloat(s, 64); err == nil {
			s = strconv.FormatFloat(x, 'f', -1, 64)
		}
	}
	switch {
	case f < 0:
		return "-" + s
	case signed:
		return "+" + s
	}
	return s
}

// pvalue formats a p-value the way people read them.
func pvalue(p float64) string {
	switch {
	case p < 0.001:
		return "< 0.001"
	case p >= 0.995:
		return "1"
	}
	return strconv.FormatFloat(p, 'f', 3, 64)
}

// pEquals is "p = 0.042" or "p < 0.001".
func pEquals(p float64) string {
	s := pvalue(p)
	if strings.HasPrefix(s, "<") {
		return "p " + s
	}
	return "p = " + s
}

// pSaying is pEquals, and what a p-value of 1 means when it is one: an
// always-valid p-value stays at 1 until the evidence builds up, which
// reads as an error without a word.
func pSaying(p float64, one string) string {
	if s := pEquals(p); s != "p = 1" {
		return s
	}
	return "p = 1, " + one
}

func day(t time.Time) string { return t.UTC().Format("2006-01-02") }

func stamp(t time.Time) string {
	if t.IsZero() {
		return "—"
	}
	return t.UTC().Format("2006-01-02 15:04 UTC")
}

// oneLine makes user-supplied text safe for a single line of a header, a
// subject or a plain-text table cell: every control character (CR and LF
// above all, the header-injection characters) becomes a space, runs of
// space collapse, and the result is at most max runes.
func oneLine(s string, max int) string {
	var b strings.Builder
	space := false
	n := 0
	for _, r := range s {
		if unicode.IsControl(r) || unicode.IsSpace(r) || r == '\u2028' || r == '\u2029' {
			space = b.Len() > 0
			continue
		}
		if n >= max {
			b.WriteString("…")
			break
		}
		if space {
			b.WriteByte(' ')
			n++
			space = false
		}
		b.WriteRune(r)
		n++
	}
	return b.String()
}
