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
	"time"

	"github.com/verdictlabs/verdict/pkg/rules"
	"github.com/verdictlabs/verdict/pkg/settings"
	"github.com/verdictlabs/verdict/pkg/web"
)

// runRecompute is `verdict recompute EXPERIMENT`: the rules service
// recomputes the experiment in full from ClickHouse, as of its tally's last
// look, and says whether the incremental numbers agree
// (POST /v1/experiments/{key}/recompute on VERDICT_HTTP_ADDR). It fails when
// they differ.
func runRecompute(ctx context.Context, args []string, getenv func(string) string, _ io.Reader, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("verdict recompute", flag.ContinueOnError)
	fs.SetOutput(stderr)
	addr := fs.String("http-addr", settings.Env(getenv, "VERDICT_HTTP_ADDR", "127.0.0.1:8080"), "verdict's API (VERDICT_HTTP_ADDR)")
	asJSON := fs.Bool("json", false, "print the answer as JSON")
	fs.Usage = func() {
		fmt.Fprintln(stderr, "usage: verdict recompute [flags] EXPERIMENT")
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() != 1 {
		fs.Usage()
		return errors.New("recompute takes one experiment key")
	}
	tokens, err := web.ParseTokens("VERDICT_API_TOKENS", getenv("VERDICT_API_TOKENS"))
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(ctx, 10*time.Minute)
	defer cancel()
	url := "http://" + *addr + "/v1/experiments/" + fs.Arg(0) + "/recompute"
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, url, nil)
	if err != nil {
		return err
	}
	if len(tokens) > 0 {
		req.Header.Set("Authorization", "Bearer "+tokens[0])
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return fmt.Errorf("post %s: %w (is verdict up? set VERDICT_HTTP_ADDR)", url, err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, 16<<20))
	if err != nil {
		return err
	}
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("%s: %s", resp.Status, strings.TrimSpace(string(body)))
	}
	var rc rules.Recompute
	if err := json.Unmarshal(body, &rc); err != nil {
		return fmt.Errorf("decode the answer: %w", err)
	}
	if *asJSON {
		stdout.Write(body)
	} else {
		fmt.Fprintf(stdout, "%s as of ingest floor %d and %s: recomputed in full in %.2fs\n", rc.Experiment, rc.Seq, rc.AsOf.Format(time.RFC3339), rc.Seconds)
		if rc.Equal {
			fmt.Fprintln(stdout, "the incremental tally equals the full recompute (to 1e-9)")
		}
		for _, d := range rc.Differences {
			fmt.Fprintln(stdout, "  differs:", d)
		}
	}
	if !rc.Equal {
		return fmt.Errorf("the incremental tally of %s differs from a full recompute in %d places", rc.Experiment, len(rc.Differences))
	}
	return nil
}
