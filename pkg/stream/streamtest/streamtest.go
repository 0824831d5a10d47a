// Package streamtest runs a real, private nats-server with JetStream for a
// test, as nats-server's own tests do: a random port and a store in
// t.TempDir(), shut down when the test ends.
package streamtest

import (
	"crypto/tls"
	"fmt"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/verdictlabs/verdict/pkg/stream/embedded"
	"github.com/verdictlabs/verdict/pkg/testkit"
	"github.com/verdictlabs/verdict/pkg/tlstest"
)

// Run starts an embedded server and returns it.
func Run(t testing.TB) *embedded.Server {
	t.Helper()
	s, err := embedded.Run(embedded.Config{URL: "nats://127.0.0.1:0", StoreDir: t.TempDir()})
	if err != nil {
		t.Fatalf("run nats-server: %v", err)
	}
	t.Cleanup(s.Shutdown)
	return s
}

// Connect connects a client to s and returns it with its JetStream context.
func Connect(t testing.TB, s *embedded.Server) (*nats.Conn, jetstream.JetStream) {
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

// SelfSigned writes a self-signed certificate for 127.0.0.1 and returns
// its file, the CA to trust, and the server's TLS config.
func SelfSigned(t *testing.T) (caFile string, tc *tls.Config) {
	t.Helper()
	c := tlstest.New(t)
	return c.CertFile, &tls.Config{Certificates: []tls.Certificate{c.TLS}, MinVersion: tls.VersionTLS12}
}

// RunSecure starts a nats-server with JetStream and opts (users, tokens,
// TLS) on a free loopback port and returns its client URL.
func RunSecure(t *testing.T, opts *server.Options) string {
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

// RunCluster starts n embedded servers with JetStream routed into one
// cluster on loopback, waits until JetStream has a leader, and returns
// their client URLs joined by commas, as VERDICT_NATS_URL takes them.
func RunCluster(t testing.TB, n int) string {
	t.Helper()
	ports := make([]int, n)
	for i := range ports {
		ports[i] = testkit.FreePort(t)
	}
	var routes []*url.URL
	for _, p := range ports {
		routes = append(routes, &url.URL{Scheme: "nats", Host: fmt.Sprintf("127.0.0.1:%d", p)})
	}
	var urls []string
	var servers []*server.Server
	for i := range n {
		opts := &server.Options{
			ServerName: fmt.Sprintf("n%d", i+1), Host: "127.0.0.1", Port: -1,
			JetStream: true, StoreDir: t.TempDir(), NoSigs: true, NoLog: true,
			Cluster: server.ClusterOpts{Name: "verdict", Host: "127.0.0.1", Port: ports[i]},
			Routes:  routes,
		}
		s, err := server.NewServer(opts)
		if err != nil {
			t.Fatal(err)
		}
		go s.Start()
		if !s.ReadyForConnections(10 * time.Second) {
			t.Fatalf("nats-server n%d not ready", i+1)
		}
		t.Cleanup(s.Shutdown)
		servers = append(servers, s)
		urls = append(urls, s.ClientURL())
	}
	for deadline := time.Now().Add(30 * time.Second); ; time.Sleep(100 * time.Millisecond) {
		leader, current := false, true
		for _, s := range servers {
			leader = leader || s.JetStreamIsLeader()
			current = current && s.JetStreamIsClustered() && s.JetStreamIsCurrent()
		}
		if leader && current {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the NATS cluster has no JetStream leader after 30s")
		}
	}
	return strings.Join(urls, ",")
}
