package config

import (
	"time"

	"github.com/verdictlabs/verdict/pkg/stats"
)

// Definitions is the content of a definitions file, and of the KV bucket.
type Definitions struct {
	Metrics     []Metric     `json:"metrics,omitempty"`
	Experiments []Experiment `json:"experiments,omitempty"`
	// Refused are the stored experiments Load left out because they fail
	// validation, by key, with why: what reaches the bucket other than by
	// Apply is checked again (and capped) before anything acts on it.
	Refused map[string]error `json:"-"`
}

// Aggregate says how a unit's events become its value.
type Aggregate string

const (
	Sum   Aggregate = "sum"   // sum of the events' value (default)
	Count Aggregate = "count" // number of events
)

// Direction says which way a metric is better.
type Direction string

const (
	Increase Direction = "increase" // higher is better (default)
	Decrease Direction = "decrease" // lower is better, e.g. load time
)

// Metric defines how a per-unit value is computed from track events.
//
//   - proportion: 1 if the unit has at least one Event, else 0.
//   - mean: the unit's Aggregate of Event (0 for units without events).
//   - count: the unit's number of Event.
//   - ratio: Σ numerator over Σ denominator across units, each a per-unit
//     Aggregate of its own event.
//   - quantile: the Quantile (0.9: the 90th percentile) of each counted
//     Event's value (Level event, units as clusters) or of the units'
//     Aggregate of Event (Level unit, 0 for units without events).
//
// Parse fills in what a file leaves out: Direction increase; Aggregate sum
// for mean, count for count and sum for a unit-level quantile (proportion,
// ratio and an event-level quantile have none: a ratio's parts carry their
// own, sum by default); Level event for a quantile.
type Metric struct {
	Key         string     `json:"key"`
	Kind        stats.Kind `json:"kind"`
	Event       string     `json:"event,omitempty"`
	Aggregate   Aggregate  `json:"aggregate,omitempty"`
	Numerator   *Part      `json:"numerator,omitempty"`
	Denominator *Part      `json:"denominator,omitempty"`
	Cap         *Cap       `json:"cap,omitempty"`
	Direction   Direction  `json:"direction,omitempty"`
	// Quantile is a quantile metric's level, in (0, 1); Level says over
	// what: LevelEvent or LevelUnit.
	Quantile float64 `json:"quantile,omitempty"`
	Level    Level   `json:"level,omitempty"`
	// CUPED reduces the metric's variance with the same metric computed
	// over each unit's events before its first exposure. nil is the
	// default: on, with a 14-day lookback.
	CUPED *CUPED `json:"cuped,omitempty"`
}

// CUPED is a metric's variance reduction by its pre-exposure value.
type CUPED struct {
	Enabled  *bool    `json:"enabled,omitempty"`  // default true
	Lookback Duration `json:"lookback,omitempty"` // default 14d
}

// DefaultCUPEDLookback is how far before its first exposure a unit's
// events make the metric's covariate, unless the metric says otherwise (as
// GrowthBook's default).
const DefaultCUPEDLookback = Duration(14 * 24 * time.Hour)

// MaxCUPEDLookback bounds the lookback: ingest accepts events at most 30
// days old, and a longer lookback reads more events for little gain.
const MaxCUPEDLookback = Duration(90 * 24 * time.Hour)

// Level is what a quantile metric is a quantile of.
type Level string

const (
	// LevelEvent: of each counted event's value; a unit's events are a
	// cluster.
	LevelEvent Level = "event"
	// LevelUnit: of the units' values (the metric's aggregate per unit).
	LevelUnit Level = "unit"
)

// EventQuantile reports whether m is a quantile of events' values.
func (m Metric) EventQuantile() bool { return m.Kind == stats.Quantile && m.Level != LevelUnit }

// CUPEDLookback is the metric's covariate lookback, 0 when CUPED is off.
// A quantile metric has no CUPED.
func (m Metric) CUPEDLookback() time.Duration {
	if m.Kind == stats.Quantile {
		return 0
	}
	if m.CUPED == nil {
		return time.Duration(DefaultCUPEDLookback)
	}
	if m.CUPED.Enabled != nil && !*m.CUPED.Enabled {
		return 0
	}
	if m.CUPED.Lookback == 0 {
		return time.Duration(DefaultCUPEDLookback)
	}
	return time.Duration(m.CUPED.Lookback)
}

// Part is the numerator or the denominator of a ratio metric.
type Part struct {
	Event     string    `json:"event"`
	Aggregate Aggregate `json:"aggregate,omitempty"`
}

// Cap winsorises per-unit values at a percentile of their distribution
// (over all units of the experiment), computed in ClickHouse.
type Cap struct {
	Percentile float64 `json:"percentile"`
}

// Notify lists an experiment's notification targets besides email.
type Notify struct {
	Slack    []string `json:"slack,omitempty"`    // Slack incoming-webhook URLs
	Webhooks []string `json:"webhooks,omitempty"` // URLs that get the readout JSON, signed
}

// Variant is one arm of an experiment and its share of units.
type Variant struct {
	Key    string  `json:"key"`
	Weight float64 `json:"weight"`
}

// Guardrail is a metric that must not get worse than Margin, relative to
// the control mean (0.05: at most 5% worse).
type Guardrail struct {
	Metric string  `json:"metric"`
	Margin float64 `json:"margin"`
}

// Experiment is one experiment's definition. Parse fills in Alpha 0.05,
// Power 0.8, Sequential true, Tuning 5000, MinUnits 100 and
// AttributionWindow 7d when a
// file leaves them out, and even weights when no variant has one. Times
// are kept in UTC.
type Experiment struct {
	Key        string   `json:"key"`
	Name       string   `json:"name,omitempty"`
	Hypothesis string   `json:"hypothesis,omitempty"`
	Owners     []string `json:"owners,omitempty"`
	// Notify says where decisions go besides the owners' email: Slack
	// incoming webhooks and generic webhooks. nil: the notifier's defaults
	// (VERDICT_SLACK_WEBHOOKS, VERDICT_WEBHOOKS).
	Notify     *Notify     `json:"notify,omitempty"`
	Variants   []Variant   `json:"variants"`
	Control    string      `json:"control"`
	Primary    []string    `json:"primary"`
	Secondary  []string    `json:"secondary,omitempty"`
	Guardrails []Guardrail `json:"guardrails,omitempty"`
	Segments   []string    `json:"segments,omitempty"`

	MDE        float64 `json:"mde"`              // relative minimum detectable effect of the primary
	Alpha      float64 `json:"alpha"`            // default 0.05
	Power      float64 `json:"power"`            // default 0.8
	Sequential bool    `json:"sequential"`       // default true
	Tuning     float64 `json:"tuning,omitempty"` // confidence-sequence N*, default 5000
	// Engine is the statistics engine: EngineFrequentist (the default,
	// "" in a Go value) or EngineBayesian, GrowthBook's Gaussian effect
	// model. Under the Bayesian engine Sequential and Tuning do not apply.
	Engine string `json:"engine,omitempty"`
	// Prior is the Bayesian engine's prior on the relative effect; nil is
	// GrowthBook's default, flat (improper).
	Prior *Prior `json:"prior,omitempty"`
	// MinUnits is the fewest units every variant needs before the
	// experiment can get a label (default 100): below it, it is collecting.
	// 0 means the default.
	MinUnits int64 `json:"min_units,omitempty"`

	AttributionWindow Duration   `json:"attribution_window"` // default 7d
	Start             time.Time  `json:"start"`
	End               *time.Time `json:"end,omitempty"`
}

// The statistics engines of Experiment.Engine.
const (
	EngineFrequentist = "frequentist"
	EngineBayesian    = "bayesian"
)

// Prior is a Gaussian prior on the relative effect, as GrowthBook's
// GaussianPrior: Variance 1 when a file leaves it out, and used only when
// Proper.
type Prior struct {
	Mean     float64 `json:"mean"`
	Variance float64 `json:"variance"`
	Proper   bool    `json:"proper"`
}

// Bayesian reports whether the experiment uses the Bayesian engine.
func (e Experiment) Bayesian() bool { return e.Engine == EngineBayesian }

// Duration is a time.Duration written as Go does ("36h", "90m") or in
// whole days ("7d").
type Duration time.Duration

// Metric returns the metric of that key.
func (d Definitions) Metric(key string) (Metric, bool) {
	for _, m := range d.Metrics {
		if m.Key == key {
			return m, true
		}
	}
	return Metric{}, false
}

// Experiment returns the experiment of that key.
func (d Definitions) Experiment(key string) (Experiment, bool) {
	for _, e := range d.Experiments {
		if e.Key == key {
			return e, true
		}
	}
	return Experiment{}, false
}

// Where definitions are stored (pkg/configstore): the NATS KV bucket
// Bucket, whose key metric.<key> holds a Metric's JSON and
// experiment.<key> an Experiment's. Problems with a stored definition
// name it by its bucket and key.
const (
	Bucket           = "verdict_config"
	MetricPrefix     = "metric."
	ExperimentPrefix = "experiment."
)
