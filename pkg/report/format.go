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

// pct formats a fraction as a signed percentage: one decimal from 1% up,
// two significant digits below.
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

// share formats a fraction without a sign: 0.5 → "50%", 0.9869 → "98.7%".
func share(f float64) string {
	v := math.Round(f*1000) / 10
	return strconv.FormatFloat(v, 'f', -1, 64) + "%"
}

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

// count formats a whole number with thousands separators: 31204 → "31,204".
func count(n int64) string {
	s := strconv.FormatInt(n, 10)
	neg := strings.HasPrefix(s, "-")
	s = strings.TrimPrefix(s, "-")
	var b strings.Builder
	if neg {
		b.WriteByte('-')
	}
	for i, r := range s {
		if i > 0 && (len(s)-i)%3 == 0 {
			b.WriteByte(',')
		}
		b.WriteRune(r)
	}
	return b.String()
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
