package page

import (
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/verdictlabs/verdict/pkg/readout"
)

// TestLearnings: the index page filters by verdict, owner and decision
// period, shows the win rate of what it shows, and lists what each decided
// experiment taught, newest first.
func TestLearnings(t *testing.T) {
	day := func(d int) *time.Time { t := time.Date(2026, 11, d, 12, 0, 0, 0, time.UTC); return &t }
	ro := func(key string, status readout.Status, label readout.Label, at *time.Time, owners ...string) []readout.Readout {
		return []readout.Readout{{Experiment: key, Name: "Name of " + key, Status: status, Label: label, DecidedAt: at, Owners: owners,
			Version: 1, ComputedAt: time.Date(2026, 11, 30, 0, 0, 0, 0, time.UTC), Summary: "Summary of " + key, Reasons: []string{"Reason of " + key}}}
	}
	src := memSource{
		"win":     ro("win", readout.Decided, readout.Persevere, day(10), "ann@example.com"),
		"flop":    ro("flop", readout.Decided, readout.Pivot, day(20), "bob@example.com"),
		"partial": ro("partial", readout.Decided, readout.Salvage, day(25), "ann@example.com", "bob@example.com"),
		"broken":  ro("broken", readout.Invalid, readout.NoLabel, day(12), "ann@example.com"),
		"running": ro("running", readout.Collecting, readout.NoLabel, nil, "ann@example.com"),
	}
	h := NewHandler(src, Options{})
	for _, tt := range []struct {
		query      string
		shown, not []string
		record     string
	}{
		{"", []string{"win", "flop", "partial", "broken", "running"}, nil, "Win rate 33%</b> (1 of 3 decided"},
		{"?label=pivot", []string{"flop"}, []string{"Name of win", "Name of partial", "Name of running", "Win rate"}, "<b>1 pivot</b> (5 experiments in all)."},
		{"?label=decided", []string{"win", "flop", "partial", "broken"}, []string{"Name of running"}, "Win rate 33%"},
		{"?owner=Ann@Example.com", []string{"win", "partial", "broken", "running"}, []string{"Name of flop"}, "Win rate 50%</b> (1 of 2"},
		{"?from=2026-11-15&to=2026-11-25", []string{"flop", "partial"}, []string{"Name of win", "Name of running", "Name of broken"}, "Win rate 0%</b> (0 of 2"},
		{"?owner=ann@example.com&to=2026-11-11", []string{"win"}, []string{"Name of partial", "Name of running"}, "Win rate 100%"},
	} {
		code, body, _ := get(t, h, "/experiments"+tt.query)
		if code != http.StatusOK {
			t.Fatalf("GET /experiments%s = %d", tt.query, code)
		}
		for _, k := range tt.shown {
			if !strings.Contains(body, `href="/experiments/`+k+`"`) {
				t.Errorf("GET /experiments%s does not show %s", tt.query, k)
			}
		}
		for _, s := range tt.not {
			if strings.Contains(body, s) {
				t.Errorf("GET /experiments%s shows %q", tt.query, s)
			}
		}
		if !strings.Contains(body, tt.record) {
			t.Errorf("GET /experiments%s lacks %q", tt.query, tt.record)
		}
	}
	// The lessons, newest decision first, with their reasons.
	_, body, _ := get(t, h, "/experiments?label=decided")
	learned := body[strings.Index(body, "What was learned"):]
	if i, j, k := strings.Index(learned, "Name of partial"), strings.Index(learned, "Name of flop"), strings.Index(learned, "Name of win"); !(i >= 0 && i < j && j < k) {
		t.Errorf("lessons not newest first: partial %d, flop %d, win %d", i, j, k)
	}
	if !strings.Contains(learned, "Reason of flop") || !strings.Contains(learned, "decided 20 Nov 2026") {
		t.Errorf("a lesson lacks its reasons or date:\n%s", learned)
	}
	for _, bad := range []string{"?label=maybe", "?from=yesterday", "?to=2026-13-01"} {
		if code, body, _ := get(t, h, "/experiments"+bad); code != http.StatusBadRequest || !strings.Contains(body, "bad filter") {
			t.Errorf("GET /experiments%s = %d %q, want 400 naming the filter", bad, code, body)
		}
	}
}
