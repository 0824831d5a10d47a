package stats

import (
	"math/rand/v2"
	"testing"
)

func TestIntersect(t *testing.T) {
	first := Result{AbsEffect: 0.5, AbsCI: Interval{-1, 2}, RelDefined: true, RelEffect: 0.05, RelCI: Interval{-0.1, 0.2}, PValue: 0.4}
	second := Result{AbsEffect: 1.2, AbsCI: Interval{0.3, 2.5}, RelDefined: true, RelEffect: 0.12, RelCI: Interval{0.03, 0.25}, PValue: 0.01, Significant: true}
	got, run := Intersect(RunningOf(first), second)
	if got.AbsCI != (Interval{0.3, 2}) || got.RelCI != (Interval{0.03, 0.2}) || got.PValue != 0.01 || !got.Significant || got.AbsEffect != 1.2 {
		t.Errorf("Intersect(first, second) = %+v, want ci [0.3, 2], rel_ci [0.03, 0.2], p 0.01, significant, effect 1.2", got)
	}
	// A later, wider and less significant look keeps what was shown.
	third := Result{AbsEffect: 0.2, AbsCI: Interval{-0.5, 0.9}, RelDefined: true, RelCI: Interval{-0.05, 0.09}, PValue: 0.6}
	got, run = Intersect(run, third)
	if got.AbsCI != (Interval{0.3, 0.9}) || got.PValue != 0.01 || !got.Significant {
		t.Errorf("Intersect(run, third) = %+v, want ci [0.3, 0.9], p 0.01, still significant", got)
	}
	// Disjoint: the estimand moved; start again from this look.
	moved := Result{AbsEffect: -3, AbsCI: Interval{-4, -2}, PValue: 0.001, Significant: true}
	got, run = Intersect(run, moved)
	if got != moved || run != RunningOf(moved) {
		t.Errorf("Intersect(run, disjoint) = %+v, %+v, want the look itself", got, run)
	}
}

// TestIntersectAA checks the promise on A/A data: intersecting the
// confidence sequence across 200 looks must keep the chance that the
// interval ever excludes the true effect (0) at or below alpha, as the
// sequence alone does, since "excludes 0 at some look" is the same event.
func TestIntersectAA(t *testing.T) {
	const sims, looks, batch = 400, 200, 50
	r := rand.New(rand.NewPCG(7, 2026))
	opt := DefaultOptions()
	falsePos := 0
	for range sims {
		var c, tr Arm
		var run Running
		started, flagged := false, false
		for range looks {
			addUnits(&c, r, bernoulli(0.2), batch)
			addUnits(&tr, r, bernoulli(0.2), batch)
			res, err := Compare(Proportion, c, tr, opt)
			if err != nil {
				continue
			}
			if started {
				res, run = Intersect(run, res)
			} else {
				run, started = RunningOf(res), true
			}
			if res.AbsCI.Lo > res.AbsCI.Hi {
				t.Fatalf("empty interval %+v", res.AbsCI)
			}
			flagged = flagged || res.Significant
		}
		if flagged {
			falsePos++
		}
	}
	if rate := float64(falsePos) / sims; rate > mcBound(opt.Alpha, sims) {
		t.Errorf("A/A with the running intersection: %.1f%% ever significant over %d looks, want at most %.0f%%", 100*rate, looks, 100*opt.Alpha)
	}
}
