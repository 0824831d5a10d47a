package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"strconv"
	"strings"

	"github.com/verdictlabs/verdict/pkg/stats"
)

// maxStatsLine bounds one input line of verdict stats; a longer line gets an
// error line of its own and the rest go on.
const maxStatsLine = 1 << 20

// runStats is "verdict stats": it reads comparisons as NDJSON on stdin and
// writes one result line per input line on stdout, as DESIGN.md fixes. The
// README's "verdict stats" section documents every field; in short:
//
//	in:  {"kind": "mean"|"count"|"proportion"|"ratio"|"quantile", "alpha": 0.05,
//	      "sequential": true, "tuning": 5000, "engine": "frequentist"|"bayesian",
//	      "prior": {"mean", "variance", "proper"}, "inverse": false,
//	      "control": ARM, "treatment": ARM}
//	     ARM = {"n", "sum", "sum_squares", ["den_sum", "den_sum_squares", "sum_products"],
//	            ["pre_sum", "pre_sum_squares", "sum_pre_products"]}
//	         | {"n", "n_star", "nu", "quantile_hat", "quantile_lower", "quantile_upper",
//	            ["main_sum", "main_sum_squares", "denominator_sum",
//	             "denominator_sum_squares", "main_denominator_sum_product", "n_clusters"]}
//	     {"kind": "srm", "observed": [...], "weights": [...], "sequential": false, "concentration": 10000}
//	out: {"abs_effect", "abs_ci": [lo, hi], "rel_effect", "rel_ci": [lo, hi], "p_value", "significant",
//	      ["cuped": {"theta", "variance_reduction"}], ["chance_to_win", "risk": [control, treatment]]}
//	     {"p_value"} for srm
//
// Absent options take the defaults: alpha 0.05, the frequentist engine,
// sequential true for every comparison kind, tuning 5000; absent srm
// weights mean equal weights. An srm line is Pearson's chi-square test
// unless "sequential" is true: then it is the always-valid sequential test
// of Lindon & Malek (2022), with "concentration" 10000 by default
// (stats.SequentialSRM). An unknown field, or a field the kind does not
// use, is an error. When the control mean is 0 the relative effect is
// undefined: rel_effect and rel_ci are null and a "warning" says why. An
// SRM with an arm under 8 units still gets its p_value, with a "not enough
// traffic" warning. A line that cannot be computed gets
// {"error": "line N: ..."} and the rest go on; the command then fails at
// the end, saying how many lines did. Blank lines are skipped. Numbers are
// printed with full precision.
func runStats(ctx context.Context, args []string, getenv func(string) string, stdin io.Reader, stdout, stderr io.Writer) error {
	_ = getenv // nothing to configure from the environment
	fs := flag.NewFlagSet("stats", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() {
		fmt.Fprintln(stderr, "usage: verdict stats < comparisons.ndjson\n\nOne JSON comparison per line in, one JSON result per line out (see the README, \"verdict stats\").")
	}
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return nil
		}
		return err
	}
	if fs.NArg() > 0 {
		fs.Usage()
		return fmt.Errorf("stats: unexpected argument %q: input comes on stdin", fs.Arg(0))
	}

	in := bufio.NewReaderSize(stdin, 64<<10)
	out := bufio.NewWriter(stdout)
	failed, lines := 0, 0
	for lineNo := 1; ; lineNo++ {
		if err := ctx.Err(); err != nil {
			out.Flush() // what was answered stays answered
			return err
		}
		line, tooLong, err := readLine(in, maxStatsLine)
		if len(bytes.TrimSpace(line)) > 0 || tooLong {
			var result []byte
			ok := false
			if tooLong {
				result = errorLine(lineNo, fmt.Errorf("line longer than %d bytes", maxStatsLine))
			} else {
				result, ok = statsLine(lineNo, line)
			}
			lines++
			if !ok {
				failed++
			}
			if _, werr := out.Write(result); werr != nil {
				return fmt.Errorf("write result: %w", werr)
			}
		}
		// Flush whenever the input has nothing buffered, so that an
		// interactive producer sees each answer before sending more.
		if in.Buffered() == 0 || err != nil {
			if ferr := out.Flush(); ferr != nil {
				return fmt.Errorf("write result: %w", ferr)
			}
		}
		if err == io.EOF {
			if failed > 0 {
				return fmt.Errorf("stats: %d of %d lines could not be computed (their output lines say why)", failed, lines)
			}
			return nil
		}
		if err != nil {
			return fmt.Errorf("read comparisons: %w", err)
		}
	}
}

// readLine returns the next line without its line ending. A line longer than
// max is consumed and reported with tooLong. err is io.EOF after the last line.
func readLine(r *bufio.Reader, max int) (line []byte, tooLong bool, err error) {
	for {
		chunk, err := r.ReadSlice('\n')
		if len(line)+len(chunk) > max+2 {
			tooLong = true
		}
		if !tooLong {
			line = append(line, chunk...)
		}
		if errors.Is(err, bufio.ErrBufferFull) {
			continue
		}
		if tooLong {
			line = nil
		}
		line = bytes.TrimRight(line, "\r\n")
		return line, tooLong, err
	}
}

// statsArm is an ARM on the wire. Pointers tell absent from zero.
type statsArm struct {
	N             *float64 `json:"n"`
	Sum           *float64 `json:"sum"`
	SumSquares    *float64 `json:"sum_squares"`
	DenSum        *float64 `json:"den_sum"`
	DenSumSquares *float64 `json:"den_sum_squares"`
	SumProducts   *float64 `json:"sum_products"`

	// CUPED: the covariate x0 per unit, Σx0, Σx0², Σx·x0.
	PreSum         *float64 `json:"pre_sum"`
	PreSumSquares  *float64 `json:"pre_sum_squares"`
	SumPreProducts *float64 `json:"sum_pre_products"`

	// Quantile: GrowthBook's QuantileStatistic, and for event level its
	// QuantileClusteredStatistic's per-unit sums.
	NStar                     *float64 `json:"n_star"`
	Nu                        *float64 `json:"nu"`
	QuantileHat               *float64 `json:"quantile_hat"`
	QuantileLower             *float64 `json:"quantile_lower"`
	QuantileUpper             *float64 `json:"quantile_upper"`
	MainSum                   *float64 `json:"main_sum"`
	MainSumSquares            *float64 `json:"main_sum_squares"`
	DenominatorSum            *float64 `json:"denominator_sum"`
	DenominatorSumSquares     *float64 `json:"denominator_sum_squares"`
	MainDenominatorSumProduct *float64 `json:"main_denominator_sum_product"`
	NClusters                 *float64 `json:"n_clusters"`
}

// armField is one wire field of an ARM.
type armField struct {
	key string
	v   *float64
}

// fields lists every field of the ARM in wire order.
func (a *statsArm) fields() []armField {
	return []armField{
		{"n", a.N}, {"sum", a.Sum}, {"sum_squares", a.SumSquares},
		{"den_sum", a.DenSum}, {"den_sum_squares", a.DenSumSquares}, {"sum_products", a.SumProducts},
		{"pre_sum", a.PreSum}, {"pre_sum_squares", a.PreSumSquares}, {"sum_pre_products", a.SumPreProducts},
		{"n_star", a.NStar}, {"nu", a.Nu}, {"quantile_hat", a.QuantileHat},
		{"quantile_lower", a.QuantileLower}, {"quantile_upper", a.QuantileUpper},
		{"main_sum", a.MainSum}, {"main_sum_squares", a.MainSumSquares},
		{"denominator_sum", a.DenominatorSum}, {"denominator_sum_squares", a.DenominatorSumSquares},
		{"main_denominator_sum_product", a.MainDenominatorSumProduct}, {"n_clusters", a.NClusters},
	}
}

// The groups of ARM fields: what each kind requires, and the optional
// groups it takes whole or not at all.
var (
	cupedFields     = []string{"pre_sum", "pre_sum_squares", "sum_pre_products"}
	quantileFields  = []string{"n", "n_star", "nu", "quantile_hat", "quantile_lower", "quantile_upper"}
	clusteredFields = []string{"main_sum", "main_sum_squares", "denominator_sum", "denominator_sum_squares", "main_denominator_sum_product", "n_clusters"}
)

func requiredFields(kind string) []string {
	switch kind {
	case string(stats.Proportion):
		return []string{"n", "sum"}
	case string(stats.Ratio):
		return []string{"n", "sum", "sum_squares", "den_sum", "den_sum_squares", "sum_products"}
	case quantileKind:
		return quantileFields
	}
	return []string{"n", "sum", "sum_squares"}
}

func optionalGroups(kind string) [][]string {
	switch kind {
	case string(stats.Mean), string(stats.Count), string(stats.Proportion):
		return [][]string{cupedFields}
	case quantileKind:
		return [][]string{clusteredFields}
	}
	return nil
}

// wireArm is an ARM checked against its kind: the values by key, and which
// optional groups it has.
type wireArm struct {
	v      map[string]float64
	groups []bool // parallel to optionalGroups(kind)
}

// check returns the ARM's values, refusing a missing required field, a
// field the kind does not take, and half an optional group.
func (a *statsArm) check(kind, name string) (wireArm, error) {
	if a == nil {
		return wireArm{}, fmt.Errorf("%q is missing", name)
	}
	w := wireArm{v: map[string]float64{}}
	allowed := map[string]bool{}
	for _, k := range requiredFields(kind) {
		allowed[k] = true
	}
	groups := optionalGroups(kind)
	for _, g := range groups {
		for _, k := range g {
			allowed[k] = true
		}
	}
	for _, f := range a.fields() {
		if f.v == nil {
			continue
		}
		if !allowed[f.key] {
			return wireArm{}, fmt.Errorf("%s: %q is not an input of a %s arm (it takes %s)", name, f.key, kind, takes(kind))
		}
		w.v[f.key] = *f.v
	}
	for _, k := range requiredFields(kind) {
		if _, ok := w.v[k]; !ok {
			return wireArm{}, fmt.Errorf("%s: %q is missing (a %s arm needs %s)", name, k, kind, strings.Join(requiredFields(kind), ", "))
		}
	}
	for _, g := range groups {
		n := 0
		for _, k := range g {
			if _, ok := w.v[k]; ok {
				n++
			}
		}
		if n > 0 && n < len(g) {
			return wireArm{}, fmt.Errorf("%s: %s go together: give all of them or none", name, strings.Join(g, ", "))
		}
		w.groups = append(w.groups, n == len(g))
	}
	return w, nil
}

func takes(kind string) string {
	s := strings.Join(requiredFields(kind), ", ")
	for _, g := range optionalGroups(kind) {
		s += " and optionally " + strings.Join(g, ", ")
	}
	return s
}

// statsRequest is one input line.
type statsRequest struct {
	Kind       string    `json:"kind"`
	Alpha      *float64  `json:"alpha"`
	Sequential *bool     `json:"sequential"`
	Tuning     *float64  `json:"tuning"`
	Engine     *string   `json:"engine"`
	Prior      *prior    `json:"prior"`
	Inverse    *bool     `json:"inverse"`
	Control    *statsArm `json:"control"`
	Treatment  *statsArm `json:"treatment"`
	Observed   []float64 `json:"observed"`
	Weights    []float64 `json:"weights"`
	// Concentration is the sequential SRM test's Dirichlet concentration.
	Concentration *float64 `json:"concentration"`
}

// prior is GrowthBook's GaussianPrior on the wire: absent fields take its
// defaults (mean 0, variance 1, improper).
type prior struct {
	Mean     *float64 `json:"mean"`
	Variance *float64 `json:"variance"`
	Proper   *bool    `json:"proper"`
}

func (p *prior) prior() stats.Prior {
	out := stats.DefaultPrior()
	if p == nil {
		return out
	}
	if p.Mean != nil {
		out.Mean = *p.Mean
	}
	if p.Variance != nil {
		out.Variance = *p.Variance
	}
	if p.Proper != nil {
		out.Proper = *p.Proper
	}
	return out
}

// The "kind" of a sample-ratio-mismatch line and of a quantile comparison;
// the engines.
const (
	srmKind      = "srm"
	quantileKind = "quantile"
	frequentist  = "frequentist"
	bayesian     = "bayesian"
)

// statsLine computes one input line and returns its output line, newline
// included: a result or an error, never both; ok is false for an error.
func statsLine(lineNo int, line []byte) ([]byte, bool) {
	b, err := computeLine(line)
	if err != nil {
		return errorLine(lineNo, err), false
	}
	return b, true
}

func computeLine(line []byte) ([]byte, error) {
	req, err := decodeStatsRequest(line)
	if err != nil {
		return nil, err
	}
	if req.Kind == srmKind {
		return srmLine(req)
	}
	control, err := req.Control.check(req.Kind, "control")
	if err != nil {
		return nil, err
	}
	treatment, err := req.Treatment.check(req.Kind, "treatment")
	if err != nil {
		return nil, err
	}
	alpha := stats.DefaultAlpha
	if req.Alpha != nil {
		alpha = *req.Alpha
	}

	// The arms' estimates, CUPED-adjusted when both arms carry a covariate.
	var (
		c, t   stats.Estimate
		mc0    float64 // the control's unadjusted mean
		cuped  *stats.CUPED
		result stats.Result
	)
	opt := stats.DefaultOptions()
	opt.Alpha = alpha
	if req.Sequential != nil {
		opt.Sequential = *req.Sequential
	}
	if req.Tuning != nil {
		opt.Tuning = *req.Tuning
	}
	isBayes := req.Engine != nil && *req.Engine == bayesian
	if isBayes {
		// The Bayesian engine has no sequential test; its estimates are
		// the same whatever opt.Sequential says.
		opt.Sequential = false
	}
	if req.Kind == quantileKind {
		qc, qt := quantileArm(control), quantileArm(treatment)
		if qc.Nu != qt.Nu {
			return nil, fmt.Errorf("the arms' nu differ (%g, %g): compare the same quantile", qc.Nu, qt.Nu)
		}
		if qc.Clustered != qt.Clustered {
			return nil, errors.New("one arm is event level (clustered) and the other not: give main_sum… n_clusters for both or neither")
		}
		if isBayes {
			if c, err = stats.SummarizeQuantile(qc); err == nil {
				t, err = stats.SummarizeQuantile(qt)
			}
		} else {
			result, err = stats.CompareQuantile(qc, qt, opt)
			c, t = result.Control, result.Treatment
		}
		mc0 = c.Mean
	} else {
		kind := stats.Kind(req.Kind)
		ca, ta := plainArm(kind, control), plainArm(kind, treatment)
		hasPre := len(control.groups) > 0 && control.groups[0]
		if hasPre != (len(treatment.groups) > 0 && treatment.groups[0]) {
			return nil, errors.New("only one arm has CUPED fields (pre_sum, pre_sum_squares, sum_pre_products): give them for both or neither")
		}
		if hasPre {
			var cu stats.CUPED
			result, cu, err = stats.CompareCUPED(kind, ca, ta, preOf(control), preOf(treatment), opt)
			cuped = &cu
			mc0 = ca.Sum / ca.N
		} else {
			result, err = stats.Compare(kind, ca, ta, opt)
			mc0 = result.Control.Mean
		}
		c, t = result.Control, result.Treatment
	}
	if isBayes && (errors.Is(err, stats.ErrNoVariance) || control.v["n"] < 2 || treatment.v["n"] < 2) {
		// GrowthBook answers a comparison it cannot make (no variance,
		// no units) with its uninformative posterior, and so does this.
		err, c, t = nil, stats.Estimate{}, stats.Estimate{}
	}
	if err != nil {
		return nil, err
	}

	var b []byte
	if isBayes {
		bo := stats.BayesOptions{Alpha: alpha, Prior: req.Prior.prior(), Inverse: req.Inverse != nil && *req.Inverse}
		r, err := stats.Bayes(c, t, mc0, bo)
		if err != nil {
			return nil, err
		}
		b = bayesLine(r, c)
	} else {
		b = frequentistLine(result)
	}
	if cuped != nil {
		b = append(b, `,"cuped":{"theta":`...)
		b = appendFloat(b, cuped.Theta)
		b = append(b, `,"variance_reduction":`...)
		b = appendFloat(b, cuped.VarianceReduction)
		b = append(b, '}')
		if !cuped.Applied {
			b = append(b, `,"warning":"CUPED not applied: the covariate does not vary within the arms"`...)
		}
	}
	return append(b, "}\n"...), nil
}

// frequentistLine writes a comparison's fields, without the closing brace.
func frequentistLine(r stats.Result) []byte {
	var b []byte
	b = append(b, `{"abs_effect":`...)
	b = appendFloat(b, r.AbsEffect)
	b = appendInterval(append(b, `,"abs_ci":`...), r.AbsCI)
	b = append(b, `,"rel_effect":`...)
	if r.RelDefined {
		b = appendFloat(b, r.RelEffect)
		b = appendInterval(append(b, `,"rel_ci":`...), r.RelCI)
	} else {
		b = append(b, `null,"rel_ci":null`...)
	}
	b = append(b, `,"p_value":`...)
	b = appendFloat(b, r.PValue)
	b = append(b, `,"significant":`...)
	b = strconv.AppendBool(b, r.Significant)
	if !r.RelDefined {
		b = append(b, `,"warning":"relative effect undefined: the control mean is 0"`...)
	}
	return b
}

// bayesLine writes a Bayesian comparison's fields, without the closing
// brace: the absolute and relative posteriors' means and credible
// intervals, the chance to win and the risks on the relative scale. There
// is no p-value; significant says whether the absolute credible interval
// excludes 0.
func bayesLine(r stats.BayesResult, c stats.Estimate) []byte {
	var b []byte
	b = append(b, `{"abs_effect":`...)
	b = appendFloat(b, r.Abs.Mean)
	b = appendInterval(append(b, `,"abs_ci":`...), r.Abs.CI)
	b = append(b, `,"rel_effect":`...)
	b = appendFloat(b, r.Rel.Mean)
	b = appendInterval(append(b, `,"rel_ci":`...), r.Rel.CI)
	b = append(b, `,"significant":`...)
	b = strconv.AppendBool(b, r.Defined && r.Abs.CI.Excludes(0))
	b = append(b, `,"chance_to_win":`...)
	b = appendFloat(b, r.Rel.ChanceToWin)
	b = append(b, `,"risk":[`...)
	b = appendFloat(b, r.Rel.Risk[0])
	b = append(b, ',')
	b = appendFloat(b, r.Rel.Risk[1])
	b = append(b, ']')
	if !r.Defined {
		msg, _ := json.Marshal("no posterior: " + r.Why)
		b = append(append(b, `,"warning":`...), msg...)
	}
	return b
}

func appendInterval(b []byte, i stats.Interval) []byte {
	b = append(b, '[')
	b = appendFloat(b, i.Lo)
	b = append(b, ',')
	b = appendFloat(b, i.Hi)
	return append(b, ']')
}

// srmLine computes a sample-ratio-mismatch line.
func srmLine(req statsRequest) ([]byte, error) {
	weights := req.Weights
	if weights == nil {
		weights = make([]float64, len(req.Observed))
		for i := range weights {
			weights[i] = 1
		}
	}
	sequential := req.Sequential != nil && *req.Sequential
	var p float64
	var err error
	if sequential {
		c := float64(stats.DefaultSRMConcentration)
		if req.Concentration != nil {
			c = *req.Concentration
		}
		p, err = stats.SequentialSRM(req.Observed, weights, c)
	} else {
		p, err = stats.SRM(req.Observed, weights)
	}
	if err != nil {
		return nil, err
	}
	var b []byte
	b = append(b, `{"p_value":`...)
	b = appendFloat(b, p)
	// The sequential test is valid at any number of units.
	if !sequential && !stats.SRMEnoughTraffic(req.Observed, weights) {
		b = append(b, `,"warning":"not enough traffic: an arm has fewer than 8 units, so this p-value is not a test yet"`...)
	}
	return append(b, "}\n"...), nil
}

// decodeStatsRequest decodes and checks the shape of one input line: an
// unknown field, or one the kind does not take, is an error naming it.
func decodeStatsRequest(line []byte) (statsRequest, error) {
	var req statsRequest
	dec := json.NewDecoder(bytes.NewReader(line))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&req); err != nil {
		return req, fmt.Errorf("decode comparison: %w", err)
	}
	if dec.More() {
		return req, errors.New("decode comparison: more than one JSON value on the line")
	}
	const kinds = "mean, count, proportion, ratio, quantile or srm"
	switch {
	case req.Kind == "":
		return req, errors.New(`"kind" is missing: want ` + kinds)
	case req.Kind == srmKind:
		if req.Observed == nil {
			return req, errors.New(`srm: "observed" is missing`)
		}
		for _, f := range []struct {
			key string
			set bool
		}{{"alpha", req.Alpha != nil}, {"tuning", req.Tuning != nil}, {"engine", req.Engine != nil},
			{"prior", req.Prior != nil}, {"inverse", req.Inverse != nil}, {"control", req.Control != nil}, {"treatment", req.Treatment != nil}} {
			if f.set {
				return req, fmt.Errorf("srm: %q is not an input of an srm line (it takes observed, weights, sequential and concentration)", f.key)
			}
		}
		return req, nil
	case req.Kind != quantileKind && !stats.Kind(req.Kind).Valid():
		return req, fmt.Errorf(`"kind" = %q: want %s`, req.Kind, kinds)
	}
	for _, f := range []struct {
		key string
		set bool
	}{{"observed", req.Observed != nil}, {"weights", req.Weights != nil}, {"concentration", req.Concentration != nil}} {
		if f.set {
			return req, fmt.Errorf("%s: %q is an input of srm lines only", req.Kind, f.key)
		}
	}
	if req.Engine != nil && *req.Engine != frequentist && *req.Engine != bayesian {
		return req, fmt.Errorf(`"engine" = %q: want frequentist or bayesian`, *req.Engine)
	}
	if req.Engine == nil || *req.Engine == frequentist {
		if req.Prior != nil || req.Inverse != nil {
			return req, errors.New(`"prior" and "inverse" belong to the bayesian engine: add "engine": "bayesian"`)
		}
	} else if req.Sequential != nil && *req.Sequential {
		return req, errors.New(`"sequential": true does not apply to the bayesian engine (its credible interval is not a confidence sequence)`)
	}
	return req, nil
}

// plainArm converts a checked ARM of a mean, count, proportion or ratio.
func plainArm(kind stats.Kind, w wireArm) stats.Arm {
	a := stats.Arm{N: w.v["n"], Sum: w.v["sum"], SumSquares: w.v["sum_squares"],
		DenSum: w.v["den_sum"], DenSumSquares: w.v["den_sum_squares"], SumProducts: w.v["sum_products"]}
	if kind == stats.Proportion {
		a.SumSquares = a.Sum // x² = x
	}
	return a
}

// preOf returns a checked ARM's CUPED covariate.
func preOf(w wireArm) stats.Pre {
	return stats.Pre{Sum: w.v["pre_sum"], SumSquares: w.v["pre_sum_squares"], CrossSum: w.v["sum_pre_products"]}
}

// quantileArm converts a checked quantile ARM.
func quantileArm(w wireArm) stats.QuantileArm {
	return stats.QuantileArm{
		N: w.v["n"], NStar: w.v["n_star"], Nu: w.v["nu"],
		Hat: w.v["quantile_hat"], Lower: w.v["quantile_lower"], Upper: w.v["quantile_upper"],
		Clustered:      len(w.groups) > 0 && w.groups[0],
		MainSum:        w.v["main_sum"],
		MainSumSquares: w.v["main_sum_squares"],
		DenSum:         w.v["denominator_sum"], DenSumSquares: w.v["denominator_sum_squares"],
		MainDenSumProduct: w.v["main_denominator_sum_product"],
		NClusters:         w.v["n_clusters"],
	}
}

// errorLine returns {"error": "line N: ..."} and a newline.
func errorLine(lineNo int, err error) []byte {
	msg, _ := json.Marshal(fmt.Sprintf("line %d: %v", lineNo, err))
	b := append([]byte(`{"error":`), msg...)
	return append(b, "}\n"...)
}

// appendFloat appends x with the fewest digits that read back exactly.
func appendFloat(b []byte, x float64) []byte {
	return strconv.AppendFloat(b, x, 'g', -1, 64)
}
