package chatsim

import (
	"testing"

	"go.uber.org/goleak"
)

// IgnoreCurrent: ants starts a default pool when its package initialises;
// its goroutines exist before any test and are not ours.
func TestMain(m *testing.M) { goleak.VerifyTestMain(m, goleak.IgnoreCurrent()) }
