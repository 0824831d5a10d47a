package configstore

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strings"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/verdictlabs/verdict/pkg/config"
	"github.com/verdictlabs/verdict/pkg/stream"
)

// The KV layout: bucket config.Bucket holds one key per definition
// (config.MetricPrefix, config.ExperimentPrefix), its value the
// definition's JSON (every default filled in).

// bucketHistory is how many past values of a definition the bucket keeps.
const bucketHistory = 10

// EnsureBucket returns the bucket verdict_config, creating it (file
// storage, 10 values of history per key) when it does not exist. An
// existing bucket is used as it is, scaled to replicas when that is > 0
// (VERDICT_NATS_REPLICAS).
func EnsureBucket(ctx context.Context, js jetstream.JetStream, replicas int) (jetstream.KeyValue, error) {
	return stream.EnsureKeyValue(ctx, js, jetstream.KeyValueConfig{
		Bucket:      config.Bucket,
		Description: "verdict experiment and metric definitions (verdict apply)",
		History:     bucketHistory,
		Storage:     jetstream.FileStorage,
		Replicas:    replicas,
	})
}

// entry is a stored definition with the revision it was read at.
type entry struct {
	value    []byte
	revision uint64
}

// snapshot reads every current value of the bucket.
func snapshot(ctx context.Context, kv jetstream.KeyValue) (map[string]entry, error) {
	w, err := kv.WatchAll(ctx, jetstream.IgnoreDeletes())
	if err != nil {
		return nil, fmt.Errorf("read KV bucket %s: %w", config.Bucket, err)
	}
	defer w.Stop()
	entries := map[string]entry{}
	for {
		select {
		case e, ok := <-w.Updates():
			if !ok {
				return nil, fmt.Errorf("read KV bucket %s: watcher stopped", config.Bucket)
			}
			if e == nil { // every current value has been delivered
				return entries, nil
			}
			entries[e.Key()] = entry{e.Value(), e.Revision()}
		case <-ctx.Done():
			return nil, fmt.Errorf("read KV bucket %s: %w", config.Bucket, ctx.Err())
		}
	}
}

// decodeEntries turns stored values into definitions, sorted by key. Keys
// without the metric. or experiment. prefix are left alone; a value that
// does not decode is returned in bad.
func decodeEntries(entries map[string]entry) (d config.Definitions, bad map[string]error) {
	keys := make([]string, 0, len(entries))
	for k := range entries {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	bad = map[string]error{}
	for _, k := range keys {
		switch {
		case strings.HasPrefix(k, config.MetricPrefix):
			var m config.Metric
			if err := json.Unmarshal(entries[k].value, &m); err != nil {
				bad[k] = err
				continue
			}
			d.Metrics = append(d.Metrics, m)
		case strings.HasPrefix(k, config.ExperimentPrefix):
			var e config.Experiment
			if err := json.Unmarshal(entries[k].value, &e); err != nil {
				bad[k] = err
				continue
			}
			d.Experiments = append(d.Experiments, e)
		}
	}
	return d, bad
}

// Load returns the definitions stored in kv, metrics and experiments each
// sorted by key, validated again: Apply stores only valid ones, but anyone
// who may write the bucket can put anything there. An experiment that fails
// is left out and named in Refused; stored metrics that fail are an error.
func Load(ctx context.Context, kv jetstream.KeyValue) (config.Definitions, error) {
	entries, err := snapshot(ctx, kv)
	if err != nil {
		return config.Definitions{}, err
	}
	d, bad := decodeEntries(entries)
	if len(bad) > 0 {
		k := slices.Sorted(maps.Keys(bad))[0]
		return config.Definitions{}, fmt.Errorf("decode %s/%s: %w", config.Bucket, k, bad[k])
	}
	if config.Validate(d) == nil {
		return d, nil
	}
	if err := config.Validate(config.Definitions{Metrics: d.Metrics}); err != nil {
		return config.Definitions{}, fmt.Errorf("the metrics stored in %s fail validation: %w", config.Bucket, err)
	}
	valid := d.Experiments[:0:0]
	for _, e := range d.Experiments {
		if err := config.Validate(config.Definitions{Metrics: d.Metrics, Experiments: []config.Experiment{e}}); err != nil {
			if d.Refused == nil {
				d.Refused = map[string]error{}
			}
			d.Refused[e.Key] = err
			continue
		}
		valid = append(valid, e)
	}
	d.Experiments = valid
	return d, nil
}

// Op is what Apply did to one key.
type Op string

// The outcomes of applying one definition.
const (
	Created   Op = "created"
	Updated   Op = "updated"
	Unchanged Op = "unchanged"
)

// Change is what Apply did to one KV key (metric.<key> or experiment.<key>).
type Change struct {
	Key string
	Op  Op
}

// Apply stores defs in kv: each metric and experiment replaces the stored
// one of the same key, or is added; stored definitions that defs does not
// mention stay. The merged whole is validated first, so an experiment may
// use a metric applied earlier; on any problem nothing is stored and the
// error is config.Problems.
func Apply(ctx context.Context, kv jetstream.KeyValue, defs config.Definitions) error {
	_, err := ApplyFiles(ctx, kv, &config.File{Definitions: defs})
	return err
}

// CheckFiles is what ApplyFiles checks, without storing anything: the
// files' definitions together with those stored in kv (an experiment may
// use a metric applied before). A nil kv is a bucket not created yet:
// nothing stored.
func CheckFiles(ctx context.Context, kv jetstream.KeyValue, files ...*config.File) error {
	if kv == nil {
		return config.Check(&config.Definitions{}, files...)
	}
	entries, err := snapshot(ctx, kv)
	if err != nil {
		return err
	}
	stored, _ := decodeEntries(entries)
	return config.Check(&stored, files...)
}

// ApplyFiles is Apply for parsed files, reporting their problems (parse
// problems included) at their lines, and what it did to each key: metrics
// first, then experiments, in the files' order.
//
// Writes are conditional on the revision read, so a definition changed by
// someone else meanwhile is not overwritten: ApplyFiles stops with an error
// and the apply can be run again. Metrics are written before experiments,
// so the bucket never holds an experiment whose metrics are missing, even
// if the connection fails midway.
func ApplyFiles(ctx context.Context, kv jetstream.KeyValue, files ...*config.File) ([]Change, error) {
	entries, err := snapshot(ctx, kv)
	if err != nil {
		return nil, err
	}
	stored, bad := decodeEntries(entries)
	if err := config.Check(&stored, files...); err != nil {
		return nil, err
	}
	// A stored value that cannot be read is fixed by applying that key again.
	var probs config.Problems
	for _, k := range slices.Sorted(maps.Keys(bad)) {
		if !defines(files, k) {
			probs = append(probs, config.Problem{Pos: config.Pos{File: config.Bucket + "/" + k}, Msg: fmt.Sprintf("stored value cannot be read (%v): apply a corrected definition of it", bad[k])})
		}
	}
	if len(probs) > 0 {
		return nil, probs
	}

	type put struct {
		key   string
		value any
	}
	var puts []put
	for _, f := range files {
		for _, m := range f.Metrics {
			puts = append(puts, put{config.MetricPrefix + m.Key, m})
		}
	}
	for _, f := range files {
		for _, e := range f.Experiments {
			puts = append(puts, put{config.ExperimentPrefix + e.Key, e})
		}
	}
	var changes []Change
	for _, p := range puts {
		value, err := json.Marshal(p.value)
		if err != nil {
			return changes, fmt.Errorf("encode %s: %w", p.key, err)
		}
		old, exists := entries[p.key]
		switch {
		case !exists:
			if _, err := kv.Create(ctx, p.key, value); err != nil {
				return changes, fmt.Errorf("create %s/%s: %w", config.Bucket, p.key, conflict(err))
			}
			changes = append(changes, Change{p.key, Created})
		case sameJSON(old.value, p.value):
			changes = append(changes, Change{p.key, Unchanged})
		default:
			if _, err := kv.Update(ctx, p.key, value, old.revision); err != nil {
				return changes, fmt.Errorf("update %s/%s: %w", config.Bucket, p.key, conflict(err))
			}
			changes = append(changes, Change{p.key, Updated})
		}
	}
	return changes, nil
}

func defines(files []*config.File, key string) bool {
	for _, f := range files {
		for _, m := range f.Metrics {
			if config.MetricPrefix+m.Key == key {
				return true
			}
		}
		for _, e := range f.Experiments {
			if config.ExperimentPrefix+e.Key == key {
				return true
			}
		}
	}
	return false
}

// conflict explains a failed conditional write.
func conflict(err error) error {
	var apiErr *jetstream.APIError
	if errors.Is(err, jetstream.ErrKeyExists) || errors.As(err, &apiErr) && apiErr.ErrorCode == jetstream.JSErrCodeStreamWrongLastSequence {
		return fmt.Errorf("changed by someone else while applying; run apply again: %w", err)
	}
	return err
}

// sameJSON reports whether the stored value holds the definition v: both
// are decoded into v's type and encoded again, so that spelling differences
// (key order, spacing, time zones) do not count as changes.
func sameJSON(stored []byte, v any) bool {
	want, err := json.Marshal(v)
	if err != nil {
		return false
	}
	var got []byte
	switch v.(type) {
	case config.Metric:
		var m config.Metric
		if json.Unmarshal(stored, &m) != nil {
			return false
		}
		got, err = json.Marshal(m)
	case config.Experiment:
		var e config.Experiment
		if json.Unmarshal(stored, &e) != nil {
			return false
		}
		got, err = json.Marshal(e)
	}
	return err == nil && bytes.Equal(got, want)
}
