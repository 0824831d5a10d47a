package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"math"
	"math/rand/v2"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/verdictlabs/verdict/pkg/event"
	"github.com/verdictlabs/verdict/pkg/warehouse"
	"github.com/verdictlabs/verdict/pkg/warehouse/warehousetest"
)

// TestLateEventsCount runs an experiment's history through verdict up, then
// 2% more events, half of them late (timed an hour back, inside their
// units' windows), and copies of old events published again: the readout
// must take them in at its next looks, with each arm's means equal to a Go
// computation from the raw events, and `verdict recompute` must find the
// incremental tally equal to a full recompute.
func TestLateEventsCount(t *testing.T) { warehousetest.Run(t, testLateEventsCount) }

func testLateEventsCount(t *testing.T, eng warehouse.Engine) {
	s := &lifecycleStack{env: map[string]string{
		"VERDICT_NATS_URL":          "nats://" + deployFreeAddr(t),
		"VERDICT_CLICKHOUSE_ADDR":   deployFreeAddr(t),
		"VERDICT_CLICKHOUSE_LOCAL":  string(eng),
		"VERDICT_HTTP_ADDR":         deployFreeAddr(t),
		"VERDICT_DATA_DIR":          t.TempDir(),
		"VERDICT_RULES_INTERVAL":    "1s",
		"VERDICT_INGEST_BATCH_WAIT": "100ms",
		"VERDICT_LOG_LEVEL":         "warn",
	}}
	s.start(t)
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()

	now := time.Now().UTC().Truncate(time.Millisecond)
	start := now.Add(-3 * time.Hour)
	defs := fmt.Sprintf(`metrics:
  - {key: conversion, kind: proportion, event: purchase}
  - {key: revenue, kind: mean, event: purchase, cap: {percentile: 0.95}}
experiments:
  - key: late
    name: Late events
    hypothesis: Late events count.
    owners: [team@example.com]
    variants: [{key: control, weight: 0.5}, {key: treatment, weight: 0.5}]
    control: control
    primary: [conversion]
    secondary: [revenue]
    mde: 0.1
    attribution_window: 1d
    start: %s
`, start.Format(time.RFC3339))
	var out, errOut bytes.Buffer
	if err := run(ctx, []string{"apply", "-f", "-"}, s.getenv, strings.NewReader(defs), &out, &errOut); err != nil {
		t.Fatalf("verdict apply: %v\n%s", err, errOut.String())
	}

	rng := rand.New(rand.NewPCG(5, 8))
	type unit struct {
		id      string
		first   time.Time
		variant string
	}
	var units []unit
	var history []event.Event
	for i := range 2000 {
		u := unit{fmt.Sprintf("late-u%d", i), start.Add(time.Duration(rng.Int64N(int64(2 * time.Hour)))).Truncate(time.Millisecond), []string{"control", "treatment"}[rng.IntN(2)]}
		units = append(units, u)
		history = append(history, event.Event{Type: event.Exposure, ID: "x-" + u.id, TS: u.first, Unit: u.id, Experiment: "late", Variant: u.variant})
		for k := range rng.IntN(4) {
			history = append(history, event.Event{Type: event.Track, ID: fmt.Sprintf("p-%s-%d", u.id, k), Unit: u.id, Name: "purchase",
				TS: u.first.Add(time.Duration(rng.Int64N(int64(50 * time.Minute)))), Value: float64(1 + rng.IntN(100))})
		}
	}
	s.publish(t, history)
	readout := func() (units int, means map[string][2]float64) {
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+s.env["VERDICT_HTTP_ADDR"]+"/v1/experiments/late/readout", nil)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			return 0, nil
		}
		defer resp.Body.Close()
		var ro struct {
			Progress struct{ Units int }
			Arms     []struct {
				Metrics []struct {
					Metric             string
					Control, Treatment struct{ Mean float64 }
				}
			}
		}
		if resp.StatusCode != http.StatusOK || json.NewDecoder(resp.Body).Decode(&ro) != nil || len(ro.Arms) != 1 {
			return 0, nil
		}
		means = map[string][2]float64{}
		for _, m := range ro.Arms[0].Metrics {
			means[m.Metric] = [2]float64{m.Control.Mean, m.Treatment.Mean}
		}
		return ro.Progress.Units, means
	}
	// oracle: each arm's conversion and capped mean revenue, from the raw
	// events (copies once), as of now.
	oracle := func(evs []event.Event) map[string][2]float64 {
		byID := map[string]event.Event{}
		for _, e := range evs {
			byID[e.ID] = e
		}
		first := map[string]unit{}
		for _, u := range units {
			first[u.id] = u
		}
		revenue := map[string]float64{}
		for _, e := range byID {
			u, ok := first[e.Unit]
			if e.Type != event.Track || !ok || e.TS.Before(u.first) || !e.TS.Before(u.first.Add(24*time.Hour)) {
				continue
			}
			revenue[e.Unit] += e.Value
		}
		var nonzero []float64
		for _, v := range revenue {
			if v != 0 {
				nonzero = append(nonzero, v)
			}
		}
		capAt := math.Inf(1)
		if len(nonzero) > 0 {
			slices.Sort(nonzero)
			capAt = nonzero[int(0.95*float64(len(nonzero)))]
		}
		var n, conv, rev [2]float64
		for _, u := range units {
			arm := 0
			if u.variant == "treatment" {
				arm = 1
			}
			n[arm]++
			if revenue[u.id] > 0 {
				conv[arm]++
			}
			rev[arm] += min(revenue[u.id], capAt)
		}
		return map[string][2]float64{
			"conversion": {conv[0] / n[0], conv[1] / n[1]},
			"revenue":    {rev[0] / n[0], rev[1] / n[1]},
		}
	}
	equal := func(a, b map[string][2]float64) bool {
		for k, v := range a {
			for i := range 2 {
				if math.Abs(b[k][i]-v[i]) > 1e-9*max(1, math.Abs(v[i])) {
					return false
				}
			}
		}
		return len(a) == len(b)
	}
	waitFor := func(what string, want map[string][2]float64) {
		t.Helper()
		var got map[string][2]float64
		var n int
		for ctx.Err() == nil {
			if n, got = readout(); n == len(units) && equal(want, got) {
				return
			}
			time.Sleep(300 * time.Millisecond)
		}
		t.Fatalf("%s: the readout has %d units and means %v; the raw events give %d and %v", what, n, got, len(units), want)
	}
	waitFor("history", oracle(history))

	// 2% more: half late, inside their units' windows but timed before
	// events already counted; half copies of old events, published again.
	var more []event.Event
	for i := range len(history) / 50 {
		u := units[rng.IntN(len(units))]
		if i%2 == 0 {
			more = append(more, event.Event{Type: event.Track, ID: fmt.Sprintf("late-%d", i), Unit: u.id, Name: "purchase",
				TS: u.first.Add(time.Duration(rng.Int64N(int64(10 * time.Minute)))), Value: float64(1 + rng.IntN(100))})
		} else {
			more = append(more, history[rng.IntN(len(history))])
		}
	}
	s.publish(t, more)
	all := append(append([]event.Event(nil), history...), more...)
	waitFor("after late events and copies", oracle(all))

	out.Reset()
	errOut.Reset()
	if err := run(ctx, []string{"recompute", "late"}, s.getenv, strings.NewReader(""), &out, &errOut); err != nil {
		t.Fatalf("verdict recompute: %v\n%s%s", err, out.String(), errOut.String())
	}
	if !strings.Contains(out.String(), "equals the full recompute") {
		t.Errorf("verdict recompute said:\n%s", out.String())
	}
	t.Logf("verdict recompute: %s", strings.TrimSpace(out.String()))
}
