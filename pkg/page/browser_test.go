package page

import (
	"bytes"
	"context"
	"image/png"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/verdictlabs/verdict/pkg/testkit"
)

// chromium finds Debian's chromium. The browser test fails, rather than
// skips, without it: `make test` installs it (apt-get install -y chromium).
func chromium(t *testing.T) string {
	t.Helper()
	for _, name := range []string{"chromium", "chromium-browser", "google-chrome"} {
		if p, err := exec.LookPath(name); err == nil {
			return p
		}
	}
	t.Fatal("no chromium on PATH: install Debian's chromium (apt-get install -y chromium)")
	return ""
}

func headless(t *testing.T, bin string, args ...string) []byte {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	base := []string{
		"--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
		"--disable-background-networking", "--disable-component-update", "--disable-sync",
		"--disable-dev-shm-usage", "--hide-scrollbars", "--user-data-dir=" + t.TempDir(),
	}
	cmd := exec.CommandContext(ctx, bin, append(base, args...)...)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		t.Fatalf("%s %s: %v\n%s", bin, strings.Join(args, " "), err, stderr.String())
	}
	return stdout.Bytes()
}

// TestBrowser opens the page of a salvaged experiment in headless Chromium:
// the verdict, the salvaged segment and the chart must be in the rendered
// DOM, and the screenshot must be a real image. With -update the screenshot
// becomes docs/readout-page.png.
func TestBrowser(t *testing.T) {
	bin := chromium(t)
	srv := httptest.NewServer(NewHandler(source(t), Options{}))
	defer srv.Close()
	url := srv.URL + "/experiments/dark-mode"

	dom := string(headless(t, bin, "--dump-dom", url))
	for _, want := range []string{
		`id="verdict">SALVAGE</div>`,
		"<strong>platform = android</strong>",
		`<svg xmlns="http://www.w3.org/2000/svg" class="forest"`,
		`class="salvaged"`,
	} {
		if !strings.Contains(dom, want) {
			t.Errorf("rendered DOM lacks %q", want)
		}
	}

	shot := filepath.Join(t.TempDir(), "readout-page.png")
	headless(t, bin, "--window-size=1100,1900", "--screenshot="+shot, url)
	b, err := os.ReadFile(shot)
	if err != nil {
		t.Fatalf("read screenshot: %v", err)
	}
	img, err := png.Decode(bytes.NewReader(b))
	if err != nil {
		t.Fatalf("decode screenshot: %v", err)
	}
	if s := img.Bounds().Size(); s.X != 1100 || s.Y != 1900 {
		t.Errorf("screenshot is %v, want 1100x1900", s)
	}
	if *testkit.Update {
		if err := os.WriteFile(filepath.Join("..", "..", "docs", "readout-page.png"), b, 0o644); err != nil {
			t.Fatal(err)
		}
	}
}
