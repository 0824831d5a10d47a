package rules

import (
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"net/http"
	"time"

	"github.com/verdictlabs/verdict/pkg/config"
	"github.com/verdictlabs/verdict/pkg/tally"
)

// Recompute is the answer of POST /v1/experiments/{key}/recompute: the
// experiment recomputed in full from ClickHouse as of its tally's last look
// (the ingest floor Seq and the time AsOf), and every difference between
// the two beyond 1e-9 relative.
type Recompute struct {
	Experiment  string    `json:"experiment"`
	Seq         uint64    `json:"seq"`
	AsOf        time.Time `json:"as_of"`
	Equal       bool      `json:"equal"`
	Differences []string  `json:"differences"`
	Seconds     float64   `json:"seconds"` // what the full recompute took
}

// HandleRecompute registers POST /v1/experiments/{key}/recompute on mux:
// the experiment's tally in book against a full recompute (Recompute). 404
// for an experiment that is not defined, 409 when this instance keeps no
// tally of it (another rules instance holds it, or it is being rebuilt).
func HandleRecompute(mux *http.ServeMux, book *tally.Book, load func(context.Context) (config.Definitions, error), log *slog.Logger) {
	mux.HandleFunc("POST /v1/experiments/{key}/recompute", func(w http.ResponseWriter, r *http.Request) {
		key := r.PathValue("key")
		defs, err := load(r.Context())
		if err != nil {
			http.Error(w, "load definitions: "+err.Error(), http.StatusServiceUnavailable)
			return
		}
		var exp *config.Experiment
		for i := range defs.Experiments {
			if defs.Experiments[i].Key == key {
				exp = &defs.Experiments[i]
			}
		}
		if exp == nil {
			http.Error(w, "no experiment "+key, http.StatusNotFound)
			return
		}
		metrics := make(map[string]config.Metric, len(defs.Metrics))
		for _, m := range defs.Metrics {
			metrics[m.Key] = m
		}
		began := time.Now()
		full, kept, seq, asOf, err := book.Verify(r.Context(), *exp, referenced(*exp, metrics))
		switch {
		case errors.Is(err, tally.ErrBuilding), errors.Is(err, tally.ErrNoTally):
			http.Error(w, err.Error(), http.StatusConflict)
			return
		case err != nil:
			log.Warn("recompute", "experiment", key, "err", err)
			http.Error(w, "recompute: "+err.Error(), http.StatusInternalServerError)
			return
		}
		diff := tally.Diff(full, kept, 1e-9)
		out := Recompute{Experiment: key, Seq: seq, AsOf: asOf, Equal: len(diff) == 0, Differences: diff, Seconds: time.Since(began).Seconds()}
		if out.Differences == nil {
			out.Differences = []string{}
		}
		if !out.Equal {
			log.Warn("tally differs from a full recompute", "experiment", key, "differences", len(diff))
		}
		w.Header().Set("Content-Type", "application/json")
		json.NewEncoder(w).Encode(out)
	})
}
