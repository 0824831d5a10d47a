package decide

import (
	"cmp"
	"math"
	"slices"

	"github.com/verdictlabs/verdict/pkg/readout"
	"github.com/verdictlabs/verdict/pkg/stats"
)

// MaxMultipleExposure is the share of exposed units that may have seen more
// than one variant before an experiment is invalid (rule 1): above 1%.
const MaxMultipleExposure = 0.01

// MaxUnknownVariant is the share of exposed units that may have been
// exposed to a variant the definition does not list before an experiment
// is invalid (rule 1): above 1%.
const MaxUnknownVariant = 0.01

// Verdict applies DESIGN.md's decision rules to an experiment and returns its
// readout: everything but Version and ComputedAt, which the publisher stamps.
// It is one look's readout: its Candidate is its own label; Latch turns
// looks into decisions that hold.
// It is a pure function of its input (the clock is in.Now) and never panics;
// see the package documentation for the rules as implemented.
func Verdict(in Input) readout.Readout {
	x := newExperiment(in)
	x.health()
	x.gate()
	x.plan()
	x.judge()
	r := x.readout()
	r.Candidate, r.CandidateStatus = r.Label, r.Status
	return r
}

// rule is one of DESIGN's decision rules (docs/design.md "The rules"),
// in the order they are tried; its number is the design's.
type rule int

const (
	ruleInvalid   rule = iota + 1 // 1: the data cannot be trusted
	ruleHarm                      // 2: a guardrail beyond its margin: pivot
	rulePersevere                 // 3: every primary wins, every guardrail holds
	ruleSalvage                   // 4: no win, but a segment or secondary metric to keep
	ruleStop                      // 5: planned sample, end date or futility: pivot
	ruleCollect                   // 6: none of the above yet
)

// experiment is the state of one Verdict call.
type experiment struct {
	in  Input
	opt options

	keys  []string
	roles map[string]role
	arms  []*arm

	// Health (rule 1).
	srm          readout.SRMStatus
	srmP         float64
	counts       []readout.VariantCount
	units        int64 // all variants of the definition
	multiRate    float64
	unknownRate  float64 // share of exposed units of variants not in the definition
	srmInvalid   bool
	contaminated bool
	unknown      bool // unknownRate above MaxUnknownVariant
	// blockers say why no label can be given yet although the data is
	// trustworthy: a variant below min_units, or a primary metric without
	// a result in an arm. Any blocker keeps every arm collecting.
	blockers      []string
	worstVariant  int     // index in counts of the variant furthest from its share
	minWeight     float64 // smallest weight > 0, 0 when none
	weightSum     float64 // sum of the weights > 0
	targetPerArm  float64 // planned units per variant, 0 when unknown
	power         float64 // −1 when unknown
	unitsPerDay   float64 // −1 when unknown
	segmentFamily int     // number of tests in the segment Holm family
	secondaryFam  int     // number of tests in the secondary Holm family
}

// options are the experiment's statistical settings, with DESIGN.md's
// defaults where the definition has none or nonsense.
type options struct {
	alpha, power, mde, tuning float64
	sequential                bool
	bayesian                  bool // the credible intervals of the Bayesian engine
}

// arm is one treatment arm's evaluation.
type arm struct {
	variant  string
	metrics  []*metric // primary, secondary, guardrail
	segments []*segment

	label readout.Label
	rule  rule // the rule that labelled it

	planned, ended, futile bool // rule 5's triggers
	// promising lists segment and secondary results that may yet be worth
	// keeping but are not wins yet (see experiment.promising): they hold an
	// early futility stop (see stopped).
	promising     []*metricAt
	segmentWins   []win
	secondaryWins []win

	findings []string // what happened, how sure
	next     string   // what to do
}

// segment is one segment value's primary and guardrail metrics.
type segment struct {
	dim, value string
	metrics    []*metric
	harmed     bool // a guardrail beyond its margin in this segment
}

// win is a salvage candidate that survived Holm.
type win struct {
	m        *metric
	seg      *segment // nil for a secondary metric
	adjusted float64
}

func newExperiment(in Input) *experiment {
	e := in.Experiment
	x := &experiment{in: in, power: -1, unitsPerDay: -1}
	x.opt = options{alpha: e.Alpha, power: e.Power, mde: e.MDE, tuning: e.Tuning, sequential: e.Sequential && !e.Bayesian(), bayesian: e.Bayesian()}
	if !(x.opt.alpha > 0 && x.opt.alpha < 1) {
		x.opt.alpha = stats.DefaultAlpha
	}
	if !(x.opt.power > x.opt.alpha && x.opt.power < 1) {
		x.opt.power = 0.8
	}
	if !(x.opt.mde >= 0) || math.IsInf(x.opt.mde, 0) {
		x.opt.mde = 0
	}
	if !(x.opt.tuning > 0) || math.IsInf(x.opt.tuning, 0) {
		x.opt.tuning = stats.DefaultTuning
	}
	x.keys, x.roles = roles(e)
	for _, a := range in.Arms {
		ar := &arm{variant: a.Variant}
		ar.metrics = metrics(x.keys, x.roles, a.Metrics, readout.Primary, readout.Secondary, readout.Guardrail)
		for _, s := range a.Segments {
			sg := &segment{dim: s.Dimension, value: s.Value}
			sg.metrics = metrics(x.keys, x.roles, s.Metrics, readout.Primary, readout.Guardrail)
			for _, m := range sg.metrics {
				sg.harmed = sg.harmed || m.beyond
			}
			ar.segments = append(ar.segments, sg)
		}
		x.arms = append(x.arms, ar)
	}
	return x
}

func (a *arm) with(r readout.Role) []*metric {
	var out []*metric
	for _, m := range a.metrics {
		if m.role == r {
			out = append(out, m)
		}
	}
	return out
}

// primaryWin: rule 3's first half. An experiment without primary metrics
// never wins.
func (a *arm) primaryWin() bool {
	ps := a.with(readout.Primary)
	for _, m := range ps {
		if !m.better {
			return false
		}
	}
	return len(ps) > 0
}

// novelty lists the arm's primary wins that are only novelty (see
// metric.onlyNovelty): rule 3 does not persevere on them.
func (a *arm) novelty() []*metric {
	var out []*metric
	for _, m := range a.with(readout.Primary) {
		if m.onlyNovelty() {
			out = append(out, m)
		}
	}
	return out
}

// guardrailsHold: rule 3's second half. An unavailable guardrail does not
// hold: non-inferiority must be shown.
func (a *arm) guardrailsHold() bool {
	for _, m := range a.with(readout.Guardrail) {
		if !m.nonInferior {
			return false
		}
	}
	return true
}

func (a *arm) harmed() []*metric {
	var out []*metric
	for _, m := range a.with(readout.Guardrail) {
		if m.beyond {
			out = append(out, m)
		}
	}
	return out
}

// promising: a segment's or secondary metric's result that is not (yet) a
// salvage win but may become one — significant in the good direction
// before Holm's correction, or with a point estimate at least the MDE in
// the good direction. In a stream, a segment with a real win of that size
// shows it long before it is significant after correction, while the
// overall primary, diluted, is already futile.
func (x *experiment) promising(m *metric) bool {
	if m.better {
		return true
	}
	c := math.Abs(m.res.Control.Mean)
	return x.opt.mde > 0 && c > 0 && m.res.AbsEffect*m.sign >= x.opt.mde*c
}

// metricAt is a metric in a segment (nil for the whole arm).
type metricAt struct {
	m   *metric
	seg *segment
}

// stopped: rule 5's stopping condition holds for the arm (planned sample,
// end date or futility). Futility stops early, before the planned sample,
// so it waits while a segment or a secondary metric is promising (see
// experiment.promising), even when the primary is
// significantly worse: a pivot decided now could not become the salvage
// that more data may show, since a decision is final (see Latch). The
// planned sample and the end date still stop it.
func (a *arm) stopped() bool {
	if a.planned || a.ended {
		return true
	}
	if !a.futile {
		return false
	}
	return len(a.promising) == 0 || len(a.segmentWins)+len(a.secondaryWins) > 0
}

func (a *arm) primaryWorse() bool {
	for _, m := range a.with(readout.Primary) {
		if m.worse {
			return true
		}
	}
	return false
}

// settled: the primary is established not to be a win, as rule 4 requires:
// the arm has stopped, or a primary is significantly worse in its good
// direction. (A worse primary is always futile too, since its interval ends
// below 0 ≤ MDE·|c|; it is named for the rule's sake.) Before that a
// significant segment or secondary metric is only an early sign, and the arm
// keeps collecting: salvaging on it would flip to persevere if the primary
// then won.
func (a *arm) settled() bool {
	return a.stopped() || (a.primaryWorse() && len(a.promising) == 0)
}

// judge labels every arm by the rules, in order.
func (x *experiment) judge() {
	x.salvageCandidates()
	for _, a := range x.arms {
		x.judgeArm(a)
	}
}

func (x *experiment) judgeArm(a *arm) {
	control := x.in.Experiment.Control
	// Rule 5's triggers, computed for every arm so that reasons can say how
	// far along an arm decided by an earlier rule was.
	a.planned = x.targetPerArm > 0 &&
		float64(x.unitsOf(control)) >= x.targetPerArm && float64(x.unitsOf(a.variant)) >= x.targetPerArm
	a.ended = x.in.Experiment.End != nil && !x.in.Now.Before(*x.in.Experiment.End)
	for _, m := range a.with(readout.Primary) {
		a.futile = a.futile || x.futile(m)
	}
	switch {
	case x.invalid():
		a.rule = ruleInvalid
	case len(x.blockers) > 0:
		a.rule = ruleCollect
	case len(a.harmed()) > 0:
		a.label, a.rule = readout.Pivot, ruleHarm
	case a.primaryWin() && a.guardrailsHold() && len(a.novelty()) == 0:
		a.label, a.rule = readout.Persevere, rulePersevere
	case !a.primaryWin() && a.settled() && len(a.segmentWins)+len(a.secondaryWins) > 0:
		a.label, a.rule = readout.Salvage, ruleSalvage
	case a.stopped():
		a.label, a.rule = readout.Pivot, ruleStop
	default:
		a.rule = ruleCollect
	}
	x.explain(a)
}

// futile: the primary's whole interval lies short of the MDE in the good
// direction, so the effect the test was designed to detect is ruled out. A
// primary that is a significant win is never futile (it can still be a win
// smaller than the MDE, and rule 3 then keeps it).
func (x *experiment) futile(m *metric) bool {
	if !m.ok || m.better {
		return false
	}
	bound := x.opt.mde * math.Abs(m.res.Control.Mean)
	if m.sign > 0 {
		return m.res.AbsCI.Hi < bound
	}
	return m.res.AbsCI.Lo > -bound
}

// salvageCandidates runs the two Holm families of rule 4 over every arm:
// the primary metrics in every segment value, and the secondary metrics. A
// candidate wins when its adjusted p-value is below alpha, its effect is in
// the good direction, and (for a segment) no guardrail is harmed in that
// segment. Arm-level guardrail harm is rule 2, checked first.
func (x *experiment) salvageCandidates() {
	var segs []win
	var secs []win
	for _, a := range x.arms {
		for _, s := range a.segments {
			for _, m := range s.metrics {
				if m.ok && m.role == readout.Primary {
					segs = append(segs, win{m: m, seg: s})
				}
			}
		}
		for _, m := range a.with(readout.Secondary) {
			if m.ok {
				secs = append(secs, win{m: m})
			}
		}
	}
	x.segmentFamily, x.secondaryFam = len(segs), len(secs)
	holm(segs)
	holm(secs)
	i, j := 0, 0
	for _, a := range x.arms {
		for _, s := range a.segments {
			for _, m := range s.metrics {
				if !m.ok || m.role != readout.Primary {
					continue
				}
				w := segs[i]
				i++
				switch {
				case s.harmed:
				case s.value == readout.OtherSegment: // tested, but names no segment to keep
				case w.adjusted < x.opt.alpha && m.res.AbsEffect*m.sign > 0:
					a.segmentWins = append(a.segmentWins, w)
				case x.promising(m):
					a.promising = append(a.promising, &metricAt{m: m, seg: s})
				}
			}
		}
		for _, m := range a.with(readout.Secondary) {
			if !m.ok {
				continue
			}
			w := secs[j]
			j++
			switch {
			case w.adjusted < x.opt.alpha && m.res.AbsEffect*m.sign > 0:
				a.secondaryWins = append(a.secondaryWins, w)
			case x.promising(m):
				a.promising = append(a.promising, &metricAt{m: m})
			}
		}
	}
	for _, a := range x.arms {
		// Strongest evidence first.
		slices.SortStableFunc(a.segmentWins, func(p, q win) int { return cmp.Compare(p.adjusted, q.adjusted) })
		slices.SortStableFunc(a.secondaryWins, func(p, q win) int { return cmp.Compare(p.adjusted, q.adjusted) })
	}
}

// holm sets the Holm-adjusted p-value of every candidate.
func holm(ws []win) {
	if len(ws) == 0 {
		return
	}
	p := make([]float64, len(ws))
	for i, w := range ws {
		p[i] = w.m.res.PValue
	}
	adj, err := stats.Holm(p)
	if err != nil { // impossible: read() keeps only p in [0, 1]
		adj = make([]float64, len(ws))
		for i := range adj {
			adj[i] = 1
		}
	}
	for i := range ws {
		ws[i].adjusted = adj[i]
	}
}

// rank orders labels for "the experiment's label is the best arm's":
// persevere > salvage > still collecting > pivot. An arm still collecting
// ranks above pivot because it may yet win: the experiment is pivot only
// when every arm is.
func rank(a *arm) int {
	switch a.label {
	case readout.Persevere:
		return 3
	case readout.Salvage:
		return 2
	case readout.Pivot:
		return 0
	}
	return 1
}

// lift is an arm's effect on its first primary metric in the good direction,
// for breaking ties between arms of the same rank: every arm shares the
// control, so absolute effects compare directly.
func lift(a *arm) float64 {
	ps := a.with(readout.Primary)
	if len(ps) == 0 || !ps[0].ok {
		return math.Inf(-1)
	}
	return ps[0].res.AbsEffect * ps[0].sign
}

// ranked returns the arms best first: by rank, then by lift, then in input
// order.
func (x *experiment) ranked() []*arm {
	out := slices.Clone(x.arms)
	slices.SortStableFunc(out, func(p, q *arm) int {
		if c := cmp.Compare(rank(q), rank(p)); c != 0 {
			return c
		}
		return cmp.Compare(lift(q), lift(p))
	})
	return out
}

// invalid: rule 1 holds.
func (x *experiment) invalid() bool { return x.srmInvalid || x.contaminated || x.unknown }

func (x *experiment) unitsOf(variant string) int64 {
	n := x.in.Units[variant]
	if n < 0 {
		return 0
	}
	return n
}
