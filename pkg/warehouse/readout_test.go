package warehouse_test

import (
	"context"
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"slices"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"
	"github.com/verdictlabs/verdict/pkg/config"
	"github.com/verdictlabs/verdict/pkg/event"
	"github.com/verdictlabs/verdict/pkg/stats"
	"github.com/verdictlabs/verdict/pkg/warehouse"
	"github.com/verdictlabs/verdict/pkg/warehouse/warehousetest"
)

var (
	day      = 24 * time.Hour
	t0       = time.Date(2026, 11, 1, 0, 0, 0, 0, time.UTC)
	edgeAsOf = t0.Add(9*day + time.Hour)
)

// readoutMetrics cover every kind, both aggregates and caps on a mean, a
// count-aggregated mean and a ratio's numerator.
var readoutMetrics = []config.Metric{
	{Key: "conversion", Kind: stats.Proportion, Event: "purchase"},
	{Key: "revenue", Kind: stats.Mean, Event: "purchase", Aggregate: config.Sum, Cap: &config.Cap{Percentile: 0.9}},
	{Key: "items", Kind: stats.Count, Event: "add_to_cart", Aggregate: config.Count},
	{Key: "sessions", Kind: stats.Mean, Event: "session_start", Aggregate: config.Count, Cap: &config.Cap{Percentile: 0.8}},
	{Key: "load_ms", Kind: stats.Ratio, Numerator: &config.Part{Event: "page_load", Aggregate: config.Sum}, Denominator: &config.Part{Event: "page_load", Aggregate: config.Count}},
	{Key: "clicks_per_session", Kind: stats.Ratio, Numerator: &config.Part{Event: "click", Aggregate: config.Count}, Denominator: &config.Part{Event: "session_start", Aggregate: config.Count}, Cap: &config.Cap{Percentile: 0.95}},
	{Key: "load_p90", Kind: stats.Quantile, Event: "page_load", Quantile: 0.9, Level: config.LevelEvent, Direction: config.Decrease},
	{Key: "revenue_p50", Kind: stats.Quantile, Event: "purchase", Aggregate: config.Sum, Quantile: 0.5, Level: config.LevelUnit},
}

func metricsOf(keys ...string) []config.Metric {
	var out []config.Metric
	for _, k := range keys {
		i := slices.IndexFunc(readoutMetrics, func(m config.Metric) bool { return m.Key == k })
		out = append(out, readoutMetrics[i])
	}
	return out
}

func timePtr(t time.Time) *time.Time { return &t }

// readoutWorld is raw events for two experiments that share units, with
// everything the readout must get right: copies of events (in one batch
// and across batches), exposures outside the experiment's range, events
// before the first exposure, after the attribution window and after asOf,
// units exposed to two variants or to an unknown one, units without a
// segment attribute or whose attributes change after the first exposure,
// events of units never exposed, and event names no metric uses.
func readoutWorld(seed uint64) (batches [][]event.Event, all []event.Event) {
	r := rand.New(rand.NewPCG(seed, 42))
	var evs []event.Event
	id := 0
	next := func(prefix string) string { id++; return fmt.Sprintf("%s-%06d", prefix, id) }
	at := func(from time.Time, span time.Duration) time.Time {
		return from.Add(time.Duration(r.Int64N(int64(span/time.Millisecond))) * time.Millisecond)
	}
	platforms := []string{"ios", "web", "android"}
	countries := []string{"de", "us", "fr"}
	plans := []string{"free", "pro"}
	type spec struct {
		key      string
		variants []string
		from     time.Time
		span     time.Duration
	}
	exps := []spec{
		{"checkout", []string{"control", "one-page"}, t0.Add(-day), 13 * day},
		{"search.v2", []string{"a", "b", "c"}, t0, 14 * day},
	}
	names := []string{"purchase", "add_to_cart", "session_start", "page_load", "click", "scroll"}
	for u := range 600 {
		unit := fmt.Sprintf("user-%04d", u)
		for _, x := range exps {
			if r.IntN(10) < 3 { // not in this experiment
				continue
			}
			variant := x.variants[r.IntN(len(x.variants))]
			for k := range 1 + r.IntN(3) {
				v := variant
				switch p := r.IntN(100); {
				case k > 0 && p < 8:
					v = x.variants[(slices.Index(x.variants, variant)+1)%len(x.variants)] // a second variant
				case p < 2:
					v = "ghost" // not in the definition
				}
				keys, values := []string{"country", "plan", "platform"}, []string{countries[r.IntN(3)], plans[r.IntN(2)], platforms[r.IntN(3)]}
				switch r.IntN(10) {
				case 0:
					keys, values = []string{"country"}, values[:1] // no platform, no plan
				case 1:
					keys, values = nil, nil
				case 2:
					values[2] = "" // present but empty
				}
				evs = append(evs, event.Event{
					Type: event.Exposure, ID: next("x"), TS: at(x.from, x.span), Unit: unit,
					AttrKeys: keys, AttrValues: values, Experiment: x.key, Variant: v,
				})
			}
		}
		for range r.IntN(25) {
			name := names[r.IntN(len(names))]
			value := float64(r.IntN(400)) * 0.25
			if r.IntN(20) == 0 {
				value = float64(1000 + r.IntN(5000)) // outliers for the caps
			}
			evs = append(evs, event.Event{
				Type: event.Track, ID: next("t"), TS: at(t0.Add(-2*day), 17*day), Unit: unit,
				Name: name, Value: value,
			})
		}
	}
	// Edges, to the millisecond, for checkout (window 2d, range [t0, t0+10d])
	// read as of edgeAsOf: each purchase value is a power of two, so a sum
	// tells which counted.
	exposure := func(unit, id string, ts time.Time, platform string) {
		evs = append(evs, event.Event{Type: event.Exposure, ID: id, TS: ts, Unit: unit,
			AttrKeys: []string{"platform"}, AttrValues: []string{platform}, Experiment: "checkout", Variant: "control"})
	}
	purchase := func(unit string, ts time.Time, value float64) {
		evs = append(evs, event.Event{Type: event.Track, ID: next("edge"), TS: ts, Unit: unit, Name: "purchase", Value: value})
	}
	first := t0.Add(3*day + 123*time.Millisecond)
	exposure("edge-window", "edge-x1", first, "ios")
	purchase("edge-window", first.Add(-14*day-time.Millisecond), 128) // before CUPED's 14-day lookback
	purchase("edge-window", first.Add(-14*day), 64)                   // its first millisecond: a covariate
	purchase("edge-window", first.Add(-time.Millisecond), 1)          // before the first exposure: a covariate
	purchase("edge-window", first, 2)                                 // at it: counts
	purchase("edge-window", first.Add(2*day-time.Millisecond), 4)     // last millisecond of the window
	purchase("edge-window", first.Add(2*day), 8)                      // just after
	exposure("edge-asof", "edge-x2", edgeAsOf.Add(-time.Hour), "web") // events at asOf count, not after
	purchase("edge-asof", edgeAsOf, 16)
	purchase("edge-asof", edgeAsOf.Add(time.Millisecond), 32)
	exposure("edge-start", "edge-x3", t0.Add(-time.Millisecond), "ios") // before Start: not exposed
	exposure("edge-start2", "edge-x4", t0, "ios")                       // at Start: exposed
	exposure("edge-end", "edge-x5", t0.Add(10*day), "ios")              // at End: exposed (when asOf is later)
	exposure("edge-end2", "edge-x6", t0.Add(10*day+time.Millisecond), "ios")
	exposure("edge-now", "edge-x7", edgeAsOf, "android")                    // at asOf: exposed
	exposure("edge-now2", "edge-x8", edgeAsOf.Add(time.Millisecond), "ios") // after asOf: not yet
	// Two first exposures in the same millisecond: the smaller event_id's
	// attributes are the segment values.
	exposure("edge-tie", "edge-x9b", first, "web")
	exposure("edge-tie", "edge-x9a", first, "android")

	// A copy: the shuffle below must not reach it through a shared array
	// (with room to spare, the appends write into the array evs and all
	// share, and the shuffle then moves copies into all).
	all = slices.Clone(evs)
	// Copies: some in the same batch, some in a later one.
	var dups []event.Event
	for _, e := range evs {
		switch r.IntN(10) {
		case 0:
			evs = append(evs, e)
		case 1:
			dups = append(dups, e)
		}
	}
	r.Shuffle(len(evs), func(i, j int) { evs[i], evs[j] = evs[j], evs[i] })
	half := len(evs) / 2
	return [][]event.Event{evs[:half], evs[half:], dups}, all
}

// expectStats computes what ExperimentStats must return, in plain Go from
// the raw events: an independent path.
func expectStats(exp config.Experiment, metrics []config.Metric, asOf time.Time, evs []event.Event) warehouse.ExperimentStats {
	ms := func(t time.Time) int64 { return t.UnixMilli() }
	end := asOf
	if exp.End != nil && exp.End.Before(end) {
		end = *exp.End
	}
	seen := map[string]bool{}
	type unit struct {
		firstMS, lastMS int64
		firstID         string
		variants        map[string]bool
		segments        []string
		counts, sums    map[string]float64
		values          map[string][]float64 // each counted event's value
		// Before the first exposure, per lookback (ms): for CUPED.
		preCounts, preSums map[int64]map[string]float64
	}
	units := map[string]*unit{}
	out := warehouse.ExperimentStats{Units: map[string]uint64{}}
	for _, v := range exp.Variants {
		out.Units[v.Key] = 0
	}
	for _, e := range evs {
		if e.Type != event.Exposure || e.Experiment != exp.Key || seen[e.ID] {
			continue
		}
		t := ms(e.TS)
		if t < ms(exp.Start) || t > ms(end) {
			continue
		}
		seen[e.ID] = true
		u := units[e.Unit]
		if u == nil {
			u = &unit{firstMS: math.MaxInt64, variants: map[string]bool{}, counts: map[string]float64{}, sums: map[string]float64{}, values: map[string][]float64{}}
			units[e.Unit] = u
		}
		u.variants[e.Variant] = true
		u.lastMS = max(u.lastMS, t)
		if t < u.firstMS || t == u.firstMS && e.ID < u.firstID {
			u.firstMS, u.firstID = t, e.ID
			u.segments = nil
			for _, d := range exp.Segments {
				v := ""
				if i := slices.Index(e.AttrKeys, d); i >= 0 {
					v = e.AttrValues[i]
				}
				if v == "" {
					v = warehouse.NoValue
				}
				u.segments = append(u.segments, v)
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
	preSeen := map[string]bool{}
	for _, e := range evs {
		u := units[e.Unit]
		if e.Type != event.Track || u == nil || preSeen[e.ID] || !names[e.Name] {
			continue
		}
		t := ms(e.TS)
		if t >= u.firstMS {
			continue
		}
		preSeen[e.ID] = true
		for l := range lookbacks {
			if t >= u.firstMS-l {
				if u.preCounts == nil {
					u.preCounts, u.preSums = map[int64]map[string]float64{}, map[int64]map[string]float64{}
				}
				if u.preCounts[l] == nil {
					u.preCounts[l], u.preSums[l] = map[string]float64{}, map[string]float64{}
				}
				u.preCounts[l][e.Name]++
				u.preSums[l][e.Name] += e.Value
			}
		}
	}
	for _, e := range evs {
		u := units[e.Unit]
		if e.Type != event.Track || u == nil || seen[e.ID] || !names[e.Name] {
			continue
		}
		t := ms(e.TS)
		if t < u.firstMS || t >= u.firstMS+window || t > ms(asOf) {
			continue
		}
		seen[e.ID] = true
		u.counts[e.Name]++
		u.sums[e.Name] += e.Value
		u.values[e.Name] = append(u.values[e.Name], e.Value)
		u.lastMS = max(u.lastMS, t)
	}

	known := map[string]bool{}
	for _, v := range exp.Variants {
		known[v.Key] = true
	}
	var first, last int64 = math.MaxInt64, 0
	var included []*unit
	variantOf := map[*unit]string{}
	for _, u := range units {
		out.Exposed++
		first, last = min(first, u.firstMS), max(last, u.lastMS)
		var v string
		for k := range u.variants {
			v = k
		}
		switch {
		case len(u.variants) > 1:
			out.MultiExposed++
		case !known[v]:
			out.UnknownVariant++
		default:
			out.Units[v]++
			included = append(included, u)
			variantOf[u] = v
		}
	}
	if out.Exposed > 0 {
		out.FirstExposure, out.DataThrough = time.UnixMilli(first).UTC(), time.UnixMilli(last).UTC()
	}
	// values computes a metric from a unit's counts and sums of events.
	values := func(counts, sums map[string]float64, m config.Metric) (float64, float64) {
		part := func(p config.Part) float64 {
			if p.Aggregate == config.Count {
				return counts[p.Event]
			}
			return sums[p.Event]
		}
		switch m.Kind {
		case stats.Proportion:
			if counts[m.Event] > 0 {
				return 1, 0
			}
			return 0, 0
		case stats.Count:
			return counts[m.Event], 0
		case stats.Mean:
			return part(config.Part{Event: m.Event, Aggregate: m.Aggregate}), 0
		case stats.Quantile:
			if m.EventQuantile() {
				return 0, 0 // its cells' Arm has N only
			}
			return part(config.Part{Event: m.Event, Aggregate: m.Aggregate}), 0
		}
		return part(*m.Numerator), part(*m.Denominator)
	}
	xy := func(u *unit, m config.Metric) (float64, float64) { return values(u.counts, u.sums, m) }
	pre := func(u *unit, m config.Metric) (float64, float64) {
		l := m.CUPEDLookback().Milliseconds()
		if l == 0 {
			return 0, 0
		}
		return values(u.preCounts[l], u.preSums[l], m) // nil maps read as 0
	}
	type key struct{ variant, metric, dim, value string }
	arms := map[key]*stats.Arm{}
	pres := map[key]*stats.Pre{}
	add := func(k key, x, y, x0, y0 float64, ratio bool) {
		a, p := arms[k], pres[k]
		if a == nil {
			a = &stats.Arm{}
			arms[k] = a
		}
		if p == nil {
			p = &stats.Pre{}
			pres[k] = p
		}
		a.N++
		a.Sum += x
		a.SumSquares += x * x
		p.Sum += x0
		p.SumSquares += x0 * x0
		p.CrossSum += x * x0
		if ratio {
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
	}
	for _, m := range metrics {
		capAt := math.Inf(1)
		if m.Cap != nil && m.Kind != stats.Proportion && len(included) > 0 {
			// quantileExact: the value at 0-based position ⌊p·n⌋ of the
			// sorted non-zero values; none, no cap.
			var xs []float64
			for _, u := range included {
				if x, _ := xy(u, m); x != 0 {
					xs = append(xs, x)
				}
			}
			sort.Float64s(xs)
			if len(xs) > 0 {
				capAt = xs[min(int(m.Cap.Percentile*float64(len(xs))), len(xs)-1)]
			}
		}
		for _, v := range exp.Variants {
			arms[key{v.Key, m.Key, "", ""}] = &stats.Arm{}
			pres[key{v.Key, m.Key, "", ""}] = &stats.Pre{}
		}
		for _, u := range included {
			x, y := xy(u, m)
			x0, y0 := pre(u, m)
			x, x0 = min(x, capAt), min(x0, capAt)
			v := variantOf[u]
			add(key{v, m.Key, "", ""}, x, y, x0, y0, m.Kind == stats.Ratio)
			for i, d := range exp.Segments {
				add(key{v, m.Key, d, u.segments[i]}, x, y, x0, y0, m.Kind == stats.Ratio)
			}
		}
	}
	// Quantile metrics: the values of each cell (units', or events' with
	// the units as clusters), sorted, at positions ⌊p·n⌋.
	quantiles := map[key]*stats.QuantileArm{}
	for _, m := range metrics {
		if m.Kind != stats.Quantile {
			continue
		}
		cellValues := map[key][]float64{}
		unitsOf := map[key][]*unit{}
		for _, u := range included {
			v := variantOf[u]
			vs := u.values[m.Event]
			if !m.EventQuantile() {
				x, _ := xy(u, m)
				vs = []float64{x}
			}
			if len(vs) == 0 {
				continue
			}
			keys := []key{{v, m.Key, "", ""}}
			for i, d := range exp.Segments {
				keys = append(keys, key{v, m.Key, d, u.segments[i]})
			}
			for _, k := range keys {
				cellValues[k] = append(cellValues[k], vs...)
				unitsOf[k] = append(unitsOf[k], u)
			}
		}
		for k, vs := range cellValues {
			sort.Float64s(vs)
			n := len(vs)
			at := func(p float64) float64 { return vs[min(int(math.Floor(p*float64(n))), n-1)] }
			h := stats.QuantileZ * math.Sqrt(m.Quantile*(1-m.Quantile)/float64(n))
			a := &stats.QuantileArm{N: float64(n), NStar: float64(n), Nu: m.Quantile, Hat: at(m.Quantile), Lower: at(max(0, m.Quantile-h)), Upper: at(min(1, m.Quantile+h))}
			if m.EventQuantile() {
				a.Clustered = true
				for _, u := range unitsOf[k] {
					var below float64
					for _, x := range u.values[m.Event] {
						if x <= a.Hat {
							below++
						}
					}
					a.AddCluster(below, float64(len(u.values[m.Event])))
				}
			}
			quantiles[k] = a
		}
	}
	for k, a := range arms {
		out.Cells = append(out.Cells, warehouse.Cell{Variant: k.variant, Metric: k.metric, Dimension: k.dim, Value: k.value, Arm: *a, Pre: *pres[k], Quantile: quantiles[k]})
	}
	sortCells(out.Cells)
	return out
}

func sortCells(cells []warehouse.Cell) {
	slices.SortFunc(cells, func(a, b warehouse.Cell) int {
		return strings.Compare(
			strings.Join([]string{a.Variant, a.Metric, a.Dimension, a.Value}, "\x00"),
			strings.Join([]string{b.Variant, b.Metric, b.Dimension, b.Value}, "\x00"))
	})
}

// worldExperiments are readoutWorld's two experiments: checkout (two arms,
// two segment dimensions, an end) and search.v2 (three arms, no end).
func worldExperiments() (checkout, search config.Experiment) {
	checkout = config.Experiment{
		Key:               "checkout",
		Variants:          []config.Variant{{Key: "control", Weight: 0.5}, {Key: "one-page", Weight: 0.5}},
		Control:           "control",
		Segments:          []string{"platform", "country"},
		AttributionWindow: config.Duration(2 * day),
		Start:             t0,
		End:               timePtr(t0.Add(10 * day)),
	}
	search = config.Experiment{
		Key:               "search.v2",
		Variants:          []config.Variant{{Key: "a"}, {Key: "b"}, {Key: "c"}},
		Control:           "a",
		Segments:          []string{"plan"},
		AttributionWindow: config.Duration(36 * time.Hour),
		Start:             t0.Add(day),
	}
	return checkout, search
}

// startWorld starts a server of engine e holding readoutWorld(1), in its
// batches; it returns the warehouse and every event.
func startWorld(t *testing.T, e warehouse.Engine) (*warehouse.Warehouse, []event.Event) {
	t.Helper()
	w, _ := warehousetest.Start(t, e)
	batches, all := readoutWorld(1)
	for _, b := range batches {
		if _, err := w.Insert(context.Background(), b); err != nil {
			t.Fatal(err)
		}
	}
	return w, all
}

func TestExperimentStats(t *testing.T) { warehousetest.Run(t, testExperimentStats) }

func testExperimentStats(t *testing.T, e warehouse.Engine) {
	w, all := startWorld(t, e)
	ctx := context.Background()
	checkout, search := worldExperiments()
	noSegments := checkout
	noSegments.Segments = nil
	tests := []struct {
		name    string
		exp     config.Experiment
		metrics []config.Metric
		asOf    time.Time
	}{
		{"checkout, all metrics, asOf before End", checkout, readoutMetrics, edgeAsOf},
		{"checkout after its End", checkout, metricsOf("conversion", "revenue", "load_ms"), t0.Add(30 * day)},
		{"checkout early", checkout, metricsOf("revenue", "clicks_per_session"), t0.Add(36 * time.Hour)},
		{"checkout without segments", noSegments, metricsOf("items", "sessions"), t0.Add(20 * day)},
		{"search, three arms, no End", search, metricsOf("conversion", "sessions", "clicks_per_session"), t0.Add(12 * day)},
		{"search before its start", search, metricsOf("conversion"), t0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := w.ExperimentStats(ctx, tt.exp, tt.metrics, tt.asOf)
			if err != nil {
				t.Fatal(err)
			}
			want := expectStats(tt.exp, tt.metrics, tt.asOf, all)
			t.Logf("exposed %d, units %v, multi %d, unknown %d, %d cells", want.Exposed, want.Units, want.MultiExposed, want.UnknownVariant, len(want.Cells))
			if diff := cmp.Diff(want, got, cmpopts.EquateApprox(1e-9, 1e-9), cmpopts.EquateEmpty()); diff != "" {
				t.Errorf("ExperimentStats (-want +got):\n%s", diff)
			}
			if want.Exposed > 0 && (want.MultiExposed == 0 || want.UnknownVariant == 0) && tt.name == tests[0].name {
				t.Errorf("the data has %d multi-exposed and %d unknown-variant units: the test needs both", want.MultiExposed, want.UnknownVariant)
			}
			if tt.name == tests[0].name {
				// CUPED's covariate: events before the first exposure count,
				// for ratios as well.
				var pre, preDen bool
				for _, c := range want.Cells {
					pre = pre || c.Pre.Sum != 0
					preDen = preDen || c.Pre.DenCrossDen != 0
				}
				if !pre || !preDen {
					t.Errorf("no cell has pre-exposure sums (%v, ratio %v): the test needs them", pre, preDen)
				}
				// Quantiles of both levels, in segments too, with
				// clusters of more than one event.
				var unitLevel, eventLevel, segment, clustered bool
				for _, c := range want.Cells {
					if q := c.Quantile; q != nil {
						unitLevel = unitLevel || !q.Clustered && q.N > 10
						eventLevel = eventLevel || q.Clustered && q.N > 10
						segment = segment || c.Dimension != ""
						clustered = clustered || q.DenSum > q.NClusters
					}
				}
				if !unitLevel || !eventLevel || !segment || !clustered {
					t.Errorf("quantile cells: unit level %v, event level %v, in a segment %v, a unit with several events %v: the test needs each", unitLevel, eventLevel, segment, clustered)
				}
			}
			for _, c := range got.Cells {
				if arm, ok := got.Cell(c.Variant, c.Metric, c.Dimension, c.Value); !ok || arm != c.Arm {
					t.Errorf("Cell(%q, %q, %q, %q) = %+v, %v; want %+v, true", c.Variant, c.Metric, c.Dimension, c.Value, arm, ok, c.Arm)
				}
			}
		})
	}

	// Inserting every event again changes nothing.
	before, err := w.ExperimentStats(ctx, checkout, readoutMetrics, t0.Add(9*day))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := w.Insert(ctx, all); err != nil {
		t.Fatal(err)
	}
	after, err := w.ExperimentStats(ctx, checkout, readoutMetrics, t0.Add(9*day))
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(before, after, cmpopts.EquateApprox(1e-9, 1e-9)); diff != "" {
		t.Errorf("after inserting every event again (-before +after):\n%s", diff)
	}
}

func TestExperimentStatsBadDefinitions(t *testing.T) {
	warehousetest.Run(t, testExperimentStatsBadDefinitions)
}

func testExperimentStatsBadDefinitions(t *testing.T, e warehouse.Engine) {
	w, _ := warehousetest.Start(t, e)
	good := config.Experiment{Key: "x", Variants: []config.Variant{{Key: "a"}}, AttributionWindow: config.Duration(day), Start: t0}
	noWindow := good
	noWindow.AttributionWindow = 0
	tests := []struct {
		name    string
		exp     config.Experiment
		metrics []config.Metric
	}{
		{"no attribution window", noWindow, readoutMetrics},
		{"unknown kind", good, []config.Metric{{Key: "m", Kind: "median", Event: "e"}}},
		{"ratio without denominator", good, []config.Metric{{Key: "m", Kind: stats.Ratio, Numerator: &config.Part{Event: "e"}}}},
		{"bad aggregate", good, []config.Metric{{Key: "m", Kind: stats.Mean, Event: "e", Aggregate: "max"}}},
		{"cap of 1", good, []config.Metric{{Key: "m", Kind: stats.Mean, Event: "e", Cap: &config.Cap{Percentile: 1}}}},
	}
	for _, tt := range tests {
		if _, err := w.ExperimentStats(context.Background(), tt.exp, tt.metrics, t0.Add(day)); !errors.Is(err, warehouse.ErrBadDefinition) {
			t.Errorf("%s: ExperimentStats = %v, want ErrBadDefinition", tt.name, err)
		}
	}
}

// TestCapIgnoresZeros: a sparse metric's cap is a percentile of the
// non-zero values only. Over all 400 units the 80th percentile of revenue
// is 0 and would cap every purchase to nothing; over the 6 purchasers it
// is 80, so only the 1000 outlier is capped.
func TestCapIgnoresZeros(t *testing.T) { warehousetest.Run(t, testCapIgnoresZeros) }

func testCapIgnoresZeros(t *testing.T, e warehouse.Engine) {
	w, _ := warehousetest.Start(t, e)
	ctx := context.Background()
	exp := config.Experiment{
		Key:               "sparse",
		Variants:          []config.Variant{{Key: "a", Weight: 0.5}, {Key: "b", Weight: 0.5}},
		Control:           "a",
		AttributionWindow: config.Duration(day),
		Start:             t0,
	}
	revenue := config.Metric{Key: "revenue", Kind: stats.Mean, Event: "purchase", Aggregate: config.Sum, Cap: &config.Cap{Percentile: 0.8}}
	values := []float64{5, 10, 20, 40, 80, 1000}
	var evs []event.Event
	for u := range 400 {
		unit := fmt.Sprintf("u-%03d", u)
		evs = append(evs, event.Event{Type: event.Exposure, ID: "x-" + unit, TS: t0.Add(time.Minute), Unit: unit, Experiment: "sparse", Variant: []string{"a", "b"}[u%2]})
		if u < len(values) {
			evs = append(evs, event.Event{Type: event.Track, ID: "p-" + unit, TS: t0.Add(time.Hour), Unit: unit, Name: "purchase", Value: values[u]})
		}
	}
	if _, err := w.Insert(ctx, evs); err != nil {
		t.Fatal(err)
	}
	asOf := t0.Add(2 * day)
	got, err := w.ExperimentStats(ctx, exp, []config.Metric{revenue}, asOf)
	if err != nil {
		t.Fatal(err)
	}
	var sum float64
	for _, v := range []string{"a", "b"} {
		arm, _ := got.Cell(v, "revenue", "", "")
		sum += arm.Sum
	}
	if want := 5.0 + 10 + 20 + 40 + 80 + 80; sum != want {
		t.Errorf("capped revenue summed over both arms = %v, want %v (1000 capped at 80, the 80th percentile of the non-zero values)", sum, want)
	}
	if diff := cmp.Diff(expectStats(exp, []config.Metric{revenue}, asOf, evs), got, cmpopts.EquateApprox(1e-9, 1e-9), cmpopts.EquateEmpty()); diff != "" {
		t.Errorf("ExperimentStats (-want +got):\n%s", diff)
	}
}
