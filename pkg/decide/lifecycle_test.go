package decide

import (
	"strings"
	"testing"
	"time"

	"github.com/verdictlabs/verdict/pkg/readout"
)

// look is a one-arm readout as Verdict would make it: the arm's primary
// has the outcome, its guardrail is harmed or not.
func look(status readout.Status, label readout.Label, primary readout.Outcome, harmed bool) readout.Readout {
	g := readout.Metric{Metric: "load", Role: readout.Guardrail, Outcome: readout.Inconclusive, BeyondMargin: &harmed, NonInferior: ptr(!harmed)}
	p := readout.Metric{Metric: "conv", Role: readout.Primary, Outcome: primary}
	return readout.Readout{
		Experiment: "exp", Status: status, Label: label, Candidate: label, CandidateStatus: status,
		Summary: "look: " + string(status) + " " + string(label),
		Reasons: []string{"reason of " + string(label)},
		Arms:    []readout.Arm{{Variant: "b", Label: label, Metrics: []readout.Metric{p, g}, Reasons: []string{"arm " + string(label)}}},
		Salvage: []readout.SalvageItem{},
	}
}

var (
	collecting = look(readout.Collecting, readout.NoLabel, readout.Inconclusive, false)
	persevere  = look(readout.Decided, readout.Persevere, readout.Better, false)
	futile     = look(readout.Decided, readout.Pivot, readout.Inconclusive, false)
	worse      = look(readout.Decided, readout.Pivot, readout.Worse, false)
	harm       = look(readout.Decided, readout.Pivot, readout.Better, true)
	salvage    = look(readout.Decided, readout.Salvage, readout.Inconclusive, false)
	invalid    = look(readout.Invalid, readout.NoLabel, readout.Inconclusive, false)
)

type step struct {
	look        readout.Readout
	provisional bool
	// What the published readout must say.
	status readout.Status
	label  readout.Label
}

// TestLatch runs sequences of looks 1 minute apart through Latch with a
// 3-minute hold, as the rules service would, and checks every readout.
func TestLatch(t *testing.T) {
	const hold = 3 * time.Minute
	C, D, I := readout.Collecting, readout.Decided, readout.Invalid
	tests := []struct {
		name  string
		steps []step
	}{
		{"a candidate decides once it has held", []step{
			{look: persevere, status: C}, {look: persevere, status: C}, {look: persevere, status: C},
			{look: persevere, status: D, label: readout.Persevere}, // 3 minutes after the first
			{look: persevere, status: D, label: readout.Persevere},
		}},
		{"a change of candidate restarts the hold", []step{
			{look: futile, status: C}, {look: futile, status: C}, {look: collecting, status: C},
			{look: futile, status: C}, {look: futile, status: C}, {look: futile, status: C},
			{look: futile, status: D, label: readout.Pivot},
		}},
		{"provisional looks neither count nor interrupt", []step{
			{look: futile, provisional: true, status: C}, // backfill: exposures landed, events not yet
			{look: persevere, status: C},
			{look: futile, provisional: true, status: C},
			{look: persevere, status: C},
			{look: persevere, status: D, label: readout.Persevere}, // 3 minutes after look 1
			{look: persevere, status: D, label: readout.Persevere},
		}},
		{"a provisional look cannot decide even when held", []step{
			{look: persevere, status: C}, {look: persevere, status: C}, {look: persevere, status: C},
			{look: persevere, provisional: true, status: C},
			{look: persevere, status: D, label: readout.Persevere},
		}},
		{"a decision never goes back to collecting", []step{
			{look: futile, status: C}, {look: futile, status: C}, {look: futile, status: C},
			{look: futile, status: D, label: readout.Pivot},
			{look: collecting, status: D, label: readout.Pivot}, // re-derived planned sample
			{look: collecting, status: D, label: readout.Pivot},
			{look: collecting, status: D, label: readout.Pivot},
			{look: collecting, status: D, label: readout.Pivot},
			{look: collecting, status: D, label: readout.Pivot},
		}},
		{"persevere does not turn on a mere loss of significance", []step{
			{look: persevere, status: C}, {look: persevere, status: C}, {look: persevere, status: C},
			{look: persevere, status: D, label: readout.Persevere},
			{look: futile, status: D, label: readout.Persevere}, // primary no longer significant
			{look: futile, status: D, label: readout.Persevere},
			{look: futile, status: D, label: readout.Persevere},
			{look: futile, status: D, label: readout.Persevere},
			{look: futile, status: D, label: readout.Persevere},
		}},
		{"persevere reverses on a primary significantly worse that holds", []step{
			{look: persevere, status: C}, {look: persevere, status: C}, {look: persevere, status: C},
			{look: persevere, status: D, label: readout.Persevere},
			{look: worse, status: D, label: readout.Persevere},
			{look: worse, status: D, label: readout.Persevere},
			{look: worse, status: D, label: readout.Persevere},
			{look: worse, status: D, label: readout.Pivot},
		}},
		{"persevere reverses on guardrail harm that holds", []step{
			{look: persevere, status: C}, {look: persevere, status: C}, {look: persevere, status: C},
			{look: persevere, status: D, label: readout.Persevere},
			{look: harm, status: D, label: readout.Persevere},
			{look: harm, status: D, label: readout.Persevere},
			{look: harm, status: D, label: readout.Persevere},
			{look: harm, status: D, label: readout.Pivot},
		}},
		{"pivot becomes persevere when the primary wins and holds", []step{
			{look: futile, status: C}, {look: futile, status: C}, {look: futile, status: C},
			{look: futile, status: D, label: readout.Pivot},
			{look: persevere, status: D, label: readout.Pivot},
			{look: persevere, status: D, label: readout.Pivot},
			{look: persevere, status: D, label: readout.Pivot},
			{look: persevere, status: D, label: readout.Persevere},
		}},
		{"pivot does not become salvage", []step{
			{look: futile, status: C}, {look: futile, status: C}, {look: futile, status: C},
			{look: futile, status: D, label: readout.Pivot},
			{look: salvage, status: D, label: readout.Pivot},
			{look: salvage, status: D, label: readout.Pivot},
			{look: salvage, status: D, label: readout.Pivot},
			{look: salvage, status: D, label: readout.Pivot},
			{look: salvage, status: D, label: readout.Pivot},
		}},
		{"invalid holds, then is final", []step{
			{look: persevere, status: C}, {look: persevere, status: C}, {look: persevere, status: C},
			{look: persevere, status: D, label: readout.Persevere},
			{look: invalid, status: D, label: readout.Persevere},
			{look: invalid, status: D, label: readout.Persevere},
			{look: invalid, status: D, label: readout.Persevere},
			{look: invalid, status: I},
			{look: persevere, status: I}, {look: persevere, status: I}, {look: persevere, status: I}, {look: persevere, status: I},
		}},
		{"a passing invalid look changes nothing", []step{
			{look: collecting, status: C}, {look: invalid, status: C}, {look: collecting, status: C},
			{look: collecting, status: C}, {look: collecting, status: C}, {look: collecting, status: C},
		}},
	}
	start := time.Date(2026, 12, 2, 12, 0, 0, 0, time.UTC)
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var l Lifecycle
			for i, s := range tt.steps {
				now := start.Add(time.Duration(i) * time.Minute)
				var r readout.Readout
				r, l = Latch(l, Look{Readout: s.look, Provisional: s.provisional, Now: now, Hold: hold})
				if r.Status != s.status || r.Label != s.label {
					t.Fatalf("look %d (%s %s, provisional %v): status, label = %s, %q; want %s, %q\nsummary: %s",
						i, s.look.Status, s.look.Label, s.provisional, r.Status, r.Label, s.status, s.label, r.Summary)
				}
				if r.Candidate != s.look.Label || r.CandidateStatus != s.look.Status || r.Provisional != s.provisional {
					t.Errorf("look %d: candidate %q/%s provisional %v, want the look's %q/%s, %v", i, r.Candidate, r.CandidateStatus, r.Provisional, s.look.Label, s.look.Status, s.provisional)
				}
				if (r.DecidedAt == nil) != (r.Status == readout.Collecting) {
					t.Errorf("look %d: decided_at %v with status %s", i, r.DecidedAt, r.Status)
				}
				if r.Status == readout.Collecting && (r.Arms[0].Label != readout.NoLabel || len(r.Salvage) > 0) {
					t.Errorf("look %d: collecting with arm label %q and salvage %v", i, r.Arms[0].Label, r.Salvage)
				}
				if r.Status == readout.Decided && r.Arms[0].Label != r.Label {
					t.Errorf("look %d: decided %q, arm label %q", i, r.Label, r.Arms[0].Label)
				}
				if err := r.Validate(); err != nil {
					t.Errorf("look %d: %v", i, err)
				}
			}
		})
	}
}

// TestLatchText: when the decision and the look disagree, the readout
// tells the decision and what the look alone would say.
func TestLatchText(t *testing.T) {
	start := time.Date(2026, 12, 2, 12, 0, 0, 0, time.UTC)
	r, l := Latch(Lifecycle{}, Look{Readout: persevere, Now: start, Hold: time.Minute})
	if !strings.HasPrefix(r.Summary, "Still collecting: the readouts have said PERSEVERE since 2 Dec 2026 12:00:00 UTC; it becomes the decision if they still do at 2 Dec 2026 12:01:00 UTC") {
		t.Errorf("holding summary = %q", r.Summary)
	}
	if r.Reasons[0] != "This look alone says: look: decided persevere" {
		t.Errorf("holding reasons = %q", r.Reasons)
	}
	r, l = Latch(l, Look{Readout: persevere, Now: start.Add(time.Minute), Hold: time.Minute})
	if r.Summary != persevere.Summary || r.DecidedAt == nil || !r.DecidedAt.Equal(start.Add(time.Minute)) {
		t.Errorf("decided: summary %q, decided_at %v", r.Summary, r.DecidedAt)
	}
	r, _ = Latch(l, Look{Readout: futile, Now: start.Add(2 * time.Minute), Hold: time.Minute, Provisional: true})
	if r.Summary != persevere.Summary || r.Arms[0].Label != readout.Persevere || r.Arms[0].Reasons[0] != "arm persevere" {
		t.Errorf("latched: summary %q, arm %+v; want the decision's", r.Summary, r.Arms[0])
	}
	want := "Decided PERSEVERE on 2 Dec 2026 12:01:00 UTC; the latest look alone would say PIVOT: look: decided pivot"
	if last := r.Reasons[len(r.Reasons)-1]; last != want {
		t.Errorf("latched: last reason %q, want %q", last, want)
	}
	if !strings.HasPrefix(r.Reasons[0], "Provisional: ingest has ") {
		t.Errorf("provisional: first reason %q", r.Reasons[0])
	}
	if r.CandidateSince != nil {
		t.Errorf("provisional look with a new candidate: candidate_since %v, want nil", r.CandidateSince)
	}
}
