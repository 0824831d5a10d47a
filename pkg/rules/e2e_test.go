package rules_test

import (
	"context"
	"encoding/json"
	"fmt"
	"math"
	"math/rand/v2"
	"os"
	"slices"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus"
	"go.uber.org/goleak"

	"github.com/verdictlabs/verdict/pkg/config"
	"github.com/verdictlabs/verdict/pkg/configstore"
	"github.com/verdictlabs/verdict/pkg/decide"
	"github.com/verdictlabs/verdict/pkg/event"
	"github.com/verdictlabs/verdict/pkg/ingest"
	"github.com/verdictlabs/verdict/pkg/readout"
	"github.com/verdictlabs/verdict/pkg/rules"
	"github.com/verdictlabs/verdict/pkg/stats"
	"github.com/verdictlabs/verdict/pkg/stream"
	"github.com/verdictlabs/verdict/pkg/stream/streamtest"
	"github.com/verdictlabs/verdict/pkg/testkit"
	"github.com/verdictlabs/verdict/pkg/warehouse"
	"github.com/verdictlabs/verdict/pkg/warehouse/warehousetest"
)

// The services started by TestEndToEnd run goroutines: all must be gone
// once it has stopped them.
func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

const day = 24 * time.Hour

// behaviour is how one unit acts in its attribution window.
type behaviour struct {
	conv     float64 // chance of at least one purchase
	sessions int     // session_start events: 1 + IntN(sessions), none when 0
	clicks   int     // clicks per session: IntN(clicks+1)
	loads    int     // page_load events: 1 + IntN(loads), none when 0
	loadMS   int     // mean page load time, ms
}

// scenario is an experiment of testdata/e2e.yaml with a known truth: how
// its units are split and behave, and the verdict that truth must get.
type scenario struct {
	key   string
	units int
	share []float64 // actual split, in the definition's variant order; nil: the weights
	multi float64   // chance that a unit is also exposed to the other variant
	ios   float64   // share of units on ios (the rest split between android and web); 0: a third
	// behave returns the behaviour of a unit of the control (treated false)
	// or of the treatment, on a platform.
	behave func(treated bool, platform string) behaviour

	status  readout.Status
	label   readout.Label
	segment [2]string // a segment (dimension, value) the salvage list must name
	metric  string    // a metric the salvage list must name
}

var scenarios = []scenario{
	{
		key: "e2e-persevere", units: 3000, multi: 0.003,
		behave: func(treated bool, _ string) behaviour {
			b := behaviour{conv: 0.10, loads: 3, loadMS: 400}
			if treated {
				b.conv = 0.16
			}
			return b
		},
		status: readout.Decided, label: readout.Persevere,
	},
	{
		key: "e2e-guardrail", units: 2000,
		behave: func(treated bool, _ string) behaviour {
			b := behaviour{conv: 0.10, loads: 3, loadMS: 400}
			if treated {
				b.loadMS = 500
			}
			return b
		},
		status: readout.Decided, label: readout.Pivot,
	},
	{
		key: "e2e-flat", units: 2000,
		behave: func(bool, string) behaviour { return behaviour{conv: 0.12, sessions: 2, clicks: 2} },
		status: readout.Decided, label: readout.Pivot,
	},
	{
		key: "e2e-segment", units: 4000, ios: 0.15,
		behave: func(treated bool, platform string) behaviour {
			b := behaviour{conv: 0.10, loads: 2, loadMS: 400}
			switch {
			case treated && platform == "ios":
				b.conv = 0.30
			case treated:
				b.conv = 0.08
			}
			return b
		},
		status: readout.Decided, label: readout.Salvage, segment: [2]string{"platform", "ios"},
	},
	{
		key: "e2e-secondary", units: 2000,
		behave: func(treated bool, _ string) behaviour {
			b := behaviour{conv: 0.12, sessions: 3}
			if treated {
				b.sessions = 4
			}
			return b
		},
		status: readout.Decided, label: readout.Salvage, metric: "sessions",
	},
	{
		key: "e2e-srm", units: 1000, share: []float64{0.7, 0.3},
		behave: func(bool, string) behaviour { return behaviour{conv: 0.10} },
		status: readout.Invalid,
	},
	{
		key: "e2e-contaminated", units: 1000, multi: 0.03,
		behave: func(treated bool, _ string) behaviour {
			b := behaviour{conv: 0.10}
			if treated {
				b.conv = 0.20
			}
			return b
		},
		status: readout.Invalid,
	},
	{
		key: "e2e-collecting", units: 40,
		behave: func(bool, string) behaviour { return behaviour{conv: 0.3, sessions: 3} },
		status: readout.Collecting,
	},
}

// world is every event of every scenario, as published.
type world struct {
	now  time.Time // the time the events were generated for
	defs config.Definitions
	file *config.File

	all   []event.Event            // every distinct event, noise included
	clean map[string][]event.Event // per experiment, its events without the noise
	// copies are events published a second time: with their Nats-Msg-Id
	// (JetStream drops them) or without (ClickHouse gets them twice).
	copies, copiesNoID []event.Event
}

// published is every event as published, copies included.
func (w *world) published() []event.Event { return slices.Concat(w.all, w.copies, w.copiesNoID) }

// newWorld generates the events of every scenario for experiments that
// started five days before now, deterministically but for that shift.
func newWorld(t testing.TB, now time.Time) *world {
	t.Helper()
	now = now.UTC().Truncate(time.Second)
	start := now.Add(-5 * day)
	data, err := os.ReadFile("testdata/e2e.yaml")
	if err != nil {
		t.Fatal(err)
	}
	text := strings.NewReplacer(
		"${START}", start.Format(time.RFC3339),
		// A day ago: the rules service evaluates an ended experiment until
		// after its attribution window closes (up to rules.LateData).
		"${END_PAST}", now.Add(-day).Format(time.RFC3339),
		"${END_FUTURE}", now.Add(10*day).Format(time.RFC3339),
	).Replace(string(data))
	f, err := config.ParseFile("e2e.yaml", []byte(text))
	if err != nil {
		t.Fatal(err)
	}
	if err := config.ValidateFiles(f); err != nil {
		t.Fatal(err)
	}
	w := &world{now: now, defs: f.Definitions, file: f, clean: map[string][]event.Event{}}
	r := rand.New(rand.NewPCG(4, 2026))
	for _, s := range scenarios {
		exp, ok := w.defs.Experiment(s.key)
		if !ok {
			t.Fatalf("scenario %s is not in testdata/e2e.yaml", s.key)
		}
		w.generate(r, s, exp)
	}
	for _, e := range w.all {
		switch r.IntN(50) {
		case 0:
			w.copies = append(w.copies, e)
		case 1:
			w.copiesNoID = append(w.copiesNoID, e)
		}
	}
	// Arrival order is not event order: exposures may come after tracks.
	r.Shuffle(len(w.all), func(i, j int) { w.all[i], w.all[j] = w.all[j], w.all[i] })
	return w
}

// generate makes one scenario's events. Besides the truth it adds noise
// that must not move any number: repeated exposures of a unit (later, with
// other attributes), track events just before the first exposure and from
// the end of the attribution window on, exposures to an experiment nobody
// defined, events of units never exposed, exposures before the start or
// after the end, and units of a variant the definition does not list.
func (w *world) generate(r *rand.Rand, s scenario, exp config.Experiment) {
	start := exp.Start
	window := time.Duration(exp.AttributionWindow)
	var clean, noise []event.Event
	n := 0
	id := func() string { n++; return fmt.Sprintf("%s-%06d", s.key, n) }
	ms := func(d time.Duration) time.Duration { // uniform in [0, d), whole milliseconds
		return time.Duration(r.Int64N(d.Milliseconds())) * time.Millisecond
	}
	exposure := func(to *[]event.Event, unit string, ts time.Time, experiment, variant, platform, country string) {
		keys, values := []string{"platform"}, []string{platform}
		if country != "" {
			keys, values = []string{"country", "platform"}, []string{country, platform}
		}
		*to = append(*to, event.Event{Type: event.Exposure, ID: id(), TS: ts, Unit: unit,
			AttrKeys: keys, AttrValues: values, Experiment: experiment, Variant: variant})
	}
	track := func(to *[]event.Event, unit string, ts time.Time, name string, value float64) {
		*to = append(*to, event.Event{Type: event.Track, ID: id(), TS: ts, Unit: unit, Name: name, Value: value})
	}
	// Values are multiples of 1/4 of moderate size: every sum and sum of
	// squares is exact in float64 in any order, so ClickHouse and this test
	// add up to the same bits.
	price := func() float64 {
		if r.IntN(50) == 0 { // outliers, for the cap
			return float64(1000 + r.IntN(4000))
		}
		return float64(1+r.IntN(400)) * 0.25
	}
	shares := s.share
	if shares == nil {
		for _, v := range exp.Variants {
			shares = append(shares, v.Weight)
		}
	}
	pick := func(shares []float64) int {
		x := r.Float64()
		for i, p := range shares {
			if x < p {
				return i
			}
			x -= p
		}
		return len(shares) - 1
	}
	platforms := []string{"ios", "android", "web"}
	platformShares := []float64{1.0 / 3, 1.0 / 3, 1.0 / 3}
	if s.ios > 0 {
		platformShares = []float64{s.ios, (1 - s.ios) / 2, (1 - s.ios) / 2}
	}
	countries := []string{"de", "us", "fr", ""} // "": no country attribute

	for i := range s.units {
		unit := fmt.Sprintf("%s-u%05d", s.key, i)
		vi := pick(shares)
		variant := exp.Variants[vi].Key
		platform := platforms[pick(platformShares)]
		country := countries[r.IntN(len(countries))]
		first := start.Add(time.Minute + ms(2*day-time.Minute))
		exposure(&clean, unit, first, exp.Key, variant, platform, country)
		if r.Float64() < s.multi {
			other := exp.Variants[(vi+1)%len(exp.Variants)].Key
			exposure(&clean, unit, first.Add(time.Minute+ms(12*time.Hour)), exp.Key, other, platform, country)
		}
		in := func() time.Time { return first.Add(ms(window)) }
		b := s.behave(variant != exp.Control, platform)
		if r.Float64() < b.conv {
			for range 1 + r.IntN(2) {
				track(&clean, unit, in(), "purchase", price())
			}
		}
		if b.sessions > 0 {
			for range 1 + r.IntN(b.sessions) {
				track(&clean, unit, in(), "session_start", 1)
				for range r.IntN(b.clicks + 1) {
					track(&clean, unit, in(), "click", 1)
				}
			}
		}
		if b.loads > 0 {
			for range 1 + r.IntN(b.loads) { // mean 1 + (loads−1)/2
				track(&clean, unit, in(), "page_load", float64(b.loadMS/2+r.IntN(b.loadMS)))
			}
		}

		// The edges of the window, to the millisecond: at the first
		// exposure and on its last millisecond count; one millisecond
		// before and at its end do not.
		if r.IntN(25) == 0 {
			track(&clean, unit, first, "session_start", 1)
			track(&clean, unit, first.Add(window-time.Millisecond), "page_load", 777)
			track(&noise, unit, first.Add(-time.Millisecond), "purchase", 4096)
			track(&noise, unit, first.Add(window), "purchase", 8192)
			track(&noise, unit, first.Add(window), "session_start", 1)
		}
		if r.IntN(10) == 0 { // seen again, on another platform: segments keep the first
			exposure(&noise, unit, first.Add(time.Millisecond+ms(6*time.Hour)), exp.Key, variant, platforms[(slices.Index(platforms, platform)+1)%3], "us")
		}
		if r.IntN(8) == 0 { // before the exposure
			at := first.Add(-time.Millisecond - ms(6*time.Hour))
			track(&noise, unit, at, "purchase", price())
			track(&noise, unit, at, []string{"page_load", "session_start"}[r.IntN(2)], 5000)
		}
		if r.IntN(8) == 0 { // after the window
			at := first.Add(window + ms(6*time.Hour))
			track(&noise, unit, at, "purchase", price())
			track(&noise, unit, at, []string{"page_load", "click"}[r.IntN(2)], 5000)
		}
		if r.IntN(20) == 0 { // in another experiment, as another variant
			exposure(&noise, unit, start.Add(ms(3*day)), "e2e-other", "x", "web", "fr")
		}
	}
	for i := range 20 { // never exposed
		unit := fmt.Sprintf("%s-ghost%02d", s.key, i)
		track(&noise, unit, start.Add(ms(3*day)), "purchase", price())
		track(&noise, unit, start.Add(ms(3*day)), "session_start", 1)
		track(&noise, unit, start.Add(ms(3*day)), "page_load", 300)
	}
	for i := range 5 {
		// Exposed before the start only, and after the end only (or, with
		// no end passed, to a variant nobody defined).
		before := fmt.Sprintf("%s-early%d", s.key, i)
		at := start.Add(-time.Millisecond - ms(6*time.Hour))
		exposure(&noise, before, at, exp.Key, exp.Control, "ios", "de")
		track(&noise, before, at.Add(time.Hour), "purchase", price())
		track(&noise, before, at.Add(time.Hour), "session_start", 1)
		late := fmt.Sprintf("%s-late%d", s.key, i)
		variant := exp.Control
		at = start.Add(2*day + ms(time.Hour))
		if exp.End != nil && exp.End.Before(w.now) {
			at = exp.End.Add(time.Millisecond + ms(6*time.Hour))
		} else {
			// Counted in health.unknown_variant_units: kept under 1% of
			// the units, where they would make the experiment invalid.
			if i >= s.units/200 {
				continue
			}
			variant = "ghost"
		}
		exposure(&noise, late, at, exp.Key, variant, "ios", "de")
		track(&noise, late, at.Add(time.Minute), "purchase", price())
		track(&noise, late, at.Add(time.Minute), "page_load", 300)
	}
	w.clean[exp.Key] = clean
	w.all = append(w.all, clean...)
	w.all = append(w.all, noise...)
}

// cell names one statistic: a variant's metric overall (dim "") or in one
// segment value.
type cell struct{ variant, metric, dim, value string }

// truth is what the raw events say about one experiment as of one moment,
// computed here in plain Go by the contract of warehouse.ExperimentStats:
// the independent path the readout is checked against.
type truth struct {
	units       map[string]int64 // included units per variant
	multi       int64            // units exposed to more than one variant
	unknown     int64            // units exposed to one variant the definition does not list
	dataThrough time.Time
	cells       map[cell]stats.Arm
	pres        map[cell]stats.Pre  // CUPED's covariate sums
	values      map[string][]string // segment dimension → values seen, sorted
	caps        map[string]float64  // capped metric → cap
}

// referenced returns the metrics exp names, each once.
func referenced(exp config.Experiment, defs config.Definitions) []config.Metric {
	keys := slices.Concat(exp.Primary, exp.Secondary)
	for _, g := range exp.Guardrails {
		keys = append(keys, g.Metric)
	}
	var out []config.Metric
	for _, k := range keys {
		if m, ok := defs.Metric(k); ok && !slices.ContainsFunc(out, func(o config.Metric) bool { return o.Key == k }) {
			out = append(out, m)
		}
	}
	return out
}

func computeTruth(exp config.Experiment, metrics []config.Metric, evs []event.Event, asOf time.Time) truth {
	ms := func(t time.Time) int64 { return t.UnixMilli() }
	from, to := ms(exp.Start), ms(asOf)
	if exp.End != nil {
		to = min(to, ms(*exp.End))
	}
	type unit struct {
		first        int64
		firstID      string
		attrs        map[string]string // of the first exposure
		variants     map[string]bool
		last         int64 // latest exposure in range, or counted event
		count, total map[string]float64
		// Before the first exposure, per CUPED lookback (ms).
		preCount, preTotal map[int64]map[string]float64
	}
	units := map[string]*unit{}
	// Dedup: the first copy of each event_id.
	seen := map[string]bool{}
	var distinct []event.Event
	for _, e := range evs {
		if !seen[e.ID] {
			seen[e.ID] = true
			distinct = append(distinct, e)
		}
	}
	for _, e := range distinct {
		t := ms(e.TS)
		if e.Type != event.Exposure || e.Experiment != exp.Key || t < from || t > to {
			continue
		}
		u := units[e.Unit]
		if u == nil {
			u = &unit{first: math.MaxInt64, variants: map[string]bool{}, count: map[string]float64{}, total: map[string]float64{}}
			units[e.Unit] = u
		}
		u.variants[e.Variant] = true
		u.last = max(u.last, t)
		if t < u.first || t == u.first && e.ID < u.firstID {
			u.first, u.firstID = t, e.ID
			u.attrs = map[string]string{}
			for i, k := range e.AttrKeys {
				u.attrs[k] = e.AttrValues[i]
			}
		}
	}
	names := map[string]bool{}
	for _, m := range metrics {
		names[m.Event] = true
		if m.Numerator != nil {
			names[m.Numerator.Event], names[m.Denominator.Event] = true, true
		}
	}
	window := time.Duration(exp.AttributionWindow).Milliseconds()
	lookbacks := map[int64]bool{}
	for _, m := range metrics {
		if l := m.CUPEDLookback().Milliseconds(); l > 0 {
			lookbacks[l] = true
		}
	}
	for _, e := range distinct {
		u := units[e.Unit]
		t := ms(e.TS)
		if e.Type != event.Track || u == nil || !names[e.Name] || t >= u.first {
			continue
		}
		for l := range lookbacks {
			if t >= u.first-l {
				if u.preCount == nil {
					u.preCount, u.preTotal = map[int64]map[string]float64{}, map[int64]map[string]float64{}
				}
				if u.preCount[l] == nil {
					u.preCount[l], u.preTotal[l] = map[string]float64{}, map[string]float64{}
				}
				u.preCount[l][e.Name]++
				u.preTotal[l][e.Name] += e.Value
			}
		}
	}
	for _, e := range distinct {
		u := units[e.Unit]
		t := ms(e.TS)
		if e.Type != event.Track || u == nil || !names[e.Name] || t < u.first || t >= u.first+window || t > ms(asOf) {
			continue
		}
		u.count[e.Name]++
		u.total[e.Name] += e.Value
		u.last = max(u.last, t)
	}

	tr := truth{units: map[string]int64{}, cells: map[cell]stats.Arm{}, pres: map[cell]stats.Pre{}, values: map[string][]string{}, caps: map[string]float64{}}
	known := map[string]bool{}
	for _, v := range exp.Variants {
		known[v.Key] = true
		tr.units[v.Key] = 0
	}
	var last int64
	var included []*unit
	variantOf := map[*unit]string{}
	for _, u := range units {
		last = max(last, u.last)
		if len(u.variants) > 1 {
			tr.multi++
			continue
		}
		for v := range u.variants {
			if !known[v] {
				tr.unknown++
				continue
			}
			tr.units[v]++
			included = append(included, u)
			variantOf[u] = v
		}
	}
	if len(units) > 0 {
		tr.dataThrough = time.UnixMilli(last).UTC()
	}
	segment := func(u *unit, dim string) string {
		if v := u.attrs[dim]; v != "" {
			return v
		}
		return warehouse.NoValue
	}
	for _, dim := range exp.Segments {
		set := map[string]bool{}
		for _, u := range included {
			set[segment(u, dim)] = true
		}
		for v := range set {
			tr.values[dim] = append(tr.values[dim], v)
		}
		sort.Strings(tr.values[dim])
	}

	of := func(count, total map[string]float64, m config.Metric) (x, y float64) {
		part := func(p config.Part) float64 {
			if p.Aggregate == config.Count {
				return count[p.Event]
			}
			return total[p.Event]
		}
		switch m.Kind {
		case stats.Proportion:
			if count[m.Event] > 0 {
				return 1, 0
			}
			return 0, 0
		case stats.Count:
			return count[m.Event], 0
		case stats.Mean:
			return part(config.Part{Event: m.Event, Aggregate: m.Aggregate}), 0
		}
		return part(*m.Numerator), part(*m.Denominator)
	}
	value := func(u *unit, m config.Metric) (x, y float64) { return of(u.count, u.total, m) }
	preValue := func(u *unit, m config.Metric) (x0, y0 float64) {
		if l := m.CUPEDLookback().Milliseconds(); l > 0 {
			return of(u.preCount[l], u.preTotal[l], m)
		}
		return 0, 0
	}
	for _, m := range metrics {
		capAt := math.Inf(1)
		if m.Cap != nil && len(included) > 0 {
			// quantileExact(p): the value at 0-based position ⌊p·n⌋ of the
			// n non-zero values sorted, arms pooled, as
			// warehouse.ExperimentStats documents; none, no cap.
			xs := make([]float64, 0, len(included))
			for _, u := range included {
				if x, _ := value(u, m); x != 0 {
					xs = append(xs, x)
				}
			}
			sort.Float64s(xs)
			if len(xs) > 0 {
				capAt = xs[min(int(m.Cap.Percentile*float64(len(xs))), len(xs)-1)]
				tr.caps[m.Key] = capAt
			}
		}
		for _, v := range exp.Variants {
			tr.cells[cell{v.Key, m.Key, "", ""}] = stats.Arm{}
			tr.pres[cell{v.Key, m.Key, "", ""}] = stats.Pre{}
		}
		add := func(c cell, x, y, x0, y0 float64) {
			a, p := tr.cells[c], tr.pres[c]
			a.N++
			a.Sum += x
			a.SumSquares += x * x
			p.Sum += x0
			p.SumSquares += x0 * x0
			p.CrossSum += x * x0
			if m.Kind == stats.Ratio {
				a.DenSum += y
				a.DenSumSquares += y * y
				a.SumProducts += x * y
				p.DenSum += y0
				p.DenSumSquares += y0 * y0
				p.SumProducts += x0 * y0
				p.CrossDen += x * y0
				p.DenCrossSum += y * x0
				p.DenCrossDen += y * y0
			}
			tr.cells[c], tr.pres[c] = a, p
		}
		for _, u := range included {
			x, y := value(u, m)
			x0, y0 := preValue(u, m)
			x, x0 = min(x, capAt), min(x0, capAt)
			v := variantOf[u]
			add(cell{v, m.Key, "", ""}, x, y, x0, y0)
			for _, dim := range exp.Segments {
				add(cell{v, m.Key, dim, segment(u, dim)}, x, y, x0, y0)
			}
		}
	}
	return tr
}

// compare is what the readout must say of metric m in the cell of variant
// against the control: stats.CompareCUPED on the true sums when the metric
// has CUPED, else stats.Compare, and the arms' estimates as the readout
// shows them (as observed).
func (tr truth) compare(m config.Metric, control, variant, dim, value string, opt stats.Options) (stats.Result, [2]stats.Estimate, error) {
	c, t := cell{control, m.Key, dim, value}, cell{variant, m.Key, dim, value}
	if m.CUPEDLookback() == 0 {
		r, err := stats.Compare(m.Kind, tr.cells[c], tr.cells[t], opt)
		return r, [2]stats.Estimate{r.Control, r.Treatment}, err
	}
	r, cu, err := stats.CompareCUPED(m.Kind, tr.cells[c], tr.cells[t], tr.pres[c], tr.pres[t], opt)
	if !cu.Applied {
		return r, [2]stats.Estimate{r.Control, r.Treatment}, err
	}
	return r, [2]stats.Estimate{cu.Control, cu.Treatment}, err
}

// stats returns the truth as ExperimentStats, for rules.Evaluate.
func (tr truth) stats() warehouse.ExperimentStats {
	st := warehouse.ExperimentStats{Units: map[string]uint64{}, MultiExposed: uint64(tr.multi), UnknownVariant: uint64(tr.unknown), DataThrough: tr.dataThrough}
	for v, n := range tr.units {
		st.Units[v] = uint64(n)
	}
	for c, a := range tr.cells {
		st.Cells = append(st.Cells, warehouse.Cell{Variant: c.variant, Metric: c.metric, Dimension: c.dim, Value: c.value, Arm: a, Pre: tr.pres[c]})
	}
	return st
}

func (w *world) metrics() map[string]config.Metric {
	out := map[string]config.Metric{}
	for _, m := range w.defs.Metrics {
		out[m.Key] = m
	}
	return out
}

// TestScenarioTruths checks, without ClickHouse, that every scenario's
// events carry the truth the scenario claims (rules.Evaluate on statistics
// computed here from the raw events gives the expected verdict), and that
// the noise is noise: the statistics from every event equal those from the
// scenario's events without the noise. TestEndToEnd relies on both.
func TestScenarioTruths(t *testing.T) {
	w := newWorld(t, time.Now())
	asOf := w.now.Add(time.Minute)
	for _, s := range scenarios {
		t.Run(s.key, func(t *testing.T) {
			exp, _ := w.defs.Experiment(s.key)
			ms := referenced(exp, w.defs)
			tr := computeTruth(exp, ms, w.published(), asOf)
			clean := computeTruth(exp, ms, w.clean[s.key], asOf)
			// Repeated exposures and exposures to unknown variants may
			// move data_through, the latest exposure; nothing else moves.
			clean.dataThrough, tr.dataThrough = time.Time{}, time.Time{}
			// Units of unknown variants enter no statistic, only the
			// health count.
			clean.unknown = tr.unknown
			// Events before a unit's first exposure are noise to its
			// metrics, but CUPED's covariate is made of them.
			clean.pres, tr.pres = nil, nil
			if diff := cmp.Diff(clean, tr, cmp.AllowUnexported(truth{})); diff != "" {
				t.Errorf("the noise moves the statistics (-without +with):\n%s", diff)
			}
			ro, _ := rules.Evaluate(exp, w.metrics(), tr.stats(), asOf, nil)
			checkVerdict(t, s, ro)
			t.Logf("%s: %s", ro.Status, ro.Summary)
		})
	}
}

// checkVerdict checks the status, the labels and the salvage list.
func checkVerdict(t *testing.T, s scenario, ro readout.Readout) {
	t.Helper()
	if ro.Status != s.status || ro.Label != s.label {
		t.Errorf("status, label = %s, %q; want %s, %q (summary: %s)", ro.Status, ro.Label, s.status, s.label, ro.Summary)
	}
	for _, a := range ro.Arms {
		if a.Label != s.label {
			t.Errorf("arm %s: label %q, want %q", a.Variant, a.Label, s.label)
		}
	}
	if s.label != readout.Salvage && len(ro.Salvage) > 0 {
		t.Errorf("salvage = %+v, want none", ro.Salvage)
	}
	if s.segment != [2]string{} && !slices.ContainsFunc(ro.Salvage, func(it readout.SalvageItem) bool {
		return it.Kind == readout.SalvageSegment && it.Dimension == s.segment[0] && it.Value == s.segment[1]
	}) {
		t.Errorf("salvage = %+v, want the segment %s = %s", ro.Salvage, s.segment[0], s.segment[1])
	}
	if s.metric != "" && !slices.ContainsFunc(ro.Salvage, func(it readout.SalvageItem) bool {
		return it.Kind == readout.SalvageMetric && it.Metric == s.metric
	}) {
		t.Errorf("salvage = %+v, want the metric %s", ro.Salvage, s.metric)
	}
}

// TestEndToEnd publishes every scenario's events to a real NATS server,
// lets ingest land them in a real ClickHouse and the rules service compute
// readouts from there, and checks each experiment's settled readout against
// the truth computed here from the raw events.
func TestEndToEnd(t *testing.T) { warehousetest.Run(t, testEndToEnd) }

func testEndToEnd(t *testing.T, eng warehouse.Engine) {
	began := time.Now()
	ns := streamtest.Run(t)
	ch := warehousetest.StartServer(t, eng)
	_, js := streamtest.Connect(t, ns)
	wh := ch.Open(t, "verdict")
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()

	w := newWorld(t, time.Now())
	if err := stream.EnsureStreams(ctx, js, stream.DefaultLimits); err != nil {
		t.Fatal(err)
	}
	kv, err := configstore.EnsureBucket(ctx, js, 0)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := configstore.ApplyFiles(ctx, kv, w.file); err != nil {
		t.Fatal(err)
	}

	chConfig := warehouse.Config{Addr: ch.Addr, Database: "verdict"}
	run(t, "ingest", func(ctx context.Context) error {
		return ingest.Run(ctx, ingest.Config{NATSURL: ns.URL(), ClickHouse: chConfig, BatchSize: 5000, BatchWait: 100 * time.Millisecond})
	})
	t.Logf("servers and ingest started in %v", time.Since(began).Round(time.Millisecond))
	began = time.Now()
	publish(t, js, w.all, false)
	publish(t, js, w.copies, false)
	publish(t, js, w.copiesNoID, true)
	t.Logf("%d events and %d copies (%d without Nats-Msg-Id) published in %v",
		len(w.all), len(w.copies)+len(w.copiesNoID), len(w.copiesNoID), time.Since(began).Round(time.Millisecond))

	// Everything is in ClickHouse, copies included (ingest acks a message
	// once it is inserted), and nothing was dead-lettered.
	waitFor(t, 60*time.Second, func() (bool, string) {
		var n uint64
		q := "SELECT (SELECT uniqExact(event_id) FROM verdict.exposures) + (SELECT uniqExact(event_id) FROM verdict.events)"
		if err := wh.Conn().QueryRow(ctx, q).Scan(&n); err != nil {
			t.Fatal(err)
		}
		cons, err := js.Consumer(ctx, stream.EventsStream, ingest.ConsumerName)
		if err != nil {
			return false, fmt.Sprintf("consumer %s: %v", ingest.ConsumerName, err)
		}
		info, err := cons.Info(ctx)
		if err != nil {
			t.Fatal(err)
		}
		return n == uint64(len(w.all)) && info.NumPending == 0 && info.NumAckPending == 0,
			fmt.Sprintf("%d of %d events in ClickHouse, %d messages pending, %d unacknowledged; dead letters: %s",
				n, len(w.all), info.NumPending, info.NumAckPending, deadLetters(t, js))
	})
	t.Logf("in ClickHouse %v after the first publish", time.Since(began).Round(time.Millisecond))
	// Rules starts on the landed data, so that every look sees all of it:
	// the readout then equals one look's (the running intersection of
	// identical intervals is the interval), which this test checks to the
	// bit. The decision lifecycle over looks on growing data has tests of
	// its own (TestLifecycle*).
	run(t, "rules", func(ctx context.Context) error {
		return rules.Run(ctx, rules.Config{NATSURL: ns.URL(), ClickHouse: chConfig, Interval: time.Second, Hold: -1, Registerer: prometheus.NewRegistry()})
	})
	landed := time.Now()
	if dead := deadLetters(t, js); dead != "none" {
		t.Errorf("dead letters: %s; want none, every event is valid", dead)
	}

	// Settled: two readouts computed after every event landed, and they
	// agree (for an ended experiment: one, not republished since).
	store := rules.Readouts{W: wh}
	latest := map[string]readout.Readout{}
	waitFor(t, 30*time.Second, func() (bool, string) {
		for _, s := range scenarios {
			if _, ok := latest[s.key]; ok {
				continue
			}
			h, err := store.History(ctx, s.key, 0, 2)
			if err != nil {
				t.Fatal(err)
			}
			// An experiment past its attribution window gets a new readout
			// only when late data changes it: three intervals after the
			// events landed, its latest readout is the settled one.
			exp, _ := w.defs.Experiment(s.key)
			if exp.End != nil && time.Now().After(exp.End.Add(time.Duration(exp.AttributionWindow))) {
				if len(h) == 0 || time.Since(landed) < 3*time.Second {
					return false, fmt.Sprintf("%s: no readout standing three intervals after the events landed", s.key)
				}
				latest[s.key] = h[0]
				continue
			}
			if len(h) < 2 || !h[1].ComputedAt.After(landed) {
				return false, fmt.Sprintf("%s: %d readouts after the events landed", s.key, len(h))
			}
			if diff := cmp.Diff(unstamped(h[1]), unstamped(h[0])); diff != "" {
				t.Errorf("%s: readouts %d and %d on the same data differ (-older +newer):\n%s", s.key, h[1].Version, h[0].Version, diff)
			}
			if h[0].Version != h[1].Version+1 {
				t.Errorf("%s: consecutive versions %d, %d", s.key, h[1].Version, h[0].Version)
			}
			latest[s.key] = h[0]
		}
		return true, ""
	})

	t.Logf("readouts settled %v after that", time.Since(landed).Round(time.Millisecond))
	readouts, err := js.Stream(ctx, stream.ReadoutsStream)
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range scenarios {
		t.Run(s.key, func(t *testing.T) {
			got := latest[s.key]
			exp, _ := w.defs.Experiment(s.key)
			ms := referenced(exp, w.defs)
			tr := computeTruth(exp, ms, w.published(), got.ComputedAt)

			if n := sum(tr.units); got.Progress.Units != n {
				t.Errorf("progress.units = %d, want %d", got.Progress.Units, n)
			}
			checkVerdict(t, s, got)
			checkHealth(t, exp, got.Health, tr)
			if !got.DataThrough.Equal(tr.dataThrough) {
				t.Errorf("data_through = %v, want %v", got.DataThrough, tr.dataThrough)
			}
			checkNumbers(t, exp, w.metrics(), got, tr)

			// The whole document is what Evaluate makes of the true
			// statistics: progress, reasons and summary included. Exactly:
			// the sums are exact (see checkNumbers), so Evaluate gets the
			// same bits from ClickHouse as from here.
			look, _ := rules.Evaluate(exp, w.metrics(), tr.stats(), got.ComputedAt, nil)
			want, _ := decide.Latch(decide.Lifecycle{}, decide.Look{Readout: look, Now: got.ComputedAt})
			want.Version, want.ComputedAt = got.Version, got.ComputedAt
			// Decided at the first look, with no hold: an earlier one.
			if got.CandidateSince == nil || got.CandidateSince.After(got.ComputedAt) {
				t.Errorf("candidate_since = %v, want a time at or before computed_at %v", got.CandidateSince, got.ComputedAt)
			}
			if (got.DecidedAt != nil) != (got.Status != readout.Collecting) || (got.DecidedAt != nil && !got.DecidedAt.Equal(*got.CandidateSince)) {
				t.Errorf("status %s, decided_at = %v, want candidate_since %v (no hold) unless collecting", got.Status, got.DecidedAt, got.CandidateSince)
			}
			want.CandidateSince, want.DecidedAt = got.CandidateSince, got.DecidedAt
			if got.Provisional || got.Health.Backlog != 0 {
				t.Errorf("provisional = %v with backlog %d, want a look on landed data", got.Provisional, got.Health.Backlog)
			}
			// The effects over time come from their own query, at a look
			// of their own (rules.TimeStatsEvery): checked apart, by
			// TestTimeStats and TestNoveltyTruths; here that they are
			// there for every metric but quantiles.
			for _, a := range got.Arms {
				for _, m := range a.Metrics {
					if (m.Series == nil) != (m.Kind == "quantile") || (m.Novelty == nil) != (m.Kind == "quantile") {
						t.Errorf("%s of %s: series %v and novelty %v for a %s metric", m.Metric, a.Variant, m.Series != nil, m.Novelty != nil, m.Kind)
					} else if m.Series != nil && (len(m.Series.Cumulative) == 0 || m.Series.Cumulative[len(m.Series.Cumulative)-1].Units > got.Progress.Units) {
						t.Errorf("%s of %s: cumulative series %+v for %d units", m.Metric, a.Variant, m.Series.Cumulative, got.Progress.Units)
					}
				}
			}
			if diff := cmp.Diff(want, got, cmpopts.IgnoreFields(readout.Metric{}, "Series", "Novelty")); diff != "" {
				t.Errorf("readout differs from Evaluate on the true statistics (-want +got):\n%s", diff)
			}

			// And it was published.
			msg, err := readouts.GetLastMsgForSubject(ctx, stream.ReadoutsPrefix+s.key)
			if err != nil {
				t.Fatal(err)
			}
			var pub readout.Readout
			if err := json.Unmarshal(msg.Data, &pub); err != nil {
				t.Fatal(err)
			}
			if pub.Version < got.Version {
				t.Errorf("published version %d, stored %d", pub.Version, got.Version)
			}
			if diff := cmp.Diff(unstamped(got), unstamped(pub)); diff != "" {
				t.Errorf("published readout differs from the stored one (-stored +published):\n%s", diff)
			}
		})
	}
}

// deadLetters describes the messages in the dead-letter stream: how many,
// and the first one's error and payload.
func deadLetters(t *testing.T, js jetstream.JetStream) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	s, err := js.Stream(ctx, stream.DLQStream)
	if err != nil {
		t.Fatal(err)
	}
	info, err := s.Info(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if info.State.Msgs == 0 {
		return "none"
	}
	m, err := s.GetMsg(ctx, info.State.FirstSeq)
	if err != nil {
		return fmt.Sprintf("%d (%v)", info.State.Msgs, err)
	}
	return fmt.Sprintf("%d, the first %s: %s", info.State.Msgs, m.Header.Get(stream.ErrorHeader), m.Data)
}

// unstamped is r without what differs between two readouts of the same
// data.
func unstamped(r readout.Readout) readout.Readout {
	r.Version, r.ComputedAt = 0, time.Time{}
	return r
}

func sum(m map[string]int64) int64 {
	var n int64
	for _, v := range m {
		n += v
	}
	return n
}

// checkHealth checks the units per variant and the multiple exposures
// exactly, and the SRM p-value against the chi-square test with one degree
// of freedom written out (every scenario has two variants).
func checkHealth(t *testing.T, exp config.Experiment, h readout.Health, tr truth) {
	t.Helper()
	var counts []readout.VariantCount
	total := sum(tr.units)
	var weights float64
	for _, v := range exp.Variants {
		weights += v.Weight
	}
	for _, v := range exp.Variants {
		c := readout.VariantCount{Variant: v.Key, Units: tr.units[v.Key], Weight: v.Weight, ExpectedShare: v.Weight / weights}
		if total > 0 {
			c.ObservedShare = float64(c.Units) / float64(total)
		}
		counts = append(counts, c)
	}
	if diff := cmp.Diff(counts, h.Counts); diff != "" {
		t.Errorf("health.counts (-want +got):\n%s", diff)
	}
	if h.MultipleExposureCount != tr.multi {
		t.Errorf("health.multiple_exposure_count = %d, want %d", h.MultipleExposureCount, tr.multi)
	}
	if want := float64(tr.multi) / float64(tr.multi+tr.unknown+total); !near(h.MultipleExposureRate, want, 1e-12) {
		t.Errorf("health.multiple_exposure_rate = %v, want %v", h.MultipleExposureRate, want)
	}
	if h.UnknownVariantUnits != tr.unknown {
		t.Errorf("health.unknown_variant_units = %d, want %d", h.UnknownVariantUnits, tr.unknown)
	}
	if len(exp.Variants) != 2 {
		t.Fatalf("checkHealth knows two variants, %s has %d", exp.Key, len(exp.Variants))
	}
	if counts[0].Units < 8 || counts[1].Units < 8 {
		if h.SRM != readout.SRMNotEnoughTraffic || h.SRMPValue != nil {
			t.Errorf("health.srm = %s, p %v; want not_enough_traffic, null", h.SRM, h.SRMPValue)
		}
		return
	}
	// The sequential SRM test (Lindon & Malek 2022), written again here:
	// ln BF = lnΓ(c) − lnΓ(c+n) + Σ lnΓ(c·p_i + x_i) − lnΓ(c·p_i) − x_i ln p_i.
	lg := func(x float64) float64 { v, _ := math.Lgamma(x); return v }
	const conc = 10000.0
	lnBF := lg(conc) - lg(conc+float64(total))
	for _, c := range counts {
		a, x := conc*c.ExpectedShare, float64(c.Units)
		lnBF += lg(a+x) - lg(a) - x*math.Log(c.ExpectedShare)
	}
	p := math.Min(1, math.Exp(-lnBF))
	status := readout.SRMOK
	if p < 0.001 {
		status = readout.SRMMismatch
	}
	if h.SRM != status || h.SRMPValue == nil || !near(*h.SRMPValue, p, 1e-9) {
		t.Errorf("health.srm = %s, p %v; want %s, p %v", h.SRM, ptrString(h.SRMPValue), status, p)
	}
}

func ptrString(p *float64) string {
	if p == nil {
		return "null"
	}
	return fmt.Sprint(*p)
}

// checkNumbers checks every metric of every arm, and every salvage item,
// against stats.Compare on the sufficient statistics computed from the raw
// events. The sums are exact in float64 whatever their order (the values
// are multiples of 1/4), so ClickHouse and this test feed Compare the same
// bits: 1e-9 relative is tight enough to catch any wrong unit, event or
// cap, and loose enough not to depend on that argument holding to the
// last bit.
func checkNumbers(t *testing.T, exp config.Experiment, metrics map[string]config.Metric, ro readout.Readout, tr truth) {
	t.Helper()
	opt := stats.Options{Alpha: exp.Alpha, Sequential: exp.Sequential, Tuning: exp.Tuning}
	type role struct {
		key    string
		role   readout.Role
		margin float64
	}
	var roles []role
	for _, k := range exp.Primary {
		roles = append(roles, role{k, readout.Primary, 0})
	}
	for _, k := range exp.Secondary {
		roles = append(roles, role{k, readout.Secondary, 0})
	}
	for _, g := range exp.Guardrails {
		roles = append(roles, role{g.Metric, readout.Guardrail, g.Margin})
	}
	var treatments []string
	for _, v := range exp.Variants {
		if v.Key != exp.Control {
			treatments = append(treatments, v.Key)
		}
	}
	if len(ro.Arms) != len(treatments) {
		t.Fatalf("%d arms, want %d", len(ro.Arms), len(treatments))
	}
	checked := 0
	for i, variant := range treatments {
		arm := ro.Arms[i]
		if arm.Variant != variant {
			t.Errorf("arms[%d].variant = %s, want %s", i, arm.Variant, variant)
			continue
		}
		var gotKeys []string
		for _, m := range arm.Metrics {
			gotKeys = append(gotKeys, m.Metric)
		}
		for _, m := range arm.Unavailable {
			gotKeys = append(gotKeys, m.Metric)
		}
		var wantKeys []string
		for _, r := range roles {
			wantKeys = append(wantKeys, r.key)
		}
		slices.Sort(gotKeys)
		slices.Sort(wantKeys)
		if !slices.Equal(gotKeys, wantKeys) {
			t.Errorf("arm %s: metrics and unavailable %v, want %v", variant, gotKeys, wantKeys)
		}
		for _, r := range roles {
			m := metrics[r.key]
			res, observed, err := tr.compare(m, exp.Control, variant, "", "", opt)
			j := slices.IndexFunc(arm.Metrics, func(g readout.Metric) bool { return g.Metric == m.Key })
			if err != nil {
				if !slices.ContainsFunc(arm.Unavailable, func(u readout.Unavailable) bool { return u.Metric == m.Key }) {
					t.Errorf("arm %s, %s: Compare fails (%v), want it unavailable; got %+v", variant, m.Key, err, arm.Metrics[j])
				}
				continue
			}
			if j < 0 {
				t.Errorf("arm %s: no %s, want %+v (unavailable: %+v)", variant, m.Key, res, arm.Unavailable)
				continue
			}
			got := arm.Metrics[j]
			where := fmt.Sprintf("arm %s, %s %s", variant, r.role, m.Key)
			if got.Role != r.role || got.Kind != string(m.Kind) || got.Direction != string(m.Direction) {
				t.Errorf("%s: role, kind, direction = %s, %s, %s; want %s, %s, %s", where, got.Role, got.Kind, got.Direction, r.role, m.Kind, m.Direction)
			}
			shown := res
			shown.Control, shown.Treatment = observed[0], observed[1]
			checkResult(t, where, got.Control, got.Treatment, got.AbsEffect, got.RelEffect, got.CI, got.RelCI, got.PValue, shown)
			if got.Significant != (res.AbsCI.Lo > 0 || res.AbsCI.Hi < 0) {
				t.Errorf("%s: significant = %v with ci %v", where, got.Significant, got.CI)
			}
			if r.role == readout.Guardrail {
				a := r.margin * math.Abs(res.Control.Mean)
				nonInferior, beyond := res.AbsCI.Lo > -a, res.AbsCI.Hi < -a
				if m.Direction == config.Decrease {
					nonInferior, beyond = res.AbsCI.Hi < a, res.AbsCI.Lo > a
				}
				if got.Margin == nil || *got.Margin != r.margin || got.AbsMargin == nil || !near(*got.AbsMargin, a, 1e-9) ||
					got.NonInferior == nil || *got.NonInferior != nonInferior || got.BeyondMargin == nil || *got.BeyondMargin != beyond {
					t.Errorf("%s: margin %v, abs_margin %v, non_inferior %v, beyond_margin %v; want %v, %v, %v, %v", where,
						ptrString(got.Margin), ptrString(got.AbsMargin), got.NonInferior != nil && *got.NonInferior, got.BeyondMargin != nil && *got.BeyondMargin,
						r.margin, a, nonInferior, beyond)
				}
			}
			checked++
		}
	}
	if checked == 0 {
		t.Errorf("no metric checked")
	}
	checkSalvage(t, exp, metrics, ro, tr, opt)
}

// checkSalvage checks each salvage item's numbers, and its Holm-adjusted
// p-value over its family: every (arm, segment value, primary metric) with
// a result for segments, every (arm, secondary metric) for metrics.
func checkSalvage(t *testing.T, exp config.Experiment, metrics map[string]config.Metric, ro readout.Readout, tr truth, opt stats.Options) {
	t.Helper()
	type test struct {
		c   cell // the treatment's
		res stats.Result
	}
	var segs, secs []test
	for _, v := range exp.Variants {
		if v.Key == exp.Control {
			continue
		}
		for _, dim := range exp.Segments {
			for _, value := range tr.values[dim] {
				for _, k := range exp.Primary {
					_, ok1 := tr.cells[cell{exp.Control, k, dim, value}]
					_, ok2 := tr.cells[cell{v.Key, k, dim, value}]
					if !ok1 || !ok2 {
						continue
					}
					if res, _, err := tr.compare(metrics[k], exp.Control, v.Key, dim, value, opt); err == nil {
						segs = append(segs, test{cell{v.Key, k, dim, value}, res})
					}
				}
			}
		}
		for _, k := range exp.Secondary {
			if res, _, err := tr.compare(metrics[k], exp.Control, v.Key, "", "", opt); err == nil {
				secs = append(secs, test{cell{v.Key, k, "", ""}, res})
			}
		}
	}
	// Holm, written out: the i-th smallest of m p-values is multiplied by
	// m−i (0-based), the running maximum taken, capped at 1.
	holm := func(ts []test) map[cell]float64 {
		order := make([]int, len(ts))
		for i := range order {
			order[i] = i
		}
		sort.SliceStable(order, func(a, b int) bool { return ts[order[a]].res.PValue < ts[order[b]].res.PValue })
		out := map[cell]float64{}
		running := 0.0
		for i, j := range order {
			running = max(running, min(1, float64(len(ts)-i)*ts[j].res.PValue))
			out[ts[j].c] = running
		}
		return out
	}
	adjSegs, adjSecs := holm(segs), holm(secs)
	find := func(ts []test, c cell) (stats.Result, bool) {
		for _, x := range ts {
			if x.c == c {
				return x.res, true
			}
		}
		return stats.Result{}, false
	}
	for _, it := range ro.Salvage {
		c := cell{it.Variant, it.Metric, it.Dimension, it.Value}
		family, adj := secs, adjSecs
		if it.Kind == readout.SalvageSegment {
			family, adj = segs, adjSegs
		}
		res, ok := find(family, c)
		if !ok {
			t.Errorf("salvage item %+v: no such test", it)
			continue
		}
		where := fmt.Sprintf("salvage %s %s %s=%s", it.Variant, it.Metric, it.Dimension, it.Value)
		checkResult(t, where, it.Control, it.Treatment, it.AbsEffect, it.RelEffect, it.CI, it.RelCI, it.PValue, res)
		if !near(it.AdjustedPValue, adj[c], 1e-9) {
			t.Errorf("%s: adjusted_p_value = %v, want %v (Holm over %d tests)", where, it.AdjustedPValue, adj[c], len(family))
		}
		if it.AdjustedPValue >= exp.Alpha {
			t.Errorf("%s: salvaged with adjusted p %v ≥ alpha %v", where, it.AdjustedPValue, exp.Alpha)
		}
	}
}

func checkResult(t *testing.T, where string, ctl, trt readout.Estimate, abs float64, rel *float64, ci readout.Interval, relCI *readout.Interval, p float64, want stats.Result) {
	t.Helper()
	type num struct {
		name      string
		got, want float64
	}
	nums := []num{
		{"control.n", ctl.N, want.Control.N},
		{"control.mean", ctl.Mean, want.Control.Mean},
		{"treatment.n", trt.N, want.Treatment.N},
		{"treatment.mean", trt.Mean, want.Treatment.Mean},
		{"abs_effect", abs, want.AbsEffect},
		{"ci[0]", ci[0], want.AbsCI.Lo},
		{"ci[1]", ci[1], want.AbsCI.Hi},
		{"p_value", p, want.PValue},
	}
	if (rel != nil) != want.RelDefined || (relCI != nil) != want.RelDefined {
		t.Errorf("%s: rel_effect %v, rel_ci %v; want them defined: %v", where, rel, relCI, want.RelDefined)
	} else if want.RelDefined {
		nums = append(nums, num{"rel_effect", *rel, want.RelEffect}, num{"rel_ci[0]", relCI[0], want.RelCI.Lo}, num{"rel_ci[1]", relCI[1], want.RelCI.Hi})
	}
	for _, n := range nums {
		if !near(n.got, n.want, 1e-9) {
			t.Errorf("%s: %s = %v, want %v", where, n.name, n.got, n.want)
		}
	}
}

// near reports whether got is within rel of want, relative to the larger.
func near(got, want, rel float64) bool {
	return got == want || math.Abs(got-want) <= rel*math.Max(math.Abs(got), math.Abs(want))
}

// run runs a service until the test ends, and fails the test if it
// returns an error.
func run(t *testing.T, name string, service func(ctx context.Context) error) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- service(ctx) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("%s: %v", name, err)
		}
	})
}

// publish publishes evs asynchronously, with Nats-Msg-Id unless withoutID,
// and waits for every ack.
func publish(t *testing.T, js jetstream.JetStream, evs []event.Event, withoutID bool) {
	t.Helper()
	var futures []jetstream.PubAckFuture
	settle := func() {
		for _, f := range futures {
			select {
			case <-f.Ok():
			case err := <-f.Err():
				t.Fatalf("publish: %v", err)
			case <-time.After(30 * time.Second):
				t.Fatal("no publish ack after 30s")
			}
		}
		futures = futures[:0]
	}
	for _, e := range evs {
		if len(futures) == 2000 {
			settle()
		}
		m := nats.NewMsg(e.Type.Subject())
		m.Data = e.AppendJSON(nil)
		if !withoutID {
			m.Header.Set(nats.MsgIdHdr, e.ID)
		}
		f, err := js.PublishMsgAsync(m)
		if err != nil {
			t.Fatalf("publish: %v", err)
		}
		futures = append(futures, f)
	}
	settle()
}

// waitFor polls cond until it holds, failing the test after timeout with
// what cond last said.
func waitFor(t *testing.T, timeout time.Duration, cond func() (bool, string)) {
	t.Helper()
	testkit.WaitFor(t, timeout, 200*time.Millisecond, cond)
}

// TestRunStopsWhenCancelledMidEvaluation cancels Run while it evaluates:
// by the time it gets back to waiting, both its context and the definition
// watcher (whose subscription is bound to that context, and whose channel
// then closes) are ready. Run must return whichever it sees first; a
// closed channel taken for a definition change used to spin forever.
func TestRunStopsWhenCancelledMidEvaluation(t *testing.T) {
	warehousetest.Run(t, testRunStopsWhenCancelledMidEvaluation)
}

func testRunStopsWhenCancelledMidEvaluation(t *testing.T, eng warehouse.Engine) {
	ns := streamtest.Run(t)
	ch := warehousetest.StartServer(t, eng)
	for i := range 10 { // the select chooses at random: 10 tries miss a spin once in 1024
		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan error, 1)
		go func() {
			done <- rules.Run(ctx, rules.Config{
				NATSURL:    ns.URL(),
				Hold:       -1,
				ClickHouse: warehouse.Config{Addr: ch.Addr, Database: "verdict"},
				Interval:   time.Hour,
				// Now is read once per evaluation, in Run's goroutine.
				Now: func() time.Time {
					cancel()
					time.Sleep(100 * time.Millisecond) // the watcher's channel closes meanwhile
					return time.Now()
				},
			})
		}()
		select {
		case err := <-done:
			if err != nil {
				t.Fatalf("try %d: Run: %v", i, err)
			}
		case <-time.After(10 * time.Second):
			t.Fatalf("try %d: Run has not returned 10s after its context was cancelled", i)
		}
	}
}
