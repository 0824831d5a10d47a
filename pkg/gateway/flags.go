package gateway

import (
	"errors"
	"flag"

	"github.com/verdictlabs/verdict/pkg/settings"
)

// Flags are HTTP ingest's own settings, as flags whose defaults come from
// the environment: the same names under bin/gateway and verdict up.
type Flags struct {
	unit, writeKeys string
}

// RegisterFlags adds -gateway-unit (VERDICT_GATEWAY_UNIT, user) to fs and
// reads VERDICT_WRITE_KEYS, which is no flag: it would show in ps.
func (f *Flags) RegisterFlags(fs *flag.FlagSet, getenv func(string) string) {
	fs.StringVar(&f.unit, "gateway-unit", settings.Env(getenv, "VERDICT_GATEWAY_UNIT", "user"), "HTTP ingest unit id: user (userId, else anonymousId) or anonymous (VERDICT_GATEWAY_UNIT)")
	f.writeKeys = getenv("VERDICT_WRITE_KEYS")
}

// Apply parses the flags into c (WriteKeys, Unit) and lists every problem.
func (f *Flags) Apply(c *Config) error {
	var errs []error
	var err error
	if c.WriteKeys, err = ParseWriteKeys(f.writeKeys); err != nil {
		errs = append(errs, err)
	}
	if c.Unit, err = ParseUnit(f.unit); err != nil {
		errs = append(errs, err)
	}
	return errors.Join(errs...)
}
