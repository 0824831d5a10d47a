package rules

import (
	"errors"
	"flag"
	"fmt"
	"time"

	"github.com/verdictlabs/verdict/pkg/settings"
)

// Flags are the rules service's own settings, as flags whose defaults come
// from the environment: the same names under bin/rules and verdict up.
type Flags struct {
	interval, hold string
}

// RegisterFlags adds -rules-interval (VERDICT_RULES_INTERVAL, 1m) and
// -decision-hold (VERDICT_DECISION_HOLD, 10m) to fs.
func (f *Flags) RegisterFlags(fs *flag.FlagSet, getenv func(string) string) {
	fs.StringVar(&f.interval, "rules-interval", settings.Env(getenv, "VERDICT_RULES_INTERVAL", "1m"), "how often readouts are recomputed (VERDICT_RULES_INTERVAL)")
	fs.StringVar(&f.hold, "decision-hold", settings.Env(getenv, "VERDICT_DECISION_HOLD", "10m"), "how long a candidate label must hold on every look before it is the decision (VERDICT_DECISION_HOLD)")
}

// Default sets a flag's value when neither the environment nor the
// command line did: verdict demo looks more often and holds less.
func (f *Flags) Default(interval, hold string, getenv func(string) string, set func(name string) bool) {
	if getenv("VERDICT_RULES_INTERVAL") == "" && !set("rules-interval") {
		f.interval = interval
	}
	if getenv("VERDICT_DECISION_HOLD") == "" && !set("decision-hold") {
		f.hold = hold
	}
}

// Apply parses the flags into c (Interval, Hold) and lists every problem.
func (f *Flags) Apply(c *Config) error {
	var errs []error
	var err error
	if c.Interval, err = time.ParseDuration(f.interval); err != nil || c.Interval < time.Second {
		errs = append(errs, fmt.Errorf("VERDICT_RULES_INTERVAL %q: want a duration of at least 1s, such as 1m", f.interval))
	}
	if c.Hold, err = ParseHold(f.hold); err != nil {
		errs = append(errs, err)
	}
	return errors.Join(errs...)
}
