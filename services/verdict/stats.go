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

	"github.com/verdictlabs/verdict/pkg/stats"
)

// maxStatsLine bounds one input line of verdict stats; a longer line gets an
// error line of its own and the rest go on.
const maxStatsLine = 1 << 20

// runStats is "verdict stats": it reads comparisons as NDJSON on stdin and
// writes one result line per input line on stdout, as DESIGN.md fixes:
//
//	in:  {"kind": "mean"|"count"|"proportion"|"ratio", "alpha": 0.05, "sequential": true, "tuning": 5000,
//	      "control": ARM, "treatment": ARM}   ARM = {"n", "sum", "sum_squares", ["den_sum", "den_sum_squares", "sum_products"]}
//	     {"kind": "srm", "observed": [...], "weights": [...], "sequential": false, "concentration": 10000}
//	out: {"abs_effect", "abs_ci": [lo, hi], "rel_effect", "rel_ci": [lo, hi], "p_value", "significant"}
//	     {"p_value"} for srm
//
// Absent options take the defaults: alpha 0.05, sequential true, tuning
// 5000; absent srm weights mean equal weights. An srm line is Pearson's
// chi-square test unless "sequential" is true: then it is the always-valid
// sequential test of Lindon & Malek (2022), with "concentration" 10000 by
// default (stats.SequentialSRM). Unknown fields are ignored.
// When the control mean is 0 the relative effect is undefined: rel_effect and
// rel_ci are null and a "warning" says why. An SRM with an arm under 8 units
// still gets its p_value, with a "not enough traffic" warning. A line that
// cannot be computed gets {"error": "line N: ..."} and the rest go on; the
// command itself fails only when it cannot read or write. Blank lines are
// skipped. Numbers are printed with full precision.
func runStats(ctx context.Context, args []string, getenv func(string) string, stdin io.Reader, stdout, stderr io.Writer) error {
	_ = getenv // nothing to configure from the environment
	fs := flag.NewFlagSet("stats", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() {
		fmt.Fprintln(stderr, "usage: verdict stats < comparisons.ndjson\n\nOne JSON comparison per line in, one JSON result per line out (see DESIGN.md, \"Statistics\").")
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
	for lineNo := 1; ; lineNo++ {
		if err := ctx.Err(); err != nil {
			out.Flush() // what was answered stays answered
			return err
		}
		line, tooLong, err := readLine(in, maxStatsLine)
		if len(bytes.TrimSpace(line)) > 0 || tooLong {
			var result []byte
			if tooLong {
				result = errorLine(lineNo, fmt.Errorf("line longer than %d bytes", maxStatsLine))
			} else {
				result = statsLine(lineNo, line)
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
}

// statsRequest is one input line.
type statsRequest struct {
	Kind       string    `json:"kind"`
	Alpha      *float64  `json:"alpha"`
	Sequential *bool     `json:"sequential"`
	Tuning     *float64  `json:"tuning"`
	Control    *statsArm `json:"control"`
	Treatment  *statsArm `json:"treatment"`
	Observed   []float64 `json:"observed"`
	Weights    []float64 `json:"weights"`
	// Concentration is the sequential SRM test's Dirichlet concentration.
	Concentration *float64 `json:"concentration"`
}

// srmKind is the "kind" of a sample-ratio-mismatch line.
const srmKind = "srm"

// statsLine computes one input line and returns its output line, newline
// included: a result or an error, never both.
func statsLine(lineNo int, line []byte) []byte {
	req, err := decodeStatsRequest(line)
	if err != nil {
		return errorLine(lineNo, err)
	}
	if req.Kind == srmKind {
		weights := req.Weights
		if weights == nil {
			weights = make([]float64, len(req.Observed))
			for i := range weights {
				weights[i] = 1
			}
		}
		sequential := req.Sequential != nil && *req.Sequential
		var p float64
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
			return errorLine(lineNo, err)
		}
		var b []byte
		b = append(b, `{"p_value":`...)
		b = appendFloat(b, p)
		// The sequential test is valid at any number of units.
		if !sequential && !stats.SRMEnoughTraffic(req.Observed, weights) {
			b = append(b, `,"warning":"not enough traffic: an arm has fewer than 8 units, so this p-value is not a test yet"`...)
		}
		return append(b, "}\n"...)
	}

	opt := stats.DefaultOptions()
	if req.Alpha != nil {
		opt.Alpha = *req.Alpha
	}
	if req.Sequential != nil {
		opt.Sequential = *req.Sequential
	}
	if req.Tuning != nil {
		opt.Tuning = *req.Tuning
	}
	kind := stats.Kind(req.Kind)
	control, err := req.Control.arm(kind, "control")
	if err != nil {
		return errorLine(lineNo, err)
	}
	treatment, err := req.Treatment.arm(kind, "treatment")
	if err != nil {
		return errorLine(lineNo, err)
	}
	r, err := stats.Compare(kind, control, treatment, opt)
	if err != nil {
		return errorLine(lineNo, err)
	}
	var b []byte
	b = append(b, `{"abs_effect":`...)
	b = appendFloat(b, r.AbsEffect)
	b = append(b, `,"abs_ci":[`...)
	b = appendFloat(b, r.AbsCI.Lo)
	b = append(b, ',')
	b = appendFloat(b, r.AbsCI.Hi)
	b = append(b, `],"rel_effect":`...)
	if r.RelDefined {
		b = appendFloat(b, r.RelEffect)
		b = append(b, `,"rel_ci":[`...)
		b = appendFloat(b, r.RelCI.Lo)
		b = append(b, ',')
		b = appendFloat(b, r.RelCI.Hi)
		b = append(b, ']')
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
	return append(b, "}\n"...)
}

// decodeStatsRequest decodes and checks the shape of one input line.
func decodeStatsRequest(line []byte) (statsRequest, error) {
	var req statsRequest
	if err := json.Unmarshal(line, &req); err != nil {
		return req, fmt.Errorf("decode comparison: %w", err)
	}
	switch {
	case req.Kind == "":
		return req, errors.New(`"kind" is missing: want mean, count, proportion, ratio or srm`)
	case req.Kind == srmKind:
		if req.Observed == nil {
			return req, errors.New(`srm: "observed" is missing`)
		}
	case !stats.Kind(req.Kind).Valid():
		return req, fmt.Errorf(`"kind" = %q: want mean, count, proportion, ratio or srm`, req.Kind)
	}
	return req, nil
}

// arm converts a wire ARM, requiring the fields the kind uses.
func (a *statsArm) arm(kind stats.Kind, name string) (stats.Arm, error) {
	if a == nil {
		return stats.Arm{}, fmt.Errorf("%q is missing", name)
	}
	type field struct {
		key string
		v   *float64
		dst *float64
	}
	var arm stats.Arm
	fields := []field{{"n", a.N, &arm.N}, {"sum", a.Sum, &arm.Sum}}
	switch kind {
	case stats.Mean, stats.Count:
		fields = append(fields, field{"sum_squares", a.SumSquares, &arm.SumSquares})
	case stats.Ratio:
		fields = append(fields,
			field{"sum_squares", a.SumSquares, &arm.SumSquares},
			field{"den_sum", a.DenSum, &arm.DenSum},
			field{"den_sum_squares", a.DenSumSquares, &arm.DenSumSquares},
			field{"sum_products", a.SumProducts, &arm.SumProducts})
	}
	for _, f := range fields {
		if f.v == nil {
			return stats.Arm{}, fmt.Errorf("%s: %q is missing (a %s arm needs %s)", name, f.key, kind, needs(kind))
		}
		*f.dst = *f.v
	}
	return arm, nil
}

func needs(kind stats.Kind) string {
	switch kind {
	case stats.Proportion:
		return "n and sum"
	case stats.Ratio:
		return "n, sum, sum_squares, den_sum, den_sum_squares and sum_products"
	}
	return "n, sum and sum_squares"
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
