package rules

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"net/http"
	"sort"

	"github.com/verdictlabs/verdict/pkg/api"
	"github.com/verdictlabs/verdict/pkg/page"
	"github.com/verdictlabs/verdict/pkg/readout"
	"github.com/verdictlabs/verdict/pkg/warehouse"
)

// Readouts reads stored readouts back from ClickHouse for the API and the
// readout page.
type Readouts struct{ W *warehouse.Warehouse }

// List returns the latest readout of every experiment, by key.
func (s Readouts) List(ctx context.Context) ([]readout.Readout, error) {
	versions, err := s.W.LatestVersions(ctx)
	if err != nil {
		return nil, err
	}
	keys := make([]string, 0, len(versions))
	for k := range versions {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	out := make([]readout.Readout, 0, len(keys))
	for _, k := range keys {
		r, err := s.Latest(ctx, k)
		if err != nil {
			return nil, err
		}
		out = append(out, r)
	}
	return out, nil
}

// Latest returns the experiment's latest readout, or an error wrapping
// readout.ErrNotFound (warehouse.ErrNotFound and api.ErrNotFound are it).
func (s Readouts) Latest(ctx context.Context, experiment string) (readout.Readout, error) {
	doc, _, err := s.W.LatestReadout(ctx, experiment)
	if err != nil {
		return readout.Readout{}, err
	}
	return decode(doc)
}

// History returns up to limit readouts of the experiment below version
// before (0: from the newest), newest first.
func (s Readouts) History(ctx context.Context, experiment string, before int64, limit int) ([]readout.Readout, error) {
	docs, err := s.W.ReadoutHistory(ctx, experiment, uint64(max(before, 0)), limit)
	if err != nil {
		return nil, err
	}
	out := make([]readout.Readout, 0, len(docs))
	for _, d := range docs {
		r, err := decode(d)
		if err != nil {
			return nil, err
		}
		out = append(out, r)
	}
	return out, nil
}

// Looks returns what the newest limit readouts of the experiment said,
// newest first: each has only its Version, Status, Label, Candidate and
// CandidateStatus.
func (s Readouts) Looks(ctx context.Context, experiment string, limit int) ([]readout.Readout, error) {
	looks, err := s.W.ReadoutLooks(ctx, experiment, limit)
	if err != nil {
		return nil, err
	}
	out := make([]readout.Readout, len(looks))
	for i, l := range looks {
		out[i] = readout.Readout{Version: int64(l.Version), Status: readout.Status(l.Status), Label: readout.Label(l.Label),
			Candidate: readout.Label(l.Candidate), CandidateStatus: readout.Status(l.CandidateStatus)}
	}
	return out, nil
}

func decode(doc []byte) (readout.Readout, error) {
	var r readout.Readout
	if err := json.Unmarshal(doc, &r); err != nil {
		return r, fmt.Errorf("decode stored readout: %w", err)
	}
	return r, nil
}

// Handle adds the readout API and the readout pages, both reading what the
// rules service stored in wh, to mux.
func Handle(mux *http.ServeMux, wh *warehouse.Warehouse, log *slog.Logger) {
	readouts := Readouts{W: wh}
	api.Register(mux, readouts, log)
	pages := page.NewHandler(readouts, page.Options{Logger: log})
	mux.Handle("GET /experiments", pages)
	mux.Handle("GET /experiments/{key}", pages)
	mux.Handle("GET /{$}", http.RedirectHandler("/experiments", http.StatusFound))
}
