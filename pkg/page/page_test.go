package page

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/verdictlabs/verdict/pkg/readout"
)

// memSource is a Source over readouts held in memory.
type memSource map[string][]readout.Readout // oldest first

func (m memSource) Latest(_ context.Context, key string) (readout.Readout, error) {
	h := m[key]
	if len(h) == 0 {
		return readout.Readout{}, fmt.Errorf("read %s: %w", key, ErrNotFound)
	}
	return h[len(h)-1], nil
}

func (m memSource) History(_ context.Context, key string, before int64, limit int) ([]readout.Readout, error) {
	h := m[key]
	var out []readout.Readout
	for i := len(h) - 1; i >= 0 && len(out) < limit; i-- {
		if before == 0 || h[i].Version < before {
			out = append(out, h[i])
		}
	}
	return out, nil
}

// Looks are the readouts whole: the page reads only what they said.
func (m memSource) Looks(ctx context.Context, key string, limit int) ([]readout.Readout, error) {
	return m.History(ctx, key, 0, limit)
}

func (m memSource) List(context.Context) ([]readout.Readout, error) {
	var keys []string
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	var out []readout.Readout
	for _, k := range keys {
		out = append(out, m[k][len(m[k])-1])
	}
	return out, nil
}

func load(t testing.TB, name string) readout.Readout {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("..", "report", "testdata", "readouts", name+".json"))
	if err != nil {
		t.Fatal(err)
	}
	var r readout.Readout
	if err := json.Unmarshal(b, &r); err != nil {
		t.Fatal(err)
	}
	return r
}

// source has a salvaged experiment with a history (collecting, then pivot,
// then salvage), a collecting one and an invalid one.
func source(t testing.TB) memSource {
	salvage := load(t, "salvage_dark_mode_android")
	v1 := load(t, "collecting_checkout_day_two")
	v1.Experiment, v1.Version = salvage.Experiment, 1
	v2 := load(t, "pivot_button_color_flat_at_end")
	v2.Experiment, v2.Version = salvage.Experiment, 2
	v2.ComputedAt = salvage.ComputedAt.Add(-24 * time.Hour)
	salvage.Version = 3
	return memSource{
		salvage.Experiment:  {v1, v2, salvage},
		"checkout-redesign": {load(t, "collecting_checkout_day_two")},
		"search-ranking":    {load(t, "invalid_search_ranking_srm")},
	}
}

func get(t *testing.T, h http.Handler, path string) (int, string, http.Header) {
	t.Helper()
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, path, nil))
	b, _ := io.ReadAll(rec.Body)
	return rec.Code, string(b), rec.Header()
}

func TestExperimentPage(t *testing.T) {
	h := NewHandler(source(t), Options{})
	code, body, hdr := get(t, h, "/experiments/dark-mode")
	if code != http.StatusOK {
		t.Fatalf("GET /experiments/dark-mode = %d, want 200:\n%s", code, body)
	}
	if ct := hdr.Get("Content-Type"); ct != "text/html; charset=utf-8" {
		t.Errorf("Content-Type = %q", ct)
	}
	for _, want := range []string{
		`<div class="verdict" id="verdict">SALVAGE</div>`,
		"keep it for platform = android",
		`<svg xmlns="http://www.w3.org/2000/svg" class="forest"`,
		"<strong>platform = android</strong>",
		"purchase_conversion", "Sample ratio", "60,010 of 60,806",
		`<ol class="timeline">`, "· v1</span>", "· v2</span>", "· v3</span>",
		`href="/v1/experiments/dark-mode/readout"`,
	} {
		if !strings.Contains(body, want) {
			t.Errorf("page lacks %q", want)
		}
	}
	if strings.Contains(body, `http-equiv="refresh"`) {
		t.Errorf("a decided experiment's page refreshes itself")
	}
	if strings.Contains(body, "<script") {
		t.Errorf("page has a script")
	}

	_, body, _ = get(t, h, "/experiments/checkout-redesign")
	if !strings.Contains(body, `<meta http-equiv="refresh" content="60">`) {
		t.Errorf("a collecting experiment's page does not refresh itself")
	}
}

func TestIndex(t *testing.T) {
	h := NewHandler(source(t), Options{})
	for _, path := range []string{"/experiments", "/experiments/"} {
		code, body, _ := get(t, h, path)
		if code != http.StatusOK {
			t.Fatalf("GET %s = %d", path, code)
		}
		for _, want := range []string{`href="/experiments/dark-mode"`, ">SALVAGE<", ">COLLECTING<", ">INVALID<", `http-equiv="refresh"`} {
			if !strings.Contains(body, want) {
				t.Errorf("GET %s lacks %q", path, want)
			}
		}
	}
	code, body, _ := get(t, NewHandler(memSource{}, Options{}), "/experiments")
	if code != http.StatusOK || !strings.Contains(body, "No readouts yet") {
		t.Errorf("empty index = %d %q", code, body)
	}
}

type failing struct{ memSource }

func (failing) Latest(context.Context, string) (readout.Readout, error) {
	return readout.Readout{}, fmt.Errorf("latest of dark-mode: %w", readout.ErrNotFound)
}
func (failing) List(context.Context) ([]readout.Readout, error) {
	return nil, fmt.Errorf("query clickhouse: connection refused")
}

func TestErrors(t *testing.T) {
	h := NewHandler(source(t), Options{})
	tests := []struct {
		h    http.Handler
		path string
		want int
	}{
		{h, "/experiments/nope", 404},
		{h, "/experiments/Bad%20Key", 404},
		{h, "/experiments/%3Cscript%3E", 404},
		{NewHandler(failing{}, Options{}), "/experiments/dark-mode", 404},
		{NewHandler(failing{}, Options{}), "/experiments", 500},
	}
	for _, tt := range tests {
		code, body, _ := get(t, tt.h, tt.path)
		if code != tt.want {
			t.Errorf("GET %s = %d, want %d", tt.path, code, tt.want)
		}
		if strings.Contains(body, "<script>") {
			t.Errorf("GET %s echoes a script: %q", tt.path, body)
		}
	}
}

func TestHostileReadout(t *testing.T) {
	r := load(t, "salvage_dark_mode_android")
	r.Name = `<script>alert(1)</script>`
	r.Hypothesis = `"><img src=x onerror=alert(2)>`
	r.Salvage[0].Value = `<script>alert(3)</script>`
	r.Reasons = []string{`<a href="javascript:alert(4)">x</a>`}
	r.Owners = []string{`<b>owner</b>`}
	h := NewHandler(memSource{r.Experiment: {r}}, Options{})
	for _, path := range []string{"/experiments", "/experiments/" + r.Experiment} {
		_, body, _ := get(t, h, path)
		for _, bad := range []string{"<script>", "<img src=x", `<a href="javascript`, "<b>owner"} {
			if strings.Contains(body, bad) {
				t.Errorf("GET %s: %q unescaped", path, bad)
			}
		}
	}
}

// TestStretches: the timeline shows when the verdict, the status or the
// candidate changed, each stretch of agreeing looks once, by the document
// of its first look.
func TestStretches(t *testing.T) {
	at := time.Date(2026, 12, 6, 9, 0, 0, 0, time.UTC)
	ro := func(v int64, st readout.Status, label, cand readout.Label) readout.Readout {
		return readout.Readout{Experiment: "x", Version: v, Status: st, Label: label, Candidate: cand, ComputedAt: at.Add(time.Duration(v) * time.Minute)}
	}
	src := memSource{"x": { // oldest first
		ro(1, readout.Collecting, "", ""),
		ro(2, readout.Collecting, "", ""),
		ro(3, readout.Collecting, "", readout.Persevere),
		ro(4, readout.Collecting, "", readout.Persevere),
		ro(5, readout.Decided, readout.Persevere, readout.Persevere),
		ro(6, readout.Decided, readout.Persevere, readout.Persevere),
	}}
	history := func(limit int) []historyRow {
		t.Helper()
		rows, err := NewHandler(src, Options{HistoryLimit: limit}).(*handler).history(context.Background(), "x")
		if err != nil {
			t.Fatal(err)
		}
		return rows
	}
	var got []string
	for _, r := range history(20) {
		got = append(got, fmt.Sprintf("v%d-v%d %d %s %v", r.Version, r.Last, r.Looks, r.Verdict, r.Changed))
	}
	want := []string{"v5-v6 2 PERSEVERE true", "v3-v4 2 COLLECTING false", "v1-v2 2 COLLECTING false"}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("stretches = %q, want %q", got, want)
	}
	if n := len(history(2)); n != 2 {
		t.Errorf("%d stretches with a limit of 2", n)
	}
}
