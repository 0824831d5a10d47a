package stats

import (
	"math/rand/v2"
	"testing"
)

// BenchmarkReadout measures one experiment readout: 100 metrics × 50
// segments, each a control-versus-treatment comparison, and reports
// comparisons per second.
func BenchmarkReadout(b *testing.B) {
	const metrics, segments = 100, 50
	type comparison struct {
		kind               Kind
		control, treatment Arm
	}
	r := rand.New(rand.NewPCG(1, 2))
	kinds := []Kind{Proportion, Mean, Count, Ratio}
	work := make([]comparison, 0, metrics*segments)
	for m := range metrics {
		kind := kinds[m%len(kinds)]
		for range segments {
			n := float64(200 + r.IntN(200000))
			arm := func(lift float64) Arm {
				mean, sd := 3.0*lift, 5.0
				a := Arm{N: n, Sum: n * mean, SumSquares: (n-1)*sd*sd + n*mean*mean}
				switch kind {
				case Proportion:
					a = Arm{N: n, Sum: float64(int(n * 0.1 * lift))}
				case Ratio:
					a.DenSum, a.DenSumSquares, a.SumProducts = 2*n, (n-1)+4*n, (n-1)*0.5*sd+n*mean*2
				}
				return a
			}
			work = append(work, comparison{kind, arm(1), arm(1 + 0.05*r.NormFloat64())})
		}
	}
	for _, mode := range []struct {
		name string
		opt  Options
	}{{"sequential", DefaultOptions()}, {"fixed", Options{Alpha: 0.05}}} {
		b.Run(mode.name, func(b *testing.B) {
			for b.Loop() {
				for _, c := range work {
					if _, err := Compare(c.kind, c.control, c.treatment, mode.opt); err != nil {
						b.Fatal(err)
					}
				}
			}
			b.ReportMetric(float64(b.N*len(work))/b.Elapsed().Seconds(), "comparisons/s")
		})
	}
}
