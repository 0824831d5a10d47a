package warehouse_test

import (
	"testing"

	"go.uber.org/goleak"
)

// Local starts a goroutine per server and clickhouse-go one per pool: all
// must be gone once the tests have stopped and closed them.
func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }
