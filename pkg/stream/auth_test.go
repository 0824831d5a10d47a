package stream_test

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"log/slog"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"

	"github.com/verdictlabs/verdict/pkg/stream"
)

// selfSigned writes a CA and a server certificate for 127.0.0.1, and
// returns the CA's file and the server's TLS config.
func selfSigned(t *testing.T) (caFile string, tc *tls.Config) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "verdict test"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign | x509.KeyUsageDigitalSignature,
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}, IPAddresses: []net.IP{net.ParseIP("127.0.0.1")},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	caFile = filepath.Join(t.TempDir(), "ca.pem")
	if err := os.WriteFile(caFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o600); err != nil {
		t.Fatal(err)
	}
	return caFile, &tls.Config{Certificates: []tls.Certificate{{Certificate: [][]byte{der}, PrivateKey: key}}, MinVersion: tls.VersionTLS12}
}

func secureServer(t *testing.T, opts *server.Options) string {
	t.Helper()
	opts.Host, opts.Port, opts.JetStream, opts.StoreDir, opts.NoSigs = "127.0.0.1", -1, true, t.TempDir(), true
	s, err := server.NewServer(opts)
	if err != nil {
		t.Fatal(err)
	}
	go s.Start()
	if !s.ReadyForConnections(10 * time.Second) {
		t.Fatal("nats-server not ready")
	}
	t.Cleanup(s.Shutdown)
	return s.ClientURL()
}

// TestAuth connects to servers that want a user and password over TLS,
// or a token: without the credentials Connect fails at once, naming the
// variables, and Reachable still sees the server.
func TestAuth(t *testing.T) {
	ca, tc := selfSigned(t)
	userURL := secureServer(t, &server.Options{Username: "verdict", Password: "pw-secret", TLSConfig: tc, TLS: true, TLSTimeout: 2})
	tokenURL := secureServer(t, &server.Options{Authorization: "tok-secret"})
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
