package decide

import (
	"fmt"
	"math"
	"slices"
	"strconv"
	"strings"

	"github.com/verdictlabs/verdict/pkg/readout"
	"github.com/verdictlabs/verdict/pkg/stats"
)

// Reasons are written for a product manager: what happened, how sure we are
// (the interval, as a share of the control mean), what to do next. Relative
// numbers in the text are the readout's own rel_effect and rel_ci (the same
// fields of stats.Result the readout copies, see rel), rounded by pct, so a
// reader comparing the sentence with the metric's row sees the same numbers.
// Decisions are still made on the absolute interval (see the package
// documentation). When the readout has no relative effect (control mean 0),
// the control mean is negative (rel_effect then has the opposite sign of
// the change, which no sentence can say plainly), or the relative interval
// disagrees with the absolute one about zero, effects are told in the
// metric's own units from abs_effect and ci.

// level is the interval's confidence level, "95%" for alpha 0.05.
func (x *experiment) level() string {
	return strconv.FormatFloat(math.Round((1-x.opt.alpha)*1000)/10, 'f', -1, 64) + "%"
}

// relative reports whether m's effects are told as the readout's rel_effect
// and rel_ci. They are not when the relative interval disagrees with the
// absolute one about zero (with few units the delta-method relative
// interval is the wider): "raised it by 35% (95% interval -3.1% to +74%)"
// would contradict the decision, which the absolute interval made. With
// a negative control mean the relative effect still has the absolute
// one's sign: it is divided by |m_c|.
func relative(m *metric) bool {
	r := m.res
	return r.RelDefined && r.RelCI.Excludes(0) == r.AbsCI.Excludes(0)
}

// told returns the point effect and the interval of m as the text quotes
// them: the readout's rel_effect and rel_ci when relative, else abs_effect
// and ci.
func told(m *metric) (eff, lo, hi float64) {
	r := m.res
	if relative(m) {
		return r.RelEffect, r.RelCI.Lo, r.RelCI.Hi
	}
	return r.AbsEffect, r.AbsCI.Lo, r.AbsCI.Hi
}

// quote formats one of told's numbers, signed. A proportion's absolute
// numbers are differences of shares, told in percentage points: "+2.8
// points", not "+0.028".
func quote(m *metric, v float64) string {
	switch {
	case relative(m):
		return readout.Percent(v)
	case m.kind == stats.Proportion:
		return points(v)
	}
	return readout.Number(v, true)
}

// points formats a difference of shares in percentage points: 0.028 →
// "+2.8 points", 0.01 → "+1 point".
func points(v float64) string {
	n := strings.TrimSuffix(readout.Percent(v), "%")
	if strings.TrimLeft(n, "+-") == "1" {
		return n + " point"
	}
	return n + " points"
}

// effect formats m's effect, signed: "+4.2%".
func effect(m *metric) string {
	e, _, _ := told(m)
	return quote(m, e)
}

// size formats m's effect without its sign: "4.2%".
func size(m *metric) string {
	e, _, _ := told(m)
	return strings.TrimLeft(quote(m, math.Abs(e)), "+")
}

// interval is "95% interval +2.1% to +6.4%".
func (x *experiment) interval(m *metric) string {
	_, lo, hi := told(m)
	return fmt.Sprintf("%s interval %s to %s", x.level(), quote(m, lo), quote(m, hi))
}

// change tells what happened to m, without a final period: "purchase_conversion
// went up by 4.2% (95% interval +2.1% to +6.4%)". notes go inside the
// parentheses.
func (x *experiment) change(m *metric, notes ...string) string {
	if m.sign < 0 {
		notes = append(notes, "lower is better")
	}
	in := x.interval(m)
	for _, n := range notes {
		in += "; " + n
	}
	if m.better || m.worse {
		verb := "went up"
		if m.res.AbsEffect < 0 {
			verb = "went down"
		}
		return fmt.Sprintf("%s %s by %s (%s)", m.key, verb, size(m), in)
	}
	return fmt.Sprintf("%s showed no significant change (%s, %s)", m.key, effect(m), in)
}

// so tells where an inconclusive metric stands so far.
func (x *experiment) so(m *metric) string {
	return fmt.Sprintf("%s is at %s so far (%s)", m.key, effect(m), x.interval(m))
}

func marginText(m *metric) string { return strings.TrimLeft(readout.Percent(m.margin), "+") }

// unmeasured tells why a metric has no result.
func unmeasured(m *metric) string {
	what := m.key
	if m.role == readout.Guardrail {
		what = "Guardrail " + m.key
	}
	return fmt.Sprintf("%s could not be measured: %s.", what, m.why)
}

func upper(s string) string {
	if s == "" {
		return s
	}
	return strings.ToUpper(s[:1]) + s[1:]
}

// ruledOut tells what the data rules out for a primary that did not win:
// effects beyond the edge of its interval in the good direction. ok is false
// when the metric has no result.
func ruledOut(m *metric, named bool) (string, bool) {
	if !m.ok {
		return "", false
	}
	in := ""
	if named {
		in = " in " + m.key
	}
	_, lo, hi := told(m)
	if m.sign > 0 {
		if hi > 0 {
			return fmt.Sprintf("lifts above %s%s are ruled out", quote(m, hi), in), true
		}
		return fmt.Sprintf("any lift%s is ruled out", in), true
	}
	if lo < 0 {
		return fmt.Sprintf("reductions larger than %s%s are ruled out", strings.TrimLeft(quote(m, -lo), "+"), in), true
	}
	return fmt.Sprintf("any reduction%s is ruled out", in), true
}

func (x *experiment) segmentLine(w win) string {
	if x.segmentFamily == 1 {
		return fmt.Sprintf("For %s = %s, %s, with no guardrail harm there.", w.seg.dim, w.seg.value, x.change(w.m, readout.PValue(w.adjusted)))
	}
	return fmt.Sprintf("For %s = %s, %s, still significant after correcting for %d segment comparisons (adjusted %s), with no guardrail harm there.",
		w.seg.dim, w.seg.value, x.change(w.m), x.segmentFamily, readout.PValue(w.adjusted))
}

func (x *experiment) secondaryLine(w win) string {
	if x.secondaryFam == 1 {
		return x.change(w.m, readout.PValue(w.adjusted)) + "."
	}
	return fmt.Sprintf("%s, still significant after correcting for %d secondary-metric comparisons (adjusted %s).",
		x.change(w.m), x.secondaryFam, readout.PValue(w.adjusted))
}

// stopLines say which of rule 5's stopping conditions hold for the arm.
func (x *experiment) stopLines(a *arm) []string {
	var f []string
	if a.planned {
		f = append(f, fmt.Sprintf("The planned sample is reached: %s units per variant.", readout.Count(int64(x.targetPerArm))))
	}
	if a.ended {
		f = append(f, fmt.Sprintf("The planned end date, %s, has passed.", readout.Date(*x.in.Experiment.End)))
	}
	if a.futile && !a.planned && !a.ended {
		for _, m := range a.with(readout.Primary) {
			if !x.futile(m) {
				continue
			}
			if x.opt.mde > 0 {
				f = append(f, fmt.Sprintf("Stopped early: the data already rules out the %s change in %s that the test was designed to detect.", readout.Percent(x.opt.mde*m.sign), m.key))
			} else {
				f = append(f, fmt.Sprintf("Stopped early: %s got significantly worse.", m.key))
			}
		}
	}
	return f
}

// earlySigns mentions the salvage candidates of an arm still collecting:
// rule 4 waits until the primary is settled, so they are not a decision.
func earlySigns(a *arm) string {
	var signs []string
	moved := func(m *metric) string {
		if m.res.AbsEffect < 0 {
			return m.key + " is down " + size(m)
		}
		return m.key + " is up " + size(m)
	}
	for _, w := range a.segmentWins {
		signs = append(signs, fmt.Sprintf("%s for %s = %s", moved(w.m), w.seg.dim, w.seg.value))
	}
	for _, w := range a.secondaryWins {
		signs = append(signs, moved(w.m))
	}
	if len(signs) == 0 {
		return ""
	}
	return fmt.Sprintf("Early signs, not yet a decision: %s; what is worth keeping is decided once the primary result is settled.", join(signs))
}

// futilityHeld says why an arm whose primary is futile keeps collecting.
func (x *experiment) futilityHeld(a *arm) string {
	var what []string
	for _, p := range a.promising {
		if p.seg != nil {
			what = append(what, fmt.Sprintf("%s for %s = %s", p.m.key, p.seg.dim, p.seg.value))
		} else {
			what = append(what, p.m.key)
		}
	}
	verb := "looks"
	if len(what) > 1 {
		verb = "look"
	}
	return fmt.Sprintf("The change the test was designed to detect is already ruled out overall, but %s %s promising (an effect of that size, or significant before correcting for the other comparisons, not yet a win after): the experiment runs on, to its planned sample at most, to see whether that holds.", join(what), verb)
}

// findings are what an arm's reasons say happened, and how sure, one
// sentence each.
type findings []string

func (f *findings) add(format string, args ...any) { *f = append(*f, fmt.Sprintf(format, args...)) }

// explain writes an arm's findings and next step for the rule that labelled
// it.
func (x *experiment) explain(a *arm) {
	var f findings
	switch a.rule {
	case ruleInvalid:
		f = x.explainInvalid(a)
	case ruleHarm:
		f = x.explainHarm(a)
	case rulePersevere:
		f = x.explainPersevere(a)
	case ruleSalvage:
		f = x.explainSalvage(a)
	case ruleStop:
		f = x.explainStop(a)
	case ruleCollect:
		f = x.explainCollect(a)
	}
	switch {
	case a.rule >= ruleHarm && a.rule <= ruleSalvage && x.opt.bayesian && !a.planned && !a.ended:
		f.add("Caution: this experiment uses the Bayesian engine, whose chance to win is not corrected for looking often; before the planned sample this result may change.")
	case a.rule >= ruleHarm && a.rule <= ruleSalvage && !x.opt.sequential && !a.planned && !a.ended:
		f.add("Caution: this experiment uses a fixed-horizon test, which is only reliable once the planned sample is reached; this early result may change.")
	}
	a.findings = f
}

// explainInvalid is the findings of rule 1: the data cannot be trusted; it sets a.next.
func (x *experiment) explainInvalid(a *arm) []string {
	var f findings
	f.add("Not judged: the data cannot be trusted (see the experiment's health).")
	return f
}

// explainHarm is the findings of rule 2: a guardrail beyond its margin; it sets a.next.
func (x *experiment) explainHarm(a *arm) []string {
	var f findings
	primaries := a.with(readout.Primary)
	var keys []string
	for _, m := range a.harmed() {
		keys = append(keys, m.key)
		if m.margin == 0 {
			f.add("Guardrail %s: it was not allowed to get worse at all.", x.change(m))
		} else {
			f.add("Guardrail %s: worse than its %s margin allows.", x.change(m), marginText(m))
		}
	}
	for _, m := range primaries {
		if m.ok {
			f.add("%s.", x.change(m))
		} else {
			f = append(f, unmeasured(m))
		}
	}
	a.next = fmt.Sprintf("Next: do not ship %s; find out why %s got worse and fix that before testing again.", a.variant, join(keys))
	return f
}

// explainPersevere is the findings of rule 3: the win, and what to expect of it; it sets a.next.
func (x *experiment) explainPersevere(a *arm) []string {
	var f findings
	primaries := a.with(readout.Primary)
	guardrails := a.with(readout.Guardrail)
	for _, m := range primaries {
		f.add("%s.", x.change(m))
		if s := noveltyLine(m); s != "" {
			f = append(f, s)
		}
	}
	for _, m := range guardrails {
		f.add("Guardrail %s stayed within its %s margin (%s, %s).", m.key, marginText(m), effect(m), x.interval(m))
	}
	a.next = fmt.Sprintf("Next: roll out %s to everyone.", a.variant)
	return f
}

// explainSalvage is the findings of rule 4: what to keep, and why; it sets a.next.
func (x *experiment) explainSalvage(a *arm) []string {
	var f findings
	primaries := a.with(readout.Primary)
	for _, m := range primaries {
		if m.ok {
			f.add("Overall, %s.", x.change(m))
		} else {
			f = append(f, unmeasured(m))
		}
	}
	var where, what []string
	for _, w := range a.segmentWins {
		f = append(f, x.segmentLine(w))
		seg := w.seg.dim + " = " + w.seg.value
		if !slices.Contains(where, seg) {
			where = append(where, seg)
		}
	}
	for _, w := range a.secondaryWins {
		f = append(f, x.secondaryLine(w))
		what = append(what, w.m.key)
	}
	var next []string
	if len(where) > 0 {
		next = append(next, fmt.Sprintf("keep %s for %s only and confirm it with a follow-up experiment there", a.variant, join(where)))
	}
	if len(what) > 0 {
		next = append(next, fmt.Sprintf("keep the part of %s that moved %s and test it again with that as the primary metric", a.variant, join(what)))
	}
	a.next = "Next: " + strings.Join(next, "; also ") + "."
	f = append(f, x.stopLines(a)...)
	return f
}

// explainStop is the findings of rule 5: why it stopped, and what the data rules out; it sets a.next.
func (x *experiment) explainStop(a *arm) []string {
	var f findings
	primaries := a.with(readout.Primary)
	guardrails := a.with(readout.Guardrail)
	won := a.primaryWin()
	for _, m := range primaries {
		if m.ok {
			f.add("%s.", x.change(m))
		} else {
			f = append(f, unmeasured(m))
		}
	}
	if novel := a.novelty(); won && len(novel) > 0 {
		for _, m := range novel {
			f = append(f, noveltyLine(m))
		}
		a.next = fmt.Sprintf("Next: do not ship %s for its lift on %s: it was novelty that wore off. Keep the control experience, or test again for longer if the lasting part matters.", a.variant, join(keys(novel)))
	} else if won {
		var keys []string
		for _, m := range guardrails {
			switch {
			case !m.ok:
				f = append(f, unmeasured(m))
			case !m.nonInferior:
				f.add("Guardrail %s could not be shown to stay within its %s margin (%s, %s).", m.key, marginText(m), effect(m), x.interval(m))
			default:
				continue
			}
			keys = append(keys, m.key)
		}
		a.next = fmt.Sprintf("Next: do not ship %s as it is; find out how it affects %s and test again with enough traffic to show it stays within its margin.", a.variant, join(keys))
	} else {
		for _, m := range primaries {
			if m.better {
				continue
			}
			if s, ok := ruledOut(m, true); ok {
				f = append(f, upper(s)+".")
			}
		}
		a.next = "Next: stop the experiment, keep the control experience and try a different idea."
	}
	f = append(f, x.stopLines(a)...)
	return f
}

// explainCollect is the findings of rule 6: where it stands, and what it waits for; it sets a.next.
func (x *experiment) explainCollect(a *arm) []string {
	var f findings
	primaries := a.with(readout.Primary)
	guardrails := a.with(readout.Guardrail)
	for _, m := range primaries {
		switch {
		case !m.ok:
			f.add("%s cannot be measured yet: %s.", m.key, m.why)
		case m.onlyNovelty():
			f.add("%s, but it looks like novelty.", x.change(m))
			f = append(f, noveltyLine(m))
		case m.better:
			f.add("%s, but every guardrail must also be shown to hold before acting on it.", x.change(m))
		default:
			f.add("%s: not conclusive yet.", x.so(m))
		}
	}
	if a.primaryWin() && len(a.novelty()) == 0 {
		for _, m := range guardrails {
			switch {
			case !m.ok:
				f = append(f, unmeasured(m))
			case !m.nonInferior:
				f.add("Guardrail %s is not yet shown to stay within its %s margin (%s, %s).", m.key, marginText(m), effect(m), x.interval(m))
			}
		}
	} else if s := earlySigns(a); s != "" {
		f = append(f, s)
	}
	if a.futile && !a.stopped() {
		f = append(f, x.futilityHeld(a))
	}
	a.next = "Next: keep the experiment running; do not act on these numbers yet."
	return f
}

// invalidReasons says why the data cannot be trusted and what to do.
func (x *experiment) invalidReasons() []string {
	var out []string
	if x.srmInvalid {
		c := x.counts[x.worstVariant]
		out = append(out, fmt.Sprintf("Sample ratio mismatch: %s got %s of units where %s was planned (%s). Fix the assignment before reading results.",
			c.Variant, readout.Share(c.ObservedShare), readout.Share(c.ExpectedShare), readout.PValue(x.srmP)))
	}
	if x.contaminated {
		out = append(out, fmt.Sprintf("%s of units (%s) saw more than one variant, above the %s that is tolerated. Fix the assignment so that each unit sees only one variant before reading results.",
			readout.Share(x.multiRate), readout.Count(max(x.in.MultiExposed, 0)), readout.Share(MaxMultipleExposure)))
	}
	if x.unknown {
		out = append(out, fmt.Sprintf("%s of units (%s) were exposed to a variant the definition does not list, above the %s that is tolerated. Fix the variant keys the clients send, or add the variant to the definition, before reading results.",
			readout.Share(x.unknownRate), readout.Count(max(x.in.UnknownVariant, 0)), readout.Share(MaxUnknownVariant)))
	}
	return out
}

// summary is the one sentence for the experiment.
func (x *experiment) summary(status readout.Status, best *arm, others []*arm) string {
	switch status {
	case readout.Invalid:
		return x.invalidSummary()
	case readout.Collecting:
		return x.collectingSummary()
	}

	var first *metric
	if ps := best.with(readout.Primary); len(ps) > 0 {
		first = ps[0]
	}
	raised := func(m *metric) string {
		if m.res.AbsEffect < 0 {
			return "lowered"
		}
		return "raised"
	}
	switch best.rule {
	case rulePersevere:
		s := fmt.Sprintf("Persevere: %s %s %s by %s (%s)", best.variant, raised(first), first.key, size(first), x.interval(first))
		if n := len(best.with(readout.Primary)); n > 1 {
			s += fmt.Sprintf(" and won on the other %s", plural(n-1, "primary metric", "primary metrics"))
		}
		if len(best.with(readout.Guardrail)) > 0 {
			s += ", with every guardrail within its margin"
		}
		if n := first.novelty; n != nil && n.Status == readout.NoveltyDecaying && n.Early != nil {
			s += fmt.Sprintf(", though its lift fades with time since exposure (%s at first, %s later)", readout.Percent(n.Early.RelEffect), n.LateLift())
		}
		if len(others) > 0 {
			s += fmt.Sprintf(" (%s also won, by %s)", join(variants(others)), less(best, others))
		}
		return s + "; roll it out."
	case ruleSalvage:
		if len(best.segmentWins) > 0 {
			w := best.segmentWins[0]
			return fmt.Sprintf("Salvage: %s did not win overall, but %s %s by %s for %s = %s; keep it there.",
				best.variant, raised(w.m), w.m.key, size(w.m), w.seg.dim, w.seg.value)
		}
		w := best.secondaryWins[0]
		on := "its primary metric"
		if first != nil {
			on = first.key
		}
		return fmt.Sprintf("Salvage: %s did not win on %s, but %s %s by %s; keep that part.", best.variant, on, raised(w.m), w.m.key, size(w.m))
	case ruleHarm:
		m := best.harmed()[0]
		return fmt.Sprintf("Pivot: %s made %s worse than its %s margin allows (%s, %s).", best.variant, m.key, marginText(m), effect(m), x.interval(m))
	}
	// Rule 5.
	if first == nil {
		return fmt.Sprintf("Pivot: %s did not work.", best.variant)
	}
	if novel := best.novelty(); best.primaryWin() && len(novel) > 0 {
		m := novel[0]
		return fmt.Sprintf("Pivot: %s's lift on %s was novelty: %s at first, %s once it wore off.", best.variant, m.key, readout.Percent(m.novelty.Early.RelEffect), m.novelty.LateLift())
	}
	if best.primaryWin() {
		var keys []string
		for _, m := range best.with(readout.Guardrail) {
			if !m.nonInferior {
				keys = append(keys, m.key)
			}
		}
		return fmt.Sprintf("Pivot: %s %s %s, but %s could not be shown to stay within its margin.", best.variant, raised(first), first.key, join(keys))
	}
	// The first primary that did not win tells the story.
	for _, m := range best.with(readout.Primary) {
		if m.better {
			continue
		}
		if !m.ok {
			return fmt.Sprintf("Pivot: %s ended without a measurable effect on %s.", best.variant, m.key)
		}
		if m.worse {
			return fmt.Sprintf("Pivot: %s made %s worse (%s, %s).", best.variant, m.key, effect(m), x.interval(m))
		}
		verb := "lift"
		if m.sign < 0 {
			verb = "lower"
		}
		s, _ := ruledOut(m, false)
		return fmt.Sprintf("Pivot: %s did not %s %s; %s.", best.variant, verb, m.key, s)
	}
	return fmt.Sprintf("Pivot: %s did not work.", best.variant)
}

// invalidSummary says in one sentence why the data cannot be trusted.
func (x *experiment) invalidSummary() string {
	switch {
	case x.unknown && !x.srmInvalid && !x.contaminated:
		return fmt.Sprintf("Invalid: %s of units were exposed to a variant the definition does not list, so no result can be trusted.", readout.Share(x.unknownRate))
	case x.srmInvalid && x.contaminated:
		return fmt.Sprintf("Invalid: the split of units does not match the plan and %s of units saw more than one variant, so no result can be trusted.", readout.Share(x.multiRate))
	case x.srmInvalid:
		c := x.counts[x.worstVariant]
		return fmt.Sprintf("Invalid: sample ratio mismatch (%s got %s of units, %s was planned), so no result can be trusted.", c.Variant, readout.Share(c.ObservedShare), readout.Share(c.ExpectedShare))
	}
	return fmt.Sprintf("Invalid: %s of units saw more than one variant, so no result can be trusted.", readout.Share(x.multiRate))
}

// collectingSummary says in one sentence how far the experiment is.
func (x *experiment) collectingSummary() string {
	if len(x.blockers) > 0 {
		return "Still collecting: " + strings.TrimPrefix(x.blockers[0], "No decision yet: ")
	}
	frac := ""
	if t := x.target(); t > 0 {
		frac = readout.Share(min(1, float64(x.units)/t)) + " of the planned sample so far"
	}
	var when string
	if eta := x.eta(); eta != nil {
		when = "a decision is expected around " + readout.Date(*eta)
	}
	switch {
	case frac != "" && when != "":
		return fmt.Sprintf("Still collecting: %s, and %s.", frac, when)
	case frac != "":
		return fmt.Sprintf("Still collecting: %s.", frac)
	case when != "":
		return fmt.Sprintf("Still collecting: no conclusive result yet; %s.", when)
	}
	return "Still collecting: no conclusive result yet."
}

// less says how tied arms compare with the best on its first primary.
func less(best *arm, others []*arm) string {
	for _, o := range others {
		if lift(o) < lift(best) {
			return "less"
		}
	}
	return "as much"
}

func variants(arms []*arm) []string {
	var out []string
	for _, a := range arms {
		out = append(out, a.variant)
	}
	return out
}

// readout assembles the document.
func (x *experiment) readout() readout.Readout {
	e := x.in.Experiment
	r := readout.Readout{
		Experiment:  e.Key,
		Name:        e.Name,
		Hypothesis:  e.Hypothesis,
		Owners:      e.Owners,
		DataThrough: x.in.DataThrough,
		Reasons:     []string{},
		Health:      x.healthOut(),
		Arms:        []readout.Arm{},
		Salvage:     []readout.SalvageItem{},
	}
	ranked := x.ranked()
	var best *arm
	if len(ranked) > 0 {
		best = ranked[0]
	}
	switch {
	case x.invalid():
		r.Status = readout.Invalid
	case best != nil && rank(best) != 1:
		r.Status, r.Label = readout.Decided, best.label
	default:
		r.Status = readout.Collecting
	}
	r.Progress = x.progress(r.Status == readout.Collecting)

	for _, a := range x.arms {
		r.Arms = append(r.Arms, x.armOut(a))
		if a.label == readout.Salvage {
			r.Salvage = append(r.Salvage, salvageItems(a)...)
		}
	}

	// Ties: arms with the best label after the first, for the summary.
	var tied []*arm
	for _, a := range ranked[min(1, len(ranked)):] {
		if r.Status == readout.Decided && a.label == best.label {
			tied = append(tied, a)
		}
	}
	r.Summary = x.summary(r.Status, best, tied)

	switch r.Status {
	case readout.Invalid:
		r.Reasons = x.invalidReasons()
		return r
	case readout.Collecting:
		r.Reasons = append(r.Reasons, x.blockers...)
		if t := x.target(); t > 0 {
			r.Reasons = append(r.Reasons, fmt.Sprintf("Collecting data: %s of %s planned units (%s).", readout.Count(x.units), readout.Count(int64(t)), readout.Share(min(1, float64(x.units)/t))))
		} else {
			r.Reasons = append(r.Reasons, fmt.Sprintf("Collecting data: %s units so far.", readout.Count(x.units)))
		}
	}
	multi := len(x.arms) > 1
	for _, a := range ranked {
		for _, s := range a.findings {
			if multi {
				s = a.variant + ": " + s
			}
			r.Reasons = append(r.Reasons, s)
		}
	}
	if x.srm == readout.SRMNotEnoughTraffic {
		r.Reasons = append(r.Reasons, fmt.Sprintf("The split of units cannot be checked yet: a variant has fewer than %d units.", 8))
	}
	switch {
	case r.Status == readout.Collecting:
		if eta := x.eta(); eta != nil {
			if end := e.End; end != nil && eta.Equal(*end) && !x.in.Now.Before(*end) {
				r.Reasons = append(r.Reasons, fmt.Sprintf("The planned end, %s, has passed: the decision waits for the data above.", readout.Date(*end)))
			} else if end != nil && eta.Equal(*end) {
				r.Reasons = append(r.Reasons, fmt.Sprintf("A decision is due by the planned end, %s.", readout.Date(*end)))
			} else {
				r.Reasons = append(r.Reasons, fmt.Sprintf("At the current traffic (about %s units a day) a decision is expected around %s.", readout.Count(int64(math.Round(x.unitsPerDay))), readout.Date(*eta)))
			}
		}
		r.Reasons = append(r.Reasons, "Next: keep the experiment running; do not act on these numbers yet.")
	case best.label == readout.Persevere && len(tied) > 0:
		r.Reasons = append(r.Reasons, fmt.Sprintf("Next: roll out %s; %s also beat the control, by %s on %s (the variants were not tested against each other).",
			best.variant, join(variants(tied)), less(best, tied), best.with(readout.Primary)[0].key))
	default:
		r.Reasons = append(r.Reasons, best.next)
	}
	return r
}

func (x *experiment) armOut(a *arm) readout.Arm {
	o := readout.Arm{Variant: a.variant, Label: a.label, Metrics: []readout.Metric{}}
	o.Reasons = slices.Clone(a.findings)
	if a.next != "" {
		o.Reasons = append(o.Reasons, a.next)
	}
	for _, m := range a.metrics {
		if m.ok {
			o.Metrics = append(o.Metrics, m.out())
		} else {
			o.Unavailable = append(o.Unavailable, readout.Unavailable{Metric: m.key, Role: m.role, Reason: m.why})
		}
	}
	return o
}

func salvageItems(a *arm) []readout.SalvageItem {
	var out []readout.SalvageItem
	for _, w := range slices.Concat(a.segmentWins, a.secondaryWins) {
		r := w.m.res
		it := readout.SalvageItem{
			Variant:        a.variant,
			Kind:           readout.SalvageMetric,
			Metric:         w.m.key,
			Role:           w.m.role,
			Control:        readout.Estimate{N: r.Control.N, Mean: r.Control.Mean},
			Treatment:      readout.Estimate{N: r.Treatment.N, Mean: r.Treatment.Mean},
			AbsEffect:      r.AbsEffect,
			CI:             readout.Interval{r.AbsCI.Lo, r.AbsCI.Hi},
			PValue:         r.PValue,
			AdjustedPValue: w.adjusted,
		}
		it.RelEffect, it.RelCI = rel(r)
		if w.seg != nil {
			it.Kind, it.Dimension, it.Value = readout.SalvageSegment, w.seg.dim, w.seg.value
		}
		out = append(out, it)
	}
	return out
}

// keys lists the metrics' keys.
func keys(ms []*metric) []string {
	out := make([]string, len(ms))
	for i, m := range ms {
		out[i] = m.key
	}
	return out
}

// noveltyLine tells how m's lift changed with the time since exposure,
// "" when the test found no change: "The lift on purchase_conversion decays
// with time since exposure: +31% in the first 3d12h after each unit's
// exposure, +2.1% after (always-valid interval for late/early lift −31%
// to −12%); what lasts is the late part."
func noveltyLine(m *metric) string {
	n := m.novelty
	if n == nil || n.Early == nil || n.Change == nil || n.ChangeCI == nil {
		return ""
	}
	var verb, tail string
	switch {
	case n.Status == readout.NoveltyDecaying && !m.onlyNovelty():
		verb, tail = "decays", "it still wins late, but expect less than the overall effect once novelty wears off"
	case n.Status == readout.NoveltyDecaying:
		verb, tail = "decays", "it is no longer shown to be better late: the win is novelty, not a lasting effect"
	case n.Status == readout.NoveltyGrowing:
		verb, tail = "grows", "expect more than the overall effect as units get used to it"
	default:
		return ""
	}
	return fmt.Sprintf("The lift on %s %s with time since exposure: %s in the first %s after each unit's exposure, %s after (change of the lift %s, always-valid interval %s to %s); %s.",
		m.key, verb, readout.Percent(n.Early.RelEffect), n.Split, n.LateLift(), readout.Percent(*n.Change), readout.Percent(n.ChangeCI[0]), readout.Percent(n.ChangeCI[1]), tail)
}
