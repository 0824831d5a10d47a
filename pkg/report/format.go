package report

import (
	"strings"
	"time"
	"unicode"

	"github.com/verdictlabs/verdict/pkg/readout"
)

// Numbers, p-values and dates are readout's (readout.Number, PValue, Date,
// Time), as in the reasons package decide writes: a number in a table
// reads as it does in the sentence above it.

// pSaying is readout.PValue, and what a p-value of 1 means when it is
// one: an always-valid p-value stays at 1 until the evidence builds up,
// which reads as an error without a word.
func pSaying(p float64, one string) string {
	if s := readout.PValue(p); s != "p = 1" {
		return s
	}
	return "p = 1, " + one
}

// stamp is readout.Time, or "—" for no time.
func stamp(t time.Time) string {
	if t.IsZero() {
		return "—"
	}
	return readout.Time(t)
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
