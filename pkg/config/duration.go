package config

import (
	"encoding/json"
	"fmt"
	"regexp"
	"strconv"
	"time"
)

// durationPattern is the written form of a Duration: optional whole or
// decimal days, then Go duration units. schemas/config.schema.json uses the
// same pattern.
const durationPattern = `^([0-9]+(\.[0-9]+)?d)?(([0-9]+(\.[0-9]+)?)(ns|us|µs|ms|s|m|h))*$`

var durationRE = regexp.MustCompile(durationPattern)

// ParseDuration parses "7d", "36h", "90m", "1d12h" or any Go duration
// without a sign. The result must be positive.
func ParseDuration(s string) (Duration, error) {
	if s == "" || !durationRE.MatchString(s) {
		return 0, fmt.Errorf("duration %q is not a positive number of d, h, m, s, ms, us or ns (e.g. 7d, 36h, 90m)", s)
	}
	var d time.Duration
	rest := s
	if m := durationRE.FindStringSubmatch(s); m[1] != "" {
		days, err := strconv.ParseFloat(m[1][:len(m[1])-1], 64)
		if err != nil || days > float64(1<<63-1)/float64(24*time.Hour) {
			return 0, fmt.Errorf("duration %q is too long", s)
		}
		d = time.Duration(days * float64(24*time.Hour))
		rest = s[len(m[1]):]
	}
	if rest != "" {
		r, err := time.ParseDuration(rest)
		if err != nil || d+r < d {
			return 0, fmt.Errorf("duration %q is too long", s)
		}
		d += r
	}
	if d <= 0 {
		return 0, fmt.Errorf("duration %q must be longer than 0", s)
	}
	return Duration(d), nil
}

// String writes whole days as "7d" and anything else as Go does ("36h0m0s").
func (d Duration) String() string {
	const day = 24 * time.Hour
	if td := time.Duration(d); td > 0 && td%day == 0 {
		return strconv.FormatInt(int64(td/day), 10) + "d"
	}
	return time.Duration(d).String()
}

// MarshalJSON writes d as a string in the form ParseDuration reads.
func (d Duration) MarshalJSON() ([]byte, error) { return json.Marshal(d.String()) }

// UnmarshalJSON reads a string in the form of ParseDuration.
func (d *Duration) UnmarshalJSON(b []byte) error {
	var s string
	if err := json.Unmarshal(b, &s); err != nil {
		return fmt.Errorf("duration: want a string such as \"7d\": %w", err)
	}
	v, err := ParseDuration(s)
	if err != nil {
		return err
	}
	*d = v
	return nil
}

// MarshalYAML writes d as a string in the form ParseDuration reads.
func (d Duration) MarshalYAML() (any, error) { return d.String(), nil }

// UnmarshalYAML reads a string in the form of ParseDuration, for decoders
// other than Parse (github.com/goccy/go-yaml calls it).
func (d *Duration) UnmarshalYAML(unmarshal func(any) error) error {
	var s string
	if err := unmarshal(&s); err != nil {
		return err
	}
	v, err := ParseDuration(s)
	if err != nil {
		return err
	}
	*d = v
	return nil
}
