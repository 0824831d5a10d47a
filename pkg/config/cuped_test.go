package config

import (
	"testing"
	"time"
)

// TestCUPEDLookback: CUPED is on by default with a 14-day lookback, a
// metric can shorten or lengthen it, and enabled: false turns it off.
func TestCUPEDLookback(t *testing.T) {
	defs, err := Parse("cuped.yaml", []byte(`metrics:
  - {key: a, kind: proportion, event: e}
  - {key: b, kind: mean, event: e, cuped: {lookback: 7d}}
  - {key: c, kind: ratio, numerator: {event: e}, denominator: {event: f}, cuped: {enabled: false}}
  - {key: d, kind: count, event: e, cuped: {enabled: true}}
`))
	if err != nil {
		t.Fatal(err)
	}
	day := 24 * time.Hour
	for i, want := range []time.Duration{14 * day, 7 * day, 0, 14 * day} {
		if got := defs.Metrics[i].CUPEDLookback(); got != want {
			t.Errorf("metric %s: lookback %v, want %v", defs.Metrics[i].Key, got, want)
		}
	}
}
