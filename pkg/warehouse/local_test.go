package warehouse

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestWriteConfig(t *testing.T) {
	dir := t.TempDir()
	tests := []struct {
		addr, httpAddr string
		want, notWant  []string
	}{
		{"127.0.0.1:19000", "", []string{"<tcp_port>19000</tcp_port>", "<listen_host>127.0.0.1</listen_host>", "<path>" + dir + "/</path>"}, []string{"http_port", "interserver"}},
		{":19000", "127.0.0.1:19001", []string{"<listen_host>127.0.0.1</listen_host>", "<http_port>19001</http_port>"}, nil},
	}
	for _, tt := range tests {
		name, err := writeConfig(dir, tt.addr, tt.httpAddr, nil, "", "", nil)
		if err != nil {
			t.Fatalf("writeConfig(%q, %q, nil): %v", tt.addr, tt.httpAddr, err)
		}
		b, err := os.ReadFile(name)
		if err != nil {
			t.Fatal(err)
		}
		for _, w := range tt.want {
			if !strings.Contains(string(b), w) {
				t.Errorf("config for %q, %q lacks %s:\n%s", tt.addr, tt.httpAddr, w, b)
			}
		}
		for _, w := range tt.notWant {
			if strings.Contains(string(b), w) {
				t.Errorf("config for %q, %q has %s:\n%s", tt.addr, tt.httpAddr, w, b)
			}
		}
		if _, err := os.Stat(filepath.Join(dir, "etc", "users.xml")); err != nil {
			t.Error(err)
		}
	}
	for _, bad := range [][2]string{{"127.0.0.1", ""}, {"127.0.0.1:0", ""}, {"127.0.0.1:x", ""}, {"127.0.0.1:9000", "10.0.0.1:8123"}} {
		if _, err := writeConfig(dir, bad[0], bad[1], nil, "", "", nil); err == nil {
			t.Errorf("writeConfig(%q, %q, nil) = nil error", bad[0], bad[1])
		}
	}
}
