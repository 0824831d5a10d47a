package stream_test

import (
	"context"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"

	"github.com/verdictlabs/verdict/pkg/stream"
	"github.com/verdictlabs/verdict/pkg/stream/streamtest"
)

// TestAuth connects to servers that want a user and password over TLS,
// or a token: without the credentials Connect fails at once, naming the
// variables, and Reachable still sees the server.
func TestAuth(t *testing.T) {
	ca, tc := streamtest.SelfSigned(t)
	userURL := streamtest.RunSecure(t, &server.Options{Username: "verdict", Password: "pw-secret", TLSConfig: tc, TLS: true, TLSTimeout: 2})
	tokenURL := streamtest.RunSecure(t, &server.Options{Authorization: "tok-secret"})
	log := slog.New(slog.DiscardHandler)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	for _, tt := range []struct {
		name string
		url  string
		auth stream.Auth
		ok   bool
	}{
		{"user over TLS", userURL, stream.Auth{User: "verdict", Password: "pw-secret", CA: ca}, true},
		{"wrong password", userURL, stream.Auth{User: "verdict", Password: "nope", CA: ca}, false},
		{"no credentials", userURL, stream.Auth{CA: ca}, false},
		{"token", tokenURL, stream.Auth{Token: "tok-secret"}, true},
		{"no token", tokenURL, stream.Auth{}, false},
	} {
		nc, err := stream.Connect(ctx, tt.url, tt.auth, "test", log)
		if tt.ok {
			if err != nil {
				t.Errorf("%s: Connect: %v", tt.name, err)
				continue
			}
			nc.Close()
			continue
		}
		if err == nil {
			nc.Close()
			t.Errorf("%s: Connect succeeded, want a refusal", tt.name)
		} else if ctx.Err() != nil || !strings.Contains(err.Error(), "VERDICT_NATS_") {
			t.Errorf("%s: Connect = %v; want an immediate refusal naming the settings", tt.name, err)
		}
		if !stream.Reachable(tt.url, tt.auth, time.Second) {
			t.Errorf("%s: Reachable = false; the server answers", tt.name)
		}
	}
	if err := (stream.Auth{User: "u"}).Validate(); err == nil {
		t.Error("Validate of a user without a password: no error")
	}
	if err := (stream.Auth{Token: "t", User: "u", Password: "p"}).Validate(); err == nil {
		t.Error("Validate of a token and a user: no error")
	}
}
