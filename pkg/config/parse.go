package config

import (
	"bytes"
	"encoding/json"
	"fmt"
	"math"
	"path/filepath"
	"reflect"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/goccy/go-yaml"
	"github.com/goccy/go-yaml/ast"
	"github.com/goccy/go-yaml/parser"
	"github.com/goccy/go-yaml/token"

	"github.com/verdictlabs/verdict/pkg/stats"
)

// Defaults applied by Parse to what a file leaves out.
const (
	DefaultAlpha             = 0.05
	DefaultPower             = 0.8
	DefaultSequential        = true
	DefaultTuning            = 5000
	DefaultMinUnits          = 100
	DefaultAttributionWindow = Duration(7 * 24 * time.Hour)
)

// MaxFileSize is the largest definitions file Parse reads.
const MaxFileSize = 4 << 20

// File is a parsed definitions file: its definitions, and where each of
// their fields is written, so that the problems Validate finds later point
// at a line and column.
type File struct {
	Name string
	Definitions

	pos      map[string]Pos // path → position of its value
	problems Problems       // found while parsing
}

// Parse reads definitions written in YAML or JSON (JSON is read as YAML,
// after a strict syntax check when name ends in .json or data looks like
// JSON). It refuses fields that the format does not have, values of the
// wrong type, a key given twice in one mapping, and more than one YAML
// document; every such problem is returned at once, as Problems with
// positions. It fills in the defaults of the fields left out (see Metric
// and Experiment). It does not Validate: an experiment may refer to a
// metric defined elsewhere.
//
// On problems, the Definitions returned hold what could be read.
func Parse(name string, data []byte) (Definitions, error) {
	f, err := ParseFile(name, data)
	return f.Definitions, err
}

// ParseFile is Parse keeping the positions, for ValidateFiles and
// ApplyFiles. The File is never nil; on problems it holds what could be read
// and the problems, which ValidateFiles and ApplyFiles report again.
func ParseFile(name string, data []byte) (*File, error) {
	f := &File{Name: name, pos: map[string]Pos{}}
	d := &decoder{file: f, anchors: map[string]ast.Node{}}
	d.parse(data)
	if len(f.problems) > 0 {
		f.problems = f.problems.truncate()
		return f, f.problems
	}
	return f, nil
}

// Pos returns where path (experiments[0].variants[1].weight) is written,
// or, when it is not, where its nearest enclosing value is.
func (f *File) Pos(path string) Pos {
	for {
		if p, ok := f.pos[path]; ok {
			return p
		}
		i := strings.LastIndexAny(path, ".[")
		if i < 0 {
			return Pos{File: f.Name}
		}
		path = path[:i]
	}
}

func (f *File) has(path string) bool {
	_, ok := f.pos[path]
	return ok
}

type decoder struct {
	file    *File
	anchors map[string]ast.Node
}

func (d *decoder) problem(pos Pos, path, format string, args ...any) {
	d.file.problems = append(d.file.problems, Problem{Pos: pos, Path: path, Msg: fmt.Sprintf(format, args...)})
}

func (d *decoder) parse(data []byte) {
	name := d.file.Name
	if len(data) > MaxFileSize {
		d.problem(Pos{File: name}, "", "file is %d bytes, more than the %d allowed; split it into several files", len(data), MaxFileSize)
		return
	}
	if !utf8.Valid(data) {
		d.problem(Pos{File: name}, "", "file is not UTF-8 text; save it as UTF-8")
		return
	}
	if isJSON(name, data) {
		if err := checkJSON(data); err != nil {
			d.problem(offsetPos(name, data, err.offset), "", "JSON syntax: %s", err.msg)
			return
		}
	}
	f, err := parser.ParseBytes(data, 0, parser.AllowDuplicateMapKey())
	if err != nil {
		pos, msg := Pos{File: name}, err.Error()
		if ye, ok := err.(yaml.Error); ok {
			pos, msg = d.tokenPos(ye.GetToken()), ye.GetMessage()
		}
		d.problem(pos, "", "YAML syntax: %s", msg)
		return
	}
	var body ast.Node
	for _, doc := range f.Docs {
		if doc.Body == nil {
			continue
		}
		if body != nil {
			d.problem(d.at(doc.Body), "", "a second YAML document (after ---): put every definition in one document, or pass each file with its own -f")
			break
		}
		body = doc.Body
	}
	if body == nil {
		return // an empty file: no definitions
	}
	ast.Walk(anchorCollector(d.anchors), body)
	d.decode(body, "", reflect.ValueOf(&d.file.Definitions).Elem())
	d.defaults()
}

// isJSON reports whether data is to be held to JSON syntax: by its name,
// else by its first character.
func isJSON(name string, data []byte) bool {
	switch strings.ToLower(filepath.Ext(name)) {
	case ".json":
		return true
	case ".yaml", ".yml":
		return false
	}
	t := bytes.TrimLeft(data, " \t\r\n")
	return len(t) > 0 && t[0] == '{' && json.Valid(data)
}

type jsonError struct {
	offset int64
	msg    string
}

func checkJSON(data []byte) *jsonError {
	var v any
	dec := json.NewDecoder(bytes.NewReader(data))
	if err := dec.Decode(&v); err != nil {
		if se, ok := err.(*json.SyntaxError); ok {
			return &jsonError{se.Offset - 1, se.Error()} // Offset is just after the bad byte
		}
		return &jsonError{int64(len(data)), err.Error()}
	}
	if dec.More() {
		return &jsonError{dec.InputOffset(), "more than one JSON value; put everything in one object"}
	}
	return nil
}

// offsetPos turns a byte offset into a line and a column counted in
// characters, as YAML positions are.
func offsetPos(name string, data []byte, off int64) Pos {
	off = min(max(off, 0), int64(len(data)))
	before := data[:off]
	line := bytes.Count(before, []byte("\n")) + 1
	col := utf8.RuneCount(before[bytes.LastIndexByte(before, '\n')+1:]) + 1
	return Pos{File: name, Line: line, Col: col}
}

func (d *decoder) tokenPos(tk *token.Token) Pos {
	if tk == nil || tk.Position == nil {
		return Pos{File: d.file.Name}
	}
	return Pos{File: d.file.Name, Line: tk.Position.Line, Col: tk.Position.Column}
}

// at is where n starts: for a block mapping its first key, not its first
// colon.
func (d *decoder) at(n ast.Node) Pos {
	if m, ok := n.(*ast.MappingNode); ok && !m.IsFlowStyle && len(m.Values) > 0 {
		return d.at(m.Values[0].Key)
	}
	return d.tokenPos(n.GetToken())
}

type anchorCollector map[string]ast.Node

func (a anchorCollector) Visit(n ast.Node) ast.Visitor {
	if an, ok := n.(*ast.AnchorNode); ok && an.Name != nil {
		a[an.Name.GetToken().Value] = an.Value
	}
	return a
}

// resolve looks through anchors, aliases and tags to the value. str is set
// when the value was tagged !!str.
func (d *decoder) resolve(n ast.Node, path string) (v ast.Node, str bool) {
	for range 64 {
		switch t := n.(type) {
		case *ast.AnchorNode:
			n = t.Value
		case *ast.AliasNode:
			name := ""
			if t.Value != nil {
				name = t.Value.GetToken().Value
			}
			target, ok := d.anchors[name]
			if !ok {
				d.problem(d.at(t), path, "alias *%s refers to no anchor &%s", name, name)
				return nil, false
			}
			n = target
		case *ast.TagNode:
			if t.Start != nil && t.Start.Value == "!!str" {
				str = true
			}
			n = t.Value
		case *ast.MappingKeyNode:
			n = t.Value
		default:
			return n, str
		}
		if n == nil {
			return nil, str
		}
	}
	d.problem(Pos{File: d.file.Name}, path, "aliases nest too deep")
	return nil, false
}

var (
	timeType     = reflect.TypeFor[time.Time]()
	durationType = reflect.TypeFor[Duration]()
)

// decode reads n into v, a value of one of the types of this package, and
// records where path is written.
func (d *decoder) decode(n ast.Node, path string, v reflect.Value) {
	if n == nil {
		d.problem(Pos{File: d.file.Name}, path, "value is missing")
		return
	}
	pos := d.at(n)
	d.file.pos[path] = pos
	n, str := d.resolve(n, path)
	if n == nil {
		return
	}
	if v.Kind() == reflect.Pointer {
		if isNull(n) {
			d.problem(pos, path, "value is empty; write one, or remove %s to leave it unset", leaf(path))
			return
		}
		e := reflect.New(v.Type().Elem())
		v.Set(e)
		v = e.Elem()
	}
	switch {
	case v.Type() == timeType:
		s, ok := d.str(n, str, pos, path, "an RFC 3339 time such as 2026-11-01T00:00:00Z")
		if !ok {
			return
		}
		t, err := parseTime(s)
		if err != nil {
			d.problem(pos, path, "%q is not an RFC 3339 time: write it like 2026-11-01T00:00:00Z (or with an offset, +02:00)", s)
			return
		}
		v.Set(reflect.ValueOf(t))
	case v.Type() == durationType:
		s, ok := d.str(n, str, pos, path, `a duration such as "7d", "36h" or "90m"`)
		if !ok {
			return
		}
		dur, err := ParseDuration(s)
		if err != nil {
			d.problem(pos, path, "%v", err)
			return
		}
		v.Set(reflect.ValueOf(dur))
	case v.Kind() == reflect.String:
		if s, ok := d.str(n, str, pos, path, "a string"); ok {
			v.SetString(s)
		}
	case v.Kind() == reflect.Float64:
		x, ok := number(n)
		if !ok {
			d.wrongType(n, pos, path, "a number")
			return
		}
		if math.IsInf(x, 0) || math.IsNaN(x) {
			d.problem(pos, path, "want a finite number, got %s", n.GetToken().Value)
			return
		}
		v.SetFloat(x)
	case v.Kind() == reflect.Int64:
		x, ok := number(n)
		if !ok || x != math.Trunc(x) || math.Abs(x) > 1<<53 {
			d.wrongType(n, pos, path, "a whole number")
			return
		}
		v.SetInt(int64(x))
	case v.Kind() == reflect.Bool:
		b, ok := n.(*ast.BoolNode)
		if !ok {
			d.wrongType(n, pos, path, "true or false")
			return
		}
		v.SetBool(b.Value)
	case v.Kind() == reflect.Slice:
		seq, ok := n.(*ast.SequenceNode)
		if !ok {
			d.wrongType(n, pos, path, "a list")
			return
		}
		s := reflect.MakeSlice(v.Type(), len(seq.Values), len(seq.Values))
		for i, e := range seq.Values {
			d.decode(e, fmt.Sprintf("%s[%d]", path, i), s.Index(i))
		}
		v.Set(s)
	case v.Kind() == reflect.Struct:
		d.decodeStruct(n, pos, path, v)
	default:
		d.problem(pos, path, "cannot read a %s (a bug in package config)", v.Type())
	}
}

// str returns n as a string. A number or boolean is refused rather than
// turned into a string, as the JSON Schema does: key: 404 needs quotes.
func (d *decoder) str(n ast.Node, tagged bool, pos Pos, path, want string) (string, bool) {
	switch t := n.(type) {
	case *ast.StringNode:
		return t.Value, true
	case *ast.LiteralNode:
		if t.Value != nil {
			return t.Value.Value, true
		}
		return "", true
	}
	if _, ok := n.(ast.ScalarNode); ok && !isNull(n) {
		if raw := n.GetToken().Value; tagged {
			return raw, true
		} else if want == "a string" {
			d.problem(pos, path, "want a string, got %s; put it in quotes: %q", describe(n), raw)
			return "", false
		}
	}
	d.wrongType(n, pos, path, want)
	return "", false
}

func (d *decoder) wrongType(n ast.Node, pos Pos, path, want string) {
	d.problem(pos, path, "want %s, got %s", want, describe(n))
}

func describe(n ast.Node) string {
	switch n.(type) {
	case *ast.MappingNode:
		return "a mapping"
	case *ast.SequenceNode:
		return "a list"
	case *ast.NullNode:
		return "nothing (an empty value)"
	case *ast.BoolNode:
		return "boolean " + n.GetToken().Value
	case *ast.IntegerNode, *ast.FloatNode, *ast.InfinityNode, *ast.NanNode:
		return "number " + n.GetToken().Value
	case *ast.StringNode, *ast.LiteralNode:
		return strconv.Quote(fmt.Sprint(n.(ast.ScalarNode).GetValue()))
	}
	return n.Type().YAMLName()
}

func isNull(n ast.Node) bool {
	_, ok := n.(*ast.NullNode)
	return ok
}

// floatRE is a YAML 1.2 float that the parser leaves as a string (1e-9).
var floatRE = regexp.MustCompile(`^[-+]?(\.[0-9]+|[0-9]+(\.[0-9]*)?)([eE][-+]?[0-9]+)?$`)

// number returns n as a number: a YAML integer or float, or a plain
// (unquoted) scalar in float syntax.
func number(n ast.Node) (float64, bool) {
	switch t := n.(type) {
	case *ast.IntegerNode:
		switch v := t.Value.(type) {
		case int64:
			return float64(v), true
		case uint64:
			return float64(v), true
		}
	case *ast.FloatNode:
		return t.Value, true
	case *ast.InfinityNode:
		return t.Value, true
	case *ast.NanNode:
		return math.NaN(), true
	case *ast.StringNode:
		if t.Token != nil && t.Token.Type == token.StringType && floatRE.MatchString(t.Value) {
			x, err := strconv.ParseFloat(t.Value, 64)
			return x, err == nil
		}
	}
	return 0, false
}

// timePattern is an RFC 3339 date-time with seconds, as in the schema.
var timeRE = regexp.MustCompile(`^[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}(\.[0-9]+)?(Z|[+-][0-9]{2}:[0-9]{2})$`)

// parseTime reads an RFC 3339 time and returns it in UTC, the zone every
// stored time is in.
func parseTime(s string) (time.Time, error) {
	if !timeRE.MatchString(s) {
		return time.Time{}, fmt.Errorf("not RFC 3339")
	}
	t, err := time.Parse(time.RFC3339Nano, s)
	if err != nil {
		return time.Time{}, err
	}
	if t = t.UTC(); t.Year() < 1 || t.Year() > 9999 {
		return time.Time{}, fmt.Errorf("year out of range")
	}
	return t, nil
}

// field is a struct field known by its JSON name.
type field struct {
	name  string
	index int
}

func fieldsOf(t reflect.Type) []field {
	var fs []field
	for i := range t.NumField() {
		name, _, _ := strings.Cut(t.Field(i).Tag.Get("json"), ",")
		if name != "" && name != "-" {
			fs = append(fs, field{name, i})
		}
	}
	return fs
}

func (d *decoder) decodeStruct(n ast.Node, pos Pos, path string, v reflect.Value) {
	m, ok := n.(*ast.MappingNode)
	if !ok {
		d.wrongType(n, pos, path, "a mapping")
		return
	}
	fields := fieldsOf(v.Type())
	seen := map[string]Pos{}
	explicit, merged := d.entries(m, path)
	for _, e := range append(explicit, merged...) {
		key, ok := d.key(e.Key)
		kpos := d.at(e.Key)
		if !ok {
			d.problem(kpos, path, "a key that is not a string: keys are field names such as %q", fields[0].name)
			continue
		}
		kpath := join(path, key)
		if first, dup := seen[key]; dup {
			if slices.Contains(merged, e) {
				continue // a merged key gives way to the one written here
			}
			d.problem(kpos, kpath, "%s is given twice (first on line %d); keep one", key, first.Line)
			continue
		}
		seen[key] = kpos
		i := slices.IndexFunc(fields, func(f field) bool { return f.name == key })
		if i < 0 {
			d.problem(kpos, kpath, "unknown field %q%s", key, suggest(key, fields))
			continue
		}
		d.decode(e.Value, kpath, v.Field(fields[i].index))
	}
}

// entries returns the key/value pairs of m, and those brought in by YAML
// merge keys (<<: *anchor) which explicit ones override. Merges are
// followed at most maxMergeDepth deep and bring in at most maxMerged
// pairs, so that a self-referring or exponential merge ends.
func (d *decoder) entries(m *ast.MappingNode, path string) (explicit, merged []*ast.MappingValueNode) {
	budget := maxMerged
	return d.entriesDepth(m, path, 0, &budget)
}

const (
	maxMergeDepth = 8
	maxMerged     = 1000
)

func (d *decoder) entriesDepth(m *ast.MappingNode, path string, depth int, budget *int) (explicit, merged []*ast.MappingValueNode) {
	for _, e := range m.Values {
		if _, ok := e.Key.(*ast.MergeKeyNode); !ok {
			explicit = append(explicit, e)
			continue
		}
		if depth >= maxMergeDepth || *budget <= 0 {
			d.problem(d.at(e.Key), path, "<< merges nest too deep or bring in too much: write the fields out")
			continue
		}
		src, _ := d.resolve(e.Value, path)
		var maps []ast.Node
		if seq, ok := src.(*ast.SequenceNode); ok {
			maps = seq.Values
		} else if src != nil {
			maps = []ast.Node{src}
		}
		for _, s := range maps {
			s, _ = d.resolve(s, path)
			sm, ok := s.(*ast.MappingNode)
			if !ok {
				d.problem(d.at(e.Value), path, "<< merges a mapping or a list of mappings, not %s", describeOrNothing(s))
				break
			}
			sx, sm2 := d.entriesDepth(sm, path, depth+1, budget)
			*budget -= len(sx) + len(sm2)
			if *budget < 0 {
				break
			}
			merged = append(merged, append(sx, sm2...)...)
		}
	}
	return explicit, merged
}

func describeOrNothing(n ast.Node) string {
	if n == nil {
		return "nothing"
	}
	return describe(n)
}

func (d *decoder) key(n ast.MapKeyNode) (string, bool) {
	k, _ := d.resolve(n, "")
	if s, ok := k.(*ast.StringNode); ok {
		return s.Value, true
	}
	return "", false
}

func join(path, key string) string {
	if path == "" {
		return key
	}
	return path + "." + key
}

func leaf(path string) string {
	if i := strings.LastIndexByte(path, '.'); i >= 0 {
		return path[i+1:]
	}
	return path
}

// suggest names the closest known field, and lists them all.
func suggest(key string, fields []field) string {
	names := make([]string, len(fields))
	best, bestDist := "", 3
	for i, f := range fields {
		names[i] = f.name
		if dist := editDistance(key, f.name); dist < bestDist {
			best, bestDist = f.name, dist
		}
	}
	s := "; the fields here are " + strings.Join(names, ", ")
	if best != "" {
		return fmt.Sprintf(" (did you mean %q?)", best) + s
	}
	return s
}

func editDistance(a, b string) int {
	prev := make([]int, len(b)+1)
	cur := make([]int, len(b)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(a); i++ {
		cur[0] = i
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
		}
		prev, cur = cur, prev
	}
	return prev[len(b)]
}

// defaults fills in what the file left out. A field written with a bad
// value is not defaulted: Validate reports it.
func (d *decoder) defaults() {
	f := d.file
	for i := range f.Metrics {
		m, p := &f.Metrics[i], fmt.Sprintf("metrics[%d]", i)
		if !f.has(p + ".direction") {
			m.Direction = Increase
		}
		if !f.has(p + ".aggregate") {
			switch m.Kind {
			case stats.Mean:
				m.Aggregate = Sum
			case stats.Count:
				m.Aggregate = Count
			case stats.Quantile:
				if m.Level == LevelUnit {
					m.Aggregate = Sum
				}
			}
		}
		if m.Kind == stats.Quantile && !f.has(p+".level") {
			m.Level = LevelEvent
		}
		for name, part := range map[string]*Part{"numerator": m.Numerator, "denominator": m.Denominator} {
			if part != nil && !f.has(p+"."+name+".aggregate") {
				part.Aggregate = Sum
			}
		}
	}
	for i := range f.Experiments {
		e, p := &f.Experiments[i], fmt.Sprintf("experiments[%d]", i)
		if !f.has(p + ".alpha") {
			e.Alpha = DefaultAlpha
		}
		if !f.has(p + ".power") {
			e.Power = DefaultPower
		}
		if !f.has(p + ".sequential") {
			e.Sequential = DefaultSequential
		}
		if !f.has(p + ".tuning") {
			e.Tuning = DefaultTuning
		}
		if e.Prior != nil && !f.has(p+".prior.variance") {
			e.Prior.Variance = 1 // GrowthBook's GaussianPrior default
		}
		if !f.has(p + ".attribution_window") {
			e.AttributionWindow = DefaultAttributionWindow
		}
		// 0 in a Go value (and in definitions stored before min_units
		// existed) means the default; in a file it is a mistake.
		if !f.has(p + ".min_units") {
			e.MinUnits = DefaultMinUnits
		} else if e.MinUnits == 0 {
			d.problem(f.Pos(p+".min_units"), p+".min_units", "min_units 0 must be at least 2: the fewest units each variant needs before the experiment gets a label; 100 by default")
		}
		// No weight at all is an even split; some weights but not all is
		// left for Validate to point at.
		var missing []int
		for j := range e.Variants {
			if !f.has(fmt.Sprintf("%s.variants[%d].weight", p, j)) {
				missing = append(missing, j)
			}
		}
		switch len(missing) {
		case 0:
		case len(e.Variants):
			for j := range e.Variants {
				e.Variants[j].Weight = 1 / float64(len(e.Variants))
			}
		default:
			for _, j := range missing {
				vp := fmt.Sprintf("%s.variants[%d]", p, j)
				d.problem(f.Pos(vp), vp+".weight", "weight is missing: give every variant a weight, or none for an even split")
			}
		}
	}
}
