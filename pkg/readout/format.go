package readout

import (
	"math"
	"strconv"
	"strings"
	"time"
)

// Number formats for people. The reasons (package decide), the email and
// the page (package report) all use these, so a number reads the same in a
// sentence and in the table under it.

// Percent formats a fraction as a signed percentage: one decimal from 1% up,
// two significant digits below ("+4.2%", "+0.83%", "-0.051%").
func Percent(f float64) string {
	m := magnitude(math.Abs(f) * 100)
	switch {
	case m == "0":
		return "0%"
	case f > 0:
		return "+" + m + "%"
	}
	return "-" + m + "%"
}

// Share formats a fraction without a sign, trimmed: 0.5 → "50%",
// 1/3 → "33.3%", 0.602 → "60.2%".
func Share(f float64) string {
	v := math.Round(f*1000) / 10
	return strconv.FormatFloat(v, 'f', -1, 64) + "%"
}

// Rate formats a non-negative fraction as a percentage without a sign, with
// two significant digits below 1%: 0.0042 → "0.42%", 0.25 → "25%".
func Rate(f float64) string { return magnitude(math.Abs(f)*100) + "%" }

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

// Count formats a whole number with thousands separators: 31204 → "31,204".
func Count(n int64) string {
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

// Number formats a number for people: four significant digits, without an
// exponent from 0.0001 up to ten million; signed puts "+" before a
// positive one ("+0.01235", "-12.5", "1,234" is Count's).
func Number(f float64, signed bool) string {
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

// PValue formats a p-value with its name, as people read them: "p <
// 0.001", "p = 0.0042", "p = 0.31" (two significant digits), "p = 1" from
// 0.995 on.
func PValue(p float64) string {
	switch {
	case p < 0.001:
		return "p < 0.001"
	case p >= 0.995:
		return "p = 1"
	}
	return "p = " + strconv.FormatFloat(p, 'g', 2, 64)
}

// Date formats a day for people, in UTC: "20 Nov 2026".
func Date(t time.Time) string { return t.UTC().Format("2 Jan 2006") }

// Time formats a moment for people, in UTC, to the minute: "20 Nov 2026
// 14:03 UTC".
func Time(t time.Time) string { return t.UTC().Format("2 Jan 2006 15:04 UTC") }

// Clock is Time to the second, where seconds matter (a decision's hold of
// 30 seconds): "20 Nov 2026 14:03:05 UTC".
func Clock(t time.Time) string { return t.UTC().Format("2 Jan 2006 15:04:05 UTC") }
