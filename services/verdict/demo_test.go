package main

import (
	"testing"
	"time"

	"github.com/verdictlabs/verdict/pkg/readout"
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

// TestDemoDecided: the demo says it is done only once every one of its
// experiments has a latched status other than collecting, and names the
// label each got, in order of first appearance.
func TestDemoDecided(t *testing.T) {
	keys := []string{"a", "b", "c", "d"}
	latest := map[string]readout.Readout{
		"a":     {Status: readout.Decided, Label: readout.Persevere},
		"b":     {Status: readout.Decided, Label: readout.Pivot},
		"c":     {Status: readout.Invalid},
		"d":     {Status: readout.Collecting, Candidate: readout.Persevere},
		"other": {Status: readout.Collecting},
	}
	if ok, _ := demoDecided(keys, latest); ok {
		t.Error("decided while d collects")
	}
	latest["d"] = readout.Readout{Status: readout.Decided, Label: readout.Persevere}
	ok, summary := demoDecided(keys, latest)
	if want := "persevere: a, d; pivot: b; invalid: c"; !ok || summary != want {
		t.Errorf("demoDecided = %v, %q; want true, %q", ok, summary, want)
	}
	delete(latest, "b")
	if ok, _ := demoDecided(keys, latest); ok {
		t.Error("decided with no readout of b")
	}
}
