package pool

import (
	"context"
	"sync"
	"testing"

	"go.uber.org/goleak"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

func TestSmokeOrder(t *testing.T) {
	p, err := New[int](WithShards(16), WithWorkers(1, 4))
	if err != nil {
		t.Fatal(err)
	}
	const groups, per = 100, 200
	var mu sync.Mutex
	next := make([]int, groups)
	bad := 0
	for i := 0; i < per; i++ {
		for g := 0; g < groups; g++ {
			g, i := g, i
			if err := p.Submit(context.Background(), g, func(context.Context) error {
				mu.Lock()
				if next[g] != i {
					bad++
				}
				next[g] = i + 1
				mu.Unlock()
				return nil
			}); err != nil {
				t.Fatal(err)
			}
		}
	}
	if err := p.Close(context.Background()); err != nil {
		t.Fatal(err)
	}
	if bad != 0 {
		t.Fatalf("%d out of order", bad)
	}
	s := p.Snapshot()
	if s.Submitted != groups*per || s.Completed != groups*per {
		t.Fatalf("submitted %d completed %d", s.Submitted, s.Completed)
	}
}
