package api

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/verdictlabs/verdict/pkg/readout"
)

// source is a fixed set of readouts: the handler's HTTP behaviour is
// tested here; services/rules tests it over ClickHouse.
type source map[string][]readout.Readout // newest first

func (s source) List(context.Context) ([]readout.Readout, error) {
	var out []readout.Readout
	for _, k := range []string{"a", "b"} {
		if h := s[k]; len(h) > 0 {
			out = append(out, h[0])
		}
	}
	return out, nil
}

func (s source) Latest(_ context.Context, key string) (readout.Readout, error) {
	if h := s[key]; len(h) > 0 {
		return h[0], nil
	}
	return readout.Readout{}, fmt.Errorf("%w for experiment %q", ErrNotFound, key)
}

func (s source) History(_ context.Context, key string, before int64, limit int) ([]readout.Readout, error) {
	var h []readout.Readout
	for _, r := range s[key] {
		if before == 0 || r.Version < before {
			h = append(h, r)
		}
	}
	return h[:min(limit, len(h))], nil
}

func TestHandler(t *testing.T) {
	ro := func(key string, v int64) readout.Readout {
		return readout.Readout{Experiment: key, Version: v, Status: readout.Collecting, Summary: "s"}
	}
	mux := http.NewServeMux()
	Register(mux, source{"a": {ro("a", 3), ro("a", 2), ro("a", 1)}, "b": {ro("b", 1)}}, slog.New(slog.DiscardHandler))
	tests := []struct {
		path     string
		code     int
		versions []int64 // of the readouts returned, when 200
	}{
		{"/v1/experiments", 200, []int64{3, 1}},
		{"/v1/experiments/a/readout", 200, []int64{3}},
		{"/v1/experiments/a/readouts", 200, []int64{3, 2, 1}},
		{"/v1/experiments/a/readouts?limit=2", 200, []int64{3, 2}},
		{"/v1/experiments/a/readouts?before=3&limit=1", 200, []int64{2}},
		{"/v1/experiments/a/readouts?before=1", 200, nil},
		{"/v1/experiments/a/readouts?before=0", 400, nil},
		{"/v1/experiments/a/readouts?before=x", 400, nil},
		{"/v1/experiments/a/readouts?limit=0", 400, nil},
		{"/v1/experiments/a/readouts?limit=x", 400, nil},
		{"/v1/experiments/zzz/readout", 404, nil},
		{"/v1/experiments/zzz/readouts", 404, nil},
		{"/v1/experiments/Bad%20Key/readout", 400, nil},
	}
	for _, tt := range tests {
		rec := httptest.NewRecorder()
		mux.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, tt.path, nil))
		if rec.Code != tt.code {
			t.Errorf("GET %s = %d, want %d (%s)", tt.path, rec.Code, tt.code, rec.Body)
			continue
		}
		if ct := rec.Header().Get("Content-Type"); ct != "application/json" {
			t.Errorf("GET %s: Content-Type %q, want application/json", tt.path, ct)
		}
		if tt.code != 200 {
			var e struct{ Error string }
			if json.Unmarshal(rec.Body.Bytes(), &e) != nil || e.Error == "" {
				t.Errorf("GET %s: body %s, want {\"error\": ...}", tt.path, rec.Body)
			}
			continue
		}
		var got []int64
		var body struct {
			Version     int64
			Experiments []struct{ Version int64 }
			Readouts    []struct{ Version int64 }
		}
		if err := json.Unmarshal(rec.Body.Bytes(), &body); err != nil {
			t.Fatal(err)
		}
		switch {
		case body.Experiments != nil:
			for _, e := range body.Experiments {
				got = append(got, e.Version)
			}
		case body.Readouts != nil:
			for _, r := range body.Readouts {
				got = append(got, r.Version)
			}
		default:
			got = []int64{body.Version}
		}
		if fmt.Sprint(got) != fmt.Sprint(tt.versions) {
			t.Errorf("GET %s: versions %v, want %v", tt.path, got, tt.versions)
		}
	}
}

// TestHistoryPages walks the history by its "next" links: every version
// once, newest first, and the Link header says the same as "next".
func TestHistoryPages(t *testing.T) {
	var h []readout.Readout
	for v := int64(7); v >= 1; v-- {
		h = append(h, readout.Readout{Experiment: "a", Version: v, Status: readout.Collecting})
	}
	mux := http.NewServeMux()
	Register(mux, source{"a": h}, slog.New(slog.DiscardHandler))
	var got []int64
	pages := 0
	for path := "/v1/experiments/a/readouts?limit=3"; path != ""; pages++ {
		if pages > 5 {
			t.Fatalf("more than 5 pages; at %s", path)
		}
		rec := httptest.NewRecorder()
		mux.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, path, nil))
		if rec.Code != 200 {
			t.Fatalf("GET %s = %d %s", path, rec.Code, rec.Body)
		}
		var body struct {
			Readouts []struct{ Version int64 }
			Next     string
		}
		if err := json.Unmarshal(rec.Body.Bytes(), &body); err != nil {
			t.Fatal(err)
		}
		for _, r := range body.Readouts {
			got = append(got, r.Version)
		}
		if link, want := rec.Header().Get("Link"), "<"+body.Next+`>; rel="next"`; (body.Next == "") != (link == "") || (link != "" && link != want) {
			t.Errorf("GET %s: Link %q, next %q", path, link, body.Next)
		}
		path = body.Next
	}
	if fmt.Sprint(got) != "[7 6 5 4 3 2 1]" || pages != 3 {
		t.Errorf("walked %v in %d pages, want [7 6 5 4 3 2 1] in 3", got, pages)
	}
}
