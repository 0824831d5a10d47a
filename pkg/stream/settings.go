package stream

import (
	"errors"
	"flag"
	"fmt"
	"net/url"
	"strings"

	"github.com/verdictlabs/verdict/pkg/settings"
)

// DefaultURL is where every verdict program looks for NATS unless told.
const DefaultURL = "nats://127.0.0.1:4222"

// Settings are the NATS connection settings of every verdict program.
type Settings struct {
	URL      string // VERDICT_NATS_URL: one URL, or a comma-separated list for a cluster
	Auth     Auth   // VERDICT_NATS_CREDS, _NKEY, _USER, _PASSWORD, _TOKEN, _TLS_*: the environment only
	Replicas int    // VERDICT_NATS_REPLICAS; 0 keeps what the streams and buckets have
	replicas string
}

// RegisterFlags adds -nats-url and -nats-replicas to fs, their defaults
// from the environment, and reads the credentials from the environment.
func (s *Settings) RegisterFlags(fs *flag.FlagSet, getenv func(string) string) {
	fs.StringVar(&s.URL, "nats-url", settings.Env(getenv, "VERDICT_NATS_URL", DefaultURL), "NATS server URL, or several separated by commas for a cluster (VERDICT_NATS_URL)")
	fs.StringVar(&s.replicas, "nats-replicas", getenv("VERDICT_NATS_REPLICAS"), "replicas of the streams and KV buckets, 1 to 5; unset keeps what they have (VERDICT_NATS_REPLICAS)")
	s.Auth = AuthFromEnv(getenv)
}

// Validate checks the settings and lists every problem, each naming its
// variable and the fix; it sets Replicas.
func (s *Settings) Validate() error {
	var errs []error
	for _, one := range strings.Split(s.URL, ",") {
		if u, err := url.Parse(strings.TrimSpace(one)); err != nil || (u.Scheme != "nats" && u.Scheme != "tls") || u.Port() == "" {
			errs = append(errs, fmt.Errorf("VERDICT_NATS_URL %q: want nats://host:port, or several separated by commas", Redact(s.URL)))
			break
		}
	}
	var err error
	if s.Replicas, err = ParseReplicas(s.replicas); err != nil {
		errs = append(errs, err)
	}
	if err := s.Auth.Validate(); err != nil {
		errs = append(errs, err)
	}
	return errors.Join(errs...)
}
