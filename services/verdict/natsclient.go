package main

import (
	"flag"
	"fmt"

	"github.com/nats-io/nats.go"

	"github.com/verdictlabs/verdict/pkg/settings"
	"github.com/verdictlabs/verdict/pkg/stream"
)

// natsURLFlag adds -nats-url (VERDICT_NATS_URL) to a one-shot command.
func natsURLFlag(fs *flag.FlagSet, getenv func(string) string) *string {
	return fs.String("nats-url", settings.Env(getenv, "VERDICT_NATS_URL", stream.DefaultURL), "NATS server URL (VERDICT_NATS_URL)")
}

// connectOnce connects a one-shot command to NATS once, without the
// retries a service makes (stream.Connect): a user is waiting.
func connectOnce(url string, auth stream.Auth, name string, opts ...nats.Option) (*nats.Conn, error) {
	o, err := auth.Options()
	if err != nil {
		return nil, err
	}
	nc, err := nats.Connect(url, append(append(o, nats.Name(name)), opts...)...)
	if err != nil {
		return nil, fmt.Errorf("connect to %s: %w", stream.Redact(url), err)
	}
	return nc, nil
}
