package catest

import (
	"testing"

	"go.uber.org/goleak"
)

// TestMain checks that the helpers stop every goroutine they start (process
// pumps, the stub repeater) by the end of each test binary.
func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }
