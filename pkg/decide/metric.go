package decide

import (
	"errors"
	"time"

	"fmt"
	"math"

	"github.com/verdictlabs/verdict/pkg/config"
	"github.com/verdictlabs/verdict/pkg/readout"
	"github.com/verdictlabs/verdict/pkg/stats"
)

// metric is one metric's comparison read against the rules: which way is
// good, whether the interval shows it better or worse, and for guardrails
// where it stands against the margin.
type metric struct {
	key  string
	role readout.Role
	kind stats.Kind
	// A quantile metric's level and over what.
	quantile float64
	level    config.Level
	sign     float64 // +1 when higher is better, −1 when lower is better
	margin   float64 // guardrails: relative margin, ≥ 0

	ok  bool   // res is usable; otherwise why says what went wrong
	why string // for an unavailable metric
	res stats.Result
	// cuped is what variance reduction did to res (nil: none), lookback
	// the metric's.
	cuped    *stats.CUPED
	lookback time.Duration
	bayes    *stats.Posterior // the Bayesian engine's relative posterior
	series   *readout.Series
	novelty  *readout.Novelty

	better, worse bool // the whole CI on the good / bad side of 0

	// Guardrails only.
	absMargin   float64 // margin·|control mean|
	nonInferior bool    // the whole CI on the good side of the margin
	beyond      bool    // the whole CI on the bad side of the margin: harm
}

// role is a metric's place in the definition.
type role struct {
	role   readout.Role
	margin float64
}

// roles lists the definition's metrics in readout order (primary, secondary,
// guardrail, each in definition order), each once: a key named twice keeps
// its first role in that order.
func roles(e config.Experiment) ([]string, map[string]role) {
	var keys []string
	by := make(map[string]role)
	add := func(key string, r role) {
		if _, dup := by[key]; !dup {
			keys = append(keys, key)
			by[key] = r
		}
	}
	for _, k := range e.Primary {
		add(k, role{role: readout.Primary})
	}
	for _, k := range e.Secondary {
		add(k, role{role: readout.Secondary})
	}
	for _, g := range e.Guardrails {
		m := g.Margin
		if !(m >= 0) || math.IsInf(m, 1) { // NaN, negative or infinite: no slack
			m = 0
		}
		add(g.Metric, role{role: readout.Guardrail, margin: m})
	}
	return keys, by
}

// metrics reads the comparisons of the metrics with the given roles, in the
// definition's order; metrics without a comparison are unavailable.
func metrics(keys []string, by map[string]role, cs []Comparison, want ...readout.Role) []*metric {
	found := make(map[string]Comparison, len(cs))
	for _, c := range cs {
		if _, dup := found[c.Metric.Key]; !dup {
			found[c.Metric.Key] = c
		}
	}
	var out []*metric
	for _, k := range keys {
		r := by[k]
		if !hasRole(r.role, want) {
			continue
		}
		c, ok := found[k]
		if !ok {
			out = append(out, &metric{key: k, role: r.role, sign: 1, margin: r.margin, why: "no data was computed for it"})
			continue
		}
		out = append(out, read(c, r))
	}
	return out
}

func hasRole(r readout.Role, want []readout.Role) bool {
	for _, w := range want {
		if r == w {
			return true
		}
	}
	return false
}

// onlyNovelty: a better metric whose lift is decaying and is not better
// over the late part of each unit's window: what it won is novelty that
// wears off.
func (m *metric) onlyNovelty() bool {
	n := m.novelty
	return m.better && n != nil && n.Status == readout.NoveltyDecaying && (n.Late == nil || !n.Late.Better)
}

// eventsOf names the events a metric counts, for people.
func eventsOf(m config.Metric) string {
	if m.Kind == stats.Ratio && m.Numerator != nil {
		return m.Numerator.Event + " events"
	}
	return m.Event + " events"
}

// read applies the definitions of DESIGN.md to one comparison.
func read(c Comparison, r role) *metric {
	m := &metric{key: c.Metric.Key, role: r.role, kind: c.Metric.Kind, sign: 1, margin: r.margin, quantile: c.Metric.Quantile, level: c.Metric.Level}
	if c.Metric.Direction == config.Decrease {
		m.sign = -1
	}
	if c.Err != nil {
		m.why = c.Err.Error()
		if errors.Is(c.Err, stats.ErrNoVariance) && c.Metric.Kind != stats.Quantile {
			// The engine's words ("standard error 0") mean, to people,
			// that nothing has happened yet.
			m.why = "every unit has the same value so far (no " + eventsOf(c.Metric) + " yet)"
		}
		return m
	}
	if why := unusable(c.Result); why != "" {
		m.why = why
		return m
	}
	m.ok, m.res = true, c.Result
	m.cuped, m.lookback, m.bayes = c.CUPED, c.Metric.CUPEDLookback(), c.Bayes
	m.series, m.novelty = c.Series, c.Novelty
	ci := c.Result.AbsCI
	// Significance is read from the interval, as stats does (Excludes):
	// an interval that touches 0 shows nothing.
	if m.sign > 0 {
		m.better, m.worse = ci.Lo > 0, ci.Hi < 0
	} else {
		m.better, m.worse = ci.Hi < 0, ci.Lo > 0
	}
	if m.role == readout.Guardrail {
		m.absMargin = m.margin * math.Abs(c.Result.Control.Mean)
		if math.IsInf(m.absMargin, 0) {
			m.absMargin = math.MaxFloat64
		}
		// Increase metric: bound −A, good side above it. Decrease metric:
		// bound +A, good side below it. Strict on both sides, so an interval
		// that ends exactly on the bound is neither non-inferior nor harmed.
		if m.sign > 0 {
			m.nonInferior, m.beyond = ci.Lo > -m.absMargin, ci.Hi < -m.absMargin
		} else {
			m.nonInferior, m.beyond = ci.Hi < m.absMargin, ci.Lo > m.absMargin
		}
	}
	return m
}

// unusable says why a result cannot be read, or "" when it can. stats never
// returns such results; a hand-made or corrupted one must not reach the
// readout as NaN.
func unusable(r stats.Result) string {
	if !finite(r.Control.N, r.Control.Mean, r.Control.Var, r.Treatment.N, r.Treatment.Mean, r.Treatment.Var,
		r.AbsEffect, r.AbsCI.Lo, r.AbsCI.Hi, r.SE, r.PValue) {
		return "its statistics are not finite numbers"
	}
	if r.RelDefined && !finite(r.RelEffect, r.RelCI.Lo, r.RelCI.Hi, r.RelSE) {
		return "its relative statistics are not finite numbers"
	}
	if r.Control.N < 0 || r.Treatment.N < 0 {
		return "it has a negative number of units"
	}
	if !(r.PValue >= 0 && r.PValue <= 1) {
		return fmt.Sprintf("its p-value %g is not in [0, 1]", r.PValue)
	}
	if r.AbsCI.Lo > r.AbsCI.Hi {
		return "its interval is upside down"
	}
	return ""
}

// out is the metric as the readout shows it; m must be ok.
func (m *metric) out() readout.Metric {
	r := m.res
	o := readout.Metric{
		Metric:      m.key,
		Role:        m.role,
		Direction:   string(config.Increase),
		Control:     readout.Estimate{N: r.Control.N, Mean: r.Control.Mean},
		Treatment:   readout.Estimate{N: r.Treatment.N, Mean: r.Treatment.Mean},
		AbsEffect:   r.AbsEffect,
		CI:          readout.Interval{r.AbsCI.Lo, r.AbsCI.Hi},
		PValue:      r.PValue,
		Significant: r.AbsCI.Excludes(0),
		Outcome:     m.outcome(),
	}
	if m.kind.Valid() || m.kind == stats.Quantile {
		o.Kind = string(m.kind)
	}
	if m.kind == stats.Quantile {
		o.Quantile, o.Level = ptr(m.quantile), string(m.level)
	}
	if m.sign < 0 {
		o.Direction = string(config.Decrease)
	}
	o.RelEffect, o.RelCI = rel(r)
	if cu := m.cuped; cu != nil {
		o.CUPED = &readout.CUPED{Lookback: config.Duration(m.lookback).String(), Applied: cu.Applied, Theta: cu.Theta, VarianceReduction: cu.VarianceReduction}
		if cu.Applied {
			o.Control.Mean, o.Treatment.Mean = cu.Control.Mean, cu.Treatment.Mean
		}
	}
	if b := m.bayes; b != nil {
		o.ChanceToWin, o.Risk = ptr(b.ChanceToWin), &[2]float64{b.Risk[0], b.Risk[1]}
	}
	o.Series, o.Novelty = m.series, m.novelty
	if m.role == readout.Guardrail {
		o.Margin, o.AbsMargin = ptr(m.margin), ptr(m.absMargin)
		o.NonInferior, o.BeyondMargin = ptr(m.nonInferior), ptr(m.beyond)
	}
	return o
}

func (m *metric) outcome() readout.Outcome {
	switch {
	case m.better:
		return readout.Better
	case m.worse:
		return readout.Worse
	}
	return readout.Inconclusive
}

// rel returns the relative effect and interval, nil when undefined.
func rel(r stats.Result) (*float64, *readout.Interval) {
	if !r.RelDefined {
		return nil, nil
	}
	return ptr(r.RelEffect), &readout.Interval{r.RelCI.Lo, r.RelCI.Hi}
}

func ptr[T any](v T) *T { return &v }

func finite(xs ...float64) bool {
	for _, x := range xs {
		if math.IsNaN(x) || math.IsInf(x, 0) {
			return false
		}
	}
	return true
}
