package bench

import (
	"context"
	"errors"
	"sync/atomic"
	"testing"
	"testing/synctest"

	"github.com/shoal-go/shoal/pool"
)

// refuseHalf runs every other task in Submit and refuses the rest.
type refuseHalf struct{ n atomic.Uint64 }

func (r *refuseHalf) submit(ctx context.Context, _ uint64, t pool.Task) error {
	if r.n.Add(1)%2 == 0 {
		return errors.New("refused")
	}
	return t(ctx)
}
func (*refuseHalf) close(context.Context) (int, error) { return 0, nil }

// TestFastRefusedCounted: fast tasks due after the warm-up whose
// Submit failed are counted in FastRefused: the wait figures leave them
// out, and a verdict on those figures must know it.
func TestFastRefusedCounted(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		cfg := smallIsolation(IsolationReference, false)
		cfg.FastTask, cfg.SlowTask = 0, 0
		res, err := runIsolation(t.Context(), cfg, &refuseHalf{})
		if err != nil {
			t.Fatal(err)
		}
		if res.Refused == 0 || res.FastRefused == 0 || res.FastRefused > res.Refused || res.Measured == 0 {
			t.Errorf("refused %d, of them fast and measured-window %d, measured %d; want both counted", res.Refused, res.FastRefused, res.Measured)
		}
	})
}
