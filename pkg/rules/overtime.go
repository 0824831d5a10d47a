package rules

import (
	"math"
	"strconv"
	"strings"
	"time"

	"github.com/verdictlabs/verdict/pkg/config"
	"github.com/verdictlabs/verdict/pkg/readout"
	"github.com/verdictlabs/verdict/pkg/stats"
	"github.com/verdictlabs/verdict/pkg/warehouse"
)

// MinNoveltyUnits is the fewest units per arm whose attribution window is
// over before the novelty test is run: below it the early and late parts'
// variances are too rough to trust.
const MinNoveltyUnits = 100

// SeriesPoints bounds the points of a readout's series, all metrics and
// arms together, so that a readout stays well inside a NATS message: each
// series keeps at most its share of them (never fewer than
// MinSeriesPoints), evenly spread, with its first and last.
const (
	SeriesPoints    = 2400
	MinSeriesPoints = 8
)

// overTime is variant's series (at most points per series) and novelty
// test on m (nil, nil when ts has none for it). The series use opt, the
// experiment's frequentist test (its confidence sequence when
// sequential); the novelty test always uses the confidence sequence, at
// the experiment's alpha and tuning, so that it stays valid however often
// readouts are looked at.
func overTime(exp config.Experiment, m config.Metric, variant string, ts *warehouse.TimeStats, points int, opt stats.Options) (*readout.Series, *readout.Novelty) {
	if ts == nil {
		return nil, nil
	}
	mt := ts.Metrics[m.Key]
	if mt == nil {
		return nil, nil
	}
	point := func(day int, through *time.Time, c, t stats.Arm) (readout.Point, bool) {
		r, err := stats.Compare(m.Kind, c, t, opt)
		if err != nil {
			return readout.Point{}, false
		}
		// Six significant digits: the points are drawn, not decided on,
		// and a readout carries many.
		p := readout.Point{Day: day, Through: through, Units: int64(c.N + t.N), Control: sig(r.Control.Mean), Treatment: sig(r.Treatment.Mean),
			AbsEffect: sig(r.AbsEffect), CI: readout.Interval{sig(r.AbsCI.Lo), sig(r.AbsCI.Hi)}}
		if r.RelDefined {
			p.RelEffect, p.RelCI = ptr(sig(r.RelEffect)), &readout.Interval{sig(r.RelCI.Lo), sig(r.RelCI.Hi)}
		}
		return p, true
	}
	s := &readout.Series{Cumulative: []readout.Point{}, SinceExposure: []readout.Point{}}
	ctl, trt := mt.Cumulative[exp.Control], mt.Cumulative[variant]
	for i := range min(len(ctl), len(trt), len(ts.Days)) {
		through := ts.Through[i].UTC()
		if p, ok := point(ts.Days[i], &through, ctl[i], trt[i]); ok {
			s.Cumulative = append(s.Cumulative, p)
		}
	}
	ctl, trt = mt.SinceExposure[exp.Control], mt.SinceExposure[variant]
	for k := range min(len(ctl), len(trt)) {
		if p, ok := point(k, nil, ctl[k], trt[k]); ok {
			s.SinceExposure = append(s.SinceExposure, p)
		}
	}
	s.Cumulative, s.SinceExposure = thin(s.Cumulative, points), thin(s.SinceExposure, points)

	sign := 1.0
	if m.Direction == config.Decrease {
		sign = -1
	}
	c, t := mt.Novelty[exp.Control], mt.Novelty[variant]
	n := &readout.Novelty{Status: readout.NoveltyNotEnoughData, Split: short(ts.Split), Units: int64(c.N + t.N)}
	if min(c.N, t.N) < MinNoveltyUnits {
		n.Why = "fewer than 100 units per arm have their whole attribution window observed"
		return s, n
	}
	seq := opt
	seq.Sequential = true
	ch, err := stats.CompareChange(m.Kind, c, t, seq)
	if err != nil {
		n.Why = err.Error()
		return s, n
	}
	effect := func(r stats.Result) *readout.Effect {
		ci := readout.Interval{r.RelCI.Lo, r.RelCI.Hi}
		return &readout.Effect{RelEffect: r.RelEffect, RelCI: ci, Better: sign*ci[0] > 0 && sign*ci[1] > 0}
	}
	if !ch.Early.RelDefined || !ch.Late.RelDefined {
		n.Why = "the control's mean is 0 in a part of the window"
		return s, n
	}
	n.Early, n.Late = effect(ch.Early), effect(ch.Late)
	n.Change, n.ChangeCI, n.PValue = &ch.Ratio, &readout.Interval{ch.CI.Lo, ch.CI.Hi}, &ch.PValue
	n.Status = readout.NoveltyStable
	if ch.Significant {
		// The lift moved towards none (or past it) from where it began:
		// decaying; away from none in its first direction: growing.
		if math.Log1p(ch.Ratio)*ch.LogEarly < 0 {
			n.Status = readout.NoveltyDecaying
		} else {
			n.Status = readout.NoveltyGrowing
		}
	}
	return s, n
}

// short writes a duration the way definitions do, days first: "7d",
// "3d12h", "12h", "90m".
func short(d time.Duration) string {
	var b strings.Builder
	for _, u := range []struct {
		unit time.Duration
		name string
	}{{24 * time.Hour, "d"}, {time.Hour, "h"}, {time.Minute, "m"}, {time.Second, "s"}} {
		if n := d / u.unit; n > 0 {
			b.WriteString(strconv.FormatInt(int64(n), 10) + u.name)
			d -= n * u.unit
		}
	}
	if b.Len() == 0 {
		return d.String()
	}
	return b.String()
}

// thin keeps at most n of points, evenly spread, the first and the last
// among them.
func thin(points []readout.Point, n int) []readout.Point {
	if len(points) <= n || n < 2 {
		return points
	}
	out := make([]readout.Point, 0, n)
	for i := range n {
		out = append(out, points[i*(len(points)-1)/(n-1)])
	}
	return out
}

// sig rounds x to 6 significant digits.
func sig(x float64) float64 {
	if x == 0 || math.IsNaN(x) || math.IsInf(x, 0) {
		return x
	}
	v, _ := strconv.ParseFloat(strconv.FormatFloat(x, 'g', 6, 64), 64)
	return v
}

func ptr[T any](v T) *T { return &v }
