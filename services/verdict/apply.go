package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"strings"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/verdictlabs/verdict/pkg/config"
	"github.com/verdictlabs/verdict/pkg/configstore"
	"github.com/verdictlabs/verdict/pkg/stream"
)

// fileList is a repeatable -f flag.
type fileList []string

func (l *fileList) String() string     { return strings.Join(*l, ",") }
func (l *fileList) Set(s string) error { *l = append(*l, s); return nil }

// runApply validates definition files and stores them in the KV bucket
// verdict_config. The files are taken together and merged over what is
// stored: an experiment may use a metric of another file or of an earlier
// apply. On any problem, every problem is listed on stderr and nothing is
// stored.
func runApply(ctx context.Context, args []string, getenv func(string) string, stdin io.Reader, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("verdict apply", flag.ContinueOnError)
	fs.SetOutput(stderr)
	var names fileList
	fs.Var(&names, "f", "definitions `FILE` (YAML or JSON), - for standard input; repeat for several")
	natsURL := natsURLFlag(fs, getenv)
	dryRun := fs.Bool("dry-run", false, "check only, storing nothing: against the stored definitions when NATS answers, else the files alone")
	fs.Usage = func() {
		fmt.Fprintln(stderr, "usage: verdict apply [flags] -f FILE [-f FILE ...]")
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() > 0 || len(names) == 0 {
		fs.Usage()
		return errors.New("apply needs -f FILE (or -f - for standard input), and no other arguments")
	}

	var files []*config.File
	stdinRead := false
	for _, name := range names {
		var data []byte
		var err error
		if name == "-" {
			if stdinRead {
				return errors.New("-f - is given twice: standard input can be read once")
			}
			stdinRead = true
			name = "<stdin>"
			data, err = io.ReadAll(io.LimitReader(stdin, config.MaxFileSize+1))
		} else {
			data, err = os.ReadFile(name)
		}
		if err != nil {
			return fmt.Errorf("read definitions: %w", err)
		}
		f, _ := config.ParseFile(name, data) // its problems are reported with the others
		files = append(files, f)
	}

	opts, err := stream.AuthFromEnv(getenv).Options()
	if err != nil {
		return err
	}
	if *dryRun {
		return dryRunApply(ctx, *natsURL, opts, files, stdout, stderr)
	}
	nc, err := nats.Connect(*natsURL, append(opts, nats.Name("verdict-apply"), nats.Timeout(5*time.Second))...)
	if err != nil {
		return fmt.Errorf("connect to %s (or use --dry-run to check the files alone): %w", stream.Redact(*natsURL), err)
	}
	defer nc.Close()
	js, err := jetstream.New(nc)
	if err != nil {
		return err
	}
	replicas, err := stream.ParseReplicas(getenv("VERDICT_NATS_REPLICAS"))
	if err != nil {
		return err
	}
	kv, err := configstore.EnsureBucket(ctx, js, replicas)
	if err != nil {
		return err
	}
	changes, err := configstore.ApplyFiles(ctx, kv, files...)
	for _, c := range changes {
		fmt.Fprintf(stdout, "%-9s %s\n", c.Op, c.Key)
	}
	if err != nil {
		return refused(stderr, err)
	}
	n := map[configstore.Op]int{}
	for _, c := range changes {
		n[c.Op]++
	}
	fmt.Fprintf(stdout, "applied to %s: %d created, %d updated, %d unchanged\n",
		config.Bucket, n[configstore.Created], n[configstore.Updated], n[configstore.Unchanged])
	return nil
}

// dryRunApply checks files as apply would, storing nothing: with the
// definitions stored in verdict_config when NATS answers (an experiment may
// use a metric applied before), else the files alone, and says which.
func dryRunApply(ctx context.Context, natsURL string, opts []nats.Option, files []*config.File, stdout, stderr io.Writer) error {
	metrics, exps := count(files)
	nc, err := nats.Connect(natsURL, append(opts, nats.Name("verdict-apply"), nats.Timeout(2*time.Second))...)
	if err != nil {
		if err := config.ValidateFiles(files...); err != nil {
			fmt.Fprintf(stderr, "(NATS at %s did not answer: checked the files alone, without the metrics applied before)\n", stream.Redact(natsURL))
			return refused(stderr, err)
		}
		fmt.Fprintf(stdout, "valid: %d metrics, %d experiments, checked alone: NATS at %s did not answer (dry run: nothing stored)\n", metrics, exps, stream.Redact(natsURL))
		return nil
	}
	defer nc.Close()
	js, err := jetstream.New(nc)
	if err != nil {
		return err
	}
	kv, err := js.KeyValue(ctx, config.Bucket)
	if errors.Is(err, jetstream.ErrBucketNotFound) {
		kv, err = nil, nil // nothing applied yet
	}
	if err != nil {
		return err
	}
	if err := configstore.CheckFiles(ctx, kv, files...); err != nil {
		return refused(stderr, err)
	}
	fmt.Fprintf(stdout, "valid: %d metrics, %d experiments, with the definitions stored in %s (dry run: nothing stored)\n", metrics, exps, config.Bucket)
	return nil
}

// refused prints every problem of err and returns the error run reports.
func refused(stderr io.Writer, err error) error {
	var ps config.Problems
	if !errors.As(err, &ps) {
		return err
	}
	fmt.Fprintln(stderr, ps.Error())
	return fmt.Errorf("definitions refused, nothing stored: %d %s", len(ps), plural(len(ps), "problem", "problems"))
}

func plural(n int, one, many string) string {
	if n == 1 {
		return one
	}
	return many
}

func count(files []*config.File) (metrics, experiments int) {
	for _, f := range files {
		metrics += len(f.Metrics)
		experiments += len(f.Experiments)
	}
	return metrics, experiments
}
