package config

import (
	"errors"
	"math"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

// TestValidate changes one thing of a valid set of definitions and checks
// which paths Validate complains about (the messages are in bad.golden).
func TestValidate(t *testing.T) {
	tests := []struct {
		name   string
		change func(*Definitions)
		want   []string // paths of the problems
	}{
		{"valid", func(*Definitions) {}, nil},
		{"metric key", func(d *Definitions) { d.Metrics[0].Key = "Conv" }, []string{"metrics[0].key", "experiments[0].primary[0]"}},
		{"duplicate metric", func(d *Definitions) { d.Metrics[1].Key = "conversion" }, []string{"metrics[1].key"}},
		{"unknown kind", func(d *Definitions) { d.Metrics[1].Kind = "median" }, []string{"metrics[1].kind"}},
		{"mean without aggregate", func(d *Definitions) { d.Metrics[1].Aggregate = "" }, []string{"metrics[1].aggregate"}},
		{"no direction", func(d *Definitions) { d.Metrics[1].Direction = "" }, []string{"metrics[1].direction"}},
		{"ratio part", func(d *Definitions) { d.Metrics[3].Numerator.Event = "" }, []string{"metrics[3].numerator.event"}},
		{"cap NaN", func(d *Definitions) { d.Metrics[1].Cap = &Cap{math.NaN()} }, []string{"metrics[1].cap.percentile"}},
		{"weights", func(d *Definitions) { d.Experiments[0].Variants[1].Weight = 0.5 + 2e-9 }, []string{"experiments[0].variants"}},
		{"weights within 1e-9", func(d *Definitions) { d.Experiments[0].Variants[1].Weight = 0.5 + 5e-10 }, nil},
		{"weight NaN", func(d *Definitions) { d.Experiments[0].Variants[1].Weight = math.NaN() }, []string{"experiments[0].variants[1].weight"}},
		{"control", func(d *Definitions) { d.Experiments[0].Control = "ctl" }, []string{"experiments[0].control"}},
		{"control weight 0", func(d *Definitions) {
			d.Experiments[0].Variants = []Variant{{"control", 0}, {"treatment", 1}}
		}, []string{"experiments[0].variants[0].weight"}},
		{"unknown secondary", func(d *Definitions) { d.Experiments[0].Secondary = []string{"revenu"} }, []string{"experiments[0].secondary[0]"}},
		{"guardrail margin inf", func(d *Definitions) {
			d.Experiments[0].Guardrails = []Guardrail{{"revenue", math.Inf(1)}}
		}, []string{"experiments[0].guardrails[0].margin"}},
		{"alpha and power", func(d *Definitions) { d.Experiments[0].Alpha, d.Experiments[0].Power = 0, 0 }, []string{"experiments[0].alpha", "experiments[0].power"}},
		{"zero window", func(d *Definitions) { d.Experiments[0].AttributionWindow = 0 }, []string{"experiments[0].attribution_window"}},
		{"no start", func(d *Definitions) { d.Experiments[0].Start = time.Time{} }, []string{"experiments[0].start"}},
		{"end equals start", func(d *Definitions) { d.Experiments[0].End = &d.Experiments[0].Start }, []string{"experiments[0].end"}},
		{"long hypothesis", func(d *Definitions) { d.Experiments[0].Hypothesis = strings.Repeat("é", MaxHypothesisLen+1) }, []string{"experiments[0].hypothesis"}},
		{"hypothesis at the limit", func(d *Definitions) { d.Experiments[0].Hypothesis = strings.Repeat("é", MaxHypothesisLen) }, nil},
		{"owner", func(d *Definitions) { d.Experiments[0].Owners = []string{"pm@example"} }, []string{"experiments[0].owners[0]"}},
		{"guardrail is primary", func(d *Definitions) {
			d.Experiments[0].Guardrails = []Guardrail{{"conversion", 0.1}}
		}, []string{"experiments[0].guardrails[0].metric"}},
		{"bayesian", func(d *Definitions) {
			d.Experiments[0].Engine, d.Experiments[0].Prior = EngineBayesian, &Prior{Mean: 0.01, Variance: 0.01, Proper: true}
		}, nil},
		{"quantile", func(d *Definitions) {
			d.Metrics[1] = Metric{Key: d.Metrics[1].Key, Kind: "quantile", Event: "purchase", Quantile: 0.9, Level: LevelEvent, Direction: Increase}
		}, nil},
		{"unit quantile", func(d *Definitions) {
			d.Metrics[1] = Metric{Key: d.Metrics[1].Key, Kind: "quantile", Event: "purchase", Aggregate: Count, Quantile: 0.5, Level: LevelUnit, Direction: Increase}
		}, nil},
		{"quantile mistakes", func(d *Definitions) {
			on := true
			d.Metrics[1] = Metric{Key: d.Metrics[1].Key, Kind: "quantile", Event: "purchase", Aggregate: Sum, Quantile: 1, Level: LevelEvent, Direction: Increase,
				Cap: &Cap{0.99}, CUPED: &CUPED{Enabled: &on}}
		}, []string{"metrics[1].aggregate", "metrics[1].quantile", "metrics[1].cuped", "metrics[1].cap"}},
		{"quantile level", func(d *Definitions) {
			d.Metrics[1] = Metric{Key: d.Metrics[1].Key, Kind: "quantile", Event: "purchase", Quantile: 0.9, Level: "user", Direction: Increase}
		}, []string{"metrics[1].level"}},
		{"quantile of a mean", func(d *Definitions) { d.Metrics[1].Quantile, d.Metrics[1].Level = 0.9, LevelUnit }, []string{"metrics[1].quantile", "metrics[1].level"}},
		{"unknown engine", func(d *Definitions) { d.Experiments[0].Engine = "bayes" }, []string{"experiments[0].engine"}},
		{"prior without bayesian", func(d *Definitions) { d.Experiments[0].Prior = &Prior{Variance: 1} }, []string{"experiments[0].prior"}},
		{"prior variance 0", func(d *Definitions) {
			d.Experiments[0].Engine, d.Experiments[0].Prior = EngineBayesian, &Prior{Variance: 0, Proper: true}
		}, []string{"experiments[0].prior"}},
		{"duplicate experiment", func(d *Definitions) {
			d.Experiments = append(d.Experiments, d.Experiments[0])
		}, []string{"experiments[1].key"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			d := minimalDefs()
			tt.change(&d)
			err := Validate(d)
			var got []string
			if err != nil {
				var ps Problems
				if !errors.As(err, &ps) {
					t.Fatalf("Validate error %T, want Problems", err)
				}
				for _, p := range ps {
					if p.Pos != (Pos{}) {
						t.Errorf("problem %q has a position, want none", p)
					}
					got = append(got, p.Path)
				}
			}
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("Validate problem paths (-want +got):\n%s\n%v", diff, err)
			}
		})
	}
}

// TestValidateFiles checks that an experiment may use a metric of another
// file, and that each problem is placed in its own file.
func TestValidateFiles(t *testing.T) {
	metrics, err := ParseFile("metrics.yaml", []byte("metrics:\n  - {key: conversion, kind: proportion, event: purchase}\n"))
	if err != nil {
		t.Fatal(err)
	}
	exps, err := ParseFile("exps.yaml", []byte(strings.Replace(minimalYAML[strings.Index(minimalYAML, "experiments:"):], "mde: 0.03", "mde: -1", 1)))
	if err != nil {
		t.Fatal(err)
	}
	err = ValidateFiles(metrics, exps)
	want := "exps.yaml:6:10: experiments[0].mde: mde -1 must be a relative effect above 0: write e.g. 0.03 to detect a 3% change of the primary metric"
	if err == nil || err.Error() != want {
		t.Errorf("ValidateFiles = %v, want %s", err, want)
	}
	if err := ValidateFiles(exps); err == nil || !strings.Contains(err.Error(), `unknown metric "conversion"`) {
		t.Errorf("ValidateFiles(exps alone) = %v, want an unknown metric", err)
	}
}
