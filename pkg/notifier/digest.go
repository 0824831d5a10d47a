package notifier

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"sort"
	"strings"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/robfig/cron/v3"

	"github.com/verdictlabs/verdict/pkg/readout"
	"github.com/verdictlabs/verdict/pkg/report"
	"github.com/verdictlabs/verdict/pkg/stream"
)

// DefaultDigest is the digest's schedule unless VERDICT_DIGEST says
// otherwise: Mondays at 09:00 UTC.
const DefaultDigest = "0 9 * * 1"

// ParseDigest reads VERDICT_DIGEST: a cron schedule in UTC (five fields,
// or @weekly, @daily …), "" for the default, "off" for none.
func ParseDigest(spec string) (cron.Schedule, error) {
	switch strings.TrimSpace(spec) {
	case "":
		spec = DefaultDigest
	case "off":
		return nil, nil
	}
	s, err := cron.ParseStandard(spec)
	if err != nil {
		return nil, fmt.Errorf("VERDICT_DIGEST %q: want a cron schedule such as %q (minute hour day month weekday, UTC) or off: %w", spec, DefaultDigest, err)
	}
	return s, nil
}

// lastFire is the latest time at or before now that s fires; zero when it
// has not fired in the two years before now.
func lastFire(s cron.Schedule, now time.Time) time.Time {
	now = now.UTC()
	for back := 24 * time.Hour; back <= 800*24*time.Hour; back *= 2 {
		t := s.Next(now.Add(-back))
		if t.IsZero() {
			return time.Time{}
		}
		if t.After(now) {
			continue
		}
		for {
			next := s.Next(t)
			if next.IsZero() || next.After(now) {
				return t
			}
			t = next
		}
	}
	return time.Time{}
}

// digestLoop sends the digest of each period once its schedule fires,
// checking every interval; a notifier that was down when it fired sends
// that period's digest when it comes back, until the next one fires.
func (n *Notifier) digestLoop(ctx context.Context, s cron.Schedule, every time.Duration) {
	tick := time.NewTicker(every)
	defer tick.Stop()
	for {
		if err := n.digestOnce(ctx, s); err != nil && ctx.Err() == nil {
			n.log.Warn("digest", "err", err)
		}
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
	}
}

// digestOnce sends the digests of the period that ended at the schedule's
// latest firing, to every owner and default Slack target not yet sent it.
// Each is claimed in the bucket first (key digest.<end>.<owner hash>), so
// that, however many notifiers run and restart, each goes out once.
func (n *Notifier) digestOnce(ctx context.Context, s cron.Schedule) (err error) {
	now := n.now().UTC()
	others := false // a digest another notifier claimed: look again later
	end := lastFire(s, now)
	if end.IsZero() || end.Equal(n.digested) {
		return nil // none yet, or this period's are all out
	}
	// No digest for a period that ended before the first notifier of
	// this deployment started: a new stack does not mail last week.
	epoch, err := n.digestEpoch(ctx, now)
	if err != nil {
		return err
	}
	if end.Before(epoch) {
		return nil
	}
	start := lastFire(s, end.Add(-time.Second))
	if start.IsZero() {
		start = end.Add(-7 * 24 * time.Hour)
	}
	defs, err := n.definitions(ctx)
	if err != nil {
		return err
	}
	// Each experiment's latest readout as the rules service took it (not
	// the stream's last message, which anyone who may publish readouts
	// could have put there: verify.go).
	latest := map[string]readout.Readout{}
	kv, err := n.decisions(ctx)
	if err != nil && !errors.Is(err, jetstream.ErrBucketNotFound) {
		return fmt.Errorf("open %s: %w", stream.DecisionsBucket, err)
	}
	for _, e := range defs.Experiments {
		if kv == nil {
			break
		}
		entry, err := kv.Get(ctx, e.Key)
		if errors.Is(err, jetstream.ErrKeyNotFound) || errors.Is(err, jetstream.ErrInvalidKey) {
			continue
		}
		if err != nil {
			return fmt.Errorf("latest readout of %s: %w", e.Key, err)
		}
		var st decisionState
		var r readout.Readout
		if json.Unmarshal(entry.Value(), &st) == nil && json.Unmarshal(st.Readout, &r) == nil && r.Experiment == e.Key {
			latest[e.Key] = r
		}
	}
	digests := map[string]*report.Digest{}
	team := &report.Digest{Owner: "team", From: start, To: end, BaseURL: n.baseURL}
	for _, e := range defs.Experiments {
		r, ok := latest[e.Key]
		if !ok {
			r = readout.Readout{Experiment: e.Key, Name: e.Name, Status: readout.Collecting, Summary: "No readout yet."}
		}
		if r.Name == "" {
			r.Name = e.Name
		}
		decided := r.Status != readout.Collecting && r.DecidedAt != nil && !r.DecidedAt.Before(start) && r.DecidedAt.Before(end)
		running := r.Status == readout.Collecting && !e.Start.After(end) && (e.End == nil || e.End.After(start))
		if !decided && !running {
			continue
		}
		for _, d := range append([]*report.Digest{team}, n.ownerDigests(digests, e.Owners, start, end)...) {
			if decided {
				d.Decided = append(d.Decided, r)
			} else {
				d.Running = append(d.Running, r)
			}
		}
	}
	owners := make([]string, 0, len(digests))
	for o := range digests {
		owners = append(owners, o)
	}
	sort.Strings(owners)
	for _, o := range owners {
		d := digests[o]
		if err := n.sendDigest(ctx, "digest."+end.Format("20060102T1504")+"."+hash(o), report.DigestMessageID(o, end, n.envFrom), func(ctx context.Context) error {
			data, err := report.RenderDigest(*d, report.EmailOptions{From: n.from})
			if err != nil {
				return fmt.Errorf("%w: %w", ErrPermanent, err)
			}
			return n.send.Send(ctx, Email{From: n.envFrom, To: []string{o}, MessageID: report.DigestMessageID(o, end, n.envFrom), Data: data})
		}); errors.Is(err, errOthers) {
			others = true
		} else if err != nil {
			return err
		}
	}
	defer func() {
		if err == nil && !others {
			n.digested = end
		}
	}()
	if len(team.Decided)+len(team.Running) == 0 {
		return nil
	}
	for _, u := range n.slack {
		t := hookTarget{"slack", u}
		body, _ := json.Marshal(map[string]string{"text": report.DigestSlack(*team)})
		id := "digest." + end.Format("20060102T1504") + "." + t.id()
		if err := n.sendDigest(ctx, id, id, func(ctx context.Context) error {
			return post(ctx, n.http, u, body, map[string][]string{"Content-Type": {"application/json"}, "User-Agent": {"verdict"}, DeliveryHeader: {id}})
		}); errors.Is(err, errOthers) {
			others = true
		} else if err != nil {
			return err
		}
	}
	return nil
}

// digestEpoch is when the first notifier of this deployment looked for a
// digest, stored once in the bucket.
func (n *Notifier) digestEpoch(ctx context.Context, now time.Time) (time.Time, error) {
	const key = "digest.epoch"
	b, _ := now.MarshalText()
	if _, err := n.kv.Create(ctx, key, b); err != nil && !errors.Is(err, jetstream.ErrKeyExists) {
		return time.Time{}, fmt.Errorf("record the digest epoch: %w", err)
	}
	e, err := n.kv.Get(ctx, key)
	if err != nil {
		return time.Time{}, fmt.Errorf("read the digest epoch: %w", err)
	}
	var t time.Time
	if err := t.UnmarshalText(e.Value()); err != nil {
		return time.Time{}, fmt.Errorf("read the digest epoch: %w", err)
	}
	return t, nil
}

// ownerDigests returns the digests of owners, creating them. Owners
// outside VERDICT_SMTP_ALLOWED_DOMAINS get none; they are not counted again
// here, at every look for a due digest (their readout emails count them).
func (n *Notifier) ownerDigests(digests map[string]*report.Digest, owners []string, start, end time.Time) []*report.Digest {
	var out []*report.Digest
	to, _ := report.Recipients(owners)
	for _, o := range to {
		if _, domain, _ := strings.Cut(o, "@"); n.allowed != nil && !n.allowed[strings.ToLower(domain)] {
			continue
		}
		o = strings.ToLower(o)
		d, ok := digests[o]
		if !ok {
			d = &report.Digest{Owner: o, From: start, To: end, BaseURL: n.baseURL}
			digests[o] = d
		}
		out = append(out, d)
	}
	return out
}

// sendDigest sends one digest unless the bucket says it went out: an
// intent is claimed with compare-and-set first, and an intent another
// notifier claimed is left to it unless it is older than the retry budget
// (its notifier died).
func (n *Notifier) sendDigest(ctx context.Context, key, id string, send func(ctx context.Context) error) error {
	log := n.log.With("digest", key)
	rec, rev, err := n.load(ctx, key)
	if err != nil {
		return err
	}
	if rec.Notified != nil {
		return nil
	}
	if p := rec.Pending; p != nil && n.now().Sub(p.At) < n.giveUp+time.Minute {
		return errOthers // another notifier is on it
	}
	ev := &event{Kind: "digest", MessageID: id, At: n.now().UTC()}
	rec.Pending = ev
	if rev, err = n.putRev(ctx, key, rec, rev); errors.Is(err, errConflict) {
		return errOthers // claimed by another notifier meanwhile
	} else if err != nil {
		return err
	}
	err = n.deliverWithin(ctx, send, func(err error) { log.Warn("send digest, will retry", "err", err) })
	switch {
	case errors.Is(err, ErrPermanent):
		ev.Error = err.Error()
		n.metrics.digestsFailed.Inc()
		log.Error("digest given up", "err", err)
	case err != nil:
		return err // shutdown: the intent stays, and goes out on the next start
	default:
		n.metrics.digests.Inc()
		log.Info("digest sent", "id", id)
	}
	rec.Pending, rec.Notified = nil, ev
	return n.put(ctx, key, rec, rev)
}

// errOthers says a digest is another notifier's to send: this one looks
// again later, in case that one dies.
var errOthers = errors.New("digest claimed by another notifier")

// hash is a short, stable name for an address in bucket keys.
func hash(s string) string {
	h := sha256.Sum256([]byte(strings.ToLower(s)))
	return hex.EncodeToString(h[:6])
}
