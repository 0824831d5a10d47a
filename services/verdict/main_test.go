package main

import (
	"os"
	"testing"
)

// TestMain lets the test binary be the ClickHouse that `verdict up` starts
// for the chdb engine: up runs its own executable as `verdict chdb-server`,
// and under go test its own executable is this binary.
func TestMain(m *testing.M) {
	if len(os.Args) > 1 && os.Args[1] == "chdb-server" {
		main()
		return
	}
	os.Exit(m.Run())
}
