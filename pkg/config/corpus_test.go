package config

import (
	"bytes"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/goccy/go-yaml/ast"
	"github.com/goccy/go-yaml/parser"
	"github.com/santhosh-tekuri/jsonschema/v6"

	"github.com/verdictlabs/verdict/pkg/testkit"
)

const schemaFile = "../../schemas/config.schema.json"

func compileSchema(t *testing.T) *jsonschema.Schema {
	return testkit.Schema(t, schemaFile, "config.schema.json")
}

// TestCorpus holds every file of testdata/corpus against both the JSON
// Schema and Parse+ValidateFiles, so the two cannot drift apart. A YAML file
// says in its first lines what is expected of it:
//
//	# schema: valid|invalid   what the JSON Schema says
//	# want: TEXT              a problem Go must report (none: Go accepts it)
//
// "schema: valid" with a want is a check only Go makes (cross-references,
// sums, duplicates); those files are named go-*.yaml. JSON files are valid.
func TestCorpus(t *testing.T) {
	sch := compileSchema(t)
	files, _ := filepath.Glob("testdata/corpus/*")
	if len(files) < 20 {
		t.Fatalf("corpus has %d files", len(files))
	}
	for _, name := range files {
		t.Run(filepath.Base(name), func(t *testing.T) {
			data, err := os.ReadFile(name)
			if err != nil {
				t.Fatal(err)
			}
			schemaValid, want := true, ""
			for _, line := range strings.Split(string(data), "\n") {
				if v, ok := strings.CutPrefix(line, "# schema: "); ok {
					schemaValid = v == "valid"
				} else if v, ok := strings.CutPrefix(line, "# want: "); ok {
					want = v
				}
			}
			if strings.HasPrefix(filepath.Base(name), "go-") != (schemaValid && want != "") {
				t.Fatalf("go-*.yaml, and only they, are schema-valid files that Go refuses")
			}

			v, err := yamlValue(data)
			if err != nil {
				t.Fatalf("yaml to JSON value: %v", err)
			}
			if err := sch.Validate(v); (err == nil) != schemaValid {
				t.Errorf("JSON Schema valid = %v, want %v: %v", err == nil, schemaValid, err)
			}

			f, _ := ParseFile(name, data)
			err = ValidateFiles(f)
			switch {
			case want == "" && err != nil:
				t.Errorf("Parse+Validate: %v, want no problem", err)
			case want != "" && err == nil:
				t.Errorf("Parse+Validate: no problem, want one with %q", want)
			case want != "" && !strings.Contains(err.Error(), want):
				t.Errorf("Parse+Validate:\n%v\nwant a problem with %q", err, want)
			}
			var ps Problems
			if err != nil && !errors.As(err, &ps) {
				t.Errorf("error is %T, want Problems", err)
			}
		})
	}
}

// yamlValue turns the first YAML document of data into the value
// encoding/json would give for its JSON form, reading scalars as Parse does
// (an unquoted 1e4 is a number).
func yamlValue(data []byte) (any, error) {
	f, err := parser.ParseBytes(data, 0, parser.AllowDuplicateMapKey())
	if err != nil {
		return nil, err
	}
	if len(f.Docs) == 0 || f.Docs[0].Body == nil {
		return map[string]any{}, nil
	}
	d := &decoder{file: &File{pos: map[string]Pos{}}, anchors: map[string]ast.Node{}}
	ast.Walk(anchorCollector(d.anchors), f.Docs[0].Body)
	v := d.value(f.Docs[0].Body)
	b, err := json.Marshal(v)
	if err != nil {
		return nil, err
	}
	return jsonschema.UnmarshalJSON(bytes.NewReader(b))
}

func (d *decoder) value(n ast.Node) any {
	n, str := d.resolve(n, "")
	switch t := n.(type) {
	case nil, *ast.NullNode:
		return nil
	case *ast.MappingNode:
		m := map[string]any{}
		explicit, merged := d.entries(t, "")
		for _, e := range append(explicit, merged...) {
			k, _ := d.key(e.Key)
			if _, ok := m[k]; ok && containsNode(merged, e) {
				continue
			}
			m[k] = d.value(e.Value)
		}
		return m
	case *ast.SequenceNode:
		s := make([]any, len(t.Values))
		for i, e := range t.Values {
			s[i] = d.value(e)
		}
		return s
	case *ast.BoolNode:
		return t.Value
	}
	if x, ok := number(n); ok && !str {
		return x
	}
	if s, ok := n.(*ast.StringNode); ok {
		return s.Value
	}
	if l, ok := n.(*ast.LiteralNode); ok && l.Value != nil {
		return l.Value.Value
	}
	return n.GetToken().Value
}

func containsNode(ns []*ast.MappingValueNode, n *ast.MappingValueNode) bool {
	for _, x := range ns {
		if x == n {
			return true
		}
	}
	return false
}
