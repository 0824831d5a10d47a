// Package settings is how every verdict program reads its configuration:
// a flag per setting whose default comes from its VERDICT_* environment
// variable (secrets from the environment only: a flag would show in ps),
// registered by the package the setting belongs to (a RegisterFlags method
// on its Config or Flags) and checked by a Validate or Apply that lists
// every problem, not the first. `verdict up` composes the packages'
// registrations; each bin/<service> registers its own.
package settings

import "strings"

// Env is getenv(key), or def when it is unset or empty.
func Env(getenv func(string) string, key, def string) string {
	if v := getenv(key); v != "" {
		return v
	}
	return def
}

// True reads a yes/no setting: 1 or true (any case) is yes.
func True(v string) bool { return v == "1" || strings.EqualFold(v, "true") }
