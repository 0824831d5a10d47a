package decide

import (
	"os/exec"
	"strings"
	"testing"
)

// TestCoreLinksNoNATS: the pure core (definitions, statistics, rules,
// readouts, and the email and page over them) depends on no NATS package,
// so that it can be used, and tested, without a server: the KV store of
// definitions is pkg/configstore, the embedded server pkg/stream/embedded.
func TestCoreLinksNoNATS(t *testing.T) {
	core := []string{"config", "stats", "decide", "readout", "report", "page"}
	args := []string{"list", "-deps"}
	for _, p := range core {
		args = append(args, "github.com/verdictlabs/verdict/pkg/"+p)
	}
	out, err := exec.Command("go", args...).CombinedOutput()
	if err != nil {
		t.Fatalf("go list: %v\n%s", err, out)
	}
	for _, dep := range strings.Fields(string(out)) {
		if strings.Contains(dep, "nats") || strings.HasSuffix(dep, "verdict/pkg/stream") {
			t.Errorf("the core depends on %s", dep)
		}
	}
}
