package repeater

import (
	"testing"

	"go.uber.org/goleak"
)

// TestMain checks that every Repeater stops all its goroutines on Close.
func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }
