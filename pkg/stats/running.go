package stats

// Running is what a confidence sequence has shown so far across looks: the
// intersection of its intervals and the smallest always-valid p-value. An
// always-valid interval covers the true effect at every look at once (with
// probability 1 − alpha), so the intersection of all of them covers it too:
// it is still a confidence sequence, and a tighter one, whose intervals only
// ever shrink. Likewise the running minimum of the always-valid p-value is
// still always valid. Read this way, a significant result stays significant
// at the next look, and a readout cannot lose a decision to noise.
//
// Only sequential results may be intersected: a fixed-horizon interval
// holds at one planned look, not at all of them.
type Running struct {
	Lo, Hi       float64 // absolute interval
	RelLo, RelHi float64 // relative interval, when RelDefined
	RelDefined   bool
	PValue       float64
}

// RunningOf starts a running record at one result.
func RunningOf(r Result) Running {
	return Running{Lo: r.AbsCI.Lo, Hi: r.AbsCI.Hi, RelLo: r.RelCI.Lo, RelHi: r.RelCI.Hi, RelDefined: r.RelDefined, PValue: r.PValue}
}

// Intersect narrows r, a sequential result of this look, by what earlier
// looks showed, and returns the narrowed result and the record to keep for
// the next look. An empty intersection means the estimand moved under the
// sequence — a definition changed, or late data rewrote the past — rather
// than that every interval covered it: the record then starts again from r.
// The point estimate is this look's own; it can fall outside the narrowed
// interval when the estimate wanders back towards an edge it had left.
func Intersect(prev Running, r Result) (Result, Running) {
	lo, hi := max(prev.Lo, r.AbsCI.Lo), min(prev.Hi, r.AbsCI.Hi)
	if lo > hi {
		return r, RunningOf(r)
	}
	out := r
	out.AbsCI = Interval{lo, hi}
	out.PValue = min(prev.PValue, r.PValue)
	out.Significant = out.AbsCI.Excludes(0)
	if r.RelDefined && prev.RelDefined {
		rlo, rhi := max(prev.RelLo, r.RelCI.Lo), min(prev.RelHi, r.RelCI.Hi)
		if rlo <= rhi {
			out.RelCI = Interval{rlo, rhi}
		}
	}
	return out, RunningOf(out)
}
