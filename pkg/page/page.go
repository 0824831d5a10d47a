// Package page serves the readout pages for people: GET /experiments (every
// experiment with its verdict) and GET /experiments/{key} (one readout: the
// verdict as a banner, the reasons, the forest plot as inline SVG, the
// salvage list, the metrics, health, progress and the readout history).
//
// Pages are server-rendered HTML with inline CSS and no JavaScript, and
// refresh themselves (meta refresh) while an experiment is collecting. The
// formatting is package report's View, the same the readout email uses.
// Readouts come from a Source the caller provides (the rules service reads
// them from ClickHouse).
package page

import (
	"bytes"
	"context"
	"embed"
	"errors"
	"html/template"
	"log/slog"
	"net/http"
	"net/url"
	"regexp"
	"strings"

	"github.com/verdictlabs/verdict/pkg/readout"
	"github.com/verdictlabs/verdict/pkg/report"
)

// Source is where the pages read readouts from.
type Source interface {
	// Latest is the newest readout of the experiment; an error wrapping
	// ErrNotFound when there is none.
	Latest(ctx context.Context, key string) (readout.Readout, error)
	// History is up to limit readouts of the experiment, newest first.
	History(ctx context.Context, key string, before int64, limit int) ([]readout.Readout, error)
	// List is the newest readout of every experiment.
	List(ctx context.Context) ([]readout.Readout, error)
	// Looks is what the newest limit readouts of the experiment said,
	// newest first: their Version, Status, Label, Candidate and
	// CandidateStatus (the rest may be empty).
	Looks(ctx context.Context, key string, limit int) ([]readout.Readout, error)
}

// ErrNotFound is what a Source returns (wrapped or not) for an experiment
// it has no readout of; the page answers 404.
//
// It is readout.ErrNotFound, so that one Source serves the API and the
// pages: before they shared it, the page answered 500 to what the API
// answered 404.
var ErrNotFound = readout.ErrNotFound

// Options adjust the handler.
type Options struct {
	Logger *slog.Logger
	// HistoryLimit is how many changes the timeline shows; default 20.
	HistoryLimit int
	// RefreshSeconds is the meta refresh of collecting experiments; default 60.
	RefreshSeconds int
	// APIPrefix is where the JSON API serves readouts, for the page's JSON
	// link; default /v1/experiments.
	APIPrefix string
}

//go:embed templates
var templateFS embed.FS

var tmpl = template.Must(template.New("").Funcs(template.FuncMap{"join": strings.Join}).ParseFS(templateFS, "templates/*.html"))

// keyPattern is the experiment key of DESIGN.md.
var keyPattern = regexp.MustCompile(`^[a-z0-9][a-z0-9_.-]{0,127}$`)

type handler struct {
	src  Source
	opts Options
	mux  *http.ServeMux
}

// NewHandler returns the handler of GET /experiments and
// GET /experiments/{key}. Mount it on both paths:
//
//	mux.Handle("GET /experiments", h)
//	mux.Handle("GET /experiments/{key}", h)
func NewHandler(src Source, opts Options) http.Handler {
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	if opts.HistoryLimit <= 0 {
		opts.HistoryLimit = 20
	}
	if opts.RefreshSeconds <= 0 {
		opts.RefreshSeconds = 60
	}
	if opts.APIPrefix == "" {
		opts.APIPrefix = "/v1/experiments"
	}
	h := &handler{src: src, opts: opts, mux: http.NewServeMux()}
	h.mux.HandleFunc("GET /experiments", h.index)
	h.mux.HandleFunc("GET /experiments/{$}", h.index)
	h.mux.HandleFunc("GET /experiments/{key}", h.experiment)
	return h
}

func (h *handler) ServeHTTP(w http.ResponseWriter, r *http.Request) { h.mux.ServeHTTP(w, r) }

type head struct {
	Title          string
	Refresh        bool
	RefreshSeconds int
}

type indexRow struct {
	report.View
	URL string
}

func (h *handler) index(w http.ResponseWriter, r *http.Request) {
	list, err := h.src.List(r.Context())
	if err != nil {
		h.fail(w, r, "list experiments", err)
		return
	}
	f, err := parseFilter(r.URL.Query())
	if err != nil {
		http.Error(w, "bad filter: "+err.Error(), http.StatusBadRequest)
		return
	}
	var shown []readout.Readout
	for _, ro := range list {
		if f.keep(ro) {
			shown = append(shown, ro)
		}
	}
	data := struct {
		head
		Rows     []indexRow
		Filter   filter
		Filtered bool
		// ByLabel: the filter picks one label, which makes a win rate
		// meaningless (0% of pivots persevered).
		ByLabel   bool
		Labels    []string
		Owners    []string
		Record    record
		Learnings []learning
		Total     int
	}{head: head{Title: "Experiments", RefreshSeconds: h.opts.RefreshSeconds}, Filter: f, Filtered: f != (filter{}), ByLabel: f.Label != "" && f.Label != "decided",
		Labels: labels, Owners: ownersOf(list), Record: recordOf(shown), Learnings: learningsOf(shown), Total: len(list)}
	for _, ro := range shown {
		v := report.NewView(ro, report.ViewOptions{})
		data.Rows = append(data.Rows, indexRow{View: v, URL: "/experiments/" + url.PathEscape(ro.Experiment)})
		data.Refresh = data.Refresh || v.Refresh
	}
	h.render(w, r, "index.html", data)
}

// historyRow is one stretch of the timeline: the looks that said the
// same (status, label and candidate), shown by the first of them.
type historyRow struct {
	report.View
	Changed bool // the verdict differs from the stretch before
	Looks   int  // readouts in the stretch
	Last    int64
}

// historyLooks is how many readouts the timeline reads to find its
// changes (what they said, not their documents).
const historyLooks = 1000

// stretch is a run of looks, newest first, that agreed on status, label
// and candidate: first and last are their versions.
type stretch struct {
	first, last int64
	looks       int
	changed     bool // the verdict differs from the stretch before
}

// stretches folds looks, newest first, into the stretches of looks that
// agreed, newest first, at most limit of them: the timeline tells what
// changed, not every look.
func stretches(looks []readout.Readout, limit int) []stretch {
	same := func(a, b readout.Readout) bool {
		return a.Status == b.Status && a.Label == b.Label && a.Candidate == b.Candidate && a.CandidateStatus == b.CandidateStatus
	}
	var out []stretch
	for i := 0; i < len(looks) && len(out) < limit; {
		j := i
		for j+1 < len(looks) && same(looks[j+1], looks[i]) {
			j++
		}
		// looks[j] is the first of the stretch, looks[i] its last.
		changed := j+1 < len(looks) && report.Verdict(looks[j+1]) != report.Verdict(looks[j])
		out = append(out, stretch{first: looks[j].Version, last: looks[i].Version, looks: j - i + 1, changed: changed})
		i = j + 1
	}
	return out
}

// history is the timeline of key: its stretches, each shown by the
// document of its first readout.
func (h *handler) history(ctx context.Context, key string) ([]historyRow, error) {
	looks, err := h.src.Looks(ctx, key, historyLooks)
	if err != nil {
		return nil, err
	}
	var rows []historyRow
	for _, s := range stretches(looks, h.opts.HistoryLimit) {
		first, err := h.src.History(ctx, key, s.first+1, 1)
		if err != nil {
			return nil, err
		}
		if len(first) == 0 {
			continue // gone meanwhile
		}
		rows = append(rows, historyRow{View: report.NewView(first[0], report.ViewOptions{}), Changed: s.changed, Looks: s.looks, Last: s.last})
	}
	return rows, nil
}

func (h *handler) experiment(w http.ResponseWriter, r *http.Request) {
	key := r.PathValue("key")
	if !keyPattern.MatchString(key) {
		http.Error(w, "no experiment "+template.HTMLEscapeString(key)+": keys match "+keyPattern.String(), http.StatusNotFound)
		return
	}
	latest, err := h.src.Latest(r.Context(), key)
	if err != nil {
		h.fail(w, r, "read latest readout of "+key, err)
		return
	}
	hist, err := h.history(r.Context(), key)
	if err != nil {
		// The page is still worth showing without its timeline.
		h.opts.Logger.Warn("read readout history", "experiment", key, "err", err)
	}
	v := report.NewView(latest, report.ViewOptions{})
	data := struct {
		head
		View            report.View
		Chart           template.HTML
		TimeChart       template.HTML
		History         []historyRow
		ProgressPercent int
		JSONURL         string
	}{
		head:            head{Title: v.Name + ": " + v.Verdict, Refresh: v.Refresh, RefreshSeconds: h.opts.RefreshSeconds},
		View:            v,
		Chart:           report.ChartSVG(latest),
		TimeChart:       report.TimeChartSVG(latest),
		ProgressPercent: int(v.Progress.Fraction*100 + 0.5),
		JSONURL:         h.opts.APIPrefix + "/" + url.PathEscape(key) + "/readout",
	}
	data.History = hist
	h.render(w, r, "experiment.html", data)
}

func (h *handler) render(w http.ResponseWriter, r *http.Request, name string, data any) {
	var buf bytes.Buffer
	if err := tmpl.ExecuteTemplate(&buf, name, data); err != nil {
		h.fail(w, r, "render "+name, err)
		return
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.Header().Set("Cache-Control", "no-cache")
	w.Header().Set("Content-Security-Policy", "default-src 'none'; style-src 'unsafe-inline'; img-src 'self' data:; frame-ancestors 'none'")
	w.Header().Set("X-Content-Type-Options", "nosniff")
	if r.Method != http.MethodHead {
		_, _ = w.Write(buf.Bytes())
	}
}

func (h *handler) fail(w http.ResponseWriter, r *http.Request, what string, err error) {
	if errors.Is(err, ErrNotFound) {
		http.Error(w, "no readout for this experiment yet", http.StatusNotFound)
		return
	}
	if r.Context().Err() != nil {
		return // the client went away
	}
	h.opts.Logger.Error(what, "path", r.URL.Path, "err", err)
	http.Error(w, "could not load the readout; see the server log", http.StatusInternalServerError)
}
