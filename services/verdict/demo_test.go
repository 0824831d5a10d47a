package main

import (
	"testing"
	"time"

	"github.com/verdictlabs/verdict/pkg/simulate"
)

// TestKeepStarts: a demo restarted on the same data keeps its experiments'
// starts (and so their units); an experiment not stored yet starts now.
func TestKeepStarts(t *testing.T) {
	first := time.Date(2026, 12, 6, 9, 0, 0, 0, time.UTC)
	stored, err := simulate.DemoDefinitions(first)
	if err != nil {
		t.Fatal(err)
	}
	gone := stored.Experiments[0].Key
	stored.Experiments = stored.Experiments[1:] // as if added to the demo since
	later := first.Add(3 * time.Hour)
	defs, err := simulate.DemoDefinitions(later)
	if err != nil {
		t.Fatal(err)
	}
	kept := keepStarts(&defs, stored)
	for _, e := range defs.Experiments {
		want := first
		if e.Key == gone {
			want = later
		}
		if !e.Start.Equal(want) || kept[e.Key] != (e.Key != gone) {
			t.Errorf("%s: start %v (kept %v), want %v", e.Key, e.Start, kept[e.Key], want)
		}
	}
}
