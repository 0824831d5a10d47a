package main

// Tests of deploy/ and docker-compose.yml with the real tools: promtool
// checks the Prometheus config and the alert rules and runs the rules' unit
// tests; docker-compose checks the compose file; and a real Prometheus
// scrapes a running `verdict up` with traffic while every PromQL expression
// of the dashboards and rules is evaluated through its HTTP API, and every
// ClickHouse query of the dashboards runs against up's ClickHouse. A missing
// tool fails the test (`make deps` installs them), it never skips.

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"
	"text/template"
	"time"

	"github.com/goccy/go-yaml"
	natsserver "github.com/nats-io/nats-server/v2/server"

	"github.com/verdictlabs/verdict/pkg/testkit"
	"github.com/verdictlabs/verdict/pkg/warehouse"
	"github.com/verdictlabs/verdict/pkg/warehouse/warehousetest"
)

// deployRoot is the repository root, where deploy/ and docker-compose.yml are.
const deployRoot = "../.."

const (
	prometheusDatasource = "prometheus"
	clickhouseDatasource = "grafana-clickhouse-datasource"
)

// deployTool returns the path of an installed command, failing the test
// when it is missing.
func deployTool(t *testing.T, name, pkg string) string {
	t.Helper()
	p, err := exec.LookPath(name)
	if err != nil {
		t.Fatalf("%s not found: install Debian's %s (make deps): %v", name, pkg, err)
	}
	return p
}

func deployRun(t *testing.T, dir string, name string, args ...string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, name, args...)
	cmd.Dir = dir
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Errorf("%s %s: %v\n%s", filepath.Base(name), strings.Join(args, " "), err, out)
		return
	}
	t.Logf("%s %s: ok", filepath.Base(name), strings.Join(args, " "))
}

// ruleFiles are the alerting and recording rule files, without their unit
// tests (*.test.yml).
func ruleFiles(t *testing.T) []string {
	t.Helper()
	all, err := filepath.Glob(filepath.Join(deployRoot, "deploy/prometheus/rules/*.yml"))
	if err != nil {
		t.Fatal(err)
	}
	var files []string
	for _, f := range all {
		if !strings.HasSuffix(f, ".test.yml") {
			files = append(files, f)
		}
	}
	if len(files) == 0 {
		t.Fatal("no rule files in deploy/prometheus/rules")
	}
	return files
}

func TestDeployPromtool(t *testing.T) {
	promtool := deployTool(t, "promtool", "prometheus")
	dir := filepath.Join(deployRoot, "deploy/prometheus")
	deployRun(t, dir, promtool, "check", "config", "prometheus.yml")
	for _, f := range ruleFiles(t) {
		rel, _ := filepath.Rel(dir, f)
		deployRun(t, dir, promtool, "check", "rules", rel)
	}
	tests, err := filepath.Glob(filepath.Join(dir, "rules/*.test.yml"))
	if err != nil || len(tests) == 0 {
		t.Fatalf("no rule unit tests (rules/*.test.yml) in %s: %v", dir, err)
	}
	for _, f := range tests {
		deployRun(t, filepath.Dir(f), promtool, "test", "rules", filepath.Base(f))
	}
}

// TestDeployRulesHaveRunbooks checks that every alert says what happened and
// links to its section of docs/runbook.md.
func TestDeployRulesHaveRunbooks(t *testing.T) {
	runbook, err := os.ReadFile(filepath.Join(deployRoot, "docs/runbook.md"))
	if err != nil {
		t.Fatal(err)
	}
	want := []string{"IngestStalled", "DLQRateHigh", "ConsumerLagGrowing", "InsertErrors", "ReadoutsStale", "SRMDetected", "EmailsFailing",
		"HTTPIngestFailing", "NotificationsFailing", "DigestsFailing"}
	got := map[string]bool{}
	for _, f := range ruleFiles(t) {
		for _, r := range readRules(t, f) {
			if r.Alert == "" {
				continue
			}
			got[r.Alert] = true
			for _, a := range []string{"summary", "description", "runbook_url"} {
				if r.Annotations[a] == "" {
					t.Errorf("alert %s: no %s annotation", r.Alert, a)
				}
			}
			anchor := "#" + strings.ToLower(r.Alert)
			if !strings.HasSuffix(r.Annotations["runbook_url"], "docs/runbook.md"+anchor) {
				t.Errorf("alert %s: runbook_url = %q, want …docs/runbook.md%s", r.Alert, r.Annotations["runbook_url"], anchor)
			}
			if !bytes.Contains(runbook, []byte("\n## "+r.Alert+"\n")) {
				t.Errorf("docs/runbook.md has no section \"## %s\"", r.Alert)
			}
		}
	}
	for _, a := range want {
		if !got[a] {
			t.Errorf("no alert %s in deploy/prometheus/rules", a)
		}
	}
}

func TestDeployComposeConfig(t *testing.T) {
	compose := deployTool(t, "docker-compose", "docker-compose")
	// The secrets come from .env, which the README has you create from
	// .env.example; without them compose refuses, naming what is missing.
	deployRun(t, deployRoot, compose, "--env-file", ".env.example", "-f", "docker-compose.yml", "config", "-q")
	empty := filepath.Join(t.TempDir(), "empty.env")
	if err := os.WriteFile(empty, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(compose, "--env-file", empty, "-f", "docker-compose.yml", "config", "-q")
	cmd.Dir = deployRoot
	cmd.Env = []string{"PATH=" + os.Getenv("PATH")} // none of the secrets
	if out, err := cmd.CombinedOutput(); err == nil || !strings.Contains(string(out), "_PASSWORD in .env") {
		t.Errorf("docker-compose config without .env: %v\n%s\nwant a refusal naming a password to set in .env", err, out)
	}
	b, err := os.ReadFile(filepath.Join(deployRoot, "docker-compose.yml"))
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{`"127.0.0.1:3000:3000"`, `GF_AUTH_ANONYMOUS_ENABLED: "false"`, `command: ["-c", "/etc/nats/compose.conf"]`, "VERDICT_NATS_USER: verdict"} {
		if !strings.Contains(string(b), want) {
			t.Errorf("docker-compose.yml lacks %s", want)
		}
	}
}

// TestDeployNATSConfig: the compose stack's NATS configuration is read by
// nats-server itself, with JetStream and the users of embedded.conf; the
// producer and the reader cannot read the account's inboxes.
func TestDeployNATSConfig(t *testing.T) {
	for _, v := range []string{"VERDICT_NATS_PASSWORD", "VERDICT_NATS_PRODUCER_PASSWORD", "VERDICT_NATS_READER_PASSWORD"} {
		t.Setenv(v, "pw-"+v)
	}
	opts, err := natsserver.ProcessConfigFile(filepath.Join(deployRoot, "deploy", "nats", "compose.conf"))
	if err != nil {
		t.Fatalf("nats-server reads deploy/nats/compose.conf: %v", err)
	}
	if !opts.JetStream || opts.StoreDir != "/data" {
		t.Errorf("JetStream %v in %q, want on in /data", opts.JetStream, opts.StoreDir)
	}
	users := map[string]*natsserver.User{}
	for _, u := range opts.Users {
		users[u.Username] = u
	}
	for _, name := range []string{"verdict", "producer", "reader"} {
		if users[name] == nil {
			t.Fatalf("no user %s", name)
		}
	}
	for _, name := range []string{"producer", "reader"} {
		p := users[name].Permissions
		if p == nil || p.Subscribe == nil || slices.Contains(p.Subscribe.Allow, "_INBOX.>") || slices.Contains(p.Subscribe.Allow, ">") {
			t.Errorf("%s may subscribe to every inbox: %+v", name, p)
		}
	}
}

type promRule struct {
	Alert       string            `yaml:"alert"`
	Record      string            `yaml:"record"`
	Expr        string            `yaml:"expr"`
	Annotations map[string]string `yaml:"annotations"`
}

func readRules(t *testing.T, file string) []promRule {
	t.Helper()
	b, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	var f struct {
		Groups []struct {
			Rules []promRule `yaml:"rules"`
		} `yaml:"groups"`
	}
	if err := yaml.Unmarshal(b, &f); err != nil {
		t.Fatalf("%s: %v", file, err)
	}
	var rules []promRule
	for _, g := range f.Groups {
		rules = append(rules, g.Rules...)
	}
	return rules
}

// query is one expression of a dashboard or rules file.
type query struct {
	where    string // file and panel or rule, for messages
	text     string
	variable string // the template variable's name, for a variable's query
}

// dashboardQueries walks every dashboard and returns its PromQL expressions
// and its ClickHouse SQL (panel targets and template variables), by the
// data source each belongs to: a target's own, else its panel's.
func dashboardQueries(t *testing.T) (promql, sql []query) {
	t.Helper()
	files, err := filepath.Glob(filepath.Join(deployRoot, "deploy/grafana/dashboards/*.json"))
	if err != nil || len(files) == 0 {
		t.Fatalf("no dashboards in deploy/grafana/dashboards: %v", err)
	}
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		var d map[string]any
		if err := json.Unmarshal(b, &d); err != nil {
			t.Fatalf("%s: %v", f, err)
		}
		name := filepath.Base(f)
		var walk func(v any, title, dsType string)
		walk = func(v any, title, dsType string) {
			switch v := v.(type) {
			case []any:
				for _, e := range v {
					walk(e, title, dsType)
				}
			case map[string]any:
				if s, ok := v["title"].(string); ok {
					title = s
				}
				if ds, ok := v["datasource"].(map[string]any); ok {
					if typ, ok := ds["type"].(string); ok {
						dsType = typ
					}
				}
				where := name + ": " + title
				if e, ok := v["expr"].(string); ok && e != "" {
					promql = append(promql, query{where: where, text: e})
				}
				if s, ok := v["rawSql"].(string); ok && s != "" {
					sql = append(sql, query{where: where, text: s})
				}
				// A template variable of the ClickHouse data source.
				if s, ok := v["query"].(string); ok && s != "" && dsType == clickhouseDatasource {
					sql = append(sql, query{where: name + ": variable " + fmt.Sprint(v["name"]), text: s, variable: fmt.Sprint(v["name"])})
				}
				for k, e := range v {
					if k != "datasource" {
						walk(e, title, dsType)
					}
				}
			}
		}
		walk(d, "", "")
	}
	return promql, sql
}

// grafanaPromVars are the values the test gives Grafana's global variables
// in PromQL: windows that hold enough 1s scrapes of the test's traffic.
var grafanaPromVars = strings.NewReplacer(
	"$__rate_interval", "1m",
	"${__rate_interval}", "1m",
	"$__interval", "15s",
	"${__interval}", "15s",
	"$__range", "5m",
	"${__range}", "5m",
)

var verdictMetric = regexp.MustCompile(`\bverdict_[a-z_]+`)

// jsonExtractCall matches a call of JSONExtract*, which ClickHouse 18.16
// lacks; visitParamExtract* works on both it and current releases.
var jsonExtractCall = regexp.MustCompile(`(?i)\bJSONExtract\w*\s*\(`)

func TestDeployDashboardQueries(t *testing.T) {
	promql, sql := dashboardQueries(t)
	if len(promql) == 0 || len(sql) == 0 {
		t.Fatalf("found %d PromQL and %d ClickHouse queries in the dashboards, want some of each", len(promql), len(sql))
	}
	for _, q := range append(promql, sql...) {
		if jsonExtractCall.MatchString(q.text) {
			t.Errorf("%s: JSONExtract* does not exist on ClickHouse 18.16; use visitParamExtract*:\n%s", q.where, q.text)
		}
	}
}

// TestDeployDashboardsAgainstStack runs `verdict up` with traffic, scrapes it
// with a real Prometheus, and evaluates every dashboard and rule expression
// against it; then runs every ClickHouse query of the dashboards against
// up's ClickHouse.
func TestDeployDashboardsAgainstStack(t *testing.T) {
	warehousetest.Run(t, testDeployDashboardsAgainstStack)
}

func testDeployDashboardsAgainstStack(t *testing.T, eng warehouse.Engine) {
	prometheusBin := deployTool(t, "prometheus", "prometheus")
	promql, sql := dashboardQueries(t)
	for _, f := range ruleFiles(t) {
		for _, r := range readRules(t, f) {
			promql = append(promql, query{where: filepath.Base(f) + ": " + r.Alert + r.Record, text: r.Expr})
		}
	}

	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()

	env := map[string]string{
		"VERDICT_NATS_URL":          "nats://" + deployFreeAddr(t),
		"VERDICT_CLICKHOUSE_ADDR":   deployFreeAddr(t),
		"VERDICT_CLICKHOUSE_LOCAL":  string(eng),
		"VERDICT_HTTP_ADDR":         deployFreeAddr(t),
		"VERDICT_DATA_DIR":          t.TempDir(),
		"VERDICT_RULES_INTERVAL":    "1s",
		"VERDICT_INGEST_BATCH_WAIT": "200ms",
		"VERDICT_LOG_LEVEL":         "warn",
	}
	getenv := func(k string) string { return env[k] }
	base := "http://" + env["VERDICT_HTTP_ADDR"]

	var upLog deploySyncBuffer
	upCtx, stopUp := context.WithCancel(context.Background())
	upDone := make(chan error, 1)
	go func() { upDone <- run(upCtx, []string{"up"}, getenv, strings.NewReader(""), io.Discard, &upLog) }()
	t.Cleanup(func() {
		stopUp()
		select {
		case err := <-upDone:
			if err != nil {
				t.Errorf("verdict up: %v", err)
			}
		case <-time.After(time.Minute):
			t.Errorf("verdict up did not stop within a minute")
		}
		if t.Failed() {
			t.Logf("verdict up's log:\n%s", upLog.String())
		}
	})
	deployWaitReady(t, ctx, base+"/readyz", upDone)

	prom := startPrometheus(t, prometheusBin, env["VERDICT_HTTP_ADDR"])
	// Prometheus applies its targets a few seconds after it starts: send the
	// traffic once it scrapes, so that the counters rise under its eyes.
	prom.waitFor(t, ctx, `up{job="verdict"} == 1`)

	// Definitions, then traffic in a few rounds, so counters rise while
	// Prometheus scrapes.
	start := time.Now().UTC().Add(-time.Hour).Truncate(time.Second)
	defs := filepath.Join(t.TempDir(), "definitions.yaml")
	deployRenderDefinitions(t, defs, start)
	var out, errOut bytes.Buffer
	if err := run(ctx, []string{"apply", "-f", defs}, getenv, strings.NewReader(""), &out, &errOut); err != nil {
		t.Fatalf("verdict apply: %v\n%s%s", err, out.String(), errOut.String())
	}
	rng := rand.New(rand.NewPCG(1, 2))
	const rounds = 3
	for round := range rounds {
		file := filepath.Join(t.TempDir(), fmt.Sprintf("events-%d.ndjson", round))
		if err := os.WriteFile(file, deployTraffic(rng, round, time.Now().UTC()), 0o644); err != nil {
			t.Fatal(err)
		}
		out.Reset()
		errOut.Reset()
		// The traffic has bad events on purpose: they go on, for ingest
		// to dead-letter and count.
		if err := run(ctx, []string{"publish", "--quiet", "--dead-letter", file}, getenv, strings.NewReader(""), &out, &errOut); err != nil {
			t.Fatalf("verdict publish: %v\n%s%s", err, out.String(), errOut.String())
		}
		if round < rounds-1 {
			time.Sleep(2 * time.Second)
		}
	}

	// Wait until the pipeline has done its work and Prometheus has seen it.
	for _, cond := range []string{
		`sum(verdict_events_inserted_total) > 0`,
		`sum(verdict_events_invalid_total) > 0`,
		`sum(verdict_readouts_total) > 0`,
		`sum(verdict_srm_detections_total) > 0`,
	} {
		prom.waitFor(t, ctx, cond)
	}
	time.Sleep(3 * time.Second) // a few more scrapes after the last change

	t.Run("promql", func(t *testing.T) {
		var verdictExprs, empty int
		var emptyList []string
		for _, q := range promql {
			expr := grafanaPromVars.Replace(q.text)
			if strings.Contains(expr, "$") {
				t.Errorf("%s: a Grafana variable the test does not know: %s", q.where, expr)
				continue
			}
			n, err := prom.query(ctx, expr)
			if err != nil {
				t.Errorf("%s: %v\n%s", q.where, err, expr)
				continue
			}
			onVerdict := verdictMetric.MatchString(expr)
			if onVerdict {
				verdictExprs++
			}
			if n == 0 {
				if onVerdict {
					empty++
				}
				emptyList = append(emptyList, fmt.Sprintf("%s: %s", q.where, strings.Join(strings.Fields(expr), " ")))
			}
		}
		t.Logf("evaluated %d PromQL expressions, %d on verdict's metrics, %d of those empty", len(promql), verdictExprs, empty)
		for _, e := range emptyList {
			t.Logf("empty: %s", e)
		}
		if empty*5 > verdictExprs {
			t.Errorf("%d of %d expressions on verdict's metrics returned no data; at most a fifth may", empty, verdictExprs)
		}
		if err := prom.rulesHealthy(ctx); err != nil {
			t.Error(err)
		}
	})

	t.Run("clickhouse", func(t *testing.T) {
		checkClickHouseQueries(t, ctx, env["VERDICT_CLICKHOUSE_ADDR"], sql)
	})
}

// checkClickHouseQueries runs every ClickHouse query of the dashboards, with
// the plugin's macros expanded, against the server at addr: none may fail.
// A panel query that uses a template variable runs once for every value of
// the variable's own query.
func checkClickHouseQueries(t *testing.T, ctx context.Context, addr string, sql []query) {
	w, err := warehouse.Open(ctx, warehouse.Config{Addr: addr})
	if err != nil {
		t.Fatal(err)
	}
	defer w.Close()
	from, to := time.Now().Add(-time.Hour), time.Now().Add(time.Minute)
	expand := func(q query) (string, bool) {
		text, err := expandClickHouseMacros(q.text, from, to, 60)
		if err != nil {
			t.Errorf("%s: %v\n%s", q.where, err, q.text)
			return "", false
		}
		return text, true
	}
	count := func(q query, text string) ([]string, bool) {
		rows, err := w.Conn().Query(ctx, text)
		if err != nil {
			t.Errorf("%s: %v\n%s", q.where, err, text)
			return nil, false
		}
		defer rows.Close()
		var first []string // the first column, when it is a string
		for rows.Next() {
			var v string
			if rows.Scan(&v) == nil {
				first = append(first, v)
			} else {
				first = append(first, "")
			}
		}
		if err := rows.Err(); err != nil {
			t.Errorf("%s: %v\n%s", q.where, err, text)
			return nil, false
		}
		return first, true
	}

	values := map[string][]string{} // template variable → its values
	// A variable's query may use the variables before it (metric, those of
	// the experiment): it runs for each of their values.
	for _, q := range sql {
		if q.variable == "" {
			continue
		}
		text, ok := expand(q)
		if !ok {
			continue
		}
		texts := []string{text}
		for name, vs := range values {
			var next []string
			for _, tx := range texts {
				if !strings.Contains(tx, "${"+name+"}") {
					next = append(next, tx)
					continue
				}
				for _, v := range vs {
					next = append(next, strings.ReplaceAll(tx, "${"+name+"}", v))
				}
			}
			texts = next
		}
		seen := map[string]bool{}
		for _, tx := range texts {
			vs, ok := count(q, tx)
			if !ok {
				continue
			}
			for _, v := range vs {
				if !seen[v] {
					seen[v] = true
					values[q.variable] = append(values[q.variable], v)
				}
			}
		}
		if len(values[q.variable]) == 0 {
			t.Errorf("%s: no values: verdict.readouts is empty", q.where)
		}
		t.Logf("%s: %q", q.where, values[q.variable])
	}
	for _, q := range sql {
		if q.variable != "" {
			continue
		}
		text, ok := expand(q)
		if !ok {
			continue
		}
		// Every combination of the values of the variables the query uses.
		texts := []string{text}
		for name, vs := range values {
			var next []string
			for _, tx := range texts {
				if !strings.Contains(tx, "$"+name) && !strings.Contains(tx, "${"+name+"}") {
					next = append(next, tx)
					continue
				}
				for _, v := range vs {
					next = append(next, strings.NewReplacer("${"+name+"}", v, "$"+name, v).Replace(tx))
				}
			}
			texts = next
		}
		for _, tx := range texts {
			if strings.Contains(tx, "$") {
				t.Errorf("%s: a variable the dashboard does not define:\n%s", q.where, tx)
				continue
			}
			if rows, ok := count(q, tx); ok {
				t.Logf("%s: %d rows", q.where, len(rows))
			}
		}
	}
}

var (
	timeFilterMacro   = regexp.MustCompile(`\$__timeFilter\(\s*([^)]+?)\s*\)`)
	dateFilterMacro   = regexp.MustCompile(`\$__dateFilter\(\s*([^)]+?)\s*\)`)
	timeIntervalMacro = regexp.MustCompile(`\$__timeInterval\(\s*([^)]+?)\s*\)`)
)

// expandClickHouseMacros expands the macros of Grafana's ClickHouse plugin
// as the plugin does.
func expandClickHouseMacros(q string, from, to time.Time, intervalSeconds int) (string, error) {
	f, tt := from.Unix(), to.Unix()
	q = timeFilterMacro.ReplaceAllString(q, fmt.Sprintf("$1 >= toDateTime(%d) AND $1 <= toDateTime(%d)", f, tt))
	q = dateFilterMacro.ReplaceAllString(q, fmt.Sprintf("$1 >= toDate('%s') AND $1 <= toDate('%s')",
		from.UTC().Format("2006-01-02"), to.UTC().Format("2006-01-02")))
	q = timeIntervalMacro.ReplaceAllString(q, fmt.Sprintf("toStartOfInterval(toDateTime($1), INTERVAL %d second)", intervalSeconds))
	q = strings.NewReplacer(
		"$__fromTime", fmt.Sprintf("toDateTime(%d)", f),
		"$__toTime", fmt.Sprintf("toDateTime(%d)", tt),
		"$__interval_s", fmt.Sprint(intervalSeconds),
	).Replace(q)
	if i := strings.Index(q, "$__"); i >= 0 {
		return "", fmt.Errorf("macro the test does not expand: %.30s", q[i:])
	}
	return q, nil
}

func deployRenderDefinitions(t *testing.T, dst string, start time.Time) {
	t.Helper()
	tmpl, err := template.ParseFiles("testdata/deploy/definitions.yaml.tmpl")
	if err != nil {
		t.Fatal(err)
	}
	var b bytes.Buffer
	if err := tmpl.Execute(&b, struct{ Start string }{start.Format(time.RFC3339)}); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(dst, b.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
}

// deployTraffic is one round of events: exposures, purchases and page loads
// of checkout-redesign (split as configured), of banner-test (75/25 against
// weights of 50/50: a sample ratio mismatch), and about one event in ten
// broken, as from a buggy publisher.
func deployTraffic(rng *rand.Rand, round int, now time.Time) []byte {
	var b bytes.Buffer
	id := 0
	emit := func(v map[string]any) {
		id++
		v["event_id"] = fmt.Sprintf("r%d-e%d", round, id)
		line, _ := json.Marshal(v)
		b.Write(line)
		b.WriteByte('\n')
	}
	ts := func(ago time.Duration) string { return now.Add(-ago).Format(time.RFC3339Nano) }
	platforms := []string{"ios", "android", "web"}
	for i := range 150 {
		unit := fmt.Sprintf("r%d-u%d", round, i)
		attrs := map[string]string{"platform": platforms[i%len(platforms)]}
		variant, rate := "control", 0.10
		if i%2 == 1 {
			variant, rate = "one-page", 0.14
		}
		emit(map[string]any{"type": "exposure", "ts": ts(2 * time.Minute), "unit_id": unit,
			"experiment": "checkout-redesign", "variant": variant, "attributes": attrs})
		emit(map[string]any{"type": "track", "ts": ts(90 * time.Second), "unit_id": unit,
			"event": "page_load", "value": 800 + 100*rng.Float64(), "attributes": attrs})
		if rng.Float64() < rate {
			emit(map[string]any{"type": "track", "ts": ts(time.Minute), "unit_id": unit,
				"event": "purchase", "value": 20 + 30*rng.Float64(), "attributes": attrs})
		}
		banner := "control"
		if i%4 == 3 {
			banner = "banner"
		}
		emit(map[string]any{"type": "exposure", "ts": ts(2 * time.Minute), "unit_id": unit,
			"experiment": "banner-test", "variant": banner, "attributes": attrs})
	}
	// More banner-test units: the sequential SRM test needs about a
	// thousand to be sure of a 75/25 split.
	for i := range 300 {
		banner := "control"
		if i%4 == 3 {
			banner = "banner"
		}
		emit(map[string]any{"type": "exposure", "ts": ts(2 * time.Minute), "unit_id": fmt.Sprintf("r%d-b%d", round, i),
			"experiment": "banner-test", "variant": banner, "attributes": map[string]string{"platform": "web"}})
	}
	for i := range 40 {
		switch i % 4 {
		case 0:
			b.WriteString(`{"type":"track","event_id":"broken` + fmt.Sprint(round, "-", i) + `","ts":` + "\n")
		case 1: // no unit_id
			emit(map[string]any{"type": "track", "ts": ts(time.Minute), "event": "purchase"})
		case 2: // a key with capitals
			emit(map[string]any{"type": "track", "ts": ts(time.Minute), "unit_id": "u", "event": "Purchase Completed"})
		case 3: // far in the future
			emit(map[string]any{"type": "track", "ts": ts(-time.Hour), "unit_id": "u", "event": "purchase"})
		}
	}
	return b.Bytes()
}

// deployWaitReady polls url until it answers 200, failing the test when up
// exits or ctx ends first.
func deployWaitReady(t *testing.T, ctx context.Context, url string, upDone chan error) {
	t.Helper()
	var last string
	for {
		resp, err := http.Get(url)
		if err == nil {
			body, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return
			}
			last = fmt.Sprintf("%s: %s", resp.Status, body)
		} else {
			last = err.Error()
		}
		select {
		case err := <-upDone:
			upDone <- err // for the cleanup
			t.Fatalf("verdict up exited before it was ready: %v", err)
		case <-ctx.Done():
			t.Fatalf("%s not ready: %s", url, last)
		case <-time.After(200 * time.Millisecond):
		}
	}
}

// testPrometheus is a Prometheus server run by the test.
type testPrometheus struct{ url string }

// startPrometheus runs Debian's Prometheus with its storage in a temporary
// directory, scraping target's /metrics every second and evaluating the
// rule files, and stops it when the test ends.
func startPrometheus(t *testing.T, bin, target string) *testPrometheus {
	t.Helper()
	dir := t.TempDir()
	var rules []string
	for _, f := range ruleFiles(t) {
		abs, err := filepath.Abs(f)
		if err != nil {
			t.Fatal(err)
		}
		rules = append(rules, fmt.Sprintf("%q", abs))
	}
	config := fmt.Sprintf(`global:
  scrape_interval: 1s
  evaluation_interval: 1s
rule_files: [%s]
scrape_configs:
  - job_name: verdict
    static_configs:
      - targets: [%q]
`, strings.Join(rules, ", "), target)
	configFile := filepath.Join(dir, "prometheus.yml")
	if err := os.WriteFile(configFile, []byte(config), 0o644); err != nil {
		t.Fatal(err)
	}
	addr := deployFreeAddr(t)
	var log deploySyncBuffer
	cmd := exec.Command(bin,
		"--config.file="+configFile,
		"--storage.tsdb.path="+filepath.Join(dir, "data"),
		"--web.listen-address="+addr,
		"--log.level=warn",
	)
	cmd.Stdout, cmd.Stderr = &log, &log
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		t.Fatalf("start prometheus: %v", err)
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	t.Cleanup(func() {
		_ = cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-exited:
		case <-time.After(10 * time.Second):
			_ = cmd.Process.Kill()
			<-exited
		}
		if t.Failed() {
			t.Logf("prometheus log:\n%s", log.String())
		}
	})
	p := &testPrometheus{url: "http://" + addr}
	deadline := time.Now().Add(30 * time.Second)
	for {
		resp, err := http.Get(p.url + "/-/ready")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return p
			}
		}
		select {
		case err := <-exited:
			t.Fatalf("prometheus exited: %v\n%s", err, log.String())
		case <-time.After(100 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			t.Fatalf("prometheus not ready at %s\n%s", p.url, log.String())
		}
	}
}

// query evaluates expr now and returns the number of series or samples in
// the result.
func (p *testPrometheus) query(ctx context.Context, expr string) (int, error) {
	var r struct {
		Status    string `json:"status"`
		ErrorType string `json:"errorType"`
		Error     string `json:"error"`
		Data      struct {
			ResultType string          `json:"resultType"`
			Result     json.RawMessage `json:"result"`
		} `json:"data"`
	}
	if err := p.get(ctx, "/api/v1/query?query="+url.QueryEscape(expr), &r); err != nil {
		return 0, err
	}
	if r.Status != "success" {
		return 0, fmt.Errorf("%s: %s", r.ErrorType, r.Error)
	}
	switch r.Data.ResultType {
	case "vector", "matrix":
		var series []json.RawMessage
		if err := json.Unmarshal(r.Data.Result, &series); err != nil {
			return 0, err
		}
		return len(series), nil
	default: // scalar, string
		return 1, nil
	}
}

// waitFor polls until expr returns data.
func (p *testPrometheus) waitFor(t *testing.T, ctx context.Context, expr string) {
	t.Helper()
	for {
		n, err := p.query(ctx, expr)
		if err == nil && n > 0 {
			return
		}
		select {
		case <-ctx.Done():
			t.Fatalf("prometheus: %s still empty (err %v)", expr, err)
		case <-time.After(250 * time.Millisecond):
		}
	}
}

// rulesHealthy checks that Prometheus loaded every rule and evaluates it
// without error.
func (p *testPrometheus) rulesHealthy(ctx context.Context) error {
	var r struct {
		Data struct {
			Groups []struct {
				Rules []struct {
					Name      string `json:"name"`
					Health    string `json:"health"`
					LastError string `json:"lastError"`
				} `json:"rules"`
			} `json:"groups"`
		} `json:"data"`
	}
	if err := p.get(ctx, "/api/v1/rules", &r); err != nil {
		return err
	}
	var errs []error
	n := 0
	for _, g := range r.Data.Groups {
		for _, rule := range g.Rules {
			n++
			if rule.Health == "err" {
				errs = append(errs, fmt.Errorf("rule %s: %s", rule.Name, rule.LastError))
			}
		}
	}
	if n == 0 {
		errs = append(errs, errors.New("prometheus loaded no rules"))
	}
	return errors.Join(errs...)
}

func (p *testPrometheus) get(ctx context.Context, path string, v any) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, p.url+path, nil)
	if err != nil {
		return err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		return err
	}
	if err := json.Unmarshal(body, v); err != nil {
		return fmt.Errorf("GET %s: %s: %s", path, resp.Status, body)
	}
	return nil
}

func deployFreeAddr(t *testing.T) string { return testkit.FreeAddr(t) }

// deploySyncBuffer is a bytes.Buffer safe for concurrent writers.
type deploySyncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *deploySyncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *deploySyncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}
