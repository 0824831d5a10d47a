package config

import (
	"fmt"
	"strings"
)

// Pos is where something is written: a file and a 1-based line and column.
// Line is 0 when only the file is known (a definition read back from the KV
// bucket is "verdict_config/experiment.<key>"), File is "" when nothing is.
type Pos struct {
	File string
	Line int
	Col  int
}

// String returns FILE:LINE:COL, FILE, or "" for an unknown position.
func (p Pos) String() string {
	switch {
	case p.Line > 0 && p.File != "":
		return fmt.Sprintf("%s:%d:%d", p.File, p.Line, p.Col)
	case p.Line > 0:
		return fmt.Sprintf("%d:%d", p.Line, p.Col)
	}
	return p.File
}

// Problem is one thing wrong in a set of definitions: where it is, as a
// position and a path (experiments[0].variants[1].weight), and a message
// that says what is wrong and how to fix it.
type Problem struct {
	Pos  Pos
	Path string
	Msg  string
}

// String returns "FILE:LINE:COL: path: message", leaving out what is unknown.
func (p Problem) String() string {
	var b strings.Builder
	for _, s := range []string{p.Pos.String(), p.Path} {
		if s != "" {
			b.WriteString(s)
			b.WriteString(": ")
		}
	}
	b.WriteString(p.Msg)
	return b.String()
}

// Problems is every problem found in a set of definitions. It is the error
// returned by Parse, Validate and Apply when definitions are refused; get it
// back with errors.As.
type Problems []Problem

// Error lists the problems, one a line.
func (ps Problems) Error() string {
	lines := make([]string, len(ps))
	for i, p := range ps {
		lines[i] = p.String()
	}
	return strings.Join(lines, "\n")
}

// maxProblems bounds a listing: past it, one more problem says how many
// were left out. A file that bad is better fixed from the top.
const maxProblems = 200

func (ps Problems) truncate() Problems {
	if len(ps) <= maxProblems {
		return ps
	}
	rest := len(ps) - maxProblems
	ps = ps[:maxProblems:maxProblems]
	return append(ps, Problem{Msg: fmt.Sprintf("... and %d more problems not listed; fix the ones above first", rest)})
}

// under reports whether path is parent or inside it (parent.x, parent[0]).
func under(path, parent string) bool {
	if !strings.HasPrefix(path, parent) {
		return false
	}
	rest := path[len(parent):]
	return rest == "" || parent == "" || rest[0] == '.' || rest[0] == '['
}
