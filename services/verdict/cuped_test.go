package main

import (
	"bufio"
	"bytes"
	"compress/gzip"
	"context"
	"encoding/json"
	"fmt"
	"math"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/verdictlabs/verdict/pkg/warehouse"
	"github.com/verdictlabs/verdict/pkg/warehouse/warehousetest"
)

// cupedMetric is a metric's comparison as the readout and the oracle write it.
type cupedMetric struct {
	Metric    string
	Control   struct{ N, Mean float64 }
	Treatment struct{ N, Mean float64 }
	AbsEffect float64    `json:"abs_effect"`
	CI        [2]float64 `json:"ci"`
	RelEffect float64    `json:"rel_effect"`
	RelCI     [2]float64 `json:"rel_ci"`
	PValue    float64    `json:"p_value"`
	CUPED     *struct {
		Lookback          string
		Applied           bool
		Theta             float64
		VarianceReduction float64 `json:"variance_reduction"`
	}
}

// TestCUPEDFromRawEvents runs recorded raw events with a correlated
// pre-period through verdict up — publish, ingest, ClickHouse, rules — and
// compares the readout with testdata/cuped/expected.json, which
// scripts/oracle/cuped_events_oracle.py computed from the same events
// alone: per-unit values by the metric definitions (attribution window,
// 14-day lookback, copies once, first exposure), then statsmodels' OLS on
// the treatment indicator and the centred covariate for theta and the
// effect, HC2 for the standard error. Every number agrees to 1e-6.
func TestCUPEDFromRawEvents(t *testing.T) { warehousetest.Run(t, testCUPEDFromRawEvents) }

func testCUPEDFromRawEvents(t *testing.T, eng warehouse.Engine) {
	var want struct {
		Base        time.Time
		Experiment  string
		Units       int
		Definitions map[string]any
		Metrics     map[string]cupedMetric
	}
	b, err := os.ReadFile("testdata/cuped/expected.json")
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(b, &want); err != nil {
		t.Fatal(err)
	}
	// Recent events: every timestamp moves by the same amount, which
	// changes no unit's values.
	shift := time.Now().UTC().Add(-time.Hour).Sub(want.Base).Truncate(time.Millisecond)
	moved := func(ts string) string {
		at, err := time.Parse(time.RFC3339Nano, ts)
		if err != nil {
			t.Fatalf("ts %q: %v", ts, err)
		}
		return at.Add(shift).UTC().Format("2006-01-02T15:04:05.000Z07:00")
	}
	f, err := os.Open("testdata/cuped/events.ndjson.gz")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	zr, err := gzip.NewReader(f)
	if err != nil {
		t.Fatal(err)
	}
	var out bytes.Buffer
	ids := map[string]bool{}
	sc := bufio.NewScanner(zr)
	for sc.Scan() {
		var e map[string]any
		if err := json.Unmarshal(sc.Bytes(), &e); err != nil {
			t.Fatal(err)
		}
		e["ts"] = moved(e["ts"].(string))
		ids[e["event_id"].(string)] = true
		line, _ := json.Marshal(e)
		out.Write(append(line, '\n'))
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	exps := want.Definitions["experiments"].([]any)
	exps[0].(map[string]any)["start"] = moved(exps[0].(map[string]any)["start"].(string))

	s := &lifecycleStack{env: map[string]string{
		"VERDICT_NATS_URL":          "nats://" + deployFreeAddr(t),
		"VERDICT_CLICKHOUSE_ADDR":   deployFreeAddr(t),
		"VERDICT_CLICKHOUSE_LOCAL":  string(eng),
		"VERDICT_HTTP_ADDR":         deployFreeAddr(t),
		"VERDICT_DATA_DIR":          t.TempDir(),
		"VERDICT_RULES_INTERVAL":    "1s",
		"VERDICT_DECISION_HOLD":     "0",
		"VERDICT_INGEST_BATCH_WAIT": "200ms",
		"VERDICT_LOG_LEVEL":         "warn",
	}}
	s.start(t)
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	file := filepath.Join(t.TempDir(), "events.ndjson")
	if err := os.WriteFile(file, out.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
	var stdout, stderr bytes.Buffer
	if err := run(ctx, []string{"publish", "--quiet", file}, s.getenv, strings.NewReader(""), &stdout, &stderr); err != nil {
		t.Fatalf("verdict publish: %v\n%s", err, stderr.String())
	}
	// The definitions only once every event has landed, so the first look
	// (and the running intersection it starts) sees them all.
	w, err := warehouse.Open(ctx, warehouse.Config{Addr: s.env["VERDICT_CLICKHOUSE_ADDR"]})
	if err != nil {
		t.Fatal(err)
	}
	defer w.Close()
	for {
		var x, e uint64
		w.Conn().QueryRow(ctx, "SELECT count() FROM verdict.exposures FINAL").Scan(&x)
		w.Conn().QueryRow(ctx, "SELECT count() FROM verdict.events FINAL").Scan(&e)
		if int(x+e) == len(ids) {
			break
		}
		if ctx.Err() != nil {
			t.Fatalf("%d of %d events in ClickHouse", x+e, len(ids))
		}
		time.Sleep(200 * time.Millisecond)
	}
	defs := filepath.Join(t.TempDir(), "defs.json")
	writeJSON(t, defs, want.Definitions)
	if err := run(ctx, []string{"apply", "-f", defs}, s.getenv, strings.NewReader(""), &stdout, &stderr); err != nil {
		t.Fatalf("verdict apply: %v\n%s", err, stderr.String())
	}

	var got struct {
		Progress struct{ Units int }
		Arms     []struct{ Metrics []cupedMetric }
	}
	for {
		resp, err := http.Get("http://" + s.env["VERDICT_HTTP_ADDR"] + "/v1/experiments/" + want.Experiment + "/readout")
		if err == nil {
			if resp.StatusCode == http.StatusOK {
				json.NewDecoder(resp.Body).Decode(&got)
			}
			resp.Body.Close()
		}
		if got.Progress.Units == want.Units && len(got.Arms) == 1 {
			break
		}
		if ctx.Err() != nil {
			t.Fatalf("no readout of %d units (last: %d)", want.Units, got.Progress.Units)
		}
		time.Sleep(500 * time.Millisecond)
	}
	agree := func(what string, got, want, scale float64) {
		t.Helper()
		if math.Abs(got-want) > 1e-6*math.Max(math.Abs(want), scale) {
			t.Errorf("%s = %.12g, the oracle's %.12g", what, got, want)
		}
	}
	checked := 0
	for _, m := range got.Arms[0].Metrics {
		o, ok := want.Metrics[m.Metric]
		if !ok {
			continue
		}
		checked++
		if m.CUPED == nil || !m.CUPED.Applied || m.CUPED.Lookback != "14d" {
			t.Errorf("%s: cuped %+v, want applied with a 14d lookback", m.Metric, m.CUPED)
			continue
		}
		se := (o.CI[1] - o.CI[0]) / 2
		for what, pair := range map[string][3]float64{
			"control mean":       {m.Control.Mean, o.Control.Mean, 0},
			"treatment mean":     {m.Treatment.Mean, o.Treatment.Mean, 0},
			"abs_effect":         {m.AbsEffect, o.AbsEffect, se},
			"ci lo":              {m.CI[0], o.CI[0], se},
			"ci hi":              {m.CI[1], o.CI[1], se},
			"rel_effect":         {m.RelEffect, o.RelEffect, (o.RelCI[1] - o.RelCI[0]) / 2},
			"rel_ci lo":          {m.RelCI[0], o.RelCI[0], (o.RelCI[1] - o.RelCI[0]) / 2},
			"rel_ci hi":          {m.RelCI[1], o.RelCI[1], (o.RelCI[1] - o.RelCI[0]) / 2},
			"p_value":            {m.PValue, o.PValue, 1e-3},
			"theta":              {m.CUPED.Theta, o.CUPED.Theta, 0},
			"variance_reduction": {m.CUPED.VarianceReduction, o.CUPED.VarianceReduction, 1e-3},
		} {
			agree(fmt.Sprintf("%s %s", m.Metric, what), pair[0], pair[1], pair[2])
		}
		if m.Control.N != o.Control.N || m.Treatment.N != o.Treatment.N {
			t.Errorf("%s: units %v and %v, the oracle's %v and %v", m.Metric, m.Control.N, m.Treatment.N, o.Control.N, o.Treatment.N)
		}
		t.Logf("%s: effect %+.5f [%+.5f, %+.5f], variance reduction %.3f", m.Metric, m.AbsEffect, m.CI[0], m.CI[1], m.CUPED.VarianceReduction)
	}
	if checked != len(want.Metrics) {
		t.Errorf("checked %d metrics, the oracle has %d", checked, len(want.Metrics))
	}
}
