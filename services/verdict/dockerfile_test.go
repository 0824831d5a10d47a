package main

import (
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
)

// TestDockerfile follows the Dockerfile's build stage without Docker (this
// machine has no engine): the module files it copies before `go mod
// download` must be every module go.work uses, or the download fails — as
// it did when services/rules was missing; the workspace must resolve from a
// copy of just those files; and the binaries it builds must be every
// service, each of which builds from the root as the Dockerfile builds it.
func TestDockerfile(t *testing.T) {
	df, err := os.ReadFile(filepath.Join(deployRoot, "Dockerfile"))
	if err != nil {
		t.Fatal(err)
	}
	// The build stage's COPY lines up to the download.
	stage := string(df)
	download := strings.Index(stage, "go mod download")
	if download < 0 {
		t.Fatal("the Dockerfile runs no `go mod download`")
	}
	tmp := t.TempDir()
	copied := map[string]bool{}
	for _, line := range strings.Split(stage[:download], "\n") {
		f := strings.Fields(line)
		if len(f) < 3 || f[0] != "COPY" || strings.HasPrefix(f[1], "--") {
			continue
		}
		dst := f[len(f)-1]
		for _, src := range f[1 : len(f)-1] {
			b, err := os.ReadFile(filepath.Join(deployRoot, src))
			if err != nil {
				t.Fatalf("COPY %s: %v", src, err)
			}
			to := filepath.Join(tmp, dst)
			if strings.HasSuffix(dst, "/") || dst == "./" {
				to = filepath.Join(tmp, dst, filepath.Base(src))
			}
			if err := os.MkdirAll(filepath.Dir(to), 0o755); err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(to, b, 0o644); err != nil {
				t.Fatal(err)
			}
			copied[filepath.Clean(src)] = true
		}
	}
	work, err := os.ReadFile(filepath.Join(deployRoot, "go.work"))
	if err != nil {
		t.Fatal(err)
	}
	for _, m := range regexp.MustCompile(`(?m)^\s+\./(\S+)$`).FindAllStringSubmatch(string(work), -1) {
		if mod := filepath.Join(m[1], "go.mod"); !copied[mod] {
			t.Errorf("go.work uses %s, but the Dockerfile does not copy %s before go mod download", m[1], mod)
		}
	}
	// What the download step resolves: the workspace's modules from the
	// copies alone. The module proxy is allowed, as in the image's build:
	// `go list -m all` reads the go.mod of every module in the graph, test
	// dependencies of dependencies included, which nothing else downloads,
	// so GOPROXY=off passed only where an earlier run had filled the cache.
	cmd := exec.Command("go", "list", "-m", "all")
	cmd.Dir = tmp
	cmd.Env = append(os.Environ(), "GOFLAGS=")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Errorf("go list -m all on the Dockerfile's copies (what go mod download resolves): %v\n%s", err, out)
	}

	// Every service is built, from the root.
	loop := regexp.MustCompile(`for s in ([a-z ]+); do`).FindStringSubmatch(stage)
	if loop == nil {
		t.Fatal("the Dockerfile has no `for s in …; do` build loop")
	}
	built := strings.Fields(loop[1])
	services, _ := filepath.Glob(filepath.Join(deployRoot, "services", "*", "main.go"))
	for _, s := range services {
		name := filepath.Base(filepath.Dir(s))
		if !slices.Contains(built, name) {
			t.Errorf("the Dockerfile does not build services/%s", name)
		}
	}
	for _, s := range built {
		cmd := exec.Command("go", "build", "-o", filepath.Join(t.TempDir(), s), "./services/"+s)
		cmd.Dir = deployRoot
		cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Errorf("go build ./services/%s from the root: %v\n%s", s, err, out)
		}
	}
}
