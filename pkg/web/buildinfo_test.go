package web

import (
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
)

func TestRegisterBuildInfo(t *testing.T) {
	reg := prometheus.NewRegistry()
	RegisterBuildInfo(reg)
	b := ReadBuildInfo()
	want := `# HELP verdict_build_info Always 1; the labels say which build of verdict is running.
# TYPE verdict_build_info gauge
verdict_build_info{goversion="` + b.GoVersion + `",revision="` + b.Revision + `",version="` + b.Version + `"} 1
`
	if err := testutil.GatherAndCompare(reg, strings.NewReader(want), "verdict_build_info"); err != nil {
		t.Error(err)
	}
	if !strings.HasPrefix(b.GoVersion, "go") {
		t.Errorf("GoVersion = %q, want go1.x", b.GoVersion)
	}
}
