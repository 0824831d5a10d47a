// Package api serves readouts as JSON:
//
//	GET /v1/experiments                  every experiment's latest readout, in brief
//	GET /v1/experiments/{key}/readout    the latest readout
//	GET /v1/experiments/{key}/readouts   the history, newest first, a page at a time
//	                                     (?limit=N, default 100, at most 10000;
//	                                     ?before=V starts below version V; "next"
//	                                     and a Link header give the next page)
package api

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"strconv"
	"time"

	"github.com/verdictlabs/verdict/pkg/event"
	"github.com/verdictlabs/verdict/pkg/readout"
)

// ErrNotFound is what a Source returns for an experiment without readouts:
// readout.ErrNotFound, which the pages answer 404 to as well.
var ErrNotFound = readout.ErrNotFound

// Source is where readouts are read from.
type Source interface {
	List(ctx context.Context) ([]readout.Readout, error)
	Latest(ctx context.Context, experiment string) (readout.Readout, error)
	// History returns up to limit readouts with a version below before
	// (0: from the newest), newest first.
	History(ctx context.Context, experiment string, before int64, limit int) ([]readout.Readout, error)
}

// Brief is one experiment in the listing.
type Brief struct {
	Experiment  string         `json:"experiment"`
	Name        string         `json:"name,omitempty"`
	Status      readout.Status `json:"status"`
	Label       readout.Label  `json:"label"`
	Summary     string         `json:"summary"`
	Version     int64          `json:"version"`
	ComputedAt  time.Time      `json:"computed_at"`
	DataThrough time.Time      `json:"data_through"`
	Readout     string         `json:"readout"` // URL path of the full readout
	Page        string         `json:"page"`    // URL path of the page for people
}

// Register adds the API's routes to mux.
func Register(mux *http.ServeMux, src Source, log *slog.Logger) {
	h := &handler{src: src, log: log}
	mux.HandleFunc("GET /v1/experiments", h.list)
	mux.HandleFunc("GET /v1/experiments/{key}/readout", h.latest)
	mux.HandleFunc("GET /v1/experiments/{key}/readouts", h.history)
}

type handler struct {
	src Source
	log *slog.Logger
}

func (h *handler) list(w http.ResponseWriter, r *http.Request) {
	rs, err := h.src.List(r.Context())
	if err != nil {
		h.fail(w, r, err)
		return
	}
	out := struct {
		Experiments []Brief `json:"experiments"`
	}{Experiments: make([]Brief, 0, len(rs))}
	for _, ro := range rs {
		out.Experiments = append(out.Experiments, Brief{
			Experiment: ro.Experiment, Name: ro.Name, Status: ro.Status, Label: ro.Label,
			Summary: ro.Summary, Version: ro.Version, ComputedAt: ro.ComputedAt, DataThrough: ro.DataThrough,
			Readout: "/v1/experiments/" + ro.Experiment + "/readout",
			Page:    "/experiments/" + ro.Experiment,
		})
	}
	writeJSON(w, http.StatusOK, out)
}

func (h *handler) latest(w http.ResponseWriter, r *http.Request) {
	key, ok := h.key(w, r)
	if !ok {
		return
	}
	ro, err := h.src.Latest(r.Context(), key)
	if err != nil {
		h.fail(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, ro)
}

func (h *handler) history(w http.ResponseWriter, r *http.Request) {
	key, ok := h.key(w, r)
	if !ok {
		return
	}
	limit := 100
	if s := r.URL.Query().Get("limit"); s != "" {
		n, err := strconv.Atoi(s)
		if err != nil || n < 1 || n > 10000 {
			writeError(w, http.StatusBadRequest, "limit must be a whole number from 1 to 10000")
			return
		}
		limit = n
	}
	var before int64
	if s := r.URL.Query().Get("before"); s != "" {
		n, err := strconv.ParseInt(s, 10, 64)
		if err != nil || n < 1 {
			writeError(w, http.StatusBadRequest, "before must be a readout version, a whole number from 1")
			return
		}
		before = n
	}
	rs, err := h.src.History(r.Context(), key, before, limit)
	if err != nil {
		h.fail(w, r, err)
		return
	}
	if len(rs) == 0 && before == 0 {
		writeError(w, http.StatusNotFound, "no readouts for experiment "+strconv.Quote(key))
		return
	}
	// A full page may have more behind it; version 1 has nothing behind.
	var next string
	if last := len(rs) - 1; len(rs) == limit && rs[last].Version > 1 {
		next = fmt.Sprintf("/v1/experiments/%s/readouts?before=%d&limit=%d", key, rs[last].Version, limit)
		w.Header().Set("Link", "<"+next+`>; rel="next"`)
	}
	if rs == nil {
		rs = []readout.Readout{}
	}
	writeJSON(w, http.StatusOK, struct {
		Experiment string            `json:"experiment"`
		Readouts   []readout.Readout `json:"readouts"`
		Next       string            `json:"next,omitempty"`
	}{key, rs, next})
}

func (h *handler) key(w http.ResponseWriter, r *http.Request) (string, bool) {
	key := r.PathValue("key")
	if !event.IsKey(key) {
		writeError(w, http.StatusBadRequest, "experiment key must match "+event.KeyPattern)
		return "", false
	}
	return key, true
}

func (h *handler) fail(w http.ResponseWriter, r *http.Request, err error) {
	if errors.Is(err, ErrNotFound) {
		writeError(w, http.StatusNotFound, err.Error())
		return
	}
	if r.Context().Err() != nil {
		return // the client went away
	}
	// The cause goes to the log; ClickHouse's own words stay inside.
	h.log.Error("serve readouts", "path", r.URL.Path, "err", err)
	writeError(w, http.StatusInternalServerError, "readouts are unavailable now; see the server log")
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	b, err := json.MarshalIndent(v, "", "  ")
	if err != nil {
		writeError(w, http.StatusInternalServerError, "the readout could not be encoded; see the server log")
		return
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	w.Write(append(b, '\n'))
}

func writeError(w http.ResponseWriter, status int, msg string) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	json.NewEncoder(w).Encode(map[string]string{"error": msg})
}
