package main

import (
	"io"
	"net/http"
	"strings"
	"testing"

	"github.com/verdictlabs/verdict/pkg/warehouse"
	"github.com/verdictlabs/verdict/pkg/warehouse/warehousetest"
)

// TestSecretsStayOut plants secrets in the NATS URL, the SMTP password, the
// write keys, the API tokens, a Slack webhook URL and the webhook secret of
// verdict up, and looks for them in its
// log and on every endpoint, with and without the token; the readouts
// need the token, the probes do not.
func TestSecretsStayOut(t *testing.T) { warehousetest.Run(t, testSecretsStayOut) }

func testSecretsStayOut(t *testing.T, eng warehouse.Engine) {
	const planted = "planted-secret-4711"
	s := &lifecycleStack{env: map[string]string{
		"VERDICT_NATS_URL":         "nats://verdict:" + planted + "@" + deployFreeAddr(t),
		"VERDICT_CLICKHOUSE_ADDR":  deployFreeAddr(t),
		"VERDICT_CLICKHOUSE_LOCAL": string(eng),
		"VERDICT_HTTP_ADDR":        deployFreeAddr(t),
		"VERDICT_DATA_DIR":         t.TempDir(),
		"VERDICT_RULES_INTERVAL":   "1s",
		"VERDICT_LOG_LEVEL":        "debug",
		"VERDICT_SMTP_ADDR":        deployFreeAddr(t), // nothing listens: a failing relay
		"VERDICT_SMTP_USERNAME":    "verdict",
		"VERDICT_SMTP_PASSWORD":    planted + "-smtp",
		"VERDICT_WRITE_KEYS":       planted + "-key",
		"VERDICT_API_TOKENS":       planted + "-api",
		"VERDICT_SLACK_WEBHOOKS":   "https://hooks.slack.example/services/" + planted + "-slack",
		"VERDICT_WEBHOOKS":         "https://hooks.example.com/verdict",
		"VERDICT_WEBHOOK_SECRET":   planted + "-hmac",
	}}
	s.start(t)
	base := "http://" + s.env["VERDICT_HTTP_ADDR"]
	get := func(path, token string) (int, string) {
		req, _ := http.NewRequest(http.MethodGet, base+path, nil)
		if token != "" {
			req.Header.Set("Authorization", "Bearer "+token)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		return resp.StatusCode, string(b)
	}
	for _, path := range []string{"/readyz", "/healthz", "/metrics", "/v1/experiments", "/experiments", "/v1/experiments/nope/readout", "/experiments/nope"} {
		for _, token := range []string{"", planted + "-api"} {
			if _, body := get(path, token); strings.Contains(body, planted) {
				t.Errorf("GET %s shows a planted secret", path)
			}
		}
	}
	// The readouts need the API token; the probes do not.
	for path, want := range map[string]int{"/v1/experiments": 401, "/experiments": 401, "/metrics": 200, "/healthz": 200} {
		if code, _ := get(path, ""); code != want {
			t.Errorf("GET %s without a token = %d, want %d", path, code, want)
		}
	}
	if code, _ := get("/v1/experiments", planted+"-api"); code != 200 {
		t.Errorf("GET /v1/experiments with the token = %d, want 200", code)
	}
	s.stop()
	if strings.Contains(s.log.String(), planted) {
		t.Errorf("verdict up's log shows a planted secret:\n%s", s.log.String())
	}
}
