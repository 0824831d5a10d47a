package warehouse_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/verdictlabs/verdict/pkg/readout"
	"github.com/verdictlabs/verdict/pkg/warehouse"
	"github.com/verdictlabs/verdict/pkg/warehouse/warehousetest"
)

func TestReadoutStore(t *testing.T) { warehousetest.Run(t, testReadoutStore) }

func testReadoutStore(t *testing.T, e warehouse.Engine) {
	w, _ := warehousetest.Start(t, e)
	ctx := context.Background()
	if _, _, err := w.LatestReadout(ctx, "checkout"); !errors.Is(err, warehouse.ErrNotFound) {
		t.Fatalf("LatestReadout before any = %v, want ErrNotFound", err)
	}
	if got, err := w.LatestVersions(ctx); err != nil || len(got) != 0 {
		t.Fatalf("LatestVersions before any = %v, %v; want empty, nil", got, err)
	}
	at := time.Date(2026, 11, 20, 10, 0, 0, 0, time.UTC)
	doc := func(exp string, v uint64) []byte {
		// Quotes, backslashes and newlines: the document is a column value, not SQL text.
		return fmt.Appendf(nil, "{\"experiment\": %q, \"version\": %d, \"summary\": \"it's \\\"fine\\\"\\n\"}", exp, v)
	}
	store := func(exp string, v uint64, label string, d []byte) {
		t.Helper()
		if err := w.StoreReadout(ctx, exp, v, at.Add(time.Duration(v)*time.Minute), at, "collecting", label, d); err != nil {
			t.Fatal(err)
		}
	}
	for v := uint64(1); v <= 3; v++ {
		store("checkout", v, "", doc("checkout", v))
	}
	store("search.v2", 7, "pivot", doc("search.v2", 7))
	// Version 2 again, replaced: the last stored wins.
	store("checkout", 2, "salvage", []byte(`{"replaced": true}`))

	got, version, err := w.LatestReadout(ctx, "checkout")
	if err != nil || version != 3 || string(got) != string(doc("checkout", 3)) {
		t.Errorf("LatestReadout(checkout) = %s, %d, %v; want %s, 3, nil", got, version, err, doc("checkout", 3))
	}
	history, err := w.ReadoutHistory(ctx, "checkout", 0, 10)
	if err != nil {
		t.Fatal(err)
	}
	want := []string{string(doc("checkout", 3)), `{"replaced": true}`, string(doc("checkout", 1))}
	if diff := cmp.Diff(want, strs(history)); diff != "" {
		t.Errorf("ReadoutHistory(checkout, 10) (-want +got):\n%s", diff)
	}
	if history, err := w.ReadoutHistory(ctx, "checkout", 0, 2); err != nil || len(history) != 2 {
		t.Errorf("ReadoutHistory(checkout, 2) = %d documents, %v; want 2", len(history), err)
	}
	// The next page starts below the last version of this one.
	page2, err := w.ReadoutHistory(ctx, "checkout", 2, 10)
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff([]string{string(doc("checkout", 1))}, strs(page2)); diff != "" {
		t.Errorf("ReadoutHistory(checkout, before 2) (-want +got):\n%s", diff)
	}
	if history, err := w.ReadoutHistory(ctx, "nothing", 0, 0); err != nil || len(history) != 0 {
		t.Errorf("ReadoutHistory(nothing) = %d documents, %v; want none", len(history), err)
	}
	versions, err := w.LatestVersions(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(map[string]uint64{"checkout": 3, "search.v2": 7}, versions); diff != "" {
		t.Errorf("LatestVersions (-want +got):\n%s", diff)
	}
	rows := queryRows(t, w, "SELECT computed_at, data_through, status, label FROM verdict.readouts FINAL WHERE experiment = 'search.v2'")
	if diff := cmp.Diff([]row{{at.Add(7 * time.Minute), at, "collecting", "pivot"}}, rows); diff != "" {
		t.Errorf("stored columns (-want +got):\n%s", diff)
	}
}

func strs(bs [][]byte) []string {
	var out []string
	for _, b := range bs {
		out = append(out, string(b))
	}
	return out
}

// TestReadoutLooks: what each stored readout said (status, label,
// candidate, candidate_status) is read without the documents, newest
// first, up to the limit; a null candidate reads as none.
func TestReadoutLooks(t *testing.T) { warehousetest.Run(t, testReadoutLooks) }

func testReadoutLooks(t *testing.T, e warehouse.Engine) {
	w, _ := warehousetest.Start(t, e)
	ctx := context.Background()
	at := time.Date(2026, 11, 20, 10, 0, 0, 0, time.UTC)
	for v, r := range []readout.Readout{
		{Status: readout.Collecting},
		{Status: readout.Collecting, Candidate: readout.Persevere, CandidateStatus: readout.Decided},
		{Status: readout.Decided, Label: readout.Persevere, Candidate: readout.Persevere, CandidateStatus: readout.Decided},
	} {
		r.Experiment, r.Version = "checkout", int64(v+1)
		doc, err := json.Marshal(r)
		if err != nil {
			t.Fatal(err)
		}
		if err := w.StoreReadout(ctx, "checkout", uint64(v+1), at, at, string(r.Status), string(r.Label), doc); err != nil {
			t.Fatal(err)
		}
	}
	got, err := w.ReadoutLooks(ctx, "checkout", 2)
	if err != nil {
		t.Fatal(err)
	}
	want := []warehouse.ReadoutLook{
		{Version: 3, Status: "decided", Label: "persevere", Candidate: "persevere", CandidateStatus: "decided"},
		{Version: 2, Status: "collecting", Candidate: "persevere", CandidateStatus: "decided"},
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("ReadoutLooks(checkout, 2) (-want +got):\n%s", diff)
	}
	if all, err := w.ReadoutLooks(ctx, "checkout", 10); err != nil || len(all) != 3 || all[2] != (warehouse.ReadoutLook{Version: 1, Status: "collecting"}) {
		t.Errorf("ReadoutLooks(checkout, 10) = %+v, %v; want 3, the oldest with no candidate", all, err)
	}
}
