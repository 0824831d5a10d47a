package stream

import (
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strings"

	"github.com/nats-io/nats.go"
)

// Auth is how a verdict process authenticates to NATS, from the
// environment (never flags, which would show in ps): a creds file
// (VERDICT_NATS_CREDS), an nkey seed file (VERDICT_NATS_NKEY), a user and
// password (VERDICT_NATS_USER, VERDICT_NATS_PASSWORD) or a token
// (VERDICT_NATS_TOKEN), and TLS: the CA that signed the server's
// certificate (VERDICT_NATS_TLS_CA) and a client certificate
// (VERDICT_NATS_TLS_CERT, VERDICT_NATS_TLS_KEY). The zero value is none:
// whatever VERDICT_NATS_URL carries.
type Auth struct {
	Creds, NKeySeed string // files
	User, Password  string
	Token           string
	CA, Cert, Key   string // files
	// InboxPrefix replaces _INBOX, where replies come
	// (VERDICT_NATS_INBOX_PREFIX): a user who may not read every inbox of
	// the account reads its own (deploy/nats/embedded.conf's producer:
	// _INBOX_producer).
	InboxPrefix string
}

// AuthFromEnv reads the VERDICT_NATS_* variables.
func AuthFromEnv(getenv func(string) string) Auth {
	return Auth{
		Creds: getenv("VERDICT_NATS_CREDS"), NKeySeed: getenv("VERDICT_NATS_NKEY"),
		User: getenv("VERDICT_NATS_USER"), Password: getenv("VERDICT_NATS_PASSWORD"),
		Token: getenv("VERDICT_NATS_TOKEN"),
		CA:    getenv("VERDICT_NATS_TLS_CA"), Cert: getenv("VERDICT_NATS_TLS_CERT"), Key: getenv("VERDICT_NATS_TLS_KEY"),
		InboxPrefix: getenv("VERDICT_NATS_INBOX_PREFIX"),
	}
}

// Validate lists every inconsistency, naming the variables.
func (a Auth) Validate() error {
	var errs []error
	n := 0
	for _, set := range []bool{a.Creds != "", a.NKeySeed != "", a.User != "" || a.Password != "", a.Token != ""} {
		if set {
			n++
		}
	}
	if n > 1 {
		errs = append(errs, errors.New("set one of VERDICT_NATS_CREDS, VERDICT_NATS_NKEY, VERDICT_NATS_USER (with VERDICT_NATS_PASSWORD) and VERDICT_NATS_TOKEN, not several"))
	}
	if (a.User == "") != (a.Password == "") {
		errs = append(errs, errors.New("VERDICT_NATS_USER and VERDICT_NATS_PASSWORD go together: set both, or neither"))
	}
	if (a.Cert == "") != (a.Key == "") {
		errs = append(errs, errors.New("VERDICT_NATS_TLS_CERT and VERDICT_NATS_TLS_KEY go together: set both, or neither"))
	}
	return errors.Join(errs...)
}

// HasSecret reports whether a carries a credential to send a server.
func (a Auth) HasSecret() bool {
	return a.Creds != "" || a.NKeySeed != "" || a.Password != "" || a.Token != ""
}

// Options are the nats.go options for a.
func (a Auth) Options() ([]nats.Option, error) {
	if err := a.Validate(); err != nil {
		return nil, err
	}
	var opts []nats.Option
	switch {
	case a.Creds != "":
		opts = append(opts, nats.UserCredentials(a.Creds))
	case a.NKeySeed != "":
		o, err := nats.NkeyOptionFromSeed(a.NKeySeed)
		if err != nil {
			return nil, fmt.Errorf("VERDICT_NATS_NKEY %s: %w", a.NKeySeed, err)
		}
		opts = append(opts, o)
	case a.User != "":
		opts = append(opts, nats.UserInfo(a.User, a.Password))
	case a.Token != "":
		opts = append(opts, nats.Token(a.Token))
	}
	if a.CA != "" {
		opts = append(opts, nats.RootCAs(a.CA))
	}
	if a.Cert != "" {
		opts = append(opts, nats.ClientCert(a.Cert, a.Key))
	}
	if a.InboxPrefix != "" {
		opts = append(opts, nats.CustomInboxPrefix(a.InboxPrefix))
	}
	return opts, nil
}

// LogValue shows which methods are set, never a secret.
func (a Auth) LogValue() slog.Value {
	var m []string
	for name, set := range map[string]bool{"creds": a.Creds != "", "nkey": a.NKeySeed != "", "user": a.User != "", "token": a.Token != "", "tls_ca": a.CA != "", "tls_cert": a.Cert != ""} {
		if set {
			m = append(m, name)
		}
	}
	if len(m) == 0 {
		return slog.StringValue("none")
	}
	slices.Sort(m)
	return slog.StringValue(strings.Join(m, ","))
}
