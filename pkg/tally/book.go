package tally

import (
	"cmp"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"math"
	"slices"
	"sync"
	"time"

	"github.com/verdictlabs/verdict/pkg/config"
	"github.com/verdictlabs/verdict/pkg/warehouse"
)

// Source is what a Book reads of ClickHouse: *warehouse.Warehouse.
type Source interface {
	UnitRows(ctx context.Context, exp config.Experiment, metrics []config.Metric, asOf time.Time, seq uint64, units []uint64, first time.Time) (warehouse.Layout, []warehouse.UnitRow, error)
	Exposures(ctx context.Context, exp config.Experiment, f warehouse.RowFilter) ([]warehouse.ExposureRow, error)
	Events(ctx context.Context, names []string, f warehouse.RowFilter) ([]warehouse.EventRow, error)
	ExperimentStatsThrough(ctx context.Context, exp config.Experiment, metrics []config.Metric, asOf time.Time, seq uint64) (warehouse.ExperimentStats, error)
}

// ErrBuilding is returned by a look at an experiment whose tally is being
// built again in the background, after its definition changed shape: its
// last readout stands until the tally is ready.
var ErrBuilding = errors.New("the tally is being rebuilt after a change of definition")

// ErrNoTally is returned by Verify for an experiment of which the Book
// keeps nothing: not looked at yet, or held by another rules instance.
var ErrNoTally = errors.New("no tally of the experiment here (not looked at yet, or held by another rules instance)")

// Options are a Book's seams.
type Options struct {
	Source Source
	// Floor returns the acknowledgement floor of the ingest consumer:
	// every row that arrived with seq at or below it is in ClickHouse
	// (stream.IngestFloor).
	Floor func(ctx context.Context) (uint64, error)
	// FloorReuse is how long a floor read serves the looks that follow
	// it, so that the looks of a round share one (and the events they
	// read); 0 reads it at every look.
	FloorReuse time.Duration
	// Step bounds the range of seq a look reads at a time; 0:
	// DefaultStep.
	Step   int
	Logger *slog.Logger
}

// Book keeps a tally per experiment. It is safe for concurrent use; looks
// at one experiment take turns.
type Book struct {
	opt Options

	mu       sync.Mutex
	tallies  map[string]*entry
	builds   sync.WaitGroup
	closed   bool
	stopping context.CancelFunc
	ctx      context.Context // of background builds

	// The floor, read at most every FloorReuse, and the latest ranges of
	// track events read: looks at several experiments in one round share
	// both.
	floorMu   sync.Mutex // guards floor and floorRead
	floor     uint64
	floorRead time.Time
	arrivals  []*arrivals // under mu
}

// arrivals are the track events that arrived in one range of seq, of the
// names the Book's tallies count when it was read: one read serves every
// experiment of a round.
type arrivals struct {
	min, max uint64
	names    []string
	done     chan struct{} // closed once rows or err is set
	rows     []warehouse.EventRow
	err      error
}

// entry is an experiment's tally and the build running for it, if any.
type entry struct {
	look     sync.Mutex // one look at a time
	t        *tally     // nil until built
	building string     // the shape of the build under way, "" for none
	names    []string   // the events its tally counts; under Book.mu
}

// NewBook returns an empty Book.
func NewBook(opt Options) *Book {
	if opt.Logger == nil {
		opt.Logger = slog.New(slog.DiscardHandler)
	}
	ctx, cancel := context.WithCancel(context.Background())
	return &Book{opt: opt, tallies: map[string]*entry{}, ctx: ctx, stopping: cancel}
}

// Close stops the builds under way and waits for them.
func (b *Book) Close() {
	b.mu.Lock()
	b.closed = true
	b.mu.Unlock()
	b.stopping()
	b.builds.Wait()
}

// Look is what one look read and found.
type Look struct {
	Stats warehouse.ExperimentStats
	// Seq is the floor the look is as of: it counts every row that arrived
	// with seq <= Seq.
	Seq uint64
	// Built says the look built the tally; otherwise it read Exposures and
	// Events rows that arrived since the last, and Refetched units afresh.
	Built                      bool
	Exposures, Events, Refetch int
}

// ExperimentStats is Look's statistics: the seam of the rules engine.
func (b *Book) ExperimentStats(ctx context.Context, exp config.Experiment, metrics []config.Metric, asOf time.Time) (warehouse.ExperimentStats, error) {
	l, err := b.Look(ctx, exp, metrics, asOf)
	return l.Stats, err
}

// Look brings exp's tally up to the ingest floor and asOf and returns its
// statistics. The first look at an experiment builds its tally; a look
// after a change of shape starts a build in the background and returns
// ErrBuilding until it is done.
func (b *Book) Look(ctx context.Context, exp config.Experiment, metrics []config.Metric, asOf time.Time) (Look, error) {
	shape, err := shapeOf(exp, metrics)
	if err != nil {
		return Look{}, err
	}
	b.mu.Lock()
	e, ok := b.tallies[exp.Key]
	if !ok {
		e = &entry{}
		b.tallies[exp.Key] = e
	}
	b.mu.Unlock()

	e.look.Lock()
	defer e.look.Unlock()
	switch {
	case e.t == nil && e.building == "":
		t, err := b.build(ctx, shape, exp, metrics, asOf)
		if err != nil {
			return Look{}, err
		}
		b.keep(e, t)
		st, err := t.stats()
		return Look{Stats: st, Seq: t.seq, Built: true}, err
	case e.t == nil || e.t.shape != shape:
		if e.building != shape {
			b.buildLater(exp.Key, e, shape, exp, metrics, asOf)
		}
		return Look{}, ErrBuilding
	}
	t := e.t
	seq, err := b.readFloor(ctx)
	if err != nil {
		return Look{}, err
	}
	if seq < t.seq {
		// The floor went back (a new consumer, a purged stream): what the
		// tally counted is no longer what the floor says; read it all.
		b.opt.Logger.Warn("ingest floor went back: building the tally again", "experiment", exp.Key, "floor", seq, "tally", t.seq)
		if t, err = b.build(ctx, shape, exp, metrics, asOf); err != nil {
			return Look{}, err
		}
		b.keep(e, t)
		st, err := t.stats()
		return Look{Stats: st, Seq: t.seq, Built: true}, err
	}
	// What a tally counted up to its last look's time stays counted: a
	// clock that steps back does not take it back.
	look, err := t.advance(ctx, b.opt.Source, b.events, seq, uint64(cmp.Or(b.opt.Step, DefaultStep)), max(asOf.UnixMilli(), t.asOf))
	if err != nil {
		return Look{}, err
	}
	look.Stats, err = t.stats()
	return look, err
}

// keep makes t e's tally. The caller holds e.look.
func (b *Book) keep(e *entry, t *tally) {
	e.t = t
	b.mu.Lock()
	e.names = t.layout.Events
	b.mu.Unlock()
}

// readFloor returns the ingest floor, read again when the last read is
// older than FloorReuse. Reads take turns, so the floor kept is always the
// latest read: a tally is never ahead of it.
func (b *Book) readFloor(ctx context.Context) (uint64, error) {
	b.floorMu.Lock()
	defer b.floorMu.Unlock()
	if b.opt.FloorReuse > 0 && time.Since(b.floorRead) < b.opt.FloorReuse {
		return b.floor, nil
	}
	seq, err := b.opt.Floor(ctx)
	if err != nil {
		return 0, err
	}
	b.floor, b.floorRead = seq, time.Now()
	return seq, nil
}

// events returns the track events of names that f picks, from a read of
// the same seq range that another look made already, or read now for the
// names of every tally the Book keeps; each row's Event is its position
// in names.
func (b *Book) events(ctx context.Context, names []string, f warehouse.RowFilter) ([]warehouse.EventRow, error) {
	b.mu.Lock()
	var a *arrivals
	for _, c := range b.arrivals {
		if c.min == f.MinSeq && c.max == f.MaxSeq && !slices.ContainsFunc(names, func(n string) bool { return !slices.Contains(c.names, n) }) {
			a = c
			break
		}
	}
	if a == nil {
		all := slices.Clone(names)
		for _, e := range b.tallies {
			for _, n := range e.names {
				if !slices.Contains(all, n) {
					all = append(all, n)
				}
			}
		}
		a = &arrivals{min: f.MinSeq, max: f.MaxSeq, names: all, done: make(chan struct{})}
		// The last few ranges: a round's looks are at one or two.
		b.arrivals = append(b.arrivals[max(0, len(b.arrivals)-3):], a)
		b.mu.Unlock()
		a.rows, a.err = b.opt.Source.Events(ctx, all, f)
		close(a.done)
	} else {
		b.mu.Unlock()
		select {
		case <-a.done:
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	}
	if a.err != nil {
		return nil, a.err
	}
	// From the read's names to the caller's.
	at := make([]int, len(a.names))
	for i, n := range a.names {
		at[i] = slices.Index(names, n)
	}
	out := make([]warehouse.EventRow, 0, len(a.rows))
	for _, r := range a.rows {
		if i := at[r.Event]; i >= 0 {
			r.Event = i
			out = append(out, r)
		}
	}
	return out, nil
}

// build reads exp's units as of the ingest floor and asOf, and the rows
// that arrived by then but are timed after asOf.
func (b *Book) build(ctx context.Context, shape string, exp config.Experiment, metrics []config.Metric, asOf time.Time) (*tally, error) {
	began := time.Now()
	seq, err := b.readFloor(ctx)
	if err != nil {
		return nil, err
	}
	layout, rows, err := b.opt.Source.UnitRows(ctx, exp, metrics, asOf, seq, nil, time.Time{})
	if err != nil {
		return nil, err
	}
	t := newTally(shape, exp, metrics, layout)
	t.seq, t.asOf = seq, asOf.UnixMilli()
	for _, r := range rows {
		t.set(r)
	}
	later := warehouse.RowFilter{MaxSeq: seq, After: asOf}
	if t.laterExposures, err = b.opt.Source.Exposures(ctx, exp, later); err != nil {
		return nil, err
	}
	if t.laterEvents, err = b.opt.Source.Events(ctx, layout.Events, later); err != nil {
		return nil, err
	}
	b.opt.Logger.Info("tally built", "experiment", exp.Key, "units", len(rows), "floor", seq, "seconds", time.Since(began).Seconds())
	return t, nil
}

// buildLater builds a tally of shape in the background and puts it in e
// when done, the experiment's looks returning ErrBuilding meanwhile.
func (b *Book) buildLater(key string, e *entry, shape string, exp config.Experiment, metrics []config.Metric, asOf time.Time) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.closed {
		return
	}
	e.building = shape
	b.builds.Add(1)
	go func() {
		defer b.builds.Done()
		// As of the look that asked for it: the next look takes it from
		// there.
		t, err := b.build(b.ctx, shape, exp, metrics, asOf)
		e.look.Lock()
		defer e.look.Unlock()
		if e.building == shape {
			e.building = ""
		}
		if err != nil {
			b.opt.Logger.Warn("build tally", "experiment", key, "err", err)
			return
		}
		b.keep(e, t)
	}()
}

// Retain forgets the tallies of experiments keep says no to: another rules
// instance holds them now, or they are gone.
func (b *Book) Retain(keep func(experiment string) bool) {
	b.mu.Lock()
	defer b.mu.Unlock()
	for _, k := range slices.Collect(maps.Keys(b.tallies)) {
		if !keep(k) {
			delete(b.tallies, k)
		}
	}
}

// DefaultStep bounds the range of seq one step of a look reads: after a
// burst (or a backlog landed at once) a look takes the rows in steps, so
// that what it holds at a time stays bounded.
const DefaultStep = 200_000

// advance brings t from its look to (seq, asOf), in steps of at most step
// of seq.
func (t *tally) advance(ctx context.Context, src Source, events func(context.Context, []string, warehouse.RowFilter) ([]warehouse.EventRow, error), seq, step uint64, asOf int64) (Look, error) {
	look := Look{Seq: seq}
	for {
		to := min(seq, t.seq+step)
		l, err := t.step(ctx, src, events, to, asOf)
		look.Exposures, look.Events, look.Refetch = look.Exposures+l.Exposures, look.Events+l.Events, look.Refetch+l.Refetch
		if err != nil || to == seq {
			return look, err
		}
	}
}

// step brings t from its look to (seq, asOf): it reads the rows that
// arrived since, the units they make it read afresh, and then counts.
// Nothing is changed before every read has succeeded.
func (t *tally) step(ctx context.Context, src Source, events func(context.Context, []string, warehouse.RowFilter) ([]warehouse.EventRow, error), seq uint64, asOf int64) (Look, error) {
	look := Look{Seq: seq}
	var exposures []warehouse.ExposureRow
	var evs []warehouse.EventRow
	if seq > t.seq {
		f := warehouse.RowFilter{MinSeq: t.seq + 1, MaxSeq: seq}
		var err error
		if exposures, err = src.Exposures(ctx, t.exp, f); err != nil {
			return look, err
		}
		if evs, err = events(ctx, t.layout.Events, f); err != nil {
			return look, err
		}
	}
	look.Exposures, look.Events = len(exposures), len(evs)
	// The rows that waited for asOf join the new ones.
	exposures = append(exposures, t.laterExposures...)
	evs = append(evs, t.laterEvents...)

	// A unit read afresh is one not seen before, or one whose first
	// exposure moves earlier: either way its first exposure is now one of
	// these rows, so its events are read from the earliest of them on.
	refetch := map[uint64]bool{}
	first := int64(math.MaxInt64)
	for _, x := range exposures {
		if t.exposureEffect(x, asOf) == exposureRefetch {
			refetch[x.Unit] = true
			first = min(first, int64(x.MS))
		}
	}
	var rows []warehouse.UnitRow
	if len(refetch) > 0 {
		keys := slices.Sorted(maps.Keys(refetch))
		layout, rs, err := src.UnitRows(ctx, t.exp, t.metrics, msTime(asOf), seq, keys, msTime(first))
		if err != nil {
			return look, err
		}
		if !slices.Equal(layout.Events, t.layout.Events) || !slices.Equal(layout.Pres, t.layout.Pres) {
			return look, fmt.Errorf("the layout of %s's units changed under the tally", t.exp.Key)
		}
		rows = rs
	}
	look.Refetch = len(refetch)

	// Every read done: count.
	for _, r := range rows {
		t.set(r)
	}
	t.laterExposures = t.laterExposures[:0:0]
	for _, x := range exposures {
		switch t.exposureEffect(x, asOf) {
		case exposureLater:
			t.laterExposures = append(t.laterExposures, x)
		case exposureUpdate:
			if !refetch[x.Unit] {
				t.updateExposure(x)
			}
		}
	}
	t.laterEvents = t.laterEvents[:0:0]
	for _, e := range evs {
		if t.addEvent(e, asOf) {
			t.laterEvents = append(t.laterEvents, e)
		}
	}
	t.settle()
	t.seq, t.asOf = max(seq, t.seq), asOf
	return look, nil
}

// Verify recomputes exp in full as of the floor and time of its tally's
// last look (warehouse.ExperimentStatsThrough) and returns that and what
// the tally has, for Diff. It fails when the experiment has no tally.
func (b *Book) Verify(ctx context.Context, exp config.Experiment, metrics []config.Metric) (full, kept warehouse.ExperimentStats, seq uint64, asOf time.Time, err error) {
	b.mu.Lock()
	e, ok := b.tallies[exp.Key]
	b.mu.Unlock()
	if !ok {
		return full, kept, 0, asOf, fmt.Errorf("experiment %s: %w", exp.Key, ErrNoTally)
	}
	e.look.Lock()
	defer e.look.Unlock()
	t := e.t
	if t == nil {
		return full, kept, 0, asOf, ErrBuilding
	}
	if kept, err = t.stats(); err != nil {
		return full, kept, 0, asOf, err
	}
	asOf = msTime(t.asOf)
	full, err = b.opt.Source.ExperimentStatsThrough(ctx, t.exp, t.metrics, asOf, t.seq)
	return full, kept, t.seq, asOf, err
}

// shapeOf names what a tally holds for exp and metrics: a tally of another
// shape is built again. Caps, variants and the statistics' options are
// applied at every look and change nothing kept.
func shapeOf(exp config.Experiment, metrics []config.Metric) (string, error) {
	type metricShape struct {
		Kind                   string
		Event, Aggregate       string
		Numerator, Denominator *config.Part
		Lookback               time.Duration
		Level                  string `json:",omitempty"` // an event-level quantile keeps its events' values
	}
	s := struct {
		Start    time.Time
		End      *time.Time
		Window   config.Duration
		Segments []string
		Metrics  []metricShape
	}{exp.Start, exp.End, exp.AttributionWindow, exp.Segments, nil}
	for _, m := range metrics {
		s.Metrics = append(s.Metrics, metricShape{string(m.Kind), m.Event, string(m.Aggregate), m.Numerator, m.Denominator, m.CUPEDLookback(), string(m.Level)})
	}
	b, err := json.Marshal(s)
	if err != nil {
		return "", err
	}
	h := sha256.Sum256(b)
	return hex.EncodeToString(h[:8]), nil
}

func msTime(ms int64) time.Time { return time.UnixMilli(ms).UTC() }
