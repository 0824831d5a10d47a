package rules

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"hash/fnv"
	"slices"
	"sort"
	"sync"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/verdictlabs/verdict/pkg/stream"
)

// LeaseBucket is the KV bucket in which rules instances own experiments:
// key experiments.<experiment> says which instance evaluates it and until
// when, key instances.<id> that an instance is alive and until when.
const LeaseBucket = "verdict_leases"

// Leases decide which experiments an engine evaluates. Hold is called
// before every round with the experiments due; it returns those this
// instance holds now.
type Leases interface {
	Hold(ctx context.Context, experiments []string) (map[string]bool, error)
}

// Renewer is what Leases may also do: extend the leases held, without
// taking or letting go of any, while a round's work is under way.
type Renewer interface {
	Renew(ctx context.Context) error
}

// KVLeases share experiments between rules instances through LeaseBucket.
// Each round an instance renews its leases and takes free or expired ones
// up to its fair share — the experiments divided by the instances alive,
// rounded up — and lets go of those above it, so that a new instance gets
// its part within a round or two and a dead one's leases pass to the
// others once they expire. A lease is a value with an owner and an expiry,
// changed only with compare-and-set on its revision, so two instances
// cannot both take one. Leases decide who does the work; the versions stay
// right even when two instances overlap, because each readout's version is
// taken by compare-and-set on the experiment's state (State.Version).
type KVLeases struct {
	KV       jetstream.KeyValue
	Instance string        // unique per process
	TTL      time.Duration // how long a lease lasts unrenewed
	Now      func() time.Time

	mu   sync.Mutex        // Hold, Renew and Release take turns
	held map[string]uint64 // experiment → revision of our lease
}

type lease struct {
	Owner   string    `json:"owner"`
	Expires time.Time `json:"expires"`
}

// EnsureLeaseBucket creates or opens LeaseBucket.
func EnsureLeaseBucket(ctx context.Context, js jetstream.JetStream, replicas int) (jetstream.KeyValue, error) {
	return stream.EnsureKeyValue(ctx, js, jetstream.KeyValueConfig{
		Bucket:      LeaseBucket,
		Description: "verdict rules: which instance evaluates which experiment, and which instances are alive",
		History:     1,
		Storage:     jetstream.FileStorage,
		Replicas:    replicas,
	})
}

func (l *KVLeases) now() time.Time {
	if l.Now != nil {
		return l.Now()
	}
	return time.Now()
}

// Hold renews, takes and lets go of leases as described on KVLeases.
func (l *KVLeases) Hold(ctx context.Context, experiments []string) (map[string]bool, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.held == nil {
		l.held = map[string]uint64{}
	}
	now := l.now()
	mine, err := json.Marshal(lease{Owner: l.Instance, Expires: now.Add(l.TTL)})
	if err != nil {
		return nil, err
	}
	if _, err := l.KV.Put(ctx, "instances."+l.Instance, mine); err != nil {
		return nil, fmt.Errorf("announce instance %s in %s: %w", l.Instance, LeaseBucket, err)
	}
	alive, err := l.alive(ctx, now)
	if err != nil {
		return nil, err
	}
	share := (len(experiments) + alive - 1) / max(alive, 1)

	// Start at a place of our own in the list, so that instances starting
	// together reach for different experiments first.
	sorted := slices.Clone(experiments)
	sort.Strings(sorted)
	if len(sorted) > 0 {
		h := fnv.New32a()
		h.Write([]byte(l.Instance))
		at := int(h.Sum32() % uint32(len(sorted)))
		sorted = append(sorted[at:], sorted[:at]...)
	}
	// Renew first, so that taking a free one never pushes out one we hold.
	out := map[string]bool{}
	count := 0
	for _, exp := range sorted {
		rev, ok := l.held[exp]
		if !ok {
			continue
		}
		delete(l.held, exp)
		if count >= share {
			_ = l.KV.Delete(ctx, "experiments."+exp, jetstream.LastRevision(rev))
			continue
		}
		if rev, err = l.KV.Update(ctx, "experiments."+exp, mine, rev); err == nil {
			l.held[exp], out[exp] = rev, true
			count++
		}
	}
	for _, exp := range sorted {
		if count >= share {
			break
		}
		if out[exp] {
			continue
		}
		if rev, ok := l.take(ctx, exp, mine, now); ok {
			l.held[exp], out[exp] = rev, true
			count++
		}
	}
	// Forget leases of experiments no longer due.
	for exp, rev := range l.held {
		if !out[exp] {
			_ = l.KV.Delete(ctx, "experiments."+exp, jetstream.LastRevision(rev))
			delete(l.held, exp)
		}
	}
	return out, nil
}

// Renew extends every lease held, and the instance's announcement, by TTL
// from now. A lease another instance took meanwhile is no longer held.
func (l *KVLeases) Renew(ctx context.Context) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	mine, err := json.Marshal(lease{Owner: l.Instance, Expires: l.now().Add(l.TTL)})
	if err != nil {
		return err
	}
	if _, err := l.KV.Put(ctx, "instances."+l.Instance, mine); err != nil {
		return fmt.Errorf("announce instance %s in %s: %w", l.Instance, LeaseBucket, err)
	}
	for exp, rev := range l.held {
		if rev, err = l.KV.Update(ctx, "experiments."+exp, mine, rev); err != nil {
			delete(l.held, exp)
			continue
		}
		l.held[exp] = rev
	}
	return nil
}

// take acquires the lease of exp when nobody holds it or its holder let it
// expire.
func (l *KVLeases) take(ctx context.Context, exp string, mine []byte, now time.Time) (uint64, bool) {
	key := "experiments." + exp
	e, err := l.KV.Get(ctx, key)
	if errors.Is(err, jetstream.ErrKeyNotFound) {
		rev, err := l.KV.Create(ctx, key, mine)
		return rev, err == nil
	}
	if err != nil {
		return 0, false
	}
	var cur lease
	if json.Unmarshal(e.Value(), &cur) == nil && cur.Expires.After(now) && cur.Owner != l.Instance {
		return 0, false
	}
	rev, err := l.KV.Update(ctx, key, mine, e.Revision())
	return rev, err == nil
}

// alive counts the instances whose announcement has not expired.
func (l *KVLeases) alive(ctx context.Context, now time.Time) (int, error) {
	keys, err := l.KV.ListKeysFiltered(ctx, "instances.>")
	if err != nil {
		return 0, fmt.Errorf("list instances in %s: %w", LeaseBucket, err)
	}
	n := 0
	for key := range keys.Keys() {
		e, err := l.KV.Get(ctx, key)
		if err != nil {
			continue
		}
		var in lease
		if json.Unmarshal(e.Value(), &in) == nil && in.Expires.After(now) {
			n++
		}
	}
	return max(n, 1), nil
}

// Release lets go of every lease held, so that another instance takes the
// experiments at once rather than after they expire: on shutdown.
func (l *KVLeases) Release(ctx context.Context) {
	l.mu.Lock()
	defer l.mu.Unlock()
	for exp, rev := range l.held {
		_ = l.KV.Delete(ctx, "experiments."+exp, jetstream.LastRevision(rev))
	}
	l.held = nil
	_ = l.KV.Delete(ctx, "instances."+l.Instance)
}
