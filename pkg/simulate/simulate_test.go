package simulate

import (
	"testing"
	"time"
)

// TestIDsUnique: every event of a run has an id of its own; ids used to
// end in a random number, and two events of a unit could share one.
func TestIDsUnique(t *testing.T) {
	g := NewGenerator(1, "r1")
	scenarios := Demo()
	seen := map[string]bool{}
	at := time.Date(2026, 11, 2, 0, 0, 0, 0, time.UTC)
	n := 0
	for i := range 20000 {
		for _, e := range g.Unit(nil, &scenarios[i%len(scenarios)], at) {
			n++
			if seen[e.ID] {
				t.Fatalf("event id %s made twice", e.ID)
			}
			seen[e.ID] = true
		}
	}
	other := NewGenerator(1, "r2").Unit(nil, &scenarios[0], at)
	if seen[other[0].ID] {
		t.Errorf("another run made id %s too", other[0].ID)
	}
	t.Logf("%d events, all ids distinct", n)
}
