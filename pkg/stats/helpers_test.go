package stats

import (
	"encoding/json"
	"math"
	"os"
	"path/filepath"
	"testing"
)

// relTol is how closely every number must agree with the oracle.
const relTol = 1e-9

// header is the first member of every golden file: who produced it.
type header struct {
	Oracle    string `json:"oracle"`
	Generator string `json:"generator"`
	Seed      int64  `json:"seed"`
	Contents  string `json:"contents"`
}

// readGolden reads testdata/name, written by scripts/oracle/stats_oracle.py.
// The files are committed: the tests never need Python. Regenerate them with
// /usr/bin/python3 scripts/oracle/stats_oracle.py.
func readGolden[C any](t *testing.T, name string) (header, []C) {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("testdata", name))
	if err != nil {
		t.Fatalf("read golden file: %v", err)
	}
	var g struct {
		Header header `json:"header"`
		Cases  []C    `json:"cases"`
	}
	if err := json.Unmarshal(b, &g); err != nil {
		t.Fatalf("decode %s: %v", name, err)
	}
	if g.Header.Oracle == "" || len(g.Cases) == 0 {
		t.Fatalf("%s: no oracle named or no cases", name)
	}
	t.Logf("%s: %d cases from %s (%s, seed %d)", name, len(g.Cases), g.Header.Oracle, g.Header.Generator, g.Header.Seed)
	return g.Header, g.Cases
}

// approxEqual reports whether got agrees with want to relTol, relative to the
// larger of |want| and scale (the natural size of the quantity, e.g. the
// standard error for an interval bound that happens to sit near 0).
func approxEqual(got, want, scale float64) bool {
	if got == want {
		return true
	}
	return math.Abs(got-want) <= relTol*math.Max(math.Abs(want), scale)
}

// requireClose fails the test unless got agrees with want (see approxEqual).
func requireClose(t *testing.T, expr string, got, want, scale float64) {
	t.Helper()
	if !approxEqual(got, want, scale) {
		t.Errorf("%s = %.17g, want %.17g (relative error %.2g)", expr, got, want, math.Abs(got-want)/math.Max(math.Abs(want), scale))
	}
}

// requireNoError stops the test on an unexpected error.
func requireNoError(t *testing.T, expr string, err error) {
	t.Helper()
	if err != nil {
		t.Fatalf("%s: unexpected error %v", expr, err)
	}
}
