package simulate

import (
	_ "embed"
	"time"

	"github.com/verdictlabs/verdict/pkg/config"
)

var platforms = map[string][]Share{
	"platform": {{"ios", 0.4}, {"android", 0.4}, {"web", 0.2}},
	"country":  {{"us", 0.5}, {"de", 0.3}, {"br", 0.2}},
}

var shop = []Behaviour{
	{Event: "purchase", Rate: 0.10, Count: 1.2, Value: 40, Sigma: 0.8},
	{Event: "page_load", Rate: 1, Count: 5, Value: 800, Sigma: 0.3},
	{Event: "click", Rate: 0.6, Count: 4},
	{Event: "session_start", Rate: 1, Count: 2},
}

// Demo is the set of experiments `verdict demo` runs, each with a known
// truth.
func Demo() []Scenario {
	half := func(treatment string, lift map[string]float64, seg map[string]map[string]float64) []Variant {
		return []Variant{
			{Key: "control", Weight: 0.5},
			{Key: treatment, Weight: 0.5, Lift: lift, SegmentLift: seg},
		}
	}
	return []Scenario{
		{ // A clear win on purchase conversion.
			Experiment: "checkout-redesign", Segments: platforms, Behaviours: shop,
			Variants: half("one-page", map[string]float64{"purchase": 1.25}, nil),
		},
		{ // More purchases, but pages load 15% slower: a guardrail harm.
			Experiment: "image-carousel", Segments: platforms, Behaviours: shop,
			Variants: half("carousel", map[string]float64{"purchase": 1.05, "page_load": 1.15}, nil),
		},
		{ // Flat overall, a real win on Android only: +30% there, -20% on
			// iOS and the web (40% + 40% + 20% of units: 0.4·30 = 0.6·20).
			Experiment: "dark-mode", Segments: platforms, Behaviours: shop,
			Variants: half("dark", nil, map[string]map[string]float64{
				"platform=android": {"purchase": 1.30},
				"platform=ios":     {"purchase": 0.80},
				"platform=web":     {"purchase": 0.80},
			}),
		},
		{ // No effect at all.
			Experiment: "button-color", Segments: platforms, Behaviours: shop,
			Variants: half("green", nil, nil),
		},
		{ // Returning customers with a history: +20% purchases, found
			// sooner because CUPED removes what each customer's last two
			// weeks already predicted.
			Experiment: "loyalty-banner", Segments: platforms, Behaviours: shop, History: 0.8,
			Variants: half("banner", map[string]float64{"purchase": 1.2}, nil),
		},
		{ // A broken split: 60/40 where 50/50 was configured.
			Experiment: "search-ranking", Segments: platforms, Behaviours: shop,
			Variants: []Variant{{Key: "control", Weight: 0.6}, {Key: "ml-ranker", Weight: 0.4}},
		},
	}
}

//go:embed demo.yaml
var demoYAML []byte

// DemoDefinitions returns the definitions of the Demo experiments, starting
// at start.
func DemoDefinitions(start time.Time) (config.Definitions, error) {
	defs, err := config.Parse("demo.yaml", demoYAML)
	if err != nil {
		return defs, err
	}
	for i := range defs.Experiments {
		defs.Experiments[i].Start = start.UTC().Truncate(time.Second)
	}
	return defs, config.Validate(defs)
}
