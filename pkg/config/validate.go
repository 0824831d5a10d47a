package config

import (
	"fmt"
	"math"
	"net/mail"
	"net/url"
	"regexp"
	"slices"
	"sort"
	"strings"
	"unicode"
	"unicode/utf8"

	"github.com/verdictlabs/verdict/pkg/event"
	"github.com/verdictlabs/verdict/pkg/stats"
)

// Limits on the free-text fields of an experiment.
const (
	MaxNameLen       = 200  // characters of Experiment.Name
	MaxHypothesisLen = 4000 // characters of Experiment.Hypothesis
	MaxSegments      = 32   // an event has at most 32 attributes
	// Caps on what one experiment lists: whoever may apply definitions
	// must not be able to make a readout, an email or a delivery round
	// unboundedly large.
	MaxVariants      = 20   // variants, control included
	MaxRoleMetrics   = 100  // secondary metrics and guardrails, together
	MaxOwners        = 20   // owners emailed
	MaxNotifyTargets = 10   // Slack and webhook URLs, together
	MaxURLLen        = 2048 // characters of a Slack or webhook URL
)

// weightTolerance is how far the sum of an experiment's weights may be from 1.
const weightTolerance = 1e-9

var (
	keyRE   = regexp.MustCompile(event.KeyPattern)
	emailRE = regexp.MustCompile(emailPattern)
)

// emailPattern is what an owner must look like; the schema uses it too.
const emailPattern = `^[^@\s<>,;"]+@[^@\s<>,;"]+\.[^@\s<>,;".]+$`

// Validate checks definitions as a whole and returns every problem found as
// Problems (with paths such as experiments[0].variants[1].weight but no
// positions; ValidateFiles adds those). Besides the form of each field, it
// checks what the JSON Schema cannot: keys unique, every metric an
// experiment names defined, weights summing to 1, the control among the
// variants, power above alpha, end after start.
//
// Defaults are not filled in here: a Go caller sets every field, or builds
// its Definitions with Parse.
func Validate(d Definitions) error {
	return Check(nil, &File{Definitions: d})
}

// ValidateFiles is Validate over the definitions of several files taken
// together (an experiment in one may use a metric of another), reporting as
// well the problems ParseFile found, each at its file, line and column.
func ValidateFiles(files ...*File) error {
	return Check(nil, files...)
}

// origin says where a definition came from, to place its problems.
type origin struct {
	file  *File  // nil when it came from the KV bucket
	order int    // of file among those checked, for sorting
	path  string // metrics[3] within file
	kvKey string // metric.<key> in the bucket, when file is nil
}

func (o origin) problem(sub, format string, args ...any) Problem {
	msg := fmt.Sprintf(format, args...)
	if o.file == nil {
		return Problem{Pos: Pos{File: Bucket + "/" + o.kvKey}, Path: strings.TrimPrefix(sub, "."), Msg: msg}
	}
	path := o.path + sub
	var pos Pos
	if o.file.pos != nil {
		pos = o.file.Pos(path)
	}
	return Problem{Pos: pos, Path: path, Msg: msg}
}

func (o origin) String() string {
	if o.file == nil {
		return Bucket + "/" + o.kvKey
	}
	if p := o.problem("", "").Pos; p.Line > 0 {
		return fmt.Sprintf("%s (%s)", o.path, p)
	}
	return o.path
}

type metricDef struct {
	Metric
	at origin
}

type experimentDef struct {
	Experiment
	at origin
}

// Check validates the definitions of files merged over stored (upsert by
// key), and returns the problems of the files (parse and validation) and
// of the stored definitions the merge keeps, sorted by file and position:
// what applying the files over stored definitions (pkg/configstore) must
// pass. A nil stored is nothing stored.
func Check(stored *Definitions, files ...*File) error {
	var (
		ms     []metricDef
		es     []experimentDef
		probs  Problems
		inFile = map[string]bool{}
	)
	for order, f := range files {
		for i, m := range f.Metrics {
			ms = append(ms, metricDef{m, origin{file: f, order: order, path: fmt.Sprintf("metrics[%d]", i)}})
			inFile[MetricPrefix+m.Key] = true
		}
		for i, e := range f.Experiments {
			es = append(es, experimentDef{e, origin{file: f, order: order, path: fmt.Sprintf("experiments[%d]", i)}})
			inFile[ExperimentPrefix+e.Key] = true
		}
	}
	if stored != nil {
		for _, m := range stored.Metrics {
			if k := MetricPrefix + m.Key; !inFile[k] {
				ms = append(ms, metricDef{m, origin{order: len(files), kvKey: k}})
			}
		}
		for _, e := range stored.Experiments {
			if k := ExperimentPrefix + e.Key; !inFile[k] {
				es = append(es, experimentDef{e, origin{order: len(files), kvKey: k}})
			}
		}
	}
	v := &validator{metrics: map[string]metricDef{}, stored: stored != nil}
	v.validate(ms, es)

	// Problems found by the parser come first; a validation problem at or
	// inside a path the parser already complained about adds nothing.
	var all []placedProblem
	for order, f := range files {
		for _, p := range f.problems {
			all = append(all, placedProblem{p, order})
		}
	}
	parsed := len(all)
	for _, p := range v.probs {
		if !slices.ContainsFunc(all[:parsed], func(q placedProblem) bool {
			return q.Pos.File == p.Problem.Pos.File && q.Path != "" && under(p.Problem.Path, q.Path)
		}) {
			all = append(all, p)
		}
	}
	sort.SliceStable(all, func(i, j int) bool {
		a, b := all[i], all[j]
		if a.order != b.order {
			return a.order < b.order
		}
		if a.Pos.Line != b.Pos.Line {
			return a.Pos.Line < b.Pos.Line
		}
		return a.Pos.Col < b.Pos.Col
	})
	for _, p := range all {
		probs = append(probs, p.Problem)
	}
	if len(probs) > 0 {
		return probs.truncate()
	}
	return nil
}

type placedProblem struct {
	Problem
	order int
}

type validator struct {
	metrics map[string]metricDef
	probs   []placedProblem
	stored  bool // the stored definitions were read: the metrics include them
}

func (v *validator) add(at origin, sub, format string, args ...any) {
	v.probs = append(v.probs, placedProblem{at.problem(sub, format, args...), at.order})
}

func (v *validator) validate(ms []metricDef, es []experimentDef) {
	for _, m := range ms {
		v.metric(m)
	}
	seen := map[string]origin{}
	for _, e := range es {
		v.experiment(e)
		if e.Key == "" {
			continue
		}
		if first, dup := seen[e.Key]; dup {
			v.add(e.at, ".key", "experiment %q is defined twice, first at %s; keep one", e.Key, first)
			continue
		}
		seen[e.Key] = e.at
	}
}

// storeKey checks a metric or experiment key: the key pattern of the
// contract, and, since the key becomes a NATS subject token (KV key,
// verdict.readouts.<experiment>), no empty token.
func (v *validator) storeKey(at origin, what, key string) bool {
	switch {
	case key == "":
		v.add(at, ".key", "key is missing: give the %s a key such as %q", what, exampleKey(what))
	case !keyRE.MatchString(key):
		v.add(at, ".key", "%s: %s", quoteKey(key), keyFix)
	case strings.HasSuffix(key, ".") || strings.Contains(key, ".."):
		v.add(at, ".key", "key %q ends with '.' or has '..': NATS subjects and KV keys cannot hold an empty token; remove the extra dot", key)
	default:
		return true
	}
	return false
}

const keyFix = "a key is 1 to 128 of lowercase letters, digits, '_', '.' and '-', starting with a letter or digit (" + event.KeyPattern + ")"

func quoteKey(k string) string {
	return fmt.Sprintf("%q does not match the key pattern", k)
}

func exampleKey(what string) string {
	switch what {
	case "metric":
		return "purchase_conversion"
	case "experiment":
		return "checkout-redesign"
	}
	return "control"
}

// nameKey checks a variant, event or segment key.
func (v *validator) nameKey(at origin, sub, what, key string) bool {
	switch {
	case key == "":
		v.add(at, sub, "%s is missing%s", what, missingHint[what])
	case !keyRE.MatchString(key):
		v.add(at, sub, "%s %s", what, quoteKey(key)+": "+keyFix)
	default:
		return true
	}
	return false
}

var missingHint = map[string]string{
	"event":       ": the name of the track event it is computed from",
	"variant key": ": a key such as control or treatment",
	"metric":      ": the key of a metric under metrics",
}

func (v *validator) metric(m metricDef) {
	at := m.at
	if v.storeKey(at, "metric", m.Key) {
		if first, dup := v.metrics[m.Key]; dup {
			v.add(at, ".key", "metric %q is defined twice, first at %s; keep one", m.Key, first.at)
		} else {
			v.metrics[m.Key] = m
		}
	}
	switch {
	case m.Kind == "":
		v.add(at, ".kind", "kind is missing: one of mean, count, proportion, ratio, quantile")
	case !m.Kind.Valid() && m.Kind != stats.Quantile:
		v.add(at, ".kind", "kind %q is unknown: use mean, count, proportion, ratio or quantile", m.Kind)
	case m.Kind == stats.Ratio:
		if m.Event != "" {
			v.add(at, ".event", "a ratio metric has no event of its own: move it to numerator and denominator")
		}
		if m.Aggregate != "" {
			v.add(at, ".aggregate", "a ratio metric aggregates its numerator and denominator: move aggregate into them")
		}
		for _, p := range []struct {
			name string
			part *Part
		}{{"numerator", m.Numerator}, {"denominator", m.Denominator}} {
			if p.part == nil {
				v.add(at, "."+p.name, "%s is missing: a ratio needs {event: ..., aggregate: sum|count}", p.name)
				continue
			}
			v.nameKey(at, "."+p.name+".event", "event", p.part.Event)
			v.aggregate(at, "."+p.name+".aggregate", p.part.Aggregate)
		}
	default:
		v.nameKey(at, ".event", "event", m.Event)
		for _, p := range []struct {
			name string
			part *Part
		}{{"numerator", m.Numerator}, {"denominator", m.Denominator}} {
			if p.part != nil {
				v.add(at, "."+p.name, "only a ratio metric has a %s: remove it, or make the metric kind: ratio", p.name)
			}
		}
		switch m.Kind {
		case stats.Mean:
			v.aggregate(at, ".aggregate", m.Aggregate)
		case stats.Count:
			if m.Aggregate != Count && m.Aggregate != "" {
				v.add(at, ".aggregate", "aggregate %q contradicts kind count, the number of events: remove it, or use kind mean to sum the events' value", m.Aggregate)
			}
		case stats.Proportion:
			if m.Aggregate != "" {
				v.add(at, ".aggregate", "a proportion is 1 for a unit with at least one %s event, else 0: remove aggregate", m.Event)
			}
		case stats.Quantile:
			switch m.Level {
			case LevelUnit:
				v.aggregate(at, ".aggregate", m.Aggregate)
			case LevelEvent:
				if m.Aggregate != "" {
					v.add(at, ".aggregate", "an event-level quantile is over each %s event's value: remove aggregate, or use level: unit for a quantile of the units' %s", m.Event, m.Aggregate)
				}
			case "":
				v.add(at, ".level", "level is missing: event (a quantile of the events' values) or unit (of the units' values)")
			default:
				v.add(at, ".level", "level %q is unknown: use event (a quantile of the events' values) or unit (of the units' values)", m.Level)
			}
		}
	}
	if m.Kind == stats.Quantile {
		if q := m.Quantile; !(q > 0 && q < 1) {
			v.add(at, ".quantile", "quantile %v is not between 0 and 1 (exclusive): write e.g. 0.9 for the 90th percentile", q)
		}
		if m.CUPED != nil && (m.CUPED.Enabled == nil || *m.CUPED.Enabled) {
			v.add(at, ".cuped", "a quantile metric has no CUPED: remove cuped")
		}
	} else {
		if m.Quantile != 0 {
			v.add(at, ".quantile", "only a quantile metric has a quantile: remove it, or make the metric kind: quantile")
		}
		if m.Level != "" {
			v.add(at, ".level", "only a quantile metric has a level: remove it, or make the metric kind: quantile")
		}
	}
	switch m.Direction {
	case Increase, Decrease:
	case "":
		v.add(at, ".direction", "direction is missing: increase (higher is better) or decrease")
	default:
		v.add(at, ".direction", "direction %q is unknown: use increase (higher is better) or decrease (lower is better)", m.Direction)
	}
	if m.CUPED != nil && m.CUPED.Lookback > MaxCUPEDLookback {
		v.add(at, ".cuped.lookback", "lookback %v is longer than %v: events older than that are not kept for it", m.CUPED.Lookback, MaxCUPEDLookback)
	}
	if m.Cap != nil {
		if m.Kind == stats.Proportion {
			v.add(at, ".cap", "a proportion is 0 or 1 and cannot be capped: remove cap")
		} else if m.Kind == stats.Quantile {
			v.add(at, ".cap", "a quantile is not moved by outliers and is not capped: remove cap")
		} else if p := m.Cap.Percentile; !(p > 0 && p < 1) {
			v.add(at, ".cap.percentile", "percentile %v is not between 0 and 1 (exclusive): write e.g. 0.99 to cap at the 99th percentile", p)
		}
	}
}

func (v *validator) aggregate(at origin, sub string, a Aggregate) {
	switch a {
	case Sum, Count:
	case "":
		v.add(at, sub, "aggregate is missing: sum (of the events' value) or count (of events)")
	default:
		v.add(at, sub, "aggregate %q is unknown: use sum (of the events' value) or count (of events)", a)
	}
}

func (v *validator) experiment(e experimentDef) {
	at := e.at
	v.storeKey(at, "experiment", e.Key)
	if n := utf8.RuneCountInString(e.Name); n > MaxNameLen {
		v.add(at, ".name", "name is %d characters long: keep it to %d; the hypothesis is the place for more", n, MaxNameLen)
	}
	if strings.ContainsFunc(e.Name, unicode.IsControl) {
		v.add(at, ".name", "name has a line break or control character: keep it to one line")
	}
	if n := utf8.RuneCountInString(e.Hypothesis); n > MaxHypothesisLen {
		v.add(at, ".hypothesis", "hypothesis is %d characters long: keep it to %d", n, MaxHypothesisLen)
	}
	owners := map[string]bool{}
	for i, o := range e.Owners {
		sub := fmt.Sprintf(".owners[%d]", i)
		switch {
		case !isEmail(o):
			v.add(at, sub, "owner %q is not an email address: write it as ann@example.com, without a display name", o)
		case owners[strings.ToLower(o)]:
			v.add(at, sub, "owner %q is listed twice: keep one", o)
		}
		owners[strings.ToLower(o)] = true
	}
	if len(e.Owners) > MaxOwners {
		v.add(at, ".owners", "%d owners: at most %d; a mailing list is one owner", len(e.Owners), MaxOwners)
	}
	if len(e.Variants) > MaxVariants {
		v.add(at, ".variants", "%d variants: at most %d", len(e.Variants), MaxVariants)
	}
	if n := len(e.Secondary) + len(e.Guardrails); n > MaxRoleMetrics {
		v.add(at, ".secondary", "%d secondary metrics and guardrails: at most %d together", n, MaxRoleMetrics)
	}
	if e.Notify != nil {
		if n := len(e.Notify.Slack) + len(e.Notify.Webhooks); n > MaxNotifyTargets {
			v.add(at, ".notify", "%d Slack and webhook URLs: at most %d together", n, MaxNotifyTargets)
		}
		for name, urls := range map[string][]string{"slack": e.Notify.Slack, "webhooks": e.Notify.Webhooks} {
			for i, raw := range urls {
				if len(raw) > MaxURLLen {
					v.add(at, fmt.Sprintf(".notify.%s[%d]", name, i), "the URL is %d characters long: at most %d", len(raw), MaxURLLen)
					continue
				}
				if u, err := url.Parse(raw); err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" || u.User != nil {
					v.add(at, fmt.Sprintf(".notify.%s[%d]", name, i), "%q is not an http(s) URL without credentials: write it like https://hooks.example.com/verdict", raw)
				}
			}
		}
	}
	v.variants(e)
	v.roles(e)
	segments := map[string]bool{}
	for i, s := range e.Segments {
		sub := fmt.Sprintf(".segments[%d]", i)
		if !v.nameKey(at, sub, "segment (an event attribute name)", s) {
			continue
		}
		if segments[s] {
			v.add(at, sub, "segment %q is listed twice: keep one", s)
		}
		segments[s] = true
	}
	if len(e.Segments) > MaxSegments {
		v.add(at, ".segments", "%d segments: an event has at most %d attributes, keep the dimensions that matter", len(e.Segments), MaxSegments)
	}
	if !(e.MDE > 0) || math.IsInf(e.MDE, 0) {
		v.add(at, ".mde", "mde %v must be a relative effect above 0: write e.g. 0.03 to detect a 3%% change of the primary metric", e.MDE)
	}
	alphaOK := e.Alpha > 0 && e.Alpha < 1
	if !alphaOK {
		v.add(at, ".alpha", "alpha %v is not between 0 and 1 (exclusive): 0.05 is usual", e.Alpha)
	}
	switch {
	case !(e.Power > 0 && e.Power < 1):
		v.add(at, ".power", "power %v is not between 0 and 1 (exclusive): 0.8 is usual", e.Power)
	case alphaOK && e.Power <= e.Alpha:
		v.add(at, ".power", "power %v is not above alpha %v: a test that finds a real effect less often than it finds a false one is useless; 0.8 is usual", e.Power, e.Alpha)
	}
	if !(e.Tuning > 0) || math.IsInf(e.Tuning, 0) {
		v.add(at, ".tuning", "tuning %v must be a number of units above 0: the sample size at which the confidence sequence is tightest; 5000 by default", e.Tuning)
	}
	switch e.Engine {
	case "", EngineFrequentist, EngineBayesian:
	default:
		v.add(at, ".engine", "engine %q is not frequentist or bayesian", e.Engine)
	}
	if e.Prior != nil {
		if !e.Bayesian() {
			v.add(at, ".prior", "a prior belongs to the bayesian engine: add engine: bayesian, or remove the prior")
		}
		if math.IsNaN(e.Prior.Mean) || math.IsInf(e.Prior.Mean, 0) || !(e.Prior.Variance > 0) || math.IsInf(e.Prior.Variance, 0) {
			v.add(at, ".prior", "prior mean %v and variance %v: want a finite mean and a variance above 0 (on the relative effect: 0.01 says effects beyond ±20%% are rare)", e.Prior.Mean, e.Prior.Variance)
		}
	}
	if e.MinUnits < 2 && e.MinUnits != 0 { // 0: the default
		v.add(at, ".min_units", "min_units %d must be at least 2: the fewest units each variant needs before the experiment gets a label; 100 by default", e.MinUnits)
	}
	if e.AttributionWindow <= 0 {
		v.add(at, ".attribution_window", "attribution_window must be longer than 0: e.g. 7d")
	}
	switch {
	case e.Start.IsZero():
		v.add(at, ".start", "start is missing: when the experiment starts, e.g. 2026-11-01T00:00:00Z")
	case e.End != nil && !e.End.After(e.Start):
		v.add(at, ".end", "end %s is not after start %s: fix one of them, or remove end", e.End.Format(timeLayout), e.Start.Format(timeLayout))
	}
}

const timeLayout = "2006-01-02T15:04:05Z07:00"

func isEmail(s string) bool {
	if !emailRE.MatchString(s) {
		return false
	}
	a, err := mail.ParseAddress(s)
	return err == nil && a.Name == "" && a.Address == s
}

func (v *validator) variants(e experimentDef) {
	at := e.at
	if len(e.Variants) < 2 {
		v.add(at, ".variants", "an experiment needs at least 2 variants, a control and a treatment, got %d: e.g. [{key: control, weight: 0.5}, {key: treatment, weight: 0.5}]", len(e.Variants))
	}
	keys := map[string]int{}
	sum, weightsOK := 0.0, true
	for i, vr := range e.Variants {
		sub := fmt.Sprintf(".variants[%d]", i)
		if v.nameKey(at, sub+".key", "variant key", vr.Key) {
			if first, dup := keys[vr.Key]; dup {
				v.add(at, sub+".key", "variant %q is listed twice (first at variants[%d]): variant keys must be unique", vr.Key, first)
			} else {
				keys[vr.Key] = i
			}
		}
		if !(vr.Weight >= 0 && vr.Weight <= 1) {
			v.add(at, sub+".weight", "weight %v is not between 0 and 1: a weight is the variant's share of units", vr.Weight)
			weightsOK = false
		}
		sum += vr.Weight
	}
	if weightsOK && len(e.Variants) > 0 && math.Abs(sum-1) > weightTolerance {
		v.add(at, ".variants", "weights add up to %v, not 1: make the shares of units sum to 1 (e.g. 0.5 and 0.5)", sum)
	}
	switch i, ok := keys[e.Control]; {
	case e.Control == "":
		v.add(at, ".control", "control is missing: name the variant the others are compared with (one of %s)", keyList(e.Variants))
	case !ok:
		if v.nameKey(at, ".control", "control", e.Control) {
			v.add(at, ".control", "control %q is not among the variants: use one of %s", e.Control, keyList(e.Variants))
		}
	case e.Variants[i].Weight == 0:
		v.add(at, fmt.Sprintf(".variants[%d].weight", i), "the control %q has weight 0: it gets no units, so nothing can be compared with it", e.Control)
	default:
		treated := false
		for _, vr := range e.Variants {
			treated = treated || (vr.Key != e.Control && vr.Weight > 0)
		}
		if !treated && weightsOK && len(e.Variants) >= 2 {
			v.add(at, ".variants", "every variant but the control has weight 0: give a treatment a share of units")
		}
	}
}

func keyList(vs []Variant) string {
	var ks []string
	for _, v := range vs {
		if v.Key != "" && !slices.Contains(ks, v.Key) {
			ks = append(ks, v.Key)
		}
	}
	if len(ks) == 0 {
		return "the variants' keys"
	}
	return strings.Join(ks, ", ")
}

// roles checks the metrics an experiment uses: defined, and each in one
// role (primary, secondary or guardrail), since a readout shows each metric
// once with its role.
func (v *validator) roles(e experimentDef) {
	at := e.at
	role := map[string]string{}
	use := func(sub, r, key string) {
		if !v.nameKey(at, sub, "metric", key) {
			return
		}
		if _, ok := v.metrics[key]; !ok {
			where := "in these files; metrics applied before were not read for this check"
			if v.stored {
				where = "in these files or one applied before"
			}
			v.add(at, sub, "unknown metric %q: define it under metrics (%s)%s", key, where, v.closest(key))
			return
		}
		if prev, ok := role[key]; ok {
			if prev == r {
				v.add(at, sub, "metric %q is listed twice as %s: keep one", key, r)
			} else {
				v.add(at, sub, "metric %q is already %s: a metric has one role in an experiment", key, prev)
			}
			return
		}
		role[key] = r
	}
	if len(e.Primary) == 0 {
		v.add(at, ".primary", "primary is empty: name the metric the hypothesis is about, e.g. primary: [purchase_conversion]")
	}
	for i, k := range e.Primary {
		use(fmt.Sprintf(".primary[%d]", i), "primary", k)
	}
	for i, k := range e.Secondary {
		use(fmt.Sprintf(".secondary[%d]", i), "secondary", k)
	}
	for i, g := range e.Guardrails {
		sub := fmt.Sprintf(".guardrails[%d]", i)
		use(sub+".metric", "a guardrail", g.Metric)
		if !(g.Margin >= 0) || math.IsInf(g.Margin, 0) {
			v.add(at, sub+".margin", "margin %v must be 0 or more: how much worse, relative to control, the metric may get (0.05 = 5%%)", g.Margin)
		}
	}
}

func (v *validator) closest(key string) string {
	best, bestDist := "", 4
	for k := range v.metrics {
		if d := editDistance(key, k); d < bestDist || d == bestDist && k < best {
			best, bestDist = k, d
		}
	}
	if best == "" {
		return ""
	}
	return fmt.Sprintf("; did you mean %q?", best)
}
