package main

import (
	"context"
	"flag"
	"io"
	"strings"
	"testing"

	"github.com/verdictlabs/verdict/pkg/gateway"
	"github.com/verdictlabs/verdict/pkg/ingest"
	"github.com/verdictlabs/verdict/pkg/notifier"
	"github.com/verdictlabs/verdict/pkg/rules"
	"github.com/verdictlabs/verdict/pkg/stream"
)

// TestUpListsEveryProblem: `verdict up` with a bad value for a setting of
// every service refuses to start and names each of them at once.
func TestUpListsEveryProblem(t *testing.T) {
	bad := map[string]string{
		"VERDICT_NATS_REPLICAS":         "9",
		"VERDICT_INGEST_BATCH":          "none",
		"VERDICT_NATS_DUPLICATE_WINDOW": "forever",
		"VERDICT_RULES_INTERVAL":        "10ms",
		"VERDICT_DECISION_HOLD":         "soon",
		"VERDICT_GATEWAY_UNIT":          "device",
		"VERDICT_DIGEST":                "every day",
		"VERDICT_WEBHOOKS":              "https://hooks.example.com/x",
		"VERDICT_LOG_LEVEL":             "loud",
	}
	err := run(context.Background(), []string{"up"}, func(k string) string { return bad[k] }, strings.NewReader(""), io.Discard, io.Discard)
	if err == nil {
		t.Fatal("verdict up started with bad settings")
	}
	for k := range bad {
		if k == "VERDICT_WEBHOOKS" {
			k = "VERDICT_WEBHOOK_SECRET"
		}
		if !strings.Contains(err.Error(), k) {
			t.Errorf("the error does not name %s:\n%v", k, err)
		}
	}
}

// TestOneFlagPerSetting: each service's settings are registered by its
// package, so that verdict up and bin/<service> take the same flag for the
// same setting; up has them all, with no name twice (flag panics on that).
func TestOneFlagPerSetting(t *testing.T) {
	getenv := func(string) string { return "" }
	names := func(register func(fs *flag.FlagSet)) map[string]bool {
		fs := flag.NewFlagSet("x", flag.ContinueOnError)
		register(fs)
		out := map[string]bool{}
		fs.VisitAll(func(f *flag.Flag) { out[f.Name] = true })
		return out
	}
	var c upConfig
	up := names(func(fs *flag.FlagSet) { c.register(fs, getenv) })
	for _, service := range []func(fs *flag.FlagSet){
		func(fs *flag.FlagSet) { new(stream.Settings).RegisterFlags(fs, getenv) },
		func(fs *flag.FlagSet) { new(ingest.Flags).RegisterFlags(fs, getenv) },
		func(fs *flag.FlagSet) { new(rules.Flags).RegisterFlags(fs, getenv) },
		func(fs *flag.FlagSet) { new(notifier.Flags).RegisterFlags(fs, getenv) },
		func(fs *flag.FlagSet) { new(gateway.Flags).RegisterFlags(fs, getenv) },
	} {
		for name := range names(service) {
			if !up[name] {
				t.Errorf("verdict up has no -%s", name)
			}
		}
	}
}
