package main

import (
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
	"testing"
)

// TestReadout prints a stored readout as `verdict readout` does, from an
// HTTP server serving it as the API would, for a terminal and as an email.
func TestReadout(t *testing.T) {
	doc, err := os.ReadFile("../../pkg/report/testdata/readouts/salvage_dark_mode_android.json")
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/v1/experiments/dark-mode/readout" {
			http.Error(w, `{"error":"no readout"}`, http.StatusNotFound)
			return
		}
		w.Write(doc)
	}))
	defer srv.Close()
	addr := strings.TrimPrefix(srv.URL, "http://")
	getenv := func(string) string { return "" }

	tests := []struct {
		args []string
		want []string
	}{
		{[]string{"readout", "--http-addr", addr, "dark-mode"}, []string{"SALVAGE", "worth keeping:", "platform = android", "sample ratio: ok", "dark vs control: salvage"}},
		{[]string{"readout", "dark-mode", "--http-addr", addr, "--email"}, []string{"Subject: [verdict] dark-mode: SALVAGE", "Content-Type: image/png", "multipart/alternative"}},
		{[]string{"readout", "--http-addr", addr, "--json", "dark-mode"}, []string{string(doc)}},
	}
	for _, tt := range tests {
		var out strings.Builder
		if err := run(context.Background(), tt.args, getenv, nil, &out, io.Discard); err != nil {
			t.Errorf("verdict %v: %v", tt.args, err)
			continue
		}
		for _, w := range tt.want {
			if !strings.Contains(out.String(), w) {
				t.Errorf("verdict %v: output lacks %q", tt.args, w)
			}
		}
	}
	err = run(context.Background(), []string{"readout", "--http-addr", addr, "no-such"}, getenv, nil, io.Discard, io.Discard)
	if err == nil || !strings.Contains(err.Error(), "no readout") {
		t.Errorf("verdict readout no-such: err = %v, want the API's 404 message", err)
	}
}
