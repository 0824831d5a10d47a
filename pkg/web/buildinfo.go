package web

import (
	"runtime"
	"runtime/debug"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promauto"
)

// Version and Revision, when set at link time, override what the binary's
// embedded build information says:
//
//	go build -ldflags "-X github.com/verdictlabs/verdict/pkg/web.Revision=$(git rev-parse HEAD)"
//
// The Dockerfile does this, because its build context leaves out .git, and
// without .git the Go toolchain stamps no vcs.revision. They are the only
// package variables here: -X can set nothing else.
var (
	Version  string
	Revision string
)

// BuildInfo is what verdict_build_info reports about the running binary.
type BuildInfo struct {
	Version   string // the main module's version, "(devel)" for a local build
	GoVersion string // the Go release that built it
	Revision  string // the VCS revision, "-dirty" appended for a modified tree; "unknown" without one
}

// ReadBuildInfo returns the running binary's build information, from
// runtime/debug.ReadBuildInfo and the link-time Version and Revision.
func ReadBuildInfo() BuildInfo {
	b := BuildInfo{Version: "(devel)", GoVersion: runtime.Version(), Revision: "unknown"}
	if bi, ok := debug.ReadBuildInfo(); ok {
		if bi.Main.Version != "" {
			b.Version = bi.Main.Version
		}
		if bi.GoVersion != "" {
			b.GoVersion = bi.GoVersion
		}
		var modified bool
		for _, s := range bi.Settings {
			switch s.Key {
			case "vcs.revision":
				b.Revision = s.Value
			case "vcs.modified":
				modified = s.Value == "true"
			}
		}
		if modified && b.Revision != "unknown" {
			b.Revision += "-dirty"
		}
	}
	if Version != "" {
		b.Version = Version
	}
	if Revision != "" {
		b.Revision = Revision
	}
	return b
}

// RegisterBuildInfo registers verdict_build_info{version, goversion,
// revision}, always 1: the usual Prometheus info metric, so a dashboard can
// show what runs and a query can join it on instance
// (… * on(instance) group_left(version) verdict_build_info).
func RegisterBuildInfo(reg prometheus.Registerer) {
	b := ReadBuildInfo()
	promauto.With(reg).NewGauge(prometheus.GaugeOpts{
		Name: "verdict_build_info",
		Help: "Always 1; the labels say which build of verdict is running.",
		ConstLabels: prometheus.Labels{
			"version":   b.Version,
			"goversion": b.GoVersion,
			"revision":  b.Revision,
		},
	}).Set(1)
}
