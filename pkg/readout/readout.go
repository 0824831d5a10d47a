package readout

import (
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"time"
)

// ErrNotFound is the one error, wrapped or not, that every reader of
// readouts returns for an experiment without any (api.ErrNotFound and
// page.ErrNotFound are this same value): the API and the page answer 404.
var ErrNotFound = errors.New("no readout for this experiment")

// Status says whether an experiment has a verdict.
type Status string

// The statuses of DESIGN.md.
const (
	// Collecting: no treatment has a verdict yet; Progress says how far along
	// the experiment is and when a decision is expected.
	Collecting Status = "collecting"
	// Decided: Label holds the verdict.
	Decided Status = "decided"
	// Invalid: the data cannot be trusted (sample ratio mismatch, or too many
	// units exposed to more than one variant); there is no label.
	Invalid Status = "invalid"
)

// Label is the verdict on an experiment or on one treatment arm. The zero
// value, NoLabel, is encoded as JSON null.
type Label string

// The labels of DESIGN.md.
const (
	NoLabel   Label = ""
	Persevere Label = "persevere" // the idea works: ship it
	Pivot     Label = "pivot"     // it clearly does not: stop and try something else
	Salvage   Label = "salvage"   // it failed overall, but parts are worth keeping
)

// MarshalJSON encodes NoLabel as null.
func (l Label) MarshalJSON() ([]byte, error) {
	if l == NoLabel {
		return []byte("null"), nil
	}
	return json.Marshal(string(l))
}

// UnmarshalJSON decodes null as NoLabel.
func (l *Label) UnmarshalJSON(b []byte) error {
	if string(b) == "null" {
		*l = NoLabel
		return nil
	}
	var s string
	if err := json.Unmarshal(b, &s); err != nil {
		return fmt.Errorf("decode label: %w", err)
	}
	*l = Label(s)
	return nil
}

// Role is what a metric is for in an experiment.
type Role string

// The roles a metric can have in an experiment definition.
const (
	Primary   Role = "primary"   // what the experiment is meant to move
	Secondary Role = "secondary" // other effects worth knowing (and salvaging)
	Guardrail Role = "guardrail" // must not get worse beyond its margin
)

// SRMStatus is the outcome of the sample ratio mismatch check.
type SRMStatus string

// The outcomes of the sample ratio mismatch check.
const (
	SRMOK               SRMStatus = "ok"                 // p ≥ 0.001
	SRMMismatch         SRMStatus = "mismatch"           // p < 0.001: the experiment is invalid
	SRMNotEnoughTraffic SRMStatus = "not_enough_traffic" // a variant has fewer than 8 units: no test yet
)

// Outcome summarises a metric's comparison in its good direction.
type Outcome string

// The outcomes of a metric: significant in the good direction, significant
// in the bad direction, or neither.
const (
	Better       Outcome = "better"
	Worse        Outcome = "worse"
	Inconclusive Outcome = "inconclusive"
)

// SalvageKind says what a salvage item keeps.
type SalvageKind string

// What a salvage item keeps: the treatment in one segment (for a primary
// metric), or the effect on a secondary metric.
const (
	SalvageSegment SalvageKind = "segment"
	SalvageMetric  SalvageKind = "metric"
)

// Interval is a confidence interval [lo, hi].
type Interval [2]float64

// Readout is where an experiment stands. The JSON field names are the
// public contract (DESIGN.md "Readout", schemas/readout.schema.json).
type Readout struct {
	Experiment string `json:"experiment"`
	// Name, Hypothesis and Owners come from the definition, for emails and
	// the readout page.
	Name       string   `json:"name,omitempty"`
	Hypothesis string   `json:"hypothesis,omitempty"`
	Owners     []string `json:"owners,omitempty"`

	// Version increases with every readout of the experiment; the rules
	// service stamps it, and ComputedAt, when it publishes.
	Version     int64     `json:"version"`
	ComputedAt  time.Time `json:"computed_at"`
	DataThrough time.Time `json:"data_through"` // events up to this time are counted

	Status Status `json:"status"`
	Label  Label  `json:"label"` // NoLabel unless Status is Decided

	// The decision lifecycle (DESIGN.md "Decision lifecycle"). A look
	// computes a candidate; it becomes Status and Label only once it has
	// held on every look for the decision hold with ingest caught up, and
	// is then latched: it changes only to invalid, or on reversed evidence
	// that has itself held.
	//
	// Provisional marks a readout computed while ingest was behind: events
	// had waited in VERDICT_EVENTS for longer than a steady stream keeps
	// them (2s; Health.Backlog counts them). It is published, but cannot
	// start or change a decision. Candidate and CandidateStatus are what this look alone
	// says; CandidateSince is when the looks began to agree on it (nil on a
	// provisional look with a new candidate). DecidedAt is when the current
	// Status (decided or invalid) was reached; nil while collecting.
	Provisional     bool       `json:"provisional"`
	Candidate       Label      `json:"candidate"`
	CandidateStatus Status     `json:"candidate_status,omitempty"`
	CandidateSince  *time.Time `json:"candidate_since"`
	DecidedAt       *time.Time `json:"decided_at"`

	Summary string   `json:"summary"` // one plain sentence
	Reasons []string `json:"reasons"` // what happened, how sure, what to do next

	Health   Health        `json:"health"`
	Progress Progress      `json:"progress"`
	Arms     []Arm         `json:"arms"`    // one per treatment variant
	Salvage  []SalvageItem `json:"salvage"` // what to keep, from arms labelled salvage
}

// Health is whether the data can be trusted.
type Health struct {
	SRM SRMStatus `json:"srm"`
	// SRMPValue is the always-valid p-value of the sequential SRM test
	// (Lindon & Malek 2022) of units per variant against the weights; nil
	// (null) when SRM is not_enough_traffic.
	SRMPValue *float64 `json:"srm_p_value"`
	// Counts lists every variant of the definition, in its order.
	Counts []VariantCount `json:"counts"`
	// MultipleExposureCount is the number of units that saw more than one
	// variant (left out of every number); MultipleExposureRate is their share
	// of all exposed units, them included.
	MultipleExposureCount int64   `json:"multiple_exposure_count"`
	MultipleExposureRate  float64 `json:"multiple_exposure_rate"`
	// Backlog is the number of events the ingest consumer had not yet
	// delivered when the readout was computed. The readout is provisional
	// when the oldest of them had waited more than 2s.
	Backlog int64 `json:"backlog"`
	// UnknownVariantUnits is the number of units exposed to a variant the
	// definition does not list (left out of every number); above 1% of
	// exposed units the experiment is invalid.
	UnknownVariantUnits int64 `json:"unknown_variant_units"`
	// SegmentValuesGrouped counts, per segment dimension, the values
	// beyond the 20 with the most units: they are reported and tested
	// together as one value, OtherSegment. Absent when none were.
	SegmentValuesGrouped map[string]int `json:"segment_values_grouped,omitempty"`
	// PreExposureImbalance lists the metrics whose CUPED covariate (the
	// metric over each unit's lookback before its first exposure) already
	// differed between control and a treatment (Welch p below
	// ImbalanceP): the arms were unlike before the experiment touched
	// them, as GrowthBook and Eppo warn. Absent when none did.
	PreExposureImbalance []Imbalance `json:"pre_exposure_imbalance,omitempty"`
}

// ImbalanceP is the p-value below which a pre-exposure difference is
// reported: as strict as the SRM check, since every CUPED metric of
// every arm is tested.
const ImbalanceP = 0.001

// Imbalance is one metric's pre-exposure difference between arms.
type Imbalance struct {
	Variant string `json:"variant"`
	Metric  string `json:"metric"`
	// ControlMean and TreatmentMean are the covariate's means (for a
	// ratio metric, its ratio) before exposure.
	ControlMean   float64 `json:"control_mean"`
	TreatmentMean float64 `json:"treatment_mean"`
	PValue        float64 `json:"p_value"`
}

// OtherSegment is the segment value of a dimension's values beyond the 20
// with the most units, taken together. It is reported and tested like any
// value, but never recommended for a salvage: it names no one segment.
const OtherSegment = "(other)"

// VariantCount is one variant's units against its planned share.
type VariantCount struct {
	Variant       string  `json:"variant"`
	Units         int64   `json:"units"`
	Weight        float64 `json:"weight"`         // as configured
	ExpectedShare float64 `json:"expected_share"` // weight over the sum of weights
	ObservedShare float64 `json:"observed_share"` // units over all units (0 with no units)
}

// Progress is how far an experiment is towards its planned sample.
type Progress struct {
	// Units counts the units in the analysis, all variants together.
	Units int64 `json:"units"`
	// TargetPerVariant is the planned sample per variant: the units each of
	// two equal arms needs to detect the MDE of every primary metric with the
	// planned power at alpha. Target is the total at which, at the planned
	// split, the smallest variant reaches it. Both are nil when they cannot be
	// planned (no MDE, or no variance observed yet).
	TargetPerVariant *int64 `json:"target_per_variant"`
	Target           *int64 `json:"target"`
	// Fraction is Units/Target, at most 1.
	Fraction *float64 `json:"fraction"`
	// Power is the power reached so far for the MDE: the smallest over
	// primary metrics and treatment arms.
	Power *float64 `json:"power"`
	// UnitsPerDay is the traffic since the start.
	UnitsPerDay *float64 `json:"units_per_day"`
	// ETA is the expected decision date while collecting: when the target is
	// reached at the current traffic, or the planned end if sooner. nil when
	// it is unknown or the experiment is no longer collecting.
	ETA   *time.Time `json:"eta"`
	Start time.Time  `json:"start"`
	End   *time.Time `json:"end"` // the planned end, if any
}

// Arm is one treatment variant compared with the control.
type Arm struct {
	Variant string   `json:"variant"`
	Label   Label    `json:"label"`
	Reasons []string `json:"reasons"`
	Metrics []Metric `json:"metrics"`
	// Unavailable lists the metrics that could not be compared (for
	// instance no variance yet: no conversions in either arm).
	Unavailable []Unavailable `json:"unavailable,omitempty"`
}

// Estimate is one arm's units and estimate of a metric.
type Estimate struct {
	N    float64 `json:"n"`
	Mean float64 `json:"mean"` // for a ratio metric, the ratio of sums
}

// Metric is the comparison of a treatment with the control on one metric.
type Metric struct {
	Metric    string `json:"metric"`
	Role      Role   `json:"role"`
	Kind      string `json:"kind,omitempty"` // mean, count, proportion, ratio or quantile
	Direction string `json:"direction"`      // increase or decrease: which way is better
	// Quantile metrics only: the level (0.9 for p90) and over what: event
	// (control and treatment n count events) or unit.
	Quantile  *float64 `json:"quantile,omitempty"`
	Level     string   `json:"level,omitempty"`
	Control   Estimate `json:"control"`
	Treatment Estimate `json:"treatment"`

	AbsEffect float64   `json:"abs_effect"` // treatment mean − control mean
	RelEffect *float64  `json:"rel_effect"` // nil when the control mean is 0
	CI        Interval  `json:"ci"`         // for abs_effect: decisions use this
	RelCI     *Interval `json:"rel_ci"`     // for rel_effect, shown only
	PValue    float64   `json:"p_value"`
	// Significant reports whether CI excludes 0, in either direction.
	Significant bool    `json:"significant"`
	Outcome     Outcome `json:"outcome"`

	// Guardrails only: Margin is the configured relative margin, AbsMargin
	// the same in the metric's units (Margin·|control mean|). NonInferior:
	// the CI lies wholly on the good side of the margin. BeyondMargin: the CI
	// lies wholly on the bad side of it (the guardrail is harmed).
	Margin       *float64 `json:"margin,omitempty"`
	AbsMargin    *float64 `json:"abs_margin,omitempty"`
	NonInferior  *bool    `json:"non_inferior,omitempty"`
	BeyondMargin *bool    `json:"beyond_margin,omitempty"`

	// CUPED is the metric's variance reduction by its pre-exposure value;
	// nil when the metric has none. When applied, abs_effect, ci,
	// rel_effect, rel_ci and p_value are adjusted, and control and
	// treatment keep the means as observed.
	CUPED *CUPED `json:"cuped,omitempty"`

	// Bayesian engine only (GrowthBook's): ChanceToWin is the posterior
	// probability that the treatment is better in the metric's direction;
	// Risk the expected relative loss [of keeping control, of shipping
	// the treatment]. ci and rel_ci are then credible intervals and
	// p_value twice the smaller posterior tail at 0.
	ChanceToWin *float64    `json:"chance_to_win,omitempty"`
	Risk        *[2]float64 `json:"risk,omitempty"`

	// Series is the effect over time (not for quantile metrics), and
	// Novelty the test of whether it changes with the time since
	// exposure; both nil when not computed.
	Series  *Series  `json:"series,omitempty"`
	Novelty *Novelty `json:"novelty,omitempty"`
}

// Series is a metric's effect over time, unadjusted by CUPED (so its
// intervals can be wider than the readout's) and, for a capped metric,
// capped at today's cap.
type Series struct {
	// Cumulative has the comparison as of the end of each day since the
	// start (day 0 first; the last as of data_through), over the units
	// exposed by then: a point every few days for a long experiment.
	Cumulative []Point `json:"cumulative"`
	// SinceExposure has, per day since exposure (day 0: the first 24
	// hours after each unit's first exposure), the comparison of that
	// day's metric alone, over the units for which that day is over.
	SinceExposure []Point `json:"since_exposure"`
}

// Point is one comparison of a Series, with the experiment's intervals
// (its confidence sequence when sequential). Through is the end of a
// cumulative point; nil for a day since exposure.
type Point struct {
	Day       int        `json:"day"`
	Through   *time.Time `json:"through,omitempty"`
	Units     int64      `json:"units"` // both arms
	Control   float64    `json:"control_mean"`
	Treatment float64    `json:"treatment_mean"`
	AbsEffect float64    `json:"abs_effect"`
	CI        Interval   `json:"ci"`
	RelEffect *float64   `json:"rel_effect"`
	RelCI     *Interval  `json:"rel_ci"`
}

// NoveltyStatus is what the test of a changing effect found.
type NoveltyStatus string

// The outcomes of the novelty test.
const (
	// NoveltyNotEnoughData: too few units have their whole attribution
	// window observed, or a part of it has no events in an arm.
	NoveltyNotEnoughData NoveltyStatus = "not_enough_data"
	// NoveltyStable: no change of the lift is shown.
	NoveltyStable NoveltyStatus = "stable"
	// NoveltyDecaying: the lift of the late part is shown to be closer to
	// none (or reversed) than the early part's: novelty wearing off.
	NoveltyDecaying NoveltyStatus = "decaying"
	// NoveltyGrowing: the lift of the late part is shown to be further
	// from none, in the direction of the early part's: a learning effect.
	NoveltyGrowing NoveltyStatus = "growing"
)

// Novelty is the test of whether a treatment's effect changes with the
// time since exposure. Each unit whose attribution window is over is
// measured in the early part of it (the first half, Split) and in the late
// part (the rest); the test compares the late lift (treatment over
// control) with the early lift by the ratio of the two, with an
// always-valid interval (a confidence sequence at the experiment's alpha),
// so looking at every readout is safe.
type Novelty struct {
	Status NoveltyStatus `json:"status"`
	Split  string        `json:"split"` // e.g. "3d12h"
	Units  int64         `json:"units"` // units whose window is over, both arms
	// Early and Late are the relative effects in each part, with their
	// intervals; nil while there is not enough data.
	Early    *Effect   `json:"early"`
	Late     *Effect   `json:"late"`
	Change   *float64  `json:"change"`    // late lift / early lift − 1
	ChangeCI *Interval `json:"change_ci"` // always-valid
	PValue   *float64  `json:"p_value"`   // always-valid, of change = 0
	// Why says why there is not enough data.
	Why string `json:"why,omitempty"`
}

// LateLift is the late part's lift as people read it, "+9.7%", or
// "unknown" while there is none.
func (n *Novelty) LateLift() string {
	if n.Late == nil {
		return "unknown"
	}
	return Percent(n.Late.RelEffect)
}

// Effect is a relative effect with its interval.
type Effect struct {
	RelEffect float64  `json:"rel_effect"`
	RelCI     Interval `json:"rel_ci"`
	// Better: the interval lies wholly on the metric's good side of 0.
	Better bool `json:"better"`
}

// CUPED is what variance reduction did to one comparison.
type CUPED struct {
	Lookback string `json:"lookback"` // e.g. "14d"
	// Applied is false when no unit had events in the lookback: the
	// comparison is then unadjusted.
	Applied bool `json:"applied"`
	// Theta is the pooled regression coefficient of the metric on its
	// pre-exposure value.
	Theta float64 `json:"theta"`
	// VarianceReduction is the share of the effect's variance removed:
	// 1 − Var(adjusted)/Var(unadjusted).
	VarianceReduction float64 `json:"variance_reduction"`
}

// Unavailable is a metric that could not be compared, and why.
type Unavailable struct {
	Metric string `json:"metric"`
	Role   Role   `json:"role"`
	Reason string `json:"reason"`
}

// SalvageItem is something worth keeping from a failed treatment: the
// treatment in one segment where it won on a primary metric, or its effect
// on a secondary metric. AdjustedPValue is Holm-adjusted over the family
// searched (every segment value × primary metric × arm, or every secondary
// metric × arm).
type SalvageItem struct {
	Variant   string      `json:"variant"`
	Kind      SalvageKind `json:"kind"`
	Dimension string      `json:"dimension"` // segment only; null for a metric
	Value     string      `json:"value"`     // segment only (may be ""); null for a metric
	Metric    string      `json:"metric"`
	Role      Role        `json:"role"`
	Control   Estimate    `json:"control"`
	Treatment Estimate    `json:"treatment"`

	AbsEffect      float64   `json:"abs_effect"`
	RelEffect      *float64  `json:"rel_effect"`
	CI             Interval  `json:"ci"`
	RelCI          *Interval `json:"rel_ci"`
	PValue         float64   `json:"p_value"`
	AdjustedPValue float64   `json:"adjusted_p_value"`
}

// MarshalJSON writes dimension and value as null for a metric item.
func (s SalvageItem) MarshalJSON() ([]byte, error) {
	type plain SalvageItem
	// Fields of the outer struct hide the embedded ones of the same name and
	// keep the contract's order: variant, kind, dimension, value, the rest.
	out := struct {
		Variant   string      `json:"variant"`
		Kind      SalvageKind `json:"kind"`
		Dimension *string     `json:"dimension"`
		Value     *string     `json:"value"`
		plain
	}{Variant: s.Variant, Kind: s.Kind, plain: plain(s)}
	if s.Kind == SalvageSegment {
		out.Dimension, out.Value = &s.Dimension, &s.Value
	}
	return json.Marshal(out)
}

// UnmarshalJSON reads null dimension and value as "".
func (s *SalvageItem) UnmarshalJSON(b []byte) error {
	type plain SalvageItem
	in := struct {
		*plain
		Dimension *string `json:"dimension"`
		Value     *string `json:"value"`
	}{plain: (*plain)(s)}
	if err := json.Unmarshal(b, &in); err != nil {
		return err
	}
	s.Dimension, s.Value = "", ""
	if in.Dimension != nil {
		s.Dimension = *in.Dimension
	}
	if in.Value != nil {
		s.Value = *in.Value
	}
	return nil
}

// MarshalJSON encodes the readout after checking it (see Validate), with
// empty lists as [] rather than null.
func (r Readout) MarshalJSON() ([]byte, error) {
	if err := r.Validate(); err != nil {
		return nil, err
	}
	type plain Readout // without this method
	p := plain(r)
	p.Reasons = nonNil(p.Reasons)
	p.Health.Counts = nonNil(p.Health.Counts)
	p.Salvage = nonNil(p.Salvage)
	p.Arms = make([]Arm, len(r.Arms))
	for i, a := range r.Arms {
		a.Reasons = nonNil(a.Reasons)
		a.Metrics = nonNil(a.Metrics)
		p.Arms[i] = a
	}
	return json.Marshal(p)
}

func nonNil[T any](s []T) []T {
	if s == nil {
		return []T{}
	}
	return s
}

// QuantileName is a quantile level as people write it: 0.9 → "p90",
// 0.999 → "p99.9".
func QuantileName(q float64) string {
	return "p" + strconv.FormatFloat(100*q, 'f', -1, 64)
}
