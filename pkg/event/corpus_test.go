package event

import (
	"bytes"
	"encoding/json"
	"errors"
	"io/fs"
	"os"
	"path"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/santhosh-tekuri/jsonschema/v6"

	"github.com/verdictlabs/verdict/schemas"
)

// corpusEntry is one event of testdata/corpus/events.json.
type corpusEntry struct {
	Name          string          `json:"name"`
	Subject       string          `json:"subject"`
	Want          string          `json:"want"` // "valid" or a Reason
	OutsideSchema bool            `json:"outside_schema"`
	Event         json.RawMessage `json:"event"`
	Raw           *string         `json:"raw"`
	PadTo         int             `json:"pad_to"`
}

// data returns the entry's message bytes.
func (e corpusEntry) data(t testing.TB) []byte {
	t.Helper()
	var b []byte
	switch {
	case e.Raw != nil:
		b = []byte(*e.Raw)
	case e.Event != nil:
		b = bytes.Clone(e.Event)
	default:
		t.Fatalf("corpus entry %q has neither event nor raw", e.Name)
	}
	if e.PadTo > 0 {
		// {...} becomes {...,"pad":"xxx"} of exactly PadTo bytes.
		b = bytes.TrimRight(b, " \n")
		b = append(b[:len(b)-1], `,"pad":"`...)
		n := e.PadTo - len(b) - len(`"}`)
		if n < 0 {
			t.Fatalf("corpus entry %q: pad_to %d is shorter than the event", e.Name, e.PadTo)
		}
		b = append(b, strings.Repeat("x", n)...)
		b = append(b, `"}`...)
	}
	return b
}

type corpus struct {
	Now     time.Time     `json:"now"`
	Entries []corpusEntry `json:"entries"`
}

func readCorpus(t testing.TB) corpus {
	t.Helper()
	b, err := os.ReadFile("testdata/corpus/events.json")
	if err != nil {
		t.Fatal(err)
	}
	var c corpus
	if err := json.Unmarshal(b, &c); err != nil {
		t.Fatalf("read corpus: %v", err)
	}
	return c
}

// compileSchemas compiles the published event schemas, by subject, with
// format assertions on (draft 2020-12 leaves "format" as an annotation by
// default; verdict's schemas mean date-time as a rule).
func compileSchemas(t testing.TB) map[string]*jsonschema.Schema {
	t.Helper()
	c := jsonschema.NewCompiler()
	c.AssertFormat()
	out := make(map[string]*jsonschema.Schema)
	for _, typ := range []Type{Exposure, Track} {
		doc := readSchema(t, typ)
		id, _ := doc.(map[string]any)["$id"].(string)
		if id == "" {
			t.Fatalf("%s schema has no $id", typ)
		}
		if err := c.AddResource(id, doc); err != nil {
			t.Fatalf("add %s schema: %v", typ, err)
		}
		s, err := c.Compile(id)
		if err != nil {
			t.Fatalf("compile %s schema: %v", typ, err)
		}
		out[typ.Subject()] = s
	}
	return out
}

func readSchema(t testing.TB, typ Type) any {
	t.Helper()
	name := path.Join("events", typ.String()+".schema.json")
	f, err := schemas.Events.Open(name)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	doc, err := jsonschema.UnmarshalJSON(f)
	if err != nil {
		t.Fatalf("read %s: %v", name, err)
	}
	return doc
}

// schemaAccepts reports whether data is JSON that s accepts.
func schemaAccepts(s *jsonschema.Schema, data []byte) bool {
	v, err := jsonschema.UnmarshalJSON(bytes.NewReader(data))
	if err != nil {
		return false
	}
	return s.Validate(v) == nil
}

// outcome is what Decode says of a message: "valid" or the Reason.
func outcome(t testing.TB, err error) string {
	t.Helper()
	if err == nil {
		return "valid"
	}
	var e *Error
	if !errors.As(err, &e) || !errors.Is(err, ErrInvalid) {
		t.Fatalf("Decode error %v is not an *Error wrapping ErrInvalid", err)
	}
	return string(e.Reason)
}

// TestCorpus holds the JSON Schemas and the Decoder to the same verdict on
// every corpus entry, so that neither can drift from the other.
func TestCorpus(t *testing.T) {
	c := readCorpus(t)
	compiled := compileSchemas(t)
	d := NewDecoder(DefaultWindow)
	seen := make(map[string]bool)
	for _, e := range c.Entries {
		t.Run(e.Name, func(t *testing.T) {
			data := e.data(t)
			_, err := d.Decode(e.Subject, data, c.Now)
			got := outcome(t, err)
			seen[got] = true
			if got != e.Want {
				t.Errorf("Decode(%s, %.80q) = %s (%v), want %s", e.Subject, data, got, err, e.Want)
			}

			s := compiled[e.Subject]
			switch {
			case e.OutsideSchema && e.Want == "valid":
				t.Errorf("entry is marked outside_schema but is valid")
			case s == nil && !e.OutsideSchema:
				t.Errorf("subject %q has no schema; mark the entry outside_schema", e.Subject)
			case s == nil:
				// Nothing for the schema to say.
			case e.OutsideSchema:
				if !schemaAccepts(s, data) {
					t.Errorf("schema rejects an entry marked outside_schema; the schema sees the problem, so unmark it")
				}
			default:
				if accepts, want := schemaAccepts(s, data), e.Want == "valid"; accepts != want {
					t.Errorf("schema accepts = %t, want %t (as the Decoder: %s)", accepts, want, got)
				}
			}
		})
	}
	for _, r := range allReasons {
		if !seen[string(r)] {
			t.Errorf("no corpus entry is rejected as %s", r)
		}
	}
}

var allReasons = Reasons()

// TestSchemaLimits checks that the constants of this package are the ones
// the schemas publish, and that the fields both types share are described
// the same in both files.
func TestSchemaLimits(t *testing.T) {
	exposure := readSchema(t, Exposure).(map[string]any)
	track := readSchema(t, Track).(map[string]any)
	get := func(doc map[string]any, keys ...string) any {
		var v any = doc
		for _, k := range keys {
			m, ok := v.(map[string]any)
			if !ok {
				t.Fatalf("schema has no %s", strings.Join(keys, "."))
			}
			v = m[k]
		}
		return v
	}
	num := func(n int) json.Number { return json.Number(strconv.Itoa(n)) }
	for _, doc := range []map[string]any{exposure, track} {
		checks := []struct {
			path []string
			want any
		}{
			{[]string{"properties", "event_id", "maxLength"}, num(MaxIDLen)},
			{[]string{"properties", "unit_id", "maxLength"}, num(MaxUnitLen)},
			{[]string{"properties", "attributes", "maxProperties"}, num(MaxAttributes)},
			{[]string{"properties", "attributes", "propertyNames", "pattern"}, KeyPattern},
			{[]string{"properties", "attributes", "additionalProperties", "maxLength"}, num(MaxAttrValue)},
		}
		for _, c := range checks {
			if got := get(doc, c.path...); got != c.want {
				t.Errorf("%s: %s = %v, want %v", get(doc, "$id"), strings.Join(c.path, "."), got, c.want)
			}
		}
	}
	for _, f := range []string{"experiment", "variant"} {
		if got := get(exposure, "properties", f, "pattern"); got != KeyPattern {
			t.Errorf("exposure %s pattern = %v, want %v", f, got, KeyPattern)
		}
	}
	if got := get(track, "properties", "event", "pattern"); got != KeyPattern {
		t.Errorf("track event pattern = %v, want %v", got, KeyPattern)
	}
	for _, f := range []string{"event_id", "ts", "unit_id", "attributes"} {
		if diff := cmp.Diff(get(exposure, "properties", f), get(track, "properties", f)); diff != "" {
			t.Errorf("field %q differs between the exposure and track schemas (-exposure +track):\n%s", f, diff)
		}
	}
	var names []string
	if err := fs.WalkDir(schemas.Events, ".", func(p string, d fs.DirEntry, err error) error {
		if err == nil && !d.IsDir() {
			names = append(names, p)
		}
		return err
	}); err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff([]string{"events/exposure.schema.json", "events/track.schema.json"}, names); diff != "" {
		t.Errorf("schemas.Events files (-want +got):\n%s", diff)
	}
}
