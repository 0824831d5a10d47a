package decide

import (
	"strings"
	"testing"

	"github.com/verdictlabs/verdict/pkg/readout"
)

// novelty is a novelty test's result on the fixture's conversion: early
// lift +30%, late lift late (better: its interval above 0), status s.
func novelty(s readout.NoveltyStatus, late float64, better bool) *readout.Novelty {
	change := (1+late)/1.3 - 1
	return &readout.Novelty{
		Status: s, Split: "3d12h", Units: 12000,
		Early:  &readout.Effect{RelEffect: 0.3, RelCI: readout.Interval{0.2, 0.4}, Better: true},
		Late:   &readout.Effect{RelEffect: late, RelCI: readout.Interval{late - 0.04, late + 0.04}, Better: better},
		Change: &change, ChangeCI: &readout.Interval{change - 0.05, change + 0.05}, PValue: ptr2(0.001),
	}
}

// TestNovelty: a primary win whose lift decays but still holds late is a
// persevere that says so; a win that is only novelty (decaying, and no
// longer better late) is not: it keeps collecting, and at the end date it
// is a pivot that names the novelty. A growing or stable lift changes
// nothing but the words.
func TestNovelty(t *testing.T) {
	s := compileSchema(t)
	tests := []struct {
		name    string
		novelty *readout.Novelty
		ended   bool
		label   readout.Label
		status  readout.Status
		reason  string // in the arm's reasons
		summary string // in the summary
	}{
		{"no test", nil, false, readout.Persevere, readout.Decided, "roll out", "Persevere"},
		{"stable", novelty(readout.NoveltyStable, 0.28, true), false, readout.Persevere, readout.Decided, "roll out", "Persevere"},
		{"decaying, still better late", novelty(readout.NoveltyDecaying, 0.12, true), false, readout.Persevere, readout.Decided, "decays with time since exposure: +30% in the first 3d12h after each unit's exposure, +12% after", "though its lift fades with time since exposure (+30% at first, +12% later)"},
		{"growing", novelty(readout.NoveltyGrowing, 0.5, true), false, readout.Persevere, readout.Decided, "grows with time since exposure", "Persevere"},
		{"only novelty", novelty(readout.NoveltyDecaying, 0.01, false), false, readout.NoLabel, readout.Collecting, "looks like novelty", "Still collecting"},
		{"only novelty at the end", novelty(readout.NoveltyDecaying, 0.01, false), true, readout.Pivot, readout.Decided, "it was novelty that wore off", "lift on purchase_conversion was novelty: +30% at first, +1% once it wore off"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := convWin
			c.Novelty = tt.novelty
			in := input(treat("one-page", c, revFlat, loadOK))
			if tt.ended {
				in.Now = end
			}
			r := Verdict(in)
			encode(t, s, r)
			if r.Label != tt.label || r.Status != tt.status {
				t.Errorf("label %q, status %q; want %q, %q\n%s", r.Label, r.Status, tt.label, tt.status, strings.Join(r.Arms[0].Reasons, "\n"))
			}
			if all := strings.Join(r.Arms[0].Reasons, "\n"); !strings.Contains(all, tt.reason) {
				t.Errorf("reasons lack %q:\n%s", tt.reason, all)
			}
			if !strings.Contains(r.Summary, tt.summary) {
				t.Errorf("summary %q lacks %q", r.Summary, tt.summary)
			}
			if got := r.Arms[0].Metrics[0].Novelty; got != tt.novelty {
				t.Errorf("the readout's novelty is %+v, want the input's %+v", got, tt.novelty)
			}
		})
	}
}
