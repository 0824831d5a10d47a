package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/http"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/verdictlabs/verdict/pkg/readout"
	"github.com/verdictlabs/verdict/pkg/report"
	"github.com/verdictlabs/verdict/pkg/settings"
	"github.com/verdictlabs/verdict/pkg/web"
)

// runReadout prints an experiment's latest readout, read from the API on
// VERDICT_HTTP_ADDR: label, summary, metrics with effects and intervals,
// salvage, health and progress.
func runReadout(ctx context.Context, args []string, getenv func(string) string, _ io.Reader, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("verdict readout", flag.ContinueOnError)
	fs.SetOutput(stderr)
	addr := fs.String("http-addr", settings.Env(getenv, "VERDICT_HTTP_ADDR", "127.0.0.1:8080"), "verdict's API (VERDICT_HTTP_ADDR)")
	asJSON := fs.Bool("json", false, "print the readout JSON as the API serves it")
	asEmail := fs.Bool("email", false, "print the email this readout would send (RFC 5322, for preview)")
	fs.Usage = func() {
		fmt.Fprintln(stderr, "usage: verdict readout [flags] EXPERIMENT")
		fs.PrintDefaults()
	}
	// Flags may come after the key too: verdict readout KEY --json.
	var key string
	for len(args) > 0 {
		if err := fs.Parse(args); err != nil {
			return err
		}
		args = fs.Args()
		if len(args) > 0 {
			if key != "" {
				fs.Usage()
				return errors.New("readout takes one experiment key")
			}
			key, args = args[0], args[1:]
		}
	}
	if key == "" {
		fs.Usage()
		return errors.New("readout needs an experiment key")
	}

	// The API's first token, when readouts need one (VERDICT_API_TOKENS).
	tokens, err := web.ParseTokens("VERDICT_API_TOKENS", getenv("VERDICT_API_TOKENS"))
	if err != nil {
		return err
	}
	token := ""
	if len(tokens) > 0 {
		token = tokens[0]
	}
	body, err := getReadout(ctx, "http://"+*addr+"/v1/experiments/"+key+"/readout", token)
	if err != nil {
		return err
	}
	if *asJSON {
		_, err := stdout.Write(body)
		return err
	}
	var r readout.Readout
	if err := json.Unmarshal(body, &r); err != nil {
		return fmt.Errorf("decode readout: %w", err)
	}
	if *asEmail {
		return printEmail(stdout, r, getenv("VERDICT_SMTP_FROM"), settings.Env(getenv, "VERDICT_BASE_URL", "http://"+*addr))
	}
	printReadout(stdout, r)
	return nil
}

func getReadout(ctx context.Context, url, token string) ([]byte, error) {
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return nil, err
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return nil, fmt.Errorf("get %s: %w (is verdict up? set VERDICT_HTTP_ADDR)", url, err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, 64<<20))
	if err != nil {
		return nil, fmt.Errorf("read %s: %w", url, err)
	}
	if resp.StatusCode != http.StatusOK {
		var e struct{ Error string }
		if json.Unmarshal(body, &e) == nil && e.Error != "" {
			return nil, fmt.Errorf("%s: %s", resp.Status, e.Error)
		}
		return nil, fmt.Errorf("get %s: %s", url, resp.Status)
	}
	return body, nil
}

func printReadout(w io.Writer, r readout.Readout) {
	title := r.Experiment
	if r.Name != "" {
		title += " — " + r.Name
	}
	fmt.Fprintln(w, title)
	verdict := strings.ToUpper(string(r.Status))
	if r.Label != readout.NoLabel {
		verdict = strings.ToUpper(string(r.Label))
	}
	fmt.Fprintf(w, "%s   (%s, version %d, data through %s)\n\n", verdict, r.Status, r.Version, readout.Time(r.DataThrough))
	fmt.Fprintln(w, r.Summary)
	if l := report.LifecycleLine(r); l != "" {
		fmt.Fprintln(w, l)
	}
	if len(r.Reasons) > 0 {
		fmt.Fprintln(w)
		for _, s := range r.Reasons {
			fmt.Fprintln(w, "  •", s)
		}
	}
	for _, arm := range r.Arms {
		label := "no label"
		if arm.Label != readout.NoLabel {
			label = string(arm.Label)
		}
		fmt.Fprintf(w, "\n%s vs control: %s\n", arm.Variant, label)
		tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
		fmt.Fprintln(tw, "  metric\trole\tcontrol\ttreatment\teffect\tinterval\trelative\tp\t")
		for _, m := range arm.Metrics {
			rel := "n/a"
			if m.RelEffect != nil {
				rel = readout.Percent(*m.RelEffect)
				if m.RelCI != nil {
					rel += " [" + readout.Percent(m.RelCI[0]) + ", " + readout.Percent(m.RelCI[1]) + "]"
				}
			}
			sig := ""
			if m.Significant {
				sig = " *"
			}
			fmt.Fprintf(tw, "  %s\t%s\t%s (n=%s)\t%s (n=%s)\t%s\t[%s, %s]\t%s\t%s%s\t\n",
				m.Metric, m.Role, readout.Number(m.Control.Mean, false), readout.Count(int64(m.Control.N)),
				readout.Number(m.Treatment.Mean, false), readout.Count(int64(m.Treatment.N)),
				readout.Number(m.AbsEffect, true), readout.Number(m.CI[0], true), readout.Number(m.CI[1], true), rel,
				strings.TrimPrefix(readout.PValue(m.PValue), "p "), sig)
		}
		tw.Flush()
		for _, u := range arm.Unavailable {
			fmt.Fprintf(w, "  %s (%s): %s\n", u.Metric, u.Role, u.Reason)
		}
	}
	if len(r.Salvage) > 0 {
		fmt.Fprintln(w, "\nworth keeping:")
		for _, s := range r.Salvage {
			where := s.Metric
			if s.Kind == readout.SalvageKind("segment") {
				where = fmt.Sprintf("%s = %s, on %s", s.Dimension, s.Value, s.Metric)
			}
			rel := ""
			if s.RelEffect != nil {
				rel = " (" + readout.Percent(*s.RelEffect) + ")"
			}
			fmt.Fprintf(w, "  • %s: %s, effect %s%s, adjusted %s\n", s.Variant, where, readout.Number(s.AbsEffect, true), rel, readout.PValue(s.AdjustedPValue))
		}
	}
	fmt.Fprintln(w, "\nhealth:")
	srm := string(r.Health.SRM)
	if r.Health.SRMPValue != nil {
		if p := *r.Health.SRMPValue; p >= 0.995 {
			srm += " (p = 1, no sign of a mismatch)"
		} else {
			srm += " (" + readout.PValue(p) + ")"
		}
	}
	fmt.Fprintf(w, "  sample ratio: %s\n", srm)
	for _, c := range r.Health.Counts {
		fmt.Fprintf(w, "  %s: %s units (%s, planned %s)\n", c.Variant, readout.Count(c.Units), readout.Share(c.ObservedShare), readout.Share(c.ExpectedShare))
	}
	fmt.Fprintf(w, "  exposed to several variants: %s (%s)\n", readout.Count(r.Health.MultipleExposureCount), readout.Rate(r.Health.MultipleExposureRate))
	fmt.Fprintln(w, "progress:")
	p := r.Progress
	if p.Target != nil && p.Fraction != nil {
		fmt.Fprintf(w, "  %s of %s planned units (%s)\n", readout.Count(p.Units), readout.Count(*p.Target), readout.Share(*p.Fraction))
	} else {
		fmt.Fprintf(w, "  %s units; no planned sample yet\n", readout.Count(p.Units))
	}
	if p.ETA != nil {
		fmt.Fprintf(w, "  decision expected around %s\n", readout.Date(*p.ETA))
	}
}
