package warehouse

import (
	"context"
	"fmt"
	"math"
	"slices"
	"strings"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2"
	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"

	"github.com/verdictlabs/verdict/pkg/config"
	"github.com/verdictlabs/verdict/pkg/stats"
)

// Day is the step of an experiment's statistics over time.
const Day = 24 * time.Hour

// MaxTimePoints bounds the cumulative points of a TimeStats: a longer
// experiment gets a point every few days (always one for its last day).
const MaxTimePoints = 120

// TimeStats are an experiment's statistics over time, overall (no
// segments), for every metric but quantiles. They are neither adjusted
// by CUPED nor narrowed by earlier looks, and a capped metric is capped
// at its cap as of AsOf on every day: the last cumulative point is the
// readout's unadjusted comparison.
type TimeStats struct {
	AsOf time.Time
	// Through are the ends of the cumulative points: the end of a day
	// since the start (Start + (d+1)·Day, exclusive), and AsOf for the
	// last; Days the day since the start (0 first) of each.
	Through []time.Time
	Days    []int
	// Split is where novelty's early part of a unit's attribution window
	// ends and its late part begins: half the window.
	Split time.Duration
	// Metrics are per metric key.
	Metrics map[string]*MetricTime
}

// MetricTime is one metric's statistics over time, per variant.
type MetricTime struct {
	// Cumulative: the metric's sums as of each point of Through, over the
	// units first exposed before it and their events before it.
	Cumulative map[string][]stats.Arm
	// SinceExposure: per day since exposure k (k·Day to (k+1)·Day after a
	// unit's first exposure, within its attribution window), the sums of
	// the metric over that day alone, of the units for which it is over.
	SinceExposure map[string][]stats.Arm
	// Novelty: per unit whose attribution window is over, its metric in
	// the early and late parts of the window (stats.Change).
	Novelty map[string]stats.ChangeArm
}

const (
	// timelineUnitsSQL is one row per exposed unit: its first exposure
	// and whether it saw one variant.
	timelineUnitsSQL = `SELECT cityHash64(unit_id) AS unit_key, toInt64(min(toUInt64(ts) * 1000 + ts_ms)), min(variant), max(variant)
FROM {db:Identifier}.exposures{local}
WHERE ` + exposuresWhere + `
GROUP BY unit_key`

	// timelineBucketsSQL is, per exposed unit and metric event, the count
	// and sum of its counted events (each event once, in its attribution
	// window, by asOf) per day since the start, day since its first
	// exposure, and part of its window (late: from @split_ms on).
	timelineBucketsSQL = `SELECT unit_key, toUInt32(counted_index) AS event_number, toUInt32(intDiv(counted_ms - @start_ms, 86400000)) AS day,
    toUInt32(intDiv(counted_ms - counted_first_ms, 86400000)) AS since, toUInt8(counted_ms - counted_first_ms >= @split_ms) AS late,
    count(), sum(counted_value)
FROM
(
    SELECT unit_key, event_hash, any(event_index) AS counted_index, any(track_ms) AS counted_ms, any(value) AS counted_value, any(first_ms) AS counted_first_ms
    FROM
    (
        SELECT cityHash64(unit_id) AS unit_key, cityHash64(event_id) AS event_hash,
            toUInt64(ts) * 1000 + ts_ms AS track_ms, indexOf(@events, event) AS event_index, value
        FROM {db:Identifier}.events{local}
        WHERE event IN @event_set
            AND ts >= toDateTime(@start_s) AND ts <= toDateTime(@events_end_s)
            AND seq <= @max_seq
    ) AS track
    ALL INNER JOIN
    (
        SELECT cityHash64(unit_id) AS unit_key, min(toUInt64(ts) * 1000 + ts_ms) AS first_ms
        FROM {db:Identifier}.exposures{local}
        WHERE ` + exposuresWhere + `
        GROUP BY unit_key
    ) AS first_exposures USING unit_key
    WHERE track_ms >= first_ms AND track_ms < first_ms + @window_ms AND track_ms <= @as_of_ms
    GROUP BY unit_key, event_hash
)
GROUP BY unit_key, counted_index, day, since, late`
)

// bucket is one unit's events of one name on one day since the start,
// one day since its exposure, in one part of its window.
type bucket struct {
	event      int // index into the events of the query, from 0
	day, since int
	late       bool
	count      float64
	sum        float64
}

// timelineUnit is one exposed unit as the timeline reads it.
type timelineUnit struct {
	variant int // index into exp.Variants; −1: several, or one not listed
	firstMS int64
	buckets []bucket
}

// TimeStats computes exp's statistics over time as of asOf for each of
// metrics that is not a quantile, from every row landed. It reads every
// unit's events per day (two queries, on every shard of a cluster) and
// sums them in Go.
func (w *Warehouse) TimeStats(ctx context.Context, exp config.Experiment, metrics []config.Metric, asOf time.Time) (TimeStats, error) {
	window := time.Duration(exp.AttributionWindow)
	if window <= 0 {
		return TimeStats{}, fmt.Errorf("time stats of experiment %s: %w: attribution window %v is not positive", exp.Key, ErrBadDefinition, window)
	}
	var events []string
	for _, m := range metrics {
		for _, e := range eventsOf(m) {
			if !slices.Contains(events, e) {
				events = append(events, e)
			}
		}
	}
	end := asOf
	if exp.End != nil && exp.End.Before(end) {
		end = *exp.End
	}
	startMS, endMS, asOfMS := exp.Start.UnixMilli(), end.UnixMilli(), asOf.UnixMilli()
	split := window / 2
	units := map[uint64]*timelineUnit{}
	if startMS >= 0 && endMS >= startMS && len(events) > 0 {
		set := make([]any, len(events))
		for i, e := range events {
			set[i] = e
		}
		params := named(map[string]any{
			"experiment":   exp.Key,
			"start_s":      startMS / 1000,
			"end_s":        endMS / 1000,
			"start_ms":     startMS,
			"end_ms":       endMS,
			"events_end_s": min(asOfMS, endMS+window.Milliseconds()) / 1000,
			"window_ms":    window.Milliseconds(),
			"split_ms":     split.Milliseconds(),
			"as_of_ms":     asOfMS,
			"events":       events,
			"event_set":    clickhouse.GroupSet{Value: set},
			"max_seq":      uint64(math.MaxUint64),
		})
		// Every unit's rows: the range's own filter (exposuresWhere's
		// {units}) is left empty.
		fill := func(sql string) (string, string) {
			return w.rowsSQL(strings.ReplaceAll(sql, "{units}", ""), "", RowFilter{})
		}
		single, shard := fill(timelineUnitsSQL)
		err := w.eachConn(ctx, single, shard, params, func(rows driver.Rows) error {
			for rows.Next() {
				var key uint64
				var first int64
				var lo, hi string
				if err := rows.Scan(&key, &first, &lo, &hi); err != nil {
					return err
				}
				u := &timelineUnit{variant: -1, firstMS: first}
				if lo == hi {
					u.variant = slices.IndexFunc(exp.Variants, func(v config.Variant) bool { return v.Key == lo })
				}
				units[key] = u
			}
			return rows.Err()
		})
		if err != nil {
			return TimeStats{}, fmt.Errorf("time stats of experiment %s: units: %w", exp.Key, err)
		}
		single, shard = fill(timelineBucketsSQL)
		err = w.eachConn(ctx, single, shard, params, func(rows driver.Rows) error {
			for rows.Next() {
				var key uint64
				var event, day, since uint32
				var late uint8
				var count uint64
				var sum float64
				if err := rows.Scan(&key, &event, &day, &since, &late, &count, &sum); err != nil {
					return err
				}
				if u := units[key]; u != nil && event > 0 {
					u.buckets = append(u.buckets, bucket{event: int(event) - 1, day: int(day), since: int(since), late: late == 1, count: float64(count), sum: sum})
				}
			}
			return rows.Err()
		})
		if err != nil {
			return TimeStats{}, fmt.Errorf("time stats of experiment %s: events: %w", exp.Key, err)
		}
	}
	list := make([]*timelineUnit, 0, len(units))
	for _, u := range units {
		list = append(list, u)
	}
	return sumTimeline(exp, metrics, events, list, asOf), nil
}

// eventsOf lists the events a metric's value over time is made of: none
// for a quantile.
func eventsOf(m config.Metric) []string {
	switch m.Kind {
	case stats.Quantile:
		return nil
	case stats.Ratio:
		var out []string
		for _, p := range []*config.Part{m.Numerator, m.Denominator} {
			if p != nil && p.Event != "" {
				out = append(out, p.Event)
			}
		}
		return out
	}
	if m.Event == "" {
		return nil
	}
	return []string{m.Event}
}

// parts says how a metric's x and y are made of the events' counts and
// sums: the index of each one's event (−1: none) and whether it counts.
type parts struct {
	kind           stats.Kind
	xe, ye         int
	xCount, yCount bool
}

func partsOf(m config.Metric, events []string) parts {
	p := parts{kind: m.Kind, xe: -1, ye: -1}
	switch m.Kind {
	case stats.Ratio:
		p.xe, p.xCount = slices.Index(events, m.Numerator.Event), m.Numerator.Aggregate == config.Count
		p.ye, p.yCount = slices.Index(events, m.Denominator.Event), m.Denominator.Aggregate == config.Count
	case stats.Proportion, stats.Count:
		p.xe, p.xCount = slices.Index(events, m.Event), true
	default:
		p.xe, p.xCount = slices.Index(events, m.Event), m.Aggregate == config.Count
	}
	return p
}

// value is the metric's x and y from the counts and sums of each event.
func (p parts) value(counts, sums []float64) (x, y float64) {
	get := func(e int, count bool) float64 {
		switch {
		case e < 0:
			return 0
		case count:
			return counts[e]
		}
		return sums[e]
	}
	x = get(p.xe, p.xCount)
	if p.kind == stats.Proportion && x > 0 {
		x = 1
	}
	return x, get(p.ye, p.yCount)
}

// sumTimeline turns units' buckets into TimeStats (TimeStats' contract).
// Per unit it sorts the buckets by day since the start, then by day since
// exposure, and walks each once per metric: a unit costs its buckets plus
// the days, not their product.
func sumTimeline(exp config.Experiment, metrics []config.Metric, events []string, units []*timelineUnit, asOf time.Time) TimeStats {
	window := time.Duration(exp.AttributionWindow)
	out := TimeStats{AsOf: asOf, Split: window / 2, Metrics: map[string]*MetricTime{}}
	startMS, asOfMS := exp.Start.UnixMilli(), asOf.UnixMilli()
	dayMS, windowMS := Day.Milliseconds(), window.Milliseconds()
	if asOfMS < startMS {
		return out
	}
	// The cumulative points: every stride-th day, and the last.
	last := int((asOfMS - startMS) / dayMS)
	stride := (last + MaxTimePoints) / MaxTimePoints
	for d := last % stride; d <= last; d += stride {
		out.Days = append(out.Days, d)
		through := exp.Start.Add(time.Duration(d+1) * Day)
		if d == last {
			through = asOf
		}
		out.Through = append(out.Through, through)
	}
	// The days since exposure of a window: the last may be short.
	sinceDays := int((windowMS + dayMS - 1) / dayMS)

	counts, sums := make([]float64, len(events)), make([]float64, len(events))
	reset := func() { clear(counts); clear(sums) }
	put := func(b bucket) { counts[b.event] += b.count; sums[b.event] += b.sum }
	var byDay, bySince []bucket
	type metric struct {
		key   string
		parts parts
		cap   float64
		mt    *MetricTime
	}
	var ms []metric
	for _, m := range metrics {
		if len(eventsOf(m)) == 0 {
			continue
		}
		mt := &MetricTime{Cumulative: map[string][]stats.Arm{}, SinceExposure: map[string][]stats.Arm{}, Novelty: map[string]stats.ChangeArm{}}
		for _, v := range exp.Variants {
			mt.Cumulative[v.Key] = make([]stats.Arm, len(out.Days))
			mt.SinceExposure[v.Key] = make([]stats.Arm, sinceDays)
		}
		ms = append(ms, metric{key: m.Key, parts: partsOf(m, events), cap: math.Inf(1), mt: mt})
		out.Metrics[m.Key] = mt
		// A cap is quantileExact of the included units' non-zero values,
		// as the readout takes it.
		if m.Cap == nil || m.Kind == stats.Proportion {
			continue
		}
		var nonZero []float64
		for _, u := range units {
			if u.variant < 0 {
				continue
			}
			reset()
			for _, b := range u.buckets {
				put(b)
			}
			if x, _ := ms[len(ms)-1].parts.value(counts, sums); x != 0 {
				nonZero = append(nonZero, x)
			}
		}
		if len(nonZero) > 0 {
			slices.Sort(nonZero)
			ms[len(ms)-1].cap = nonZero[stats.QuantileIndex(m.Cap.Percentile, len(nonZero))]
		}
	}
	for _, u := range units {
		if u.variant < 0 {
			continue
		}
		v := exp.Variants[u.variant].Key
		firstDay := int((u.firstMS - startMS) / dayMS)
		byDay = append(byDay[:0], u.buckets...)
		slices.SortFunc(byDay, func(a, b bucket) int { return a.day - b.day })
		bySince = append(bySince[:0], u.buckets...)
		slices.SortFunc(bySince, func(a, b bucket) int { return a.since - b.since })
		// The days since exposure that are over for this unit.
		over := 0
		for over < sinceDays && u.firstMS+min(int64(over+1)*dayMS, windowMS) <= asOfMS {
			over++
		}
		whole := u.firstMS+windowMS <= asOfMS
		for _, m := range ms {
			capped := func(x, y float64) (float64, float64) { return min(x, m.cap), y }
			reset()
			cum, j := m.mt.Cumulative[v], 0
			x, y := capped(m.parts.value(counts, sums))
			for i, d := range out.Days {
				if j < len(byDay) && byDay[j].day <= d {
					// The value changes only on a day with events.
					for ; j < len(byDay) && byDay[j].day <= d; j++ {
						put(byDay[j])
					}
					x, y = capped(m.parts.value(counts, sums))
				}
				if firstDay <= d {
					cum[i].Add(x, y)
				}
			}
			since, j := m.mt.SinceExposure[v], 0
			for k := range over {
				reset()
				for ; j < len(bySince) && bySince[j].since <= k; j++ {
					if bySince[j].since == k {
						put(bySince[j])
					}
				}
				x, y := capped(m.parts.value(counts, sums))
				since[k].Add(x, y)
			}
			if whole {
				var ex, ey, lx, ly float64
				for _, late := range []bool{false, true} {
					reset()
					for _, b := range u.buckets {
						if b.late == late {
							put(b)
						}
					}
					x, y := capped(m.parts.value(counts, sums))
					if late {
						lx, ly = x, y
					} else {
						ex, ey = x, y
					}
				}
				if m.parts.kind != stats.Ratio {
					ey, ly = 1, 1
				}
				c := m.mt.Novelty[v]
				c.Add(ex, ey, lx, ly)
				m.mt.Novelty[v] = c
			}
		}
	}
	return out
}
