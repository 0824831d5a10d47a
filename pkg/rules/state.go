package rules

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/verdictlabs/verdict/pkg/config"
	"github.com/verdictlabs/verdict/pkg/decide"
	"github.com/verdictlabs/verdict/pkg/stats"
	"github.com/verdictlabs/verdict/pkg/stream"
)

// StateBucket is the KV bucket that keeps each experiment's decision
// between looks and across restarts, one key per experiment.
const StateBucket = stream.DecisionsBucket

// State is what the rules service keeps of an experiment between looks:
// its decision lifecycle and the running intersection of its confidence
// sequences. The running record belongs to one definition: Definition is
// a digest of what the statistics depend on, and a change of it starts the
// record again (the lifecycle stays: a decision is final).
type State struct {
	Experiment string                   `json:"experiment"`
	Definition string                   `json:"definition"`
	Lifecycle  decide.Lifecycle         `json:"lifecycle"`
	Running    map[string]stats.Running `json:"running,omitempty"`
	UpdatedAt  time.Time                `json:"updated_at"`
	// Version is the experiment's latest readout version, taken here by
	// compare-and-set before the readout is stored and published, and
	// Readout that readout: whoever evaluates the experiment next — this
	// instance or another after a crash — publishes it if it never was,
	// so versions rise by one, without gaps or repeats, across instances.
	Version uint64          `json:"version,omitempty"`
	Readout json.RawMessage `json:"readout,omitempty"`
}

// States reads and writes State. Put is given the revision Get returned
// (0 for a new key) and fails when the stored state moved on since.
type States interface {
	Get(ctx context.Context, experiment string) (State, uint64, error)
	Put(ctx context.Context, s State, revision uint64) (uint64, error)
}

// KVStates keeps State in the NATS KV bucket verdict_decisions.
type KVStates struct{ KV jetstream.KeyValue }

// EnsureStateBucket creates or opens the bucket.
func EnsureStateBucket(ctx context.Context, js jetstream.JetStream, replicas int) (KVStates, error) {
	kv, err := stream.EnsureKeyValue(ctx, js, jetstream.KeyValueConfig{
		Bucket:      StateBucket,
		Description: "verdict rules: per experiment, its decision lifecycle and running confidence sequences",
		History:     5,
		Storage:     jetstream.FileStorage,
		Replicas:    replicas,
	})
	if err != nil {
		return KVStates{}, fmt.Errorf("create kv bucket %s: %w", StateBucket, err)
	}
	return KVStates{KV: kv}, nil
}

// Get returns the experiment's state and its revision; a zero State and
// revision 0 when it has none.
func (s KVStates) Get(ctx context.Context, experiment string) (State, uint64, error) {
	e, err := s.KV.Get(ctx, experiment)
	if errors.Is(err, jetstream.ErrKeyNotFound) {
		return State{Experiment: experiment}, 0, nil
	}
	if err != nil {
		return State{}, 0, fmt.Errorf("get %s from %s: %w", experiment, StateBucket, err)
	}
	var st State
	if err := json.Unmarshal(e.Value(), &st); err != nil {
		return State{}, 0, fmt.Errorf("decode %s of %s: %w", experiment, StateBucket, err)
	}
	return st, e.Revision(), nil
}

// Put stores the state if the stored one is still at revision.
func (s KVStates) Put(ctx context.Context, st State, revision uint64) (uint64, error) {
	b, err := json.Marshal(st)
	if err != nil {
		return 0, fmt.Errorf("encode state of %s: %w", st.Experiment, err)
	}
	var rev uint64
	if revision == 0 {
		rev, err = s.KV.Create(ctx, st.Experiment, b)
	} else {
		rev, err = s.KV.Update(ctx, st.Experiment, b, revision)
	}
	if err != nil {
		return 0, fmt.Errorf("store state of %s in %s: %w", st.Experiment, StateBucket, err)
	}
	return rev, nil
}

// definitionDigest hashes what an experiment's statistics depend on: its
// variants, metrics and their definitions, segments, analysis options and
// dates; not its name, hypothesis or owners.
func definitionDigest(exp config.Experiment, metrics []config.Metric) string {
	b, _ := json.Marshal(struct {
		Variants   []config.Variant
		Control    string
		Primary    []string
		Secondary  []string
		Guardrails []config.Guardrail
		Segments   []string
		Alpha      float64
		Sequential bool
		Tuning     float64
		Engine     string        `json:",omitempty"` // omitted for the frequentist
		Prior      *config.Prior `json:",omitempty"` // engine: its digests stay as they were
		Window     config.Duration
		Start      time.Time
		End        *time.Time
		Metrics    []config.Metric
	}{exp.Variants, exp.Control, exp.Primary, exp.Secondary, exp.Guardrails, exp.Segments,
		exp.Alpha, exp.Sequential, exp.Tuning, exp.Engine, exp.Prior, exp.AttributionWindow, exp.Start, exp.End, metrics})
	sum := sha256.Sum256(b)
	return hex.EncodeToString(sum[:16])
}

// ParseHold reads VERDICT_DECISION_HOLD ("10m", "30s", "0") into
// Config.Hold, where 0 is the default: "0" becomes a negative hold, which
// decides at the first look.
func ParseHold(s string) (time.Duration, error) {
	d, err := time.ParseDuration(s)
	if err != nil || d < 0 {
		return 0, fmt.Errorf("VERDICT_DECISION_HOLD %q: want a duration of 0 or more, such as 10m", s)
	}
	if d == 0 {
		return -1, nil
	}
	return d, nil
}
