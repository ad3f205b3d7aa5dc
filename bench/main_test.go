package bench

import (
	"testing"
	"time"

	"github.com/panjf2000/ants/v2"
	"go.uber.org/goleak"
)

func TestMain(m *testing.M) {
	// ants starts a default pool, with two goroutines, when it is imported;
	// release it so that goleak sees only what the tests start.
	_ = ants.ReleaseTimeout(time.Second)
	goleak.VerifyTestMain(m)
}
