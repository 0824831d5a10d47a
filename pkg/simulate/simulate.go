// Package simulate makes realistic product-analytics traffic for
// experiments whose truth is known: which variant wins, on what metric, in
// which segment. `verdict demo` streams it, and tests use it to check that
// the pipeline finds the truth.
package simulate

import (
	"fmt"
	"math"
	"math/rand/v2"
	"time"

	"github.com/verdictlabs/verdict/pkg/event"
)

// Scenario is one simulated experiment.
type Scenario struct {
	Experiment string
	Variants   []Variant
	Behaviours []Behaviour
	// Segments are the attributes every unit carries, with the share of
	// units for each value, e.g. platform: {ios: .4, android: .4, web: .2}.
	Segments map[string][]Share
	// History, above 0, gives each unit a propensity, log-normal with this
	// spread and mean 1, that scales its behaviours' rates and values, and
	// the same behaviours (untreated) in the MaxDelay before its exposure:
	// the pre-exposure activity CUPED uses (kept that recent so that the
	// demo's event lag still shows the pipeline's).
	History float64
}

// Variant is one arm and the truth of its effect.
type Variant struct {
	Key    string
	Weight float64
	// Lift multiplies a behaviour's rate (proportion-like) and value, by
	// event name; 1.10 is +10%. Absent means no effect.
	Lift map[string]float64
	// SegmentLift applies only to units with the attribute value:
	// "platform=android" → event → lift; it replaces Lift there.
	SegmentLift map[string]map[string]float64
}

// Behaviour is what a unit does after exposure.
type Behaviour struct {
	Event string
	Rate  float64 // probability that a unit does it at all
	Count float64 // mean number of times, given it does it (≥ 1)
	Value float64 // mean value per event; 0 means no value (count events)
	Sigma float64 // log-normal spread of values
}

// Share is a segment value and its share of units.
type Share struct {
	Value string
	Share float64
}

// MaxDelay is the longest time between a unit's exposure and its events.
const MaxDelay = 5 * time.Minute

// Generator turns scenarios into events. It is deterministic for a seed.
type Generator struct {
	rng    *rand.Rand
	seq    uint64 // units made
	events uint64 // events made
	run    string
}

// NewGenerator returns a generator; run makes event and unit ids unique
// across runs.
func NewGenerator(seed uint64, run string) *Generator {
	return &Generator{rng: rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15)), run: run}
}

// Unit simulates one new unit in s: its exposure at ts, then its behaviour
// over the following hours, appended to dst.
func (g *Generator) Unit(dst []event.Event, s *Scenario, ts time.Time) []event.Event {
	g.seq++
	unit := fmt.Sprintf("u-%s-%d", g.run, g.seq)
	keys, values := g.attributes(s)
	v := &s.Variants[g.pick(s.Variants)]
	dst = append(dst, event.Event{
		Type: event.Exposure, ID: g.id(), TS: ts, Unit: unit,
		AttrKeys: keys, AttrValues: values,
		Experiment: s.Experiment, Variant: v.Key,
	})
	propensity := 1.0
	if s.History > 0 {
		propensity = math.Exp(s.History*g.rng.NormFloat64() - s.History*s.History/2)
		for _, b := range s.Behaviours {
			dst = g.behave(dst, b, propensity, unit, keys, values, func() time.Time {
				return ts.Add(-time.Second - time.Duration(g.rng.Int64N(int64(MaxDelay))))
			})
		}
	}
	for _, b := range s.Behaviours {
		dst = g.behave(dst, b, v.lift(b.Event, keys, values)*propensity, unit, keys, values, func() time.Time {
			// Within MaxDelay of the exposure, about a minute on average.
			return ts.Add(min(MaxDelay, time.Duration(g.rng.ExpFloat64()*float64(time.Minute))))
		})
	}
	return dst
}

// behave appends the events of one behaviour of a unit, its rate and mean
// value scaled by lift, at times from at.
func (g *Generator) behave(dst []event.Event, b Behaviour, lift float64, unit string, keys, values []string, at func() time.Time) []event.Event {
	if g.rng.Float64() >= math.Min(1, b.Rate*lift) {
		return dst
	}
	n := 1 + g.poisson(math.Max(0, b.Count-1))
	for range n {
		val := 1.0
		if b.Value > 0 {
			// Log-normal with mean b.Value*lift.
			mu := math.Log(b.Value*lift) - b.Sigma*b.Sigma/2
			val = math.Round(math.Exp(mu+b.Sigma*g.rng.NormFloat64())*100) / 100
		}
		when := at() // before the id: the order of draws keeps seeds' traffic as it was
		dst = append(dst, event.Event{
			Type: event.Track, ID: g.id(), TS: when, Unit: unit,
			AttrKeys: keys, AttrValues: values,
			Name: b.Event, Value: val,
		})
	}
	return dst
}

func (v *Variant) lift(ev string, keys, values []string) float64 {
	for i, k := range keys {
		if m, ok := v.SegmentLift[k+"="+values[i]]; ok {
			if l, ok := m[ev]; ok {
				return l
			}
		}
	}
	if l, ok := v.Lift[ev]; ok {
		return l
	}
	return 1
}

// id numbers the generator's events: unique by construction, within a run
// and (with the run in it) across runs. It still draws the random number
// the ids were once made of, which only made two events of a unit collide
// now and then (JetStream dropped one as a duplicate), so that every seed
// makes the traffic it made.
func (g *Generator) id() string {
	g.rng.Uint64()
	g.events++
	return fmt.Sprintf("e-%s-%d-%d", g.run, g.seq, g.events)
}

func (g *Generator) pick(vs []Variant) int {
	x := g.rng.Float64()
	for i, v := range vs {
		if x < v.Weight {
			return i
		}
		x -= v.Weight
	}
	return len(vs) - 1
}

func (g *Generator) attributes(s *Scenario) (keys, values []string) {
	keys = sortedKeys(s.Segments)
	values = make([]string, len(keys))
	for i, k := range keys {
		x := g.rng.Float64()
		values[i] = s.Segments[k][len(s.Segments[k])-1].Value
		for _, sh := range s.Segments[k] {
			if x < sh.Share {
				values[i] = sh.Value
				break
			}
			x -= sh.Share
		}
	}
	return keys, values
}

func (g *Generator) poisson(lambda float64) int {
	if lambda <= 0 {
		return 0
	}
	l, k, p := math.Exp(-lambda), 0, 1.0
	for {
		p *= g.rng.Float64()
		if p <= l {
			return k
		}
		k++
	}
}

func sortedKeys(m map[string][]Share) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	for i := 1; i < len(keys); i++ {
		for j := i; j > 0 && keys[j] < keys[j-1]; j-- {
			keys[j], keys[j-1] = keys[j-1], keys[j]
		}
	}
	return keys
}
