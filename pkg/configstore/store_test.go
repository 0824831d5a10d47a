package configstore

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/verdictlabs/verdict/pkg/config"
	"github.com/verdictlabs/verdict/pkg/stream/streamtest"
)

func newBucket(t *testing.T) (context.Context, jetstream.JetStream, jetstream.KeyValue) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	t.Cleanup(cancel)
	_, js := streamtest.Connect(t, streamtest.Run(t))
	kv, err := EnsureBucket(ctx, js, 0)
	if err != nil {
		t.Fatalf("EnsureBucket: %v", err)
	}
	return ctx, js, kv
}

func parseFile(t *testing.T, name, data string) *config.File {
	t.Helper()
	f, err := config.ParseFile(name, []byte(data))
	if err != nil {
		t.Fatalf("ParseFile(%s): %v", name, err)
	}
	return f
}

func require_keys(t *testing.T, ctx context.Context, kv jetstream.KeyValue, want ...string) {
	t.Helper()
	got, err := kv.Keys(ctx)
	if errors.Is(err, jetstream.ErrNoKeysFound) {
		got, err = nil, nil
	}
	if err != nil {
		t.Fatalf("Keys: %v", err)
	}
	slices.Sort(got)
	slices.Sort(want)
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("keys in %s (-want +got):\n%s", config.Bucket, diff)
	}
}

func TestEnsureBucket(t *testing.T) {
	ctx, js, kv := newBucket(t)
	st, err := kv.Status(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if st.Bucket() != config.Bucket || st.History() != bucketHistory {
		t.Errorf("bucket %s history %d, want %s history %d", st.Bucket(), st.History(), config.Bucket, bucketHistory)
	}
	if s := st.(*jetstream.KeyValueBucketStatus).StreamInfo().Config.Storage; s != jetstream.FileStorage {
		t.Errorf("storage = %v, want file", s)
	}
	if _, err := EnsureBucket(ctx, js, 0); err != nil {
		t.Errorf("second EnsureBucket: %v", err)
	}
}

func TestApplyLoad(t *testing.T) {
	ctx, _, kv := newBucket(t)
	if err := Apply(ctx, kv, minimalDefs()); err != nil {
		t.Fatalf("Apply: %v", err)
	}
	require_keys(t, ctx, kv, "metric.conversion", "metric.revenue", "metric.visits", "metric.load", "experiment.exp-1")
	got, err := Load(ctx, kv)
	if err != nil {
		t.Fatalf("Load: %v", err)
	}
	want := minimalDefs()
	// Load sorts by key.
	want.Metrics = []config.Metric{want.Metrics[0], want.Metrics[3], want.Metrics[1], want.Metrics[2]}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("Load (-want +got):\n%s", diff)
	}

	e, err := kv.Get(ctx, "experiment.exp-1")
	if err != nil {
		t.Fatal(err)
	}
	for _, field := range []string{`"attribution_window":"7d"`, `"sequential":true`, `"start":"2026-11-01T00:00:00Z"`, `"tuning":5000`} {
		if !strings.Contains(string(e.Value()), field) {
			t.Errorf("stored experiment %s lacks %s", e.Value(), field)
		}
	}
}

func TestApplyMerge(t *testing.T) {
	ctx, _, kv := newBucket(t)
	metrics := parseFile(t, "metrics.yaml", minimalYAML[:strings.Index(minimalYAML, "experiments:")])
	changes, err := ApplyFiles(ctx, kv, metrics)
	if err != nil {
		t.Fatalf("apply metrics: %v", err)
	}
	if len(changes) != 4 || changes[0] != (Change{"metric.conversion", Created}) {
		t.Errorf("changes = %v, want 4 metrics created", changes)
	}

	// An experiment using metrics applied before; one metric changed, one
	// the same.
	second := parseFile(t, "exp.yaml", `
metrics:
  - {key: revenue, kind: mean, event: purchase, cap: {percentile: 0.99}}
  - {key: visits, kind: count, event: visit}
experiments:
  - key: exp-1
    variants: [{key: control}, {key: treatment}]
    control: control
    primary: [conversion]
    guardrails: [{metric: load, margin: 0.1}]
    mde: 0.03
    start: 2026-11-01T00:00:00Z
`)
	changes, err = ApplyFiles(ctx, kv, second)
	if err != nil {
		t.Fatalf("apply experiment: %v", err)
	}
	want := []Change{{"metric.revenue", Updated}, {"metric.visits", Unchanged}, {"experiment.exp-1", Created}}
	if diff := cmp.Diff(want, changes); diff != "" {
		t.Errorf("changes (-want +got):\n%s", diff)
	}
	got, err := Load(ctx, kv)
	if err != nil {
		t.Fatal(err)
	}
	if m, _ := got.Metric("revenue"); m.Cap == nil || m.Cap.Percentile != 0.99 {
		t.Errorf("revenue after merge = %+v, want the cap applied", m)
	}
	if len(got.Metrics) != 4 || len(got.Experiments) != 1 {
		t.Errorf("after merge %d metrics, %d experiments; want 4, 1", len(got.Metrics), len(got.Experiments))
	}
	e, _ := kv.Get(ctx, "metric.revenue")
	if e.Revision() < 5 {
		t.Errorf("metric.revenue revision %d: want it updated after the first apply", e.Revision())
	}
}

func TestApplyRefusedStoresNothing(t *testing.T) {
	ctx, _, kv := newBucket(t)
	if err := Apply(ctx, kv, config.Definitions{Metrics: minimalDefs().Metrics[:1]}); err != nil {
		t.Fatal(err)
	}
	// A valid new metric, a valid change of a stored one, and a bad
	// experiment: nothing of it may be stored.
	bad := parseFile(t, "bad.yaml", `
metrics:
  - {key: conversion, kind: proportion, event: checkout}
  - {key: revenue, kind: mean, event: purchase}
experiments:
  - key: exp-1
    variants: [{key: control, weight: 0.5}, {key: treatment, weight: 0.4}]
    control: control
    primary: [conversion, revenu]
    mde: 0.03
    start: 2026-11-01T00:00:00Z
`)
	changes, err := ApplyFiles(ctx, kv, bad)
	var ps config.Problems
	if !errors.As(err, &ps) || len(changes) != 0 {
		t.Fatalf("ApplyFiles = %v, %v; want config.Problems and no change", changes, err)
	}
	want := []string{
		"bad.yaml:7:15: experiments[0].variants: weights add up to 0.9, not 1: make the shares of units sum to 1 (e.g. 0.5 and 0.5)",
		`bad.yaml:9:27: experiments[0].primary[1]: unknown metric "revenu": define it under metrics (in these files or one applied before); did you mean "revenue"?`,
	}
	var got []string
	for _, p := range ps {
		got = append(got, p.String())
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("problems (-want +got):\n%s", diff)
	}
	require_keys(t, ctx, kv, "metric.conversion")
	e, err := kv.Get(ctx, "metric.conversion")
	if err != nil || !strings.Contains(string(e.Value()), `"purchase"`) || e.Revision() != 1 {
		t.Errorf("metric.conversion changed by a refused apply: %s rev %d", e.Value(), e.Revision())
	}
}

func TestApplyStoredProblems(t *testing.T) {
	ctx, _, kv := newBucket(t)
	// Written by hand (nats kv put): an experiment whose metric is missing,
	// and a value that is not a metric.
	if _, err := kv.Put(ctx, "experiment.old", []byte(`{"key":"old","variants":[{"key":"a","weight":0.5},{"key":"b","weight":0.5}],"control":"a","primary":["gone"],"mde":0.1,"alpha":0.05,"power":0.8,"sequential":true,"tuning":5000,"attribution_window":"7d","start":"2026-01-01T00:00:00Z"}`)); err != nil {
		t.Fatal(err)
	}
	if _, err := kv.Put(ctx, "metric.junk", []byte(`not json`)); err != nil {
		t.Fatal(err)
	}
	if _, err := Load(ctx, kv); err == nil || !strings.Contains(err.Error(), "metric.junk") {
		t.Errorf("Load = %v, want an error naming metric.junk", err)
	}
	err := Apply(ctx, kv, config.Definitions{Metrics: minimalDefs().Metrics[:1]})
	want := `verdict_config/experiment.old: primary[0]: unknown metric "gone": define it under metrics (in these files or one applied before)`
	if err == nil || err.Error() != want {
		t.Errorf("Apply = %v, want %s", err, want)
	}
	// Defining the missing metric and the junk one repairs the bucket.
	err = Apply(ctx, kv, config.Definitions{Metrics: []config.Metric{
		{Key: "gone", Kind: "count", Event: "e", Aggregate: config.Count, Direction: config.Increase},
		{Key: "junk", Kind: "count", Event: "e", Aggregate: config.Count, Direction: config.Increase},
	}})
	if err != nil {
		t.Errorf("Apply of the missing metrics: %v", err)
	}
}

func TestApplyConflict(t *testing.T) {
	ctx, _, kv := newBucket(t)
	d := minimalDefs()
	if err := Apply(ctx, kv, d); err != nil {
		t.Fatal(err)
	}
	entries, err := snapshot(ctx, kv)
	if err != nil {
		t.Fatal(err)
	}
	// Someone else changes the experiment after it was read.
	if _, err := kv.Put(ctx, "experiment.exp-1", entries["experiment.exp-1"].value); err != nil {
		t.Fatal(err)
	}
	_, err = kv.Update(ctx, "experiment.exp-1", []byte(`{}`), entries["experiment.exp-1"].revision)
	if err == nil || !strings.Contains(conflict(err).Error(), "run apply again") {
		t.Errorf("stale update: %v, want a conflict", conflict(err))
	}
}

// TestLoadValidatesAgain: an experiment written to the bucket by other
// means than Apply (here: a thousand owners and a webhook list past the
// caps) is left out of what Load returns and named in Refused; the valid
// one stays.
func TestLoadValidatesAgain(t *testing.T) {
	ctx, _, kv := newBucket(t)
	if err := Apply(ctx, kv, minimalDefs()); err != nil {
		t.Fatalf("Apply: %v", err)
	}
	stored, err := kv.Get(ctx, "experiment.exp-1")
	if err != nil {
		t.Fatal(err)
	}
	var e config.Experiment
	if err := json.Unmarshal(stored.Value(), &e); err != nil {
		t.Fatal(err)
	}
	e.Key = "forged"
	for i := range 1000 {
		e.Owners = append(e.Owners, fmt.Sprintf("o%d@example.com", i))
	}
	e.Notify = &config.Notify{Webhooks: slices.Repeat([]string{"https://hooks.example.com/x"}, config.MaxNotifyTargets+1)}
	b, _ := json.Marshal(e)
	if _, err := kv.Put(ctx, "experiment.forged", b); err != nil {
		t.Fatal(err)
	}
	got, err := Load(ctx, kv)
	if err != nil {
		t.Fatalf("Load: %v", err)
	}
	if len(got.Experiments) != 1 || got.Experiments[0].Key != "exp-1" {
		t.Errorf("Load returned %d experiments, want exp-1 alone", len(got.Experiments))
	}
	why := fmt.Sprint(got.Refused["forged"])
	if !strings.Contains(why, "1000 owners") || !strings.Contains(why, "Slack and webhook URLs") {
		t.Errorf("Refused[forged] = %q: want the owners and notify caps named", why)
	}
}

// minimalYAML is config's minimal file: only what a file must say.
var minimalYAML = func() string {
	b, err := os.ReadFile("../config/testdata/minimal.yaml")
	if err != nil {
		panic(err)
	}
	return string(b)
}()

// minimalDefs are minimalYAML's definitions, every default filled in.
func minimalDefs() config.Definitions {
	f, err := config.ParseFile("minimal.yaml", []byte(minimalYAML))
	if err != nil {
		panic(err)
	}
	return f.Definitions
}
