// Package streamtest runs a real, private nats-server with JetStream for a
// test, as nats-server's own tests do: a random port and a store in
// t.TempDir(), shut down when the test ends.
package streamtest

import (
	"testing"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/verdictlabs/verdict/pkg/stream"
)

// Run starts an embedded server and returns it.
func Run(t testing.TB) *stream.Server {
	t.Helper()
	s, err := stream.RunServer(stream.ServerConfig{URL: "nats://127.0.0.1:0", StoreDir: t.TempDir()})
	if err != nil {
		t.Fatalf("run nats-server: %v", err)
	}
	t.Cleanup(s.Shutdown)
	return s
}

// Connect connects a client to s and returns it with its JetStream context.
func Connect(t testing.TB, s *stream.Server) (*nats.Conn, jetstream.JetStream) {
	t.Helper()
	nc, err := nats.Connect(s.URL())
	if err != nil {
		t.Fatalf("connect to %s: %v", s.URL(), err)
	}
	t.Cleanup(nc.Close)
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	return nc, js
}
