package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/verdictlabs/verdict/pkg/config"
	"github.com/verdictlabs/verdict/pkg/event"
	"github.com/verdictlabs/verdict/pkg/simulate"
	"github.com/verdictlabs/verdict/pkg/stats"
	"github.com/verdictlabs/verdict/pkg/warehouse"
	"github.com/verdictlabs/verdict/pkg/warehouse/warehousetest"
)

// lifecycleTruth is an experiment of TestDecisionsHold and the one email
// its owners must get: the label in the subject ("" for none).
type lifecycleTruth struct {
	scenario simulate.Scenario
	subject  string   // what the one email's subject says: PERSEVERE, PIVOT, SALVAGE or INVALID
	either   []string // instead of subject: any of these, or no email (A/A)
}

// lifecycleScenarios are experiments with known truths and effects large
// enough to be decided on a few thousand units.
func lifecycleScenarios(prefix string) []lifecycleTruth {
	segs := map[string][]simulate.Share{"platform": {{Value: "ios", Share: 0.3}, {Value: "android", Share: 0.4}, {Value: "web", Share: 0.3}}}
	shop := []simulate.Behaviour{
		{Event: "purchase", Rate: 0.2, Count: 1, Value: 40, Sigma: 0.5},
		{Event: "page_load", Rate: 1, Count: 1, Value: 800, Sigma: 0.2},
	}
	half := func(key, treatment string, lift map[string]float64, seg map[string]map[string]float64) simulate.Scenario {
		return simulate.Scenario{Experiment: prefix + key, Segments: segs, Behaviours: shop, Variants: []simulate.Variant{
			{Key: "control", Weight: 0.5}, {Key: treatment, Weight: 0.5, Lift: lift, SegmentLift: seg}}}
	}
	return []lifecycleTruth{
		{scenario: half("win", "one-page", map[string]float64{"purchase": 1.4}, nil), subject: "PERSEVERE"},
		{scenario: half("slow", "carousel", map[string]float64{"page_load": 1.2}, nil), subject: "PIVOT"},
		{scenario: half("android", "dark", nil, map[string]map[string]float64{
			"platform=android": {"purchase": 1.4}, "platform=ios": {"purchase": 0.6}, "platform=web": {"purchase": 0.6}}), subject: "SALVAGE"},
		{scenario: simulate.Scenario{Experiment: prefix + "split", Segments: segs, Behaviours: shop,
			Variants: []simulate.Variant{{Key: "control", Weight: 0.7}, {Key: "ml", Weight: 0.3}}}, subject: "INVALID"},
		{scenario: half("aa", "same", nil, nil), either: []string{"PIVOT"}},
	}
}

// lifecycleDefinitions defines the experiments: primary purchase
// conversion, page load as a guardrail, platform segments.
func lifecycleDefinitions(truths []lifecycleTruth, start time.Time) config.Definitions {
	defs := config.Definitions{Metrics: []config.Metric{
		{Key: "conversion", Kind: stats.Proportion, Event: "purchase", Direction: config.Increase},
		{Key: "load_ms", Kind: stats.Ratio, Direction: config.Decrease,
			Numerator: &config.Part{Event: "page_load", Aggregate: config.Sum}, Denominator: &config.Part{Event: "page_load", Aggregate: config.Count}},
	}}
	for _, tr := range truths {
		s := tr.scenario
		var vs []config.Variant
		for _, v := range s.Variants {
			vs = append(vs, config.Variant{Key: v.Key, Weight: 0.5}) // the split scenario breaks this
		}
		defs.Experiments = append(defs.Experiments, config.Experiment{
			Key: s.Experiment, Name: s.Experiment, Owners: []string{s.Experiment + "@example.com"},
			Variants: vs, Control: "control", Primary: []string{"conversion"},
			Guardrails: []config.Guardrail{{Metric: "load_ms", Margin: 0.05}}, Segments: []string{"platform"},
			MDE: 0.2, Alpha: 0.05, Power: 0.8, Sequential: true, Tuning: 5000, MinUnits: 100,
			AttributionWindow: config.Duration(time.Hour), Start: start,
		})
	}
	return defs
}

// lifecycleTraffic simulates units of every scenario, exposed evenly over
// [from, from+span), and returns their exposures and their track events,
// each in time order.
func lifecycleTraffic(truths []lifecycleTruth, units int, from time.Time, span time.Duration, seed uint64) (exposures, tracks []event.Event) {
	g := simulate.NewGenerator(seed, fmt.Sprint(seed))
	for i := range units {
		ts := from.Add(span * time.Duration(i) / time.Duration(units))
		for j := range truths {
			for _, e := range g.Unit(nil, &truths[j].scenario, ts) {
				if e.Type == event.Exposure {
					exposures = append(exposures, e)
				} else {
					tracks = append(tracks, e)
				}
			}
		}
	}
	byTime := func(a, b event.Event) int { return a.TS.Compare(b.TS) }
	slices.SortStableFunc(exposures, byTime)
	slices.SortStableFunc(tracks, byTime)
	return exposures, tracks
}

// lifecycleStack is `verdict up` on private ports and a data directory
// that outlives restarts.
type lifecycleStack struct {
	env  map[string]string
	stop func()
	log  *deploySyncBuffer // up's log, of every start
}

func (s *lifecycleStack) getenv(k string) string { return s.env[k] }

func (s *lifecycleStack) start(t *testing.T) {
	t.Helper()
	if s.log == nil {
		s.log = &deploySyncBuffer{}
	}
	upLog := s.log
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- run(ctx, []string{"up"}, s.getenv, strings.NewReader(""), io.Discard, upLog) }()
	stopped := false
	s.stop = func() {
		if stopped {
			return
		}
		stopped = true
		cancel()
		select {
		case err := <-done:
			if err != nil {
				t.Errorf("verdict up: %v", err)
			}
		case <-time.After(time.Minute):
			t.Errorf("verdict up did not stop within a minute")
		}
		if t.Failed() {
			t.Logf("verdict up's log:\n%s", upLog.String())
		}
	}
	t.Cleanup(s.stop)
	readyCtx, cancelReady := context.WithTimeout(context.Background(), time.Minute)
	defer cancelReady()
	deployWaitReady(t, readyCtx, "http://"+s.env["VERDICT_HTTP_ADDR"]+"/readyz", done)
}

// publish sends events through `verdict publish`.
func (s *lifecycleStack) publish(t *testing.T, evs []event.Event) {
	t.Helper()
	if len(evs) == 0 {
		return
	}
	var b []byte
	for _, e := range evs {
		b = append(e.AppendJSON(b), '\n')
	}
	file := filepath.Join(t.TempDir(), "events.ndjson")
	if err := os.WriteFile(file, b, 0o644); err != nil {
		t.Fatal(err)
	}
	var out, errOut bytes.Buffer
	if err := run(context.Background(), []string{"publish", "--quiet", file}, s.getenv, strings.NewReader(""), &out, &errOut); err != nil {
		t.Fatalf("verdict publish: %v\n%s%s", err, out.String(), errOut.String())
	}
}

// emails reads the outbox: per owner, the subjects of the emails received.
func (s *lifecycleStack) emails(t *testing.T) map[string][]string {
	t.Helper()
	files, _ := filepath.Glob(filepath.Join(s.env["VERDICT_DATA_DIR"], "outbox", "*.eml"))
	out := map[string][]string{}
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		head, _, _ := strings.Cut(strings.ReplaceAll(string(b), "\r\n", "\n"), "\n\n")
		var to, subject string
		for _, line := range strings.Split(head, "\n") {
			if v, ok := strings.CutPrefix(line, "To: "); ok {
				to = strings.Trim(v, "<>")
			}
			if v, ok := strings.CutPrefix(line, "Subject: "); ok {
				subject = v
			}
		}
		out[to] = append(out[to], subject)
	}
	return out
}

// readout is the experiment's latest readout, as the API serves it.
type lifecycleReadout struct {
	Status, Label, Candidate, Summary string
	Provisional                       bool
	DecidedAt                         *time.Time `json:"decided_at"`
}

func (s *lifecycleStack) readout(t *testing.T, key string) (lifecycleReadout, bool) {
	t.Helper()
	req, _ := http.NewRequest(http.MethodGet, "http://"+s.env["VERDICT_HTTP_ADDR"]+"/v1/experiments/"+key+"/readout", nil)
	if tokens := s.env["VERDICT_API_TOKENS"]; tokens != "" {
		req.Header.Set("Authorization", "Bearer "+strings.Split(tokens, ",")[0])
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var r lifecycleReadout
	if resp.StatusCode != http.StatusOK || json.NewDecoder(resp.Body).Decode(&r) != nil {
		return r, false
	}
	return r, true
}

// settle waits until every experiment's readout has its truth's outcome
// (decided or invalid as its one email says; the A/A one may stay
// collecting), then for the hold and a few looks more.
func (s *lifecycleStack) settle(t *testing.T, truths []lifecycleTruth, timeout time.Duration) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		var waiting []string
		for _, tr := range truths {
			key := tr.scenario.Experiment
			r, ok := s.readout(t, key)
			switch {
			case !ok:
				waiting = append(waiting, key+": no readout")
			case tr.subject == "INVALID" && r.Status == "invalid":
			case tr.subject != "" && tr.subject != "INVALID" && strings.EqualFold(r.Label, tr.subject):
			case tr.subject == "" && !r.Provisional:
			default:
				waiting = append(waiting, fmt.Sprintf("%s: %s %q (candidate %q): %s", key, r.Status, r.Label, r.Candidate, r.Summary))
			}
		}
		if len(waiting) == 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("not settled after %v:\n%s", timeout, strings.Join(waiting, "\n"))
		}
		time.Sleep(500 * time.Millisecond)
	}
	time.Sleep(8 * time.Second) // the hold and a few looks more: nothing else may be sent
}

// awaitEmails waits until every owner whose truth has an email has
// received one: the notifier handles readouts one after another, and on a
// busy machine it may still be working through a round's when the readouts
// have settled. checkEmails then says whether it is the only one.
func (s *lifecycleStack) awaitEmails(t *testing.T, truths []lifecycleTruth, timeout time.Duration) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		got := s.emails(t)
		var missing []string
		for _, tr := range truths {
			if owner := tr.scenario.Experiment + "@example.com"; tr.subject != "" && len(got[owner]) == 0 {
				missing = append(missing, owner)
			}
		}
		if len(missing) == 0 || time.Now().After(deadline) {
			return // checkEmails names what is missing
		}
		time.Sleep(500 * time.Millisecond)
	}
}

// checkEmails: each owner got exactly the one email of the truth.
func checkEmails(t *testing.T, truths []lifecycleTruth, got map[string][]string) {
	t.Helper()
	for _, tr := range truths {
		owner := tr.scenario.Experiment + "@example.com"
		subjects := got[owner]
		if tr.subject == "" {
			if len(subjects) > 1 || (len(subjects) == 1 && !slices.ContainsFunc(tr.either, func(l string) bool { return strings.Contains(subjects[0], l) })) {
				t.Errorf("%s received %q; want nothing, or one email saying one of %v", owner, subjects, tr.either)
			}
			continue
		}
		if len(subjects) != 1 || !strings.Contains(subjects[0], tr.subject) {
			t.Errorf("%s received %d emails %q; want exactly one saying %s", owner, len(subjects), subjects, tr.subject)
		}
	}
}

// TestDecisionsHold is the decision lifecycle as an owner lives it. verdict
// up runs with a 1s interval and a 5s decision hold. Experiments with known
// truths — a win, a guardrail harm, an Android-only win, a broken split and
// an A/A test — are published first as a backfill, every exposure before
// any track event (as after an outage), and each owner must get exactly
// one email, with the right label; a restart must send none. Then the same
// truths under other keys arrive as a slow stream in time order over 20
// seconds, with the same promise.
func TestDecisionsHold(t *testing.T) { warehousetest.Run(t, testDecisionsHold) }

func testDecisionsHold(t *testing.T, eng warehouse.Engine) {
	s := &lifecycleStack{env: map[string]string{
		"VERDICT_NATS_URL":          "nats://" + deployFreeAddr(t),
		"VERDICT_CLICKHOUSE_ADDR":   deployFreeAddr(t),
		"VERDICT_CLICKHOUSE_LOCAL":  string(eng),
		"VERDICT_HTTP_ADDR":         deployFreeAddr(t),
		"VERDICT_DATA_DIR":          t.TempDir(),
		"VERDICT_RULES_INTERVAL":    "1s",
		"VERDICT_DECISION_HOLD":     "5s",
		"VERDICT_INGEST_BATCH_WAIT": "200ms",
		"VERDICT_LOG_LEVEL":         "warn",
	}}
	s.start(t)

	now := time.Now().UTC().Truncate(time.Second)
	backfill := lifecycleScenarios("bf-")
	stream := lifecycleScenarios("st-")
	defs := lifecycleDefinitions(slices.Concat(backfill, stream), now.Add(-2*time.Hour))
	file := filepath.Join(t.TempDir(), "definitions.json")
	b, _ := json.Marshal(defs)
	if err := os.WriteFile(file, b, 0o644); err != nil {
		t.Fatal(err)
	}
	var out, errOut bytes.Buffer
	if err := run(context.Background(), []string{"apply", "-f", file}, s.getenv, strings.NewReader(""), &out, &errOut); err != nil {
		t.Fatalf("verdict apply: %v\n%s%s", err, out.String(), errOut.String())
	}

	// The backfill: an hour and a half ago to half an hour ago.
	exposures, tracks := lifecycleTraffic(backfill, 8000, now.Add(-90*time.Minute), time.Hour, 1)
	began := time.Now()
	s.publish(t, exposures)
	time.Sleep(3 * time.Second) // the exposures land and are looked at alone
	s.publish(t, tracks)
	t.Logf("backfill: %d exposures, then %d track events, published in %v", len(exposures), len(tracks), time.Since(began).Round(time.Millisecond))
	s.settle(t, backfill, 2*time.Minute)
	t.Logf("backfill settled %v after the first publish", time.Since(began).Round(time.Millisecond))
	s.awaitEmails(t, backfill, time.Minute)
	checkEmails(t, backfill, s.emails(t))

	// A restart sends nothing more.
	before := s.emails(t)
	s.stop()
	s.start(t)
	time.Sleep(8 * time.Second)
	if after := s.emails(t); fmt.Sprint(after) != fmt.Sprint(before) {
		t.Errorf("emails after a restart:\n%v\nwant the same as before:\n%v", after, before)
	}

	// The slow stream: the last half hour, replayed in time order over 20
	// seconds.
	exposures, tracks = lifecycleTraffic(stream, 8000, now.Add(-30*time.Minute), 25*time.Minute, 2)
	all := slices.SortedStableFunc(slices.Values(slices.Concat(exposures, tracks)), func(a, b event.Event) int { return a.TS.Compare(b.TS) })
	began = time.Now()
	const chunks = 40
	for i := range chunks {
		s.publish(t, all[i*len(all)/chunks:(i+1)*len(all)/chunks])
		time.Sleep(500 * time.Millisecond)
	}
	t.Logf("stream: %d events published in %v", len(all), time.Since(began).Round(time.Millisecond))
	s.settle(t, stream, 2*time.Minute)
	s.awaitEmails(t, stream, time.Minute)
	time.Sleep(4 * time.Second) // nothing more may follow
	emails := s.emails(t)
	checkEmails(t, stream, emails)
	checkEmails(t, backfill, emails)
}
