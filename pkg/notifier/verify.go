package notifier

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"reflect"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/verdictlabs/verdict/pkg/readout"
	"github.com/verdictlabs/verdict/pkg/stream"
)

// Whoever may publish on verdict.readouts.* (everyone, on a NATS server
// without users) could hand the notifier a readout of their own: a
// decision that was never taken, mailed and posted with a valid signature,
// or a version far ahead, after which every real readout would count as a
// duplicate. The rules service takes every readout's version in
// verdict_decisions, with the readout itself, before it publishes it
// (pkg/rules, State), so the notifier acts only on a readout it finds
// there, byte for byte.

// errRefused is a readout that is not the one the rules stored with its
// version; errSuperseded one older than what the bucket still keeps (it
// has been followed by others, the last of which carries the decision).
var (
	errRefused    = errors.New("refused")
	errSuperseded = errors.New("superseded")
)

// decisionState is what the notifier reads of the rules' state.
type decisionState struct {
	Version uint64          `json:"version"`
	Readout json.RawMessage `json:"readout"`
}

// verify checks that data, the readout r as published, is the readout
// the rules service stored with r's version: nil, errRefused or
// errSuperseded (with why), or another error when NATS could not say.
func (n *Notifier) verify(ctx context.Context, r readout.Readout, data []byte) error {
	kv, err := n.decisions(ctx)
	if errors.Is(err, jetstream.ErrBucketNotFound) {
		return fmt.Errorf("%w: there is no %s bucket: no rules service has taken a readout", errRefused, stream.DecisionsBucket)
	}
	if err != nil {
		return err
	}
	entry, err := kv.Get(ctx, r.Experiment)
	if errors.Is(err, jetstream.ErrKeyNotFound) || errors.Is(err, jetstream.ErrInvalidKey) {
		return fmt.Errorf("%w: the rules service has taken no readout of %q", errRefused, r.Experiment)
	}
	if err != nil {
		return err
	}
	var st decisionState
	if err := json.Unmarshal(entry.Value(), &st); err != nil {
		return fmt.Errorf("decode %s of %s: %w", r.Experiment, stream.DecisionsBucket, err)
	}
	switch v := uint64(max(r.Version, 0)); {
	case v > st.Version:
		return fmt.Errorf("%w: version %d is ahead of the %d the rules service took", errRefused, r.Version, st.Version)
	case v == st.Version:
		return same(data, st.Readout, r.Version)
	}
	history, err := kv.History(ctx, r.Experiment)
	if err != nil {
		return err
	}
	for _, e := range history {
		var old decisionState
		if json.Unmarshal(e.Value(), &old) == nil && old.Version == uint64(r.Version) {
			return same(data, old.Readout, r.Version)
		}
	}
	return fmt.Errorf("%w: version %d is older than the rules' state keeps (now %d)", errSuperseded, r.Version, st.Version)
}

// same compares the published readout with the stored one as JSON values:
// the state's encoding compacts it and escapes HTML characters.
func same(data, stored []byte, version int64) error {
	var a, b any
	if json.Unmarshal(data, &a) != nil || json.Unmarshal(stored, &b) != nil || !reflect.DeepEqual(a, b) {
		return fmt.Errorf("%w: it differs from readout %d as the rules service stored it", errRefused, version)
	}
	return nil
}
