package main

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// readmeBlocks returns the ```sh blocks of the README's section titled
// heading, in order.
func readmeBlocks(t *testing.T, heading string) []string {
	t.Helper()
	b, err := os.ReadFile("../../README.md")
	if err != nil {
		t.Fatal(err)
	}
	doc := string(b)
	i := strings.Index(doc, "\n"+heading+"\n")
	if i < 0 {
		t.Fatalf("README has no section %q", heading)
	}
	section := doc[i+len(heading)+2:]
	if j := strings.Index(section, "\n## "); j >= 0 {
		section = section[:j]
	}
	var blocks []string
	for {
		a := strings.Index(section, "```sh\n")
		if a < 0 {
			return blocks
		}
		section = section[a+len("```sh\n"):]
		z := strings.Index(section, "```")
		blocks = append(blocks, section[:z])
		section = section[z+3:]
	}
}

// chdbLib finds the libchdb.so that make test-deps unpacks under .cache.
func chdbLib(t *testing.T) string {
	t.Helper()
	if v := os.Getenv("VERDICT_CHDB_LIB"); v != "" {
		return v
	}
	lib, err := filepath.Abs("../../.cache/chdb/libchdb.so")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(lib); err != nil {
		t.Fatalf("no libchdb.so (make test-deps unpacks it): %v", err)
	}
	return lib
}

// TestWalkthrough follows the README's "Your first experiment" as a new
// user would, in a fresh directory with a freshly built bin/verdict: it
// starts the stack with the first block's settings, runs every other block
// with bash as written (only the address of the HTTP endpoint is this
// test's own), and waits for the persevere the README promises, and its
// email.
func TestWalkthrough(t *testing.T) {
	blocks := readmeBlocks(t, "## Your first experiment")
	if len(blocks) != 5 {
		t.Fatalf("%d sh blocks in the walkthrough, want 5 (up, define, curl, publish, readout)", len(blocks))
	}
	dir := t.TempDir()
	if out, err := exec.Command("go", "build", "-o", filepath.Join(dir, "bin", "verdict"), ".").CombinedOutput(); err != nil {
		t.Fatalf("build bin/verdict: %v\n%s", err, out)
	}
	httpAddr := deployFreeAddr(t)
	env := append(os.Environ(),
		"VERDICT_NATS_URL=nats://"+deployFreeAddr(t),
		"VERDICT_CLICKHOUSE_ADDR="+deployFreeAddr(t),
		"VERDICT_HTTP_ADDR="+httpAddr,
		"VERDICT_CHDB_LIB="+chdbLib(t),
	)

	// Block 1: make build (done above), then up with the settings it shows.
	upLine := strings.TrimSpace(strings.Split(strings.TrimSpace(blocks[0]), "\n")[1])
	fields := strings.Fields(upLine)
	if len(fields) != 4 || fields[2] != "bin/verdict" || fields[3] != "up" {
		t.Fatalf("the walkthrough starts the stack with %q, want SETTINGS... bin/verdict up", upLine)
	}
	ctx, cancel := context.WithCancel(context.Background())
	up := exec.CommandContext(ctx, filepath.Join(dir, "bin", "verdict"), "up")
	up.Dir, up.Env = dir, append(append([]string{}, env...), fields[0], fields[1])
	var upLog deploySyncBuffer
	up.Stdout, up.Stderr = &upLog, &upLog
	up.Cancel = func() error { return up.Process.Signal(os.Interrupt) }
	if err := up.Start(); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- up.Wait() }()
	t.Cleanup(func() {
		cancel()
		select {
		case <-done:
		case <-time.After(time.Minute):
			t.Error("verdict up did not stop within a minute")
		}
		if t.Failed() {
			t.Logf("verdict up's log:\n%s", upLog.String())
		}
	})
	readyCtx, cancelReady := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancelReady()
	deployWaitReady(t, readyCtx, "http://"+httpAddr+"/readyz", done)

	// The rest, as written: one bash, so that $now carries from the curl
	// block to the awk one, as in the user's terminal.
	sh := func(script string) string {
		t.Helper()
		cmd := exec.Command("bash", "-euo", "pipefail", "-c", strings.ReplaceAll(script, "127.0.0.1:8080", httpAddr))
		cmd.Dir, cmd.Env = dir, env
		out, err := cmd.CombinedOutput()
		if err != nil {
			t.Fatalf("%s\n: %v\n%s", script, err, out)
		}
		return string(out)
	}
	began := time.Now()
	out := sh(blocks[1] + blocks[2] + blocks[3])
	for _, want := range []string{"created   experiment.short-form", `{"success":true}`, "published 6"} {
		if !strings.Contains(out, want) {
			t.Errorf("the walkthrough's output lacks %q:\n%s", want, out)
		}
	}
	var first time.Duration
	for {
		cmd := exec.Command("bash", "-c", strings.Split(blocks[4], "\n")[0])
		cmd.Dir, cmd.Env = dir, env
		b, _ := cmd.CombinedOutput()
		got := string(b)
		if first == 0 && !strings.Contains(got, "404") {
			first = time.Since(began)
		}
		if strings.Contains(got, "PERSEVERE") && !strings.Contains(got, "Candidate") {
			t.Logf("a readout %v after the events were sent, decided after %v:\n%s", first.Round(time.Second), time.Since(began).Round(time.Second), got)
			if !strings.Contains(got, "raised signup by") {
				t.Errorf("the readout does not say what the README says:\n%s", got)
			}
			break
		}
		if time.Since(began) > 4*time.Minute {
			t.Fatalf("no persevere 4 minutes after the events were sent; the last readout:\n%s", got)
		}
		time.Sleep(2 * time.Second)
	}
	if out := sh(strings.Split(blocks[4], "\n")[1]); !strings.Contains(out, `"label": "persevere"`) && !strings.Contains(out, `"label":"persevere"`) {
		t.Errorf("readout --json:\n%.2000s", out)
	}
	deadline := time.Now().Add(time.Minute)
	for {
		emails, _ := filepath.Glob(filepath.Join(dir, "var", "outbox", "*.eml"))
		if len(emails) > 0 {
			b, err := os.ReadFile(emails[0])
			if err != nil || !strings.Contains(string(b), "you@example.com") {
				t.Errorf("the email %s is not to you@example.com (%v)", emails[0], err)
			}
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("no email in ./var/outbox a minute after the decision")
		}
		time.Sleep(time.Second)
	}
}
