package report

import (
	"fmt"
	"net/url"
	"strings"
	"time"

	"github.com/verdictlabs/verdict/pkg/readout"
)

// View is a readout formatted for people: every number already a string,
// every list in reading order. The email (text and HTML) and the readout
// page are templates over the same View, so they cannot disagree.
type View struct {
	Experiment  string
	Name        string // the definition's name, or the key
	Hypothesis  string
	Owners      []string
	Version     int64
	ComputedAt  string
	DataThrough string

	Status  readout.Status
	Label   readout.Label
	Verdict string // PERSEVERE, PIVOT, SALVAGE, INVALID or COLLECTING
	Why     string // the short why of the subject line
	Tone    Tone
	Change  string // "The label changed from PIVOT to SALVAGE.", when known

	Summary string
	Reasons []string
	// Lifecycle says where the decision stands: when it was made, or the
	// candidate holding, and whether the readout is provisional.
	Lifecycle string

	Metrics     []MetricRow
	Unavailable []string
	Salvage     []SalvageRow
	Health      []HealthRow
	Progress    ProgressView

	PageURL string // the readout page, when a base URL is known
	Refresh bool   // still collecting: pages refresh themselves
}

// Tone is the colour scheme of a verdict: a banner background, its text and
// an accent, chosen for contrast (WCAG AA on white and on the banner).
type Tone struct{ Bg, Fg, Accent string }

var tones = map[string]Tone{
	"PERSEVERE":  {Bg: "#e6f4ea", Fg: "#0d5223", Accent: "#1e8e3e"},
	"PIVOT":      {Bg: "#fce8e6", Fg: "#8a1c12", Accent: "#c5221f"},
	"SALVAGE":    {Bg: "#fef3e0", Fg: "#7a4100", Accent: "#b06000"},
	"INVALID":    {Bg: "#f1f3f4", Fg: "#3c4043", Accent: "#5f6368"},
	"COLLECTING": {Bg: "#e8f0fe", Fg: "#174ea6", Accent: "#1a73e8"},
}

// MetricRow is one metric of one treatment arm.
type MetricRow struct {
	Arm, Metric, Role string
	Better            string // "higher is better" or "lower is better"
	Control           string // control estimate
	Treatment         string // treatment estimate
	Effect            string // relative effect, or absolute when the control mean is 0
	Interval          string // the 95% interval of Effect
	PValue            string
	CUPED             string // "CUPED: 33% less variance (14d before exposure)", or ""
	Novelty           string // what the novelty test found, or "" without one
	Outcome           readout.Outcome
	Verdict           string // "better", "worse", "no clear change", with the guardrail's margin
	Color             string
}

// SalvageRow is something worth keeping.
type SalvageRow struct {
	Arm, Where, Metric string // Where: "platform = android", or the metric's name
	Effect, Interval   string
	AdjustedP          string
	Units              string // units in the segment, both arms
}

// HealthRow is one trust check.
type HealthRow struct {
	Check, Result string
	OK            bool
}

// ProgressView is how far the experiment is.
type ProgressView struct {
	Units, Target, Percent, Power, PerDay, ETA, Start, End string
	Fraction                                               float64 // 0..1, for bars
	// Sample says the units against the plan in words: "5,000 of 8,000
	// planned units (63%) · power 80%", or "12 units; no planned sample
	// yet" before there is a plan. A decided experiment's power is left
	// out: it was a planning figure.
	Sample string
}

// ViewOptions adjust a View.
type ViewOptions struct {
	// BaseURL is where the readout page is served, e.g.
	// http://127.0.0.1:8080; the page is BaseURL/experiments/<key>.
	BaseURL string
	// Previous is the readout the last email was about, if any: the view
	// then says what changed.
	Previous *readout.Readout
}

// LifecycleLine says where r's decision stands, for people: when it was
// made, or the candidate holding, and whether r is provisional; "" when
// there is nothing to say. It is the View's Lifecycle.
func LifecycleLine(r readout.Readout) string {
	var parts []string
	if r.Provisional {
		parts = append(parts, fmt.Sprintf("Provisional: ingest has %s events still to land.", readout.Count(r.Health.Backlog)))
	}
	switch {
	case r.DecidedAt != nil:
		if r.Status == readout.Invalid {
			parts = append(parts, "Found invalid "+stamp(*r.DecidedAt)+": its numbers cannot be trusted; fix the cause and start the experiment again.")
		} else {
			parts = append(parts, "Decided "+stamp(*r.DecidedAt)+": final unless the evidence reverses.")
		}
	case r.CandidateStatus == readout.Invalid && r.CandidateSince != nil:
		parts = append(parts, "Candidate INVALID since "+stamp(*r.CandidateSince)+", holding before it is final.")
	case r.Candidate != readout.NoLabel && r.CandidateSince != nil:
		parts = append(parts, "Candidate "+strings.ToUpper(string(r.Candidate))+" since "+stamp(*r.CandidateSince)+", holding before it is the decision.")
	}
	return strings.Join(parts, " ")
}

// NewView formats r.
func NewView(r readout.Readout, o ViewOptions) View {
	v := View{
		Experiment:  r.Experiment,
		Name:        r.Name,
		Hypothesis:  r.Hypothesis,
		Owners:      r.Owners,
		Version:     r.Version,
		ComputedAt:  stamp(r.ComputedAt),
		DataThrough: stamp(r.DataThrough),
		Status:      r.Status,
		Label:       r.Label,
		Verdict:     Verdict(r),
		Why:         Why(r),
		Summary:     r.Summary,
		Reasons:     r.Reasons,
		Refresh:     r.Status == readout.Collecting,
		Lifecycle:   LifecycleLine(r),
	}
	if v.Name == "" {
		v.Name = r.Experiment
	}
	v.Tone = tones[v.Verdict]
	if o.BaseURL != "" {
		v.PageURL = PageURL(o.BaseURL, r.Experiment)
	}
	if p := o.Previous; p != nil && Verdict(*p) != v.Verdict {
		v.Change = fmt.Sprintf("The verdict changed from %s (readout v%d) to %s.", Verdict(*p), p.Version, v.Verdict)
	}
	multi := len(r.Arms) > 1
	for _, a := range r.Arms {
		for _, m := range a.Metrics {
			row := MetricRow{
				Metric:    m.Metric,
				Role:      string(m.Role),
				Better:    "higher is better",
				Control:   readout.Number(m.Control.Mean, false),
				Treatment: readout.Number(m.Treatment.Mean, false),
				PValue:    pSaying(m.PValue, "no evidence yet"),
				Outcome:   m.Outcome,
				Color:     outcomeColor(m.Outcome),
			}
			if multi {
				row.Arm = a.Variant
			}
			if m.ChanceToWin != nil && m.Risk != nil {
				// The Bayesian engine: no p-value, the posterior's chance
				// to win and the risk of shipping the treatment.
				row.PValue = fmt.Sprintf("chance to win %s, risk %s", readout.Share(*m.ChanceToWin), readout.Share(m.Risk[1]))
			}
			if m.Novelty != nil {
				row.Novelty = noveltyText(m.Novelty)
			}
			if c := m.CUPED; c != nil && c.Applied {
				row.CUPED = fmt.Sprintf("CUPED: %.0f%% less variance (%s before exposure)", 100*c.VarianceReduction, c.Lookback)
			}
			if m.Direction == "decrease" {
				row.Better = "lower is better"
			}
			if m.Quantile != nil {
				// The numbers are quantiles, not means: say so.
				row.Better = readout.QuantileName(*m.Quantile) + " of each " + m.Level + ", " + row.Better
			}
			if m.RelEffect != nil && m.RelCI != nil {
				row.Effect = readout.Percent(*m.RelEffect)
				row.Interval = readout.Percent(m.RelCI[0]) + " to " + readout.Percent(m.RelCI[1])
			} else {
				row.Effect = readout.Number(m.AbsEffect, true)
				row.Interval = readout.Number(m.CI[0], true) + " to " + readout.Number(m.CI[1], true) + " (absolute)"
			}
			switch m.Outcome {
			case readout.Better:
				row.Verdict = "better"
			case readout.Worse:
				row.Verdict = "worse"
			default:
				row.Verdict = "no clear change"
			}
			if m.Role == readout.Guardrail && m.Margin != nil {
				switch {
				case m.BeyondMargin != nil && *m.BeyondMargin:
					row.Verdict = "harmed beyond its " + readout.Share(*m.Margin) + " margin"
					row.Color = outcomeColor(readout.Worse)
				case m.NonInferior != nil && *m.NonInferior:
					row.Verdict = "within its " + readout.Share(*m.Margin) + " margin"
				default:
					row.Verdict = "not yet shown within its " + readout.Share(*m.Margin) + " margin"
				}
			}
			v.Metrics = append(v.Metrics, row)
		}
		for _, u := range a.Unavailable {
			s := u.Metric + ": " + u.Reason
			if multi {
				s = a.Variant + " · " + s
			}
			v.Unavailable = append(v.Unavailable, s)
		}
	}
	for _, s := range r.Salvage {
		row := SalvageRow{
			Arm:       s.Variant,
			Where:     where(s),
			Metric:    s.Metric,
			AdjustedP: "adjusted " + readout.PValue(s.AdjustedPValue),
			Units:     readout.Count(int64(s.Control.N + s.Treatment.N)),
		}
		if s.RelEffect != nil && s.RelCI != nil {
			row.Effect = readout.Percent(*s.RelEffect)
			row.Interval = readout.Percent(s.RelCI[0]) + " to " + readout.Percent(s.RelCI[1])
		} else {
			row.Effect = readout.Number(s.AbsEffect, true)
			row.Interval = readout.Number(s.CI[0], true) + " to " + readout.Number(s.CI[1], true) + " (absolute)"
		}
		v.Salvage = append(v.Salvage, row)
	}
	v.Health = health(r.Health)
	v.Progress = progress(r.Progress, r.Status == readout.Decided || r.Status == readout.Invalid)
	return v
}

// PageURL is the readout page of an experiment under base.
func PageURL(base, experiment string) string {
	return strings.TrimRight(base, "/") + "/experiments/" + url.PathEscape(experiment)
}

func where(s readout.SalvageItem) string {
	if s.Kind == readout.SalvageSegment {
		return s.Dimension + " = " + s.Value
	}
	return s.Metric
}

func outcomeColor(o readout.Outcome) string {
	switch o {
	case readout.Better:
		return "#1e8e3e"
	case readout.Worse:
		return "#c5221f"
	}
	return "#5f6368"
}

func health(h readout.Health) []HealthRow {
	var rows []HealthRow
	srm := HealthRow{Check: "Sample ratio", OK: h.SRM != readout.SRMMismatch}
	var split []string
	for _, c := range h.Counts {
		split = append(split, fmt.Sprintf("%s %s (%s planned)", c.Variant, readout.Share(c.ObservedShare), readout.Share(c.ExpectedShare)))
	}
	switch h.SRM {
	case readout.SRMNotEnoughTraffic:
		srm.Result = "not enough traffic to test yet"
	case readout.SRMMismatch:
		srm.Result = "mismatch"
	default:
		srm.Result = "ok"
	}
	if h.SRMPValue != nil {
		srm.Result += " (" + pSaying(*h.SRMPValue, "no sign of a mismatch") + ")"
	}
	if len(split) > 0 {
		srm.Result += ": " + strings.Join(split, ", ")
	}
	rows = append(rows, srm)
	rows = append(rows, HealthRow{
		Check:  "Units in more than one variant",
		Result: fmt.Sprintf("%s (%s of units; the limit is 1%%)", readout.Count(h.MultipleExposureCount), readout.Rate(h.MultipleExposureRate)),
		OK:     h.MultipleExposureRate <= 0.01,
	})
	for _, im := range h.PreExposureImbalance {
		rows = append(rows, HealthRow{
			Check: "Arms alike before exposure (" + im.Metric + ")",
			Result: fmt.Sprintf("%s averaged %s before exposure against control's %s (%s): the arms differed before the experiment; read its effects with doubt",
				im.Variant, readout.Number(im.TreatmentMean, false), readout.Number(im.ControlMean, false), readout.PValue(im.PValue)),
			OK: false,
		})
	}
	return rows
}

func progress(p readout.Progress, decided bool) ProgressView {
	v := ProgressView{Units: readout.Count(p.Units), Target: "not planned yet", Percent: "—", Power: "—", PerDay: "—", ETA: "—", Start: readout.Date(p.Start), End: "none"}
	if p.Target != nil {
		v.Target = readout.Count(*p.Target)
	}
	if p.Fraction != nil {
		v.Fraction = min(max(*p.Fraction, 0), 1)
		v.Percent = readout.Share(*p.Fraction)
	}
	if p.Power != nil {
		v.Power = readout.Share(*p.Power)
	}
	if p.UnitsPerDay != nil {
		v.PerDay = readout.Count(int64(*p.UnitsPerDay + 0.5))
	}
	if p.ETA != nil {
		v.ETA = readout.Date(*p.ETA)
	}
	if p.End != nil {
		v.End = readout.Date(*p.End)
	}
	if p.Start.IsZero() {
		v.Start = "—"
	}
	switch {
	case p.Target == nil:
		v.Sample = v.Units + " units; no planned sample yet"
	default:
		v.Sample = v.Units + " of " + v.Target + " planned units (" + v.Percent + ")"
		if p.Power != nil && !decided {
			v.Sample += " · power " + v.Power
		}
	}
	return v
}

// Verdict is the one word for where r stands: PERSEVERE, PIVOT, SALVAGE,
// INVALID or COLLECTING.
func Verdict(r readout.Readout) string {
	switch {
	case r.Status == readout.Invalid:
		return "INVALID"
	case r.Status == readout.Decided && r.Label != readout.NoLabel:
		return strings.ToUpper(string(r.Label))
	}
	return "COLLECTING"
}

// Why is the short reason that follows the verdict in a subject line, built
// from the readout's numbers rather than cut from its sentences:
//
//	PERSEVERE  ship <variant>: <primary> +4.2%
//	PIVOT      <guardrail> worse beyond its 5% margin | <primary> -3.1% | no lift on <primary>; above +0.8% ruled out
//	SALVAGE    keep it for <dimension> = <value> [and N more] | keep it for <secondary> +2.5%
//	INVALID    sample ratio mismatch | N% of units saw more than one variant
//	COLLECTING 45% of the planned sample, decision expected 2026-11-20
func Why(r readout.Readout) string {
	arm := bestArm(r)
	switch Verdict(r) {
	case "INVALID":
		if r.Health.SRM == readout.SRMMismatch {
			if p := r.Health.SRMPValue; p != nil {
				return "sample ratio mismatch (" + readout.PValue(*p) + ")"
			}
			return "sample ratio mismatch"
		}
		if r.Health.MultipleExposureRate > 0.01 {
			return readout.Rate(r.Health.MultipleExposureRate) + " of units saw more than one variant"
		}
		return "the data cannot be trusted"
	case "PERSEVERE":
		if arm != nil {
			for _, m := range arm.Metrics {
				if m.Role == readout.Primary {
					return "ship " + arm.Variant + ": " + m.Metric + " " + effect(m.RelEffect, m.AbsEffect)
				}
			}
			return "ship " + arm.Variant
		}
		return "ship it"
	case "SALVAGE":
		if len(r.Salvage) == 0 {
			return "keep part of it"
		}
		s := r.Salvage[0]
		why := "keep it for " + where(s)
		if s.Kind == readout.SalvageMetric {
			why += " " + effect(s.RelEffect, s.AbsEffect)
		}
		if n := len(r.Salvage) - 1; n == 1 {
			why += " and 1 more"
		} else if n > 1 {
			why += fmt.Sprintf(" and %d more", n)
		}
		return why
	case "PIVOT":
		if arm == nil {
			return "stop and try something else"
		}
		for _, m := range arm.Metrics {
			if m.Role == readout.Guardrail && m.BeyondMargin != nil && *m.BeyondMargin && m.Margin != nil {
				return m.Metric + " worse beyond its " + readout.Share(*m.Margin) + " margin"
			}
		}
		for _, m := range arm.Metrics {
			if m.Role == readout.Primary && m.Outcome == readout.Worse {
				return m.Metric + " " + effect(m.RelEffect, m.AbsEffect)
			}
		}
		for _, m := range arm.Metrics {
			if n := m.Novelty; m.Role == readout.Primary && m.Outcome == readout.Better && n != nil && n.Status == readout.NoveltyDecaying && n.Early != nil {
				return "the lift on " + m.Metric + " was novelty: " + readout.Percent(n.Early.RelEffect) + " at first, " + n.LateLift() + " later"
			}
		}
		for _, m := range arm.Metrics {
			if m.Role != readout.Primary {
				continue
			}
			why := "no lift on " + m.Metric
			if m.RelCI != nil {
				hi := m.RelCI[1]
				if m.Direction == "decrease" {
					hi = m.RelCI[0]
				}
				if m.Direction == "decrease" {
					why += "; drops beyond " + readout.Percent(hi) + " ruled out"
				} else {
					why += "; lifts above " + readout.Percent(hi) + " ruled out"
				}
			}
			return why
		}
		return "stop and try something else"
	}
	p := r.Progress
	var parts []string
	if p.Fraction != nil {
		parts = append(parts, readout.Share(*p.Fraction)+" of the planned sample")
	} else {
		parts = append(parts, readout.Count(p.Units)+" units so far")
	}
	if p.ETA != nil {
		parts = append(parts, "decision expected "+readout.Date(*p.ETA))
	}
	return strings.Join(parts, ", ")
}

// bestArm is the arm whose label is the experiment's.
func bestArm(r readout.Readout) *readout.Arm {
	for i := range r.Arms {
		if r.Arms[i].Label == r.Label && r.Label != readout.NoLabel {
			return &r.Arms[i]
		}
	}
	if len(r.Arms) > 0 {
		return &r.Arms[0]
	}
	return nil
}

func effect(rel *float64, abs float64) string {
	if rel != nil {
		return readout.Percent(*rel)
	}
	return readout.Number(abs, true)
}

// Subject is the email subject: "[verdict] <experiment>: <VERDICT> — <why>",
// on one line, with every control character of user data removed. It is
// not yet encoded for a header (see RenderEmail).
func Subject(r readout.Readout) string {
	return oneLine(fmt.Sprintf("[verdict] %s: %s — %s", r.Experiment, Verdict(r), Why(r)), 200)
}

// timeOr returns t, or def when t is zero.
func timeOr(t, def time.Time) time.Time {
	if t.IsZero() {
		return def
	}
	return t
}
