package web

import (
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

func TestAccess(t *testing.T) {
	ok := http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { w.WriteHeader(http.StatusOK) })
	h := Access{APITokens: []string{"t1", "t2"}, MetricsToken: "m1"}.Wrap(ok)
	type auth struct{ bearer, basic string }
	tests := []struct {
		path string
		auth auth
		want int
	}{
		{"/healthz", auth{}, 200},
		{"/v1/batch", auth{}, 200}, // write keys are the gateway's business
		{"/v1/events", auth{}, 200},
		{"/metrics", auth{}, 401},
		{"/metrics", auth{bearer: "t1"}, 401},
		{"/metrics", auth{bearer: "m1"}, 200},
		{"/readyz", auth{basic: "m1"}, 200},
		{"/v1/experiments", auth{}, 401},
		{"/v1/experiments", auth{bearer: "wrong"}, 401},
		{"/v1/experiments", auth{bearer: "t2"}, 200},
		{"/experiments/x", auth{basic: "t1"}, 200},
		{"/experiments/x", auth{basic: ""}, 401},
		{"/", auth{}, 401},
	}
	for _, tt := range tests {
		req := httptest.NewRequest(http.MethodGet, tt.path, nil)
		if tt.auth.bearer != "" {
			req.Header.Set("Authorization", "Bearer "+tt.auth.bearer)
		}
		if tt.auth.basic != "" {
			req.SetBasicAuth("anyone", tt.auth.basic)
		}
		w := httptest.NewRecorder()
		h.ServeHTTP(w, req)
		if w.Code != tt.want {
			t.Errorf("GET %s with %+v = %d, want %d", tt.path, tt.auth, w.Code, tt.want)
		}
		if w.Code == 401 && w.Header().Get("WWW-Authenticate") == "" {
			t.Errorf("GET %s: 401 without WWW-Authenticate: a browser would not ask for the token", tt.path)
		}
	}
	// No tokens: everything open.
	w := httptest.NewRecorder()
	Access{}.Wrap(ok).ServeHTTP(w, httptest.NewRequest(http.MethodGet, "/v1/experiments", nil))
	if w.Code != 200 {
		t.Errorf("without tokens: %d, want 200", w.Code)
	}
}

func TestCheckExposure(t *testing.T) {
	tokens := Access{APITokens: []string{"t"}}
	for _, tt := range []struct {
		addr     string
		a        Access
		insecure bool
		ok       bool
	}{
		{"127.0.0.1:8080", Access{}, false, true},
		{"[::1]:8080", Access{}, false, true},
		{"0.0.0.0:8080", Access{}, false, false},
		{"0.0.0.0:8080", tokens, false, true},
		{"0.0.0.0:8080", Access{}, true, true},
	} {
		if err := CheckExposure(tt.addr, tt.a, tt.insecure); (err == nil) != tt.ok {
			t.Errorf("CheckExposure(%s, %d tokens, insecure %v) = %v, want ok %v", tt.addr, len(tt.a.APITokens), tt.insecure, err, tt.ok)
		}
	}
}

func TestParseTokens(t *testing.T) {
	f := filepath.Join(t.TempDir(), "tokens")
	if err := os.WriteFile(f, []byte("a\nb, c\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	for in, want := range map[string][]string{"": nil, "x,y": {"x", "y"}, "@" + f: {"a", "b", "c"}} {
		if got, err := ParseTokens("V", in); err != nil || !slices.Equal(got, want) {
			t.Errorf("ParseTokens(%q) = %q, %v; want %q", in, got, err, want)
		}
	}
	if _, err := ParseTokens("V", "@/no/such"); err == nil {
		t.Error("ParseTokens of a missing file: no error")
	}
}

func TestIsLoopback(t *testing.T) {
	for addr, want := range map[string]bool{"127.0.0.1:8080": true, "localhost:80": true, "[::1]:8080": true, "0.0.0.0:8080": false, "10.0.0.1:80": false, ":8080": false} {
		if got := IsLoopback(addr); got != want {
			t.Errorf("IsLoopback(%q) = %v, want %v", addr, got, want)
		}
	}
}

// TestLoopbackGuards: on loopback without API tokens, a foreign Host (DNS
// rebinding) is refused and a cross-site browser POST changes nothing;
// curl-like clients, same-origin pages and VERDICT_BASE_URL's host pass.
func TestLoopbackGuards(t *testing.T) {
	ok := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, "served") })
	for _, tc := range []struct {
		name   string
		access Access
		method string
		host   string
		header map[string]string
		want   int
	}{
		{"a loopback Host", Access{Addr: "127.0.0.1:8080"}, "GET", "127.0.0.1:8080", nil, 200},
		{"localhost", Access{Addr: "127.0.0.1:8080"}, "GET", "localhost:8080", nil, 200},
		{"[::1]", Access{Addr: "127.0.0.1:8080"}, "GET", "[::1]:8080", nil, 200},
		{"a rebound name", Access{Addr: "127.0.0.1:8080"}, "GET", "attacker.example:8080", nil, http.StatusMisdirectedRequest},
		{"the base URL's host", Access{Addr: "127.0.0.1:8080", BaseURL: "https://verdict.internal.example"}, "GET", "verdict.internal.example", nil, 200},
		{"a foreign Host with API tokens", Access{Addr: "127.0.0.1:8080", APITokens: []string{"t"}}, "GET", "attacker.example", map[string]string{"Authorization": "Bearer t"}, 200},
		{"a foreign Host beyond loopback", Access{Addr: "0.0.0.0:8080", APITokens: []string{"t"}}, "GET", "verdict.example", map[string]string{"Authorization": "Bearer t"}, 200},
		{"curl's POST", Access{Addr: "127.0.0.1:8080"}, "POST", "127.0.0.1:8080", nil, 200},
		{"a cross-site browser POST", Access{Addr: "127.0.0.1:8080"}, "POST", "127.0.0.1:8080", map[string]string{"Sec-Fetch-Site": "cross-site", "Content-Type": "text/plain"}, http.StatusForbidden},
		{"a cross-origin POST without Sec-Fetch-Site", Access{Addr: "127.0.0.1:8080"}, "POST", "127.0.0.1:8080", map[string]string{"Origin": "https://attacker.example"}, http.StatusForbidden},
		{"a same-origin POST", Access{Addr: "127.0.0.1:8080"}, "POST", "127.0.0.1:8080", map[string]string{"Sec-Fetch-Site": "same-origin"}, 200},
		{"a cross-site POST to open ingest with API tokens", Access{Addr: "127.0.0.1:8080", APITokens: []string{"t"}, OpenIngest: true}, "POST", "127.0.0.1:8080", map[string]string{"Sec-Fetch-Site": "cross-site"}, http.StatusForbidden},
		{"a cross-site POST with write keys and API tokens", Access{Addr: "127.0.0.1:8080", APITokens: []string{"t"}}, "POST", "127.0.0.1:8080", map[string]string{"Sec-Fetch-Site": "cross-site"}, 200},
	} {
		t.Run(tc.name, func(t *testing.T) {
			req := httptest.NewRequest(tc.method, "/v1/events", strings.NewReader("{}"))
			req.Host = tc.host
			for k, v := range tc.header {
				req.Header.Set(k, v)
			}
			rec := httptest.NewRecorder()
			tc.access.Wrap(ok).ServeHTTP(rec, req)
			if rec.Code != tc.want {
				t.Errorf("%s %s (Host %s) = %d %s, want %d", tc.method, req.URL.Path, tc.host, rec.Code, rec.Body.String(), tc.want)
			}
		})
	}
}
