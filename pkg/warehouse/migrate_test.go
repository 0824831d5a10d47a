package warehouse

import (
	"strings"
	"testing"
	"testing/fstest"

	"github.com/google/go-cmp/cmp"
	"github.com/verdictlabs/verdict/schemas"
)

func TestSplitStatements(t *testing.T) {
	tests := []struct {
		name string
		sql  string
		want []string
	}{
		{"one", "SELECT 1;\n", []string{"SELECT 1"}},
		{"no final semicolon", "SELECT 1\n", []string{"SELECT 1"}},
		{"two, comments dropped", "-- first\nCREATE TABLE t\n(\n    a String -- trailing kept\n);\n\n  -- second\nSELECT 2;", []string{
			"CREATE TABLE t\n(\n    a String -- trailing kept\n)", "SELECT 2"}},
		{"semicolon inside a line", "SELECT 'a;b' AS x;\n", []string{"SELECT 'a;b' AS x"}},
		{"crlf", "SELECT 1;\r\nSELECT 2;\r\n", []string{"SELECT 1", "SELECT 2"}},
		{"only comments", "-- nothing\n\n", nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if diff := cmp.Diff(tt.want, SplitStatements(tt.sql)); diff != "" {
				t.Errorf("SplitStatements(%q) (-want +got):\n%s", tt.sql, diff)
			}
		})
	}
}

func TestMigrationsEmbedded(t *testing.T) {
	ms, err := Migrations(schemas.ClickHouse)
	if err != nil {
		t.Fatal(err)
	}
	if len(ms) == 0 || ms[0].Version != 1 || ms[0].Name != "0001_events.sql" {
		t.Fatalf("Migrations(schemas.ClickHouse) = %+v, want 0001_events.sql first", ms)
	}
	for i, m := range ms {
		if m.Version != uint32(i+1) {
			t.Errorf("migration %s has version %d, want %d: versions are 1, 2, 3, ... without gaps", m.Name, m.Version, i+1)
		}
		for _, s := range m.Statements {
			// Every statement names the database through the placeholder,
			// so the migrations work for any database name.
			if !strings.Contains(s, dbPlaceholder+".") {
				t.Errorf("migration %s: statement does not name its table as %s.table:\n%s", m.Name, dbPlaceholder, s)
			}
		}
	}
}

func TestMigrationsBadNames(t *testing.T) {
	for _, files := range []fstest.MapFS{
		{"events.sql": {Data: []byte("SELECT 1;")}},
		{"0000_zero.sql": {Data: []byte("SELECT 1;")}},
		{"0001_a.sql": {Data: []byte("SELECT 1;")}, "001_b.sql": {Data: []byte("SELECT 1;")}},
		{"0001_empty.sql": {Data: []byte("-- nothing\n")}},
	} {
		if ms, err := Migrations(files); err == nil {
			t.Errorf("Migrations(%v) = %+v, want an error", files, ms)
		}
	}
}

func TestCheckDatabase(t *testing.T) {
	for _, db := range []string{"verdict", "_x", "verdict_test_2"} {
		if err := checkDatabase(db); err != nil {
			t.Errorf("checkDatabase(%q) = %v, want nil", db, err)
		}
	}
	for _, db := range []string{"", "Verdict", "1db", "a-b", "a.b", "a`b", "x; DROP DATABASE y"} {
		if err := checkDatabase(db); err == nil {
			t.Errorf("checkDatabase(%q) = nil, want an error", db)
		}
	}
}
