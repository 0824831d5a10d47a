package main

import (
	"io"
	"net/http"
	"strings"
	"testing"
)

// TestSecretsStayOut plants secrets in the NATS URL, the SMTP password and
// the write keys of verdict up, and looks for them in its log and on every
// open endpoint.
func TestSecretsStayOut(t *testing.T) {
	const planted = "planted-secret-4711"
	s := &lifecycleStack{env: map[string]string{
		"VERDICT_NATS_URL":        "nats://verdict:" + planted + "@" + deployFreeAddr(t),
		"VERDICT_CLICKHOUSE_ADDR": deployFreeAddr(t),
		"VERDICT_HTTP_ADDR":       deployFreeAddr(t),
		"VERDICT_DATA_DIR":        t.TempDir(),
		"VERDICT_RULES_INTERVAL":  "1s",
		"VERDICT_LOG_LEVEL":       "debug",
		"VERDICT_SMTP_ADDR":       deployFreeAddr(t), // nothing listens: a failing relay
		"VERDICT_SMTP_USERNAME":   "verdict",
		"VERDICT_SMTP_PASSWORD":   planted + "-smtp",
		"VERDICT_WRITE_KEYS":      planted + "-key",
	}}
	s.start(t)
	base := "http://" + s.env["VERDICT_HTTP_ADDR"]
	for _, path := range []string{"/readyz", "/healthz", "/metrics", "/v1/experiments", "/experiments", "/v1/experiments/nope/readout", "/experiments/nope"} {
		resp, err := http.Get(base + path)
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if strings.Contains(string(b), planted) {
			t.Errorf("GET %s shows a planted secret", path)
		}
	}
	s.stop()
	if strings.Contains(s.log.String(), planted) {
		t.Errorf("verdict up's log shows a planted secret:\n%s", s.log.String())
	}
}
