// Command verdict is the command line of the verdict experiment pipeline:
// it runs the whole stack on one machine (up, demo), publishes events,
// applies definitions, prints readouts and exposes the statistics engine.
package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err := run(ctx, os.Args[1:], os.Getenv, os.Stdin, os.Stdout, os.Stderr)
	stop()
	if err != nil {
		fmt.Fprintln(os.Stderr, "verdict:", err)
		os.Exit(1)
	}
}

// command is one subcommand: it gets its own arguments (after its name).
type command struct {
	name, usage string
	run         func(ctx context.Context, args []string, getenv func(string) string, stdin io.Reader, stdout, stderr io.Writer) error
}

func commands() []command {
	return []command{
		{"up", "run the whole stack on this machine", runUp},
		{"demo", "up, plus simulated traffic for experiments with known truths", runDemo},
		{"publish", "check and publish NDJSON events from FILE or - (stdin)", runPublish},
		{"dlq", "the dead letters: list, show (why), replay, purge", runDLQ},
		{"apply", "validate definitions (-f FILE) and store them in the KV bucket verdict_config", runApply},
		{"readout", "print an experiment's latest readout (--json, --email)", runReadout},
		{"stats", "NDJSON comparisons in on stdin, results out on stdout", runStats},
		{"recompute", "recompute an experiment in full and compare it with the incremental readout", runRecompute},
		{"chdb-server", "serve ClickHouse 26 from libchdb.so until stdin ends (the local server up starts)", runChDBServer},
	}
}

func run(ctx context.Context, args []string, getenv func(string) string, stdin io.Reader, stdout, stderr io.Writer) error {
	if len(args) == 0 || args[0] == "-h" || args[0] == "--help" || args[0] == "help" {
		usage(stderr)
		if len(args) == 0 {
			return fmt.Errorf("no command given")
		}
		return nil
	}
	for _, c := range commands() {
		if c.name == args[0] {
			return c.run(ctx, args[1:], getenv, stdin, stdout, stderr)
		}
	}
	usage(stderr)
	return fmt.Errorf("unknown command %q", args[0])
}

func usage(w io.Writer) {
	fmt.Fprintln(w, "usage: verdict COMMAND [flags]\n\ncommands:")
	for _, c := range commands() {
		fmt.Fprintf(w, "  %-10s %s\n", c.name, c.usage)
	}
}
