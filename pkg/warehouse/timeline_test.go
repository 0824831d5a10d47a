package warehouse_test

import (
	"context"
	"math"
	"slices"
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

// expectTime computes TimeStats' contract in Go from the raw events, the
// way a reader of its documentation would: every unit's events placed by
// their time since the start and since its first exposure.
func expectTime(exp config.Experiment, metrics []config.Metric, asOf time.Time, evs []event.Event) warehouse.TimeStats {
	ms := func(t time.Time) int64 { return t.UnixMilli() }
	end := asOf
	if exp.End != nil && exp.End.Before(end) {
		end = *exp.End
	}
	dayMS, windowMS := day.Milliseconds(), time.Duration(exp.AttributionWindow).Milliseconds()
	type track struct {
		name  string
		ms    int64
		value float64
	}
	type unit struct {
		firstMS  int64
		variants map[string]bool
		tracks   []track
	}
	units := map[string]*unit{}
	for _, e := range evs {
		t := ms(e.TS)
		if e.Type != event.Exposure || e.Experiment != exp.Key || t < ms(exp.Start) || t > ms(end) {
			continue
		}
		u := units[e.Unit]
		if u == nil {
			u = &unit{firstMS: math.MaxInt64, variants: map[string]bool{}}
			units[e.Unit] = u
		}
		u.variants[e.Variant] = true
		u.firstMS = min(u.firstMS, t)
	}
	seen := map[string]bool{}
	for _, e := range evs {
		u := units[e.Unit]
		if e.Type != event.Track || u == nil || seen[e.ID] {
			continue
		}
		t := ms(e.TS)
		if t < u.firstMS || t >= u.firstMS+windowMS || t > ms(asOf) {
			continue
		}
		seen[e.ID] = true
		u.tracks = append(u.tracks, track{e.Name, t, e.Value})
	}
	// value of m over the unit's tracks that keep picks.
	value := func(m config.Metric, u *unit, keep func(track) bool) (x, y float64) {
		part := func(event string, count bool) float64 {
			var v float64
			for _, tr := range u.tracks {
				if tr.name == event && keep(tr) {
					if count {
						v++
					} else {
						v += tr.value
					}
				}
			}
			return v
		}
		switch m.Kind {
		case stats.Proportion:
			if part(m.Event, true) > 0 {
				x = 1
			}
		case stats.Count:
			x = part(m.Event, true)
		case stats.Mean:
			x = part(m.Event, m.Aggregate == config.Count)
		case stats.Ratio:
			x = part(m.Numerator.Event, m.Numerator.Aggregate == config.Count)
			y = part(m.Denominator.Event, m.Denominator.Aggregate == config.Count)
		}
		return x, y
	}
	out := warehouse.TimeStats{AsOf: asOf, Split: time.Duration(exp.AttributionWindow) / 2, Metrics: map[string]*warehouse.MetricTime{}}
	last := int((ms(asOf) - ms(exp.Start)) / dayMS)
	for d := 0; d <= last; d++ {
		out.Days = append(out.Days, d)
		through := exp.Start.Add(time.Duration(d+1) * day)
		if d == last {
			through = asOf
		}
		out.Through = append(out.Through, through)
	}
	sinceDays := int(math.Ceil(float64(windowMS) / float64(dayMS)))
	for _, m := range metrics {
		if m.Kind == stats.Quantile {
			continue
		}
		variantOf := func(u *unit) string {
			if len(u.variants) != 1 {
				return ""
			}
			for v := range u.variants {
				if slices.ContainsFunc(exp.Variants, func(k config.Variant) bool { return k.Key == v }) {
					return v
				}
			}
			return ""
		}
		capAt := math.Inf(1)
		if m.Cap != nil && m.Kind != stats.Proportion {
			var nonZero []float64
			for _, u := range units {
				if variantOf(u) != "" {
					if x, _ := value(m, u, func(track) bool { return true }); x != 0 {
						nonZero = append(nonZero, x)
					}
				}
			}
			if len(nonZero) > 0 {
				slices.Sort(nonZero)
				capAt = nonZero[int(math.Floor(m.Cap.Percentile*float64(len(nonZero))))]
			}
		}
		mt := &warehouse.MetricTime{Cumulative: map[string][]stats.Arm{}, SinceExposure: map[string][]stats.Arm{}, Novelty: map[string]stats.ChangeArm{}}
		for _, v := range exp.Variants {
			mt.Cumulative[v.Key] = make([]stats.Arm, len(out.Days))
			mt.SinceExposure[v.Key] = make([]stats.Arm, sinceDays)
		}
		for _, u := range units {
			v := variantOf(u)
			if v == "" {
				continue
			}
			for i, through := range out.Through {
				cut := ms(exp.Start.Add(time.Duration(out.Days[i]+1) * day))
				if i == len(out.Through)-1 {
					cut = ms(through) + 1
				}
				if u.firstMS >= cut {
					continue
				}
				x, y := value(m, u, func(tr track) bool { return tr.ms < cut })
				mt.Cumulative[v][i].Add(min(x, capAt), y)
			}
			for k := range sinceDays {
				to := min(int64(k+1)*dayMS, windowMS)
				if u.firstMS+to > ms(asOf) {
					break
				}
				x, y := value(m, u, func(tr track) bool { return tr.ms-u.firstMS >= int64(k)*dayMS && tr.ms-u.firstMS < to })
				mt.SinceExposure[v][k].Add(min(x, capAt), y)
			}
			if u.firstMS+windowMS <= ms(asOf) {
				ex, ey := value(m, u, func(tr track) bool { return tr.ms-u.firstMS < windowMS/2 })
				lx, ly := value(m, u, func(tr track) bool { return tr.ms-u.firstMS >= windowMS/2 })
				if m.Kind != stats.Ratio {
					ey, ly = 1, 1
				}
				c := mt.Novelty[v]
				c.Add(min(ex, capAt), ey, min(lx, capAt), ly)
				mt.Novelty[v] = c
			}
		}
		out.Metrics[m.Key] = mt
	}
	return out
}

func TestTimeStats(t *testing.T) { warehousetest.Run(t, testTimeStats) }

func testTimeStats(t *testing.T, e warehouse.Engine) {
	w, all := startWorld(t, e)
	ctx := context.Background()
	checkout, search := worldExperiments()
	tests := []struct {
		name string
		exp  config.Experiment
		asOf time.Time
	}{
		{"checkout, asOf before End", checkout, edgeAsOf},
		{"checkout after its End", checkout, t0.Add(30 * day)},
		{"checkout early", checkout, t0.Add(36 * time.Hour)},
		{"search, three arms, no End", search, t0.Add(12 * day)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := w.TimeStats(ctx, tt.exp, readoutMetrics, tt.asOf)
			if err != nil {
				t.Fatal(err)
			}
			want := expectTime(tt.exp, readoutMetrics, tt.asOf, all)
			if diff := cmp.Diff(want, got, cmpopts.EquateApprox(1e-9, 1e-9), cmpopts.EquateEmpty()); diff != "" {
				t.Errorf("TimeStats (-want +got):\n%s", diff)
			}
			// The last cumulative point is the readout's overall cells.
			st, err := w.ExperimentStats(ctx, tt.exp, readoutMetrics, tt.asOf)
			if err != nil {
				t.Fatal(err)
			}
			compared, mature := 0, 0.0
			for _, c := range st.Cells {
				mt := got.Metrics[c.Metric]
				if c.Dimension != "" || mt == nil {
					continue
				}
				cum := mt.Cumulative[c.Variant]
				if diff := cmp.Diff(c.Arm, cum[len(cum)-1], cmpopts.EquateApprox(1e-9, 1e-9)); diff != "" {
					t.Errorf("%s of %s: the last cumulative point is not the readout's cell (-cell +point):\n%s", c.Metric, c.Variant, diff)
				}
				compared++
				mature += mt.Novelty[c.Variant].N
			}
			if compared == 0 || tt.name == tests[0].name && mature == 0 {
				t.Errorf("compared %d cells, %g units with their window over: the test needs both", compared, mature)
			}
		})
	}
}
