package web

import (
	"crypto/subtle"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"os"
	"strings"
)

// Access guards what a verdict HTTP server serves (VERDICT_API_TOKENS,
// VERDICT_METRICS_TOKEN). Readouts — the API under /v1/experiments and the
// pages — need an API token when any is set: as a Bearer token, or as the
// password of HTTP Basic, so that a browser can open the pages. /metrics
// and /readyz need the metrics token when one is set; /healthz is always
// open. HTTP ingest (/v1/batch and the other Segment endpoints, /v1/events)
// checks its own write keys.
type Access struct {
	APITokens    []string
	MetricsToken string

	// Addr is where the server listens (VERDICT_HTTP_ADDR). On a loopback
	// address without API tokens, the default, anyone's browser on the
	// machine is a client, and any web page it opens can try to use it:
	// only a loopback Host (localhost, 127.0.0.1, [::1]) or BaseURL's is
	// served, so a DNS-rebound name cannot read readouts, and a cross-site
	// browser request that would change something (POST /v1/events, a
	// recompute) is refused (http.CrossOriginProtection). OpenIngest says
	// HTTP ingest takes events without write keys, which brings the
	// cross-site refusal even with API tokens.
	Addr       string
	BaseURL    string
	OpenIngest bool
}

// ingestPaths are HTTP ingest's: guarded by write keys, not API tokens.
var ingestPaths = map[string]bool{"/v1/batch": true, "/v1/track": true, "/v1/page": true, "/v1/screen": true,
	"/v1/identify": true, "/v1/group": true, "/v1/alias": true, "/v1/events": true}

// Wrap returns h behind the access rules.
func (a Access) Wrap(h http.Handler) http.Handler {
	loopback := a.Addr != "" && IsLoopback(a.Addr)
	if loopback && (len(a.APITokens) == 0 || a.OpenIngest) {
		cop := http.NewCrossOriginProtection()
		if u, err := url.Parse(a.BaseURL); err == nil && u.Host != "" {
			_ = cop.AddTrustedOrigin(u.Scheme + "://" + u.Host)
		}
		cop.SetDenyHandler(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			http.Error(w, "a cross-site request from a browser may not change anything here", http.StatusForbidden)
		}))
		h = cop.Handler(h)
	}
	if loopback && len(a.APITokens) == 0 {
		h = onlyHosts(h, a.BaseURL)
	}
	if len(a.APITokens) == 0 && a.MetricsToken == "" {
		return h
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		p := r.URL.Path
		switch {
		case p == "/healthz", ingestPaths[p]:
		case p == "/metrics" || p == "/readyz":
			if a.MetricsToken != "" && !presented(r, []string{a.MetricsToken}) {
				deny(w)
				return
			}
		default:
			if len(a.APITokens) > 0 && !presented(r, a.APITokens) {
				deny(w)
				return
			}
		}
		h.ServeHTTP(w, r)
	})
}

// onlyHosts serves a request only when its Host is a loopback name or
// address, or baseURL's host.
func onlyHosts(h http.Handler, baseURL string) http.Handler {
	var base string
	if u, err := url.Parse(baseURL); err == nil {
		base = strings.ToLower(u.Hostname())
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		host := r.Host
		if hh, _, err := net.SplitHostPort(host); err == nil {
			host = hh
		}
		host = strings.ToLower(strings.Trim(host, "[]"))
		ip := net.ParseIP(host)
		if host == "localhost" || (ip != nil && ip.IsLoopback()) || (base != "" && host == base) {
			h.ServeHTTP(w, r)
			return
		}
		http.Error(w, fmt.Sprintf("this server listens on loopback without API tokens and answers only to localhost, 127.0.0.1 or [::1], not to Host %q: set VERDICT_BASE_URL to the address people use, or VERDICT_API_TOKENS", r.Host), http.StatusMisdirectedRequest)
	})
}

// presented reports whether r carries one of tokens, as a Bearer token or
// as the password of HTTP Basic.
func presented(r *http.Request, tokens []string) bool {
	got, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
	if !ok {
		_, got, ok = r.BasicAuth()
	}
	if !ok || got == "" {
		return false
	}
	match := 0
	for _, t := range tokens {
		match |= subtle.ConstantTimeCompare([]byte(got), []byte(t))
	}
	return match == 1
}

func deny(w http.ResponseWriter) {
	w.Header().Set("WWW-Authenticate", `Basic realm="verdict", charset="UTF-8"`)
	http.Error(w, "a token is required: Authorization: Bearer <token>, or any user name with the token as password", http.StatusUnauthorized)
}

// ParseTokens reads a list of secrets from the variable name's value:
// separated by commas or new lines, or @FILE for a file of them.
func ParseTokens(name, value string) ([]string, error) {
	if path, ok := strings.CutPrefix(value, "@"); ok {
		b, err := os.ReadFile(path)
		if err != nil {
			return nil, fmt.Errorf("%s %s: %w", name, value, err)
		}
		value = string(b)
	}
	var out []string
	for _, t := range strings.FieldsFunc(value, func(r rune) bool { return r == ',' || r == '\n' || r == '\r' }) {
		if t = strings.TrimSpace(t); t != "" {
			out = append(out, t)
		}
	}
	return out, nil
}

// CheckExposure refuses to serve readouts beyond loopback without API
// tokens, unless insecure (VERDICT_INSECURE=1) says so.
func CheckExposure(addr string, a Access, insecure bool) error {
	if _, _, err := net.SplitHostPort(addr); err != nil {
		return nil // the address itself is reported elsewhere
	}
	if IsLoopback(addr) || len(a.APITokens) > 0 || insecure {
		return nil
	}
	return fmt.Errorf("VERDICT_HTTP_ADDR %s is not a loopback address and VERDICT_API_TOKENS is empty: anyone who reaches it could read every readout; set VERDICT_API_TOKENS, or VERDICT_INSECURE=1 to allow it", addr)
}

// IsLoopback reports whether addr (host:port) listens on loopback only.
func IsLoopback(addr string) bool {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return false
	}
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}
