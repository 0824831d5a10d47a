package rules_test

import (
	"context"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/verdictlabs/verdict/pkg/decide"
	"github.com/verdictlabs/verdict/pkg/readout"
	"github.com/verdictlabs/verdict/pkg/rules"
	"github.com/verdictlabs/verdict/pkg/stats"
	"github.com/verdictlabs/verdict/pkg/stream/streamtest"
)

// TestKVStates keeps a state in a real NATS KV bucket: it reads back as
// written, and a writer holding an old revision is refused, so two rules
// instances cannot overwrite each other's decisions unseen.
func TestKVStates(t *testing.T) {
	s := streamtest.Run(t)
	_, js := streamtest.Connect(t, s)
	ctx := context.Background()
	states, err := rules.EnsureStateBucket(ctx, js, 0)
	if err != nil {
		t.Fatal(err)
	}
	got, rev, err := states.Get(ctx, "exp")
	if err != nil || rev != 0 || got.Experiment != "exp" {
		t.Fatalf("Get of a new experiment = %+v, %d, %v; want an empty state at revision 0", got, rev, err)
	}
	at := time.Date(2026, 12, 2, 12, 0, 0, 0, time.UTC)
	want := rules.State{
		Experiment: "exp", Definition: "abc",
		Lifecycle: decide.Lifecycle{Status: readout.Decided, Label: readout.Persevere, DecidedAt: &at,
			Candidate: readout.Persevere, CandidateStatus: readout.Decided, CandidateSince: &at,
			Decision: &decide.Decision{Summary: "Persevere.", Reasons: []string{"why"}, Arms: []decide.ArmDecision{{Variant: "b", Label: readout.Persevere, Reasons: []string{"b why"}}}}},
		Running:   map[string]stats.Running{rules.RunningKey("b", "conv", "", ""): {Lo: 0.01, Hi: 0.03, PValue: 0.001}},
		UpdatedAt: at,
	}
	rev1, err := states.Put(ctx, want, 0)
	if err != nil {
		t.Fatal(err)
	}
	got, rev, err = states.Get(ctx, "exp")
	if err != nil || rev != rev1 {
		t.Fatalf("Get = revision %d, %v; want %d", rev, err, rev1)
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("state read back (-want +got):\n%s", diff)
	}
	if _, err := states.Put(ctx, want, 0); err == nil {
		t.Error("Put at revision 0 over an existing state succeeded, want a refusal")
	}
	if _, err := states.Put(ctx, want, rev1); err != nil {
		t.Errorf("Put at the current revision: %v", err)
	}
	if _, err := states.Put(ctx, want, rev1); err == nil {
		t.Error("Put at a stale revision succeeded, want a refusal")
	}
}
