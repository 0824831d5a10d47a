// Command chdb-server serves ClickHouse 26 from libchdb.so on the native
// protocol until its standard input ends: the child process that
// warehouse.StartLocal runs for the chdb engine when the program that starts
// it is not bin/verdict (the tests build it; `verdict chdb-server` is the
// same). Usage:
//
//	chdb-server -lib .cache/chdb/libchdb.so -path ./data -addr 127.0.0.1:9000 [-log FILE]
package main

import (
	"fmt"
	"os"

	"github.com/verdictlabs/verdict/pkg/warehouse/chdb"
)

func main() {
	if err := chdb.Main(os.Args[1:], os.Stderr); err != nil {
		fmt.Fprintln(os.Stderr, "chdb-server:", err)
		os.Exit(1)
	}
}
