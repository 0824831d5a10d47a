package simulate

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
		{ // Flat overall, a real win on Android only.
			Experiment: "dark-mode", Segments: platforms, Behaviours: shop,
			Variants: half("dark", nil, map[string]map[string]float64{"platform=android": {"purchase": 1.45}}),
		},
		{ // No effect at all.
			Experiment: "button-color", Segments: platforms, Behaviours: shop,
			Variants: half("green", nil, nil),
		},
		{ // A broken split: 60/40 where 50/50 was configured.
			Experiment: "search-ranking", Segments: platforms, Behaviours: shop,
			Variants: []Variant{{Key: "control", Weight: 0.6}, {Key: "ml-ranker", Weight: 0.4}},
		},
	}
}
