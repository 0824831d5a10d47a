package web

import (
	"context"
	"errors"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
)

// TestReadyzDetails: a failing check's error (which names servers,
// addresses, users) is shown to a client on this machine; a remote probe
// learns only which check fails.
func TestReadyzDetails(t *testing.T) {
	checks := &Checks{}
	checks.Add("clickhouse", func(context.Context) error {
		return errors.New("dial tcp 10.1.2.3:9000 as user verdict: connection refused")
	})
	mux := NewMux(prometheus.NewRegistry(), checks)
	for _, tc := range []struct {
		remote string
		detail bool
	}{{"127.0.0.1:5555", true}, {"[::1]:5555", true}, {"203.0.113.9:5555", false}} {
		req := httptest.NewRequest("GET", "/readyz", nil)
		req.RemoteAddr = tc.remote
		rec := httptest.NewRecorder()
		mux.ServeHTTP(rec, req)
		body := rec.Body.String()
		if rec.Code != 503 || !strings.Contains(body, "clickhouse") {
			t.Errorf("from %s: %d %q, want 503 naming the check", tc.remote, rec.Code, body)
		}
		if got := strings.Contains(body, "10.1.2.3"); got != tc.detail {
			t.Errorf("from %s: the error shown = %v, want %v (%q)", tc.remote, got, tc.detail, body)
		}
	}
}
