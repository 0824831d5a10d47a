package main

import (
	"bytes"
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/verdictlabs/verdict/pkg/config"
	"github.com/verdictlabs/verdict/pkg/configstore"
	"github.com/verdictlabs/verdict/pkg/stream/streamtest"
)

const applyMetrics = `
metrics:
  - {key: conversion, kind: proportion, event: purchase}
  - {key: load, kind: ratio, numerator: {event: page_load}, denominator: {event: page_load, aggregate: count}, direction: decrease}
`

const applyExperiment = `
experiments:
  - key: checkout
    variants: [{key: control, weight: 0.5}, {key: one-page, weight: 0.5}]
    control: control
    primary: [conversion]
    guardrails: [{metric: load, margin: 0.05}]
    mde: 0.03
    start: 2026-11-01T00:00:00Z
`

func writeFile(t *testing.T, name, data string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), name)
	if err := os.WriteFile(p, []byte(data), 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

type applyRun struct {
	stdout, stderr string
	err            error
}

func apply(t *testing.T, url, stdin string, args ...string) applyRun {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	getenv := func(k string) string {
		if k == "VERDICT_NATS_URL" {
			return url
		}
		return ""
	}
	var stdout, stderr bytes.Buffer
	err := runApply(ctx, args, getenv, strings.NewReader(stdin), &stdout, &stderr)
	return applyRun{stdout.String(), stderr.String(), err}
}

func TestRunApply(t *testing.T) {
	s := streamtest.Run(t)
	_, js := streamtest.Connect(t, s)
	ctx := context.Background()

	metrics := writeFile(t, "metrics.yaml", applyMetrics)
	r := apply(t, s.URL(), "", "-f", metrics)
	if r.err != nil {
		t.Fatalf("apply metrics: %v\n%s", r.err, r.stderr)
	}
	want := "created   metric.conversion\ncreated   metric.load\napplied to verdict_config: 2 created, 0 updated, 0 unchanged\n"
	if diff := cmp.Diff(want, r.stdout); diff != "" {
		t.Errorf("stdout (-want +got):\n%s", diff)
	}

	// The experiment from stdin, using the metrics applied before, with
	// the metrics file again (unchanged).
	r = apply(t, s.URL(), applyExperiment, "-f", metrics, "-f", "-")
	if r.err != nil {
		t.Fatalf("apply experiment: %v\n%s", r.err, r.stderr)
	}
	want = "unchanged metric.conversion\nunchanged metric.load\ncreated   experiment.checkout\napplied to verdict_config: 1 created, 0 updated, 2 unchanged\n"
	if diff := cmp.Diff(want, r.stdout); diff != "" {
		t.Errorf("stdout (-want +got):\n%s", diff)
	}

	kv, err := js.KeyValue(ctx, config.Bucket)
	if err != nil {
		t.Fatal(err)
	}
	defs, err := configstore.Load(ctx, kv)
	if err != nil {
		t.Fatal(err)
	}
	if e, ok := defs.Experiment("checkout"); !ok || !e.Sequential || e.Alpha != 0.05 {
		t.Errorf("stored experiment = %+v, want checkout with defaults", e)
	}
}

func TestRunApplyRefused(t *testing.T) {
	s := streamtest.Run(t)
	_, js := streamtest.Connect(t, s)
	bad := writeFile(t, "bad.yaml", applyMetrics+strings.NewReplacer(
		"primary: [conversion]", "primary: [conversoin]",
		"weight: 0.5}]", "weight: 0.6}]",
	).Replace(applyExperiment))
	r := apply(t, s.URL(), "", "-f", bad)
	if r.err == nil || !strings.Contains(r.err.Error(), "nothing stored: 2 problems") {
		t.Fatalf("apply bad.yaml = %v, want refused with 2 problems", r.err)
	}
	want := bad + `:8:15: experiments[0].variants: weights add up to 1.1, not 1: make the shares of units sum to 1 (e.g. 0.5 and 0.5)
` + bad + `:10:15: experiments[0].primary[0]: unknown metric "conversoin": define it under metrics (in these files or one applied before); did you mean "conversion"?
`
	if diff := cmp.Diff(want, r.stderr); diff != "" {
		t.Errorf("stderr (-want +got):\n%s", diff)
	}
	if r.stdout != "" {
		t.Errorf("stdout = %q, want nothing", r.stdout)
	}
	kv, err := js.KeyValue(context.Background(), config.Bucket)
	if err != nil {
		t.Fatal(err)
	}
	if keys, err := kv.Keys(context.Background()); !errors.Is(err, jetstream.ErrNoKeysFound) {
		t.Errorf("keys after a refused apply = %v, %v; want none", keys, err)
	}
}

func TestRunApplyDryRun(t *testing.T) {
	// No NATS at this address: a dry run must not need it.
	const nowhere = "nats://127.0.0.1:1"
	good := writeFile(t, "defs.yaml", applyMetrics+applyExperiment)
	r := apply(t, nowhere, "", "--dry-run", "-f", good)
	if r.err != nil || r.stdout != "valid: 2 metrics, 1 experiments, checked alone: NATS at nats://127.0.0.1:1 did not answer (dry run: nothing stored)\n" {
		t.Errorf("dry run = %v, %q, %q", r.err, r.stdout, r.stderr)
	}
	r = apply(t, nowhere, applyExperiment, "--dry-run", "-f", "-")
	if r.err == nil || !strings.Contains(r.stderr, `<stdin>:6:15: experiments[0].primary[0]: unknown metric "conversion": define it under metrics (in these files; metrics applied before were not read for this check)`) ||
		!strings.Contains(r.stderr, "did not answer") {
		t.Errorf("dry run without the metrics = %v, stderr %q", r.err, r.stderr)
	}
	if r := apply(t, nowhere, ""); r.err == nil {
		t.Errorf("apply without -f: no error")
	}
	if r := apply(t, nowhere, "", "-f", good); r.err == nil || !strings.Contains(r.err.Error(), "--dry-run") {
		t.Errorf("apply without NATS = %v, want a connection error that mentions --dry-run", r.err)
	}
}

// TestRunApplyDryRunSeesStored: with NATS up, a dry run checks an
// experiment against the metrics applied before, and stores nothing.
func TestRunApplyDryRunSeesStored(t *testing.T) {
	s := streamtest.Run(t)
	_, js := streamtest.Connect(t, s)
	if r := apply(t, s.URL(), "", "--dry-run", "-f", writeFile(t, "e.yaml", applyExperiment)); r.err == nil {
		t.Fatalf("dry run of an experiment before its metrics exist: no error")
	}
	if r := apply(t, s.URL(), "", "-f", writeFile(t, "m.yaml", applyMetrics)); r.err != nil {
		t.Fatal(r.err)
	}
	r := apply(t, s.URL(), "", "--dry-run", "-f", writeFile(t, "e.yaml", applyExperiment))
	if r.err != nil || r.stdout != "valid: 0 metrics, 1 experiments, with the definitions stored in verdict_config (dry run: nothing stored)\n" {
		t.Fatalf("dry run of the experiment = %v, %q, %q", r.err, r.stdout, r.stderr)
	}
	kv, err := js.KeyValue(context.Background(), config.Bucket)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := kv.Get(context.Background(), config.ExperimentPrefix+"checkout"); !errors.Is(err, jetstream.ErrKeyNotFound) {
		t.Errorf("the dry run stored the experiment: %v", err)
	}
}
