package pool

import (
	"context"
	"errors"
	"sync/atomic"
	"testing"
	"testing/synctest"
)

// groupsOfShards returns, for each shard of p, one int group mapped to it.
func groupsOfShards(t *testing.T, p *Pool[int], shards int) []int {
	t.Helper()
	out := make([]int, shards)
	found := 0
	seen := make([]bool, shards)
	for g := 1; found < shards && g < 1_000_000; g++ {
		if s := p.ShardOf(g); !seen[s] {
			seen[s], out[s] = true, g
			found++
		}
	}
	if found < shards {
		t.Fatalf("found groups for %d of %d shards", found, shards)
	}
	return out
}

// TestFullGroupTakesNoPoolRoom: with a pool-wide bound kept exactly (under
// 32 × shards, no spare credit per shard), a submission refused (or
// waiting) because its group is full takes no pool-wide room: a group of
// another shard is accepted while the pool holds 2 tasks of 3.
func TestFullGroupTakesNoPoolRoom(t *testing.T) {
	for _, blocking := range []bool{false, true} {
		name := "TrySubmit"
		if blocking {
			name = "Submit"
		}
		t.Run(name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				p := mustNew[int](t, WithShards(2), WithMaxQueued(3), WithGroupQueueSize(1), withCPUReader(blockedCPU))
				if p.c.creditChunk != 1 || p.c.creditKeep != 0 {
					t.Fatalf("chunk %d keep %d: the bound is not kept exactly", p.c.creditChunk, p.c.creditKeep)
				}
				gs := groupsOfShards(t, p, 2)
				full, other := gs[1], gs[0]
				gate := make(chan struct{})
				block := func(context.Context) error { <-gate; return nil }
				// Group full: one task running, one waiting (the bound of 1).
				for range 2 {
					if err := p.Submit(context.Background(), full, block); err != nil {
						t.Fatal(err)
					}
					synctest.Wait()
				}
				if q := p.Snapshot().Queued; q != 2 {
					t.Fatalf("queued %d, want 2", q)
				}
				// A refused (or waiting) submission to the full group.
				waitCtx, cancelWait := context.WithCancel(context.Background())
				waitDone := make(chan error, 1)
				if blocking {
					go func() { waitDone <- p.Submit(waitCtx, full, block) }()
					synctest.Wait()
				} else if err := p.TrySubmit(full, block); !errors.Is(err, ErrQueueFull) {
					t.Fatalf("TrySubmit to the full group: %v, want ErrQueueFull", err)
				}
				// Another group, of the other shard: the pool holds 2 of 3.
				var ran atomic.Bool
				err := p.TrySubmit(other, func(context.Context) error { ran.Store(true); return nil })
				room, credit := p.c.room.Load(), func() int32 {
					s := &p.c.shards[1]
					s.mu.Lock()
					defer s.mu.Unlock()
					return s.credit
				}()
				cancelWait()
				if blocking {
					if err := <-waitDone; !errors.Is(err, ErrQueueFull) || !errors.Is(err, context.Canceled) {
						t.Errorf("waiting Submit: %v", err)
					}
				}
				close(gate)
				closePool(t, p)
				if err != nil {
					t.Fatalf("TrySubmit to another group while the pool holds 2 of 3 tasks: %v (pool room %d, full group's shard keeps credit %d)", err, room, credit)
				}
				if !ran.Load() {
					t.Fatal("the other group's task did not run")
				}
			})
		})
	}
}

// TestOverdrawRollbackWakesWaiters: a submitter of one shard overdraws
// the pool-wide room (the pool is full) and, before it gives the room
// back, a task of another shard returns its room and a blocking Submit
// finds none and waits. The rollback must wake that waiter: the room is
// free, and nothing else may ever return room to it.
func TestOverdrawRollbackWakesWaiters(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		var hook func()
		p := mustNew[int](t, WithShards(3), WithMaxQueued(2), withCPUReader(blockedCPU),
			optionFunc(func(c *config) error {
				c.overdrawn = func() {
					if hook != nil {
						h := hook
						hook = nil
						h()
					}
				}
				return nil
			}))
		gs := groupsOfShards(t, p, 3)
		gateA, gateB := make(chan struct{}), make(chan struct{})
		for _, g := range []struct {
			group int
			gate  chan struct{}
		}{{gs[0], gateA}, {gs[2], gateB}} {
			if err := p.Submit(context.Background(), g.group, func(context.Context) error { <-g.gate; return nil }); err != nil {
				t.Fatal(err)
			}
		}
		synctest.Wait()
		if r := p.c.room.Load(); r != 0 {
			t.Fatalf("room %d, want 0: the pool holds its bound", r)
		}
		waited := make(chan error, 1)
		hook = func() {
			// Between the overdraw and its rollback: shard 0's task
			// ends and returns its room (hidden by the overdraw), and a
			// blocking Submit on shard 0 finds none and waits.
			close(gateA)
			synctest.Wait()
			go func() { waited <- p.Submit(context.Background(), gs[0], func(context.Context) error { return nil }) }()
			synctest.Wait()
		}
		if err := p.TrySubmit(gs[1], func(context.Context) error { return nil }); !errors.Is(err, ErrQueueFull) {
			t.Fatalf("the overdrawing TrySubmit: %v, want ErrQueueFull", err)
		}
		synctest.Wait()
		select {
		case err := <-waited:
			if err != nil {
				t.Fatalf("the waiting Submit: %v", err)
			}
		default:
			close(gateB)
			<-waited
			closePool(t, p)
			t.Fatal("the blocking Submit still waits with room free in the pool")
		}
		close(gateB)
		closePool(t, p)
	})
}

// TestDoneCtxAndCloseBeforeBreaker: while the breaker refuses, a Submit
// with a done ctx returns the ctx's error (not a memory-pressure refusal,
// which it would count), and a Submit after Close returns ErrClosed.
func TestDoneCtxAndCloseBeforeBreaker(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		p := underPressure(t)
		ctx, cancel := context.WithCancel(context.Background())
		cancel()
		err := p.Submit(ctx, 1, func(context.Context) error { return nil })
		errGo := p.Go(ctx, func(context.Context) error { return nil })
		closePool(t, p)
		// After Close every submission matches ErrClosed (SEMANTICS §4.1).
		errClosed := p.Submit(context.Background(), 1, func(context.Context) error { return nil })
		if !errors.Is(errClosed, ErrClosed) {
			t.Errorf("Submit after Close under memory pressure: %v, want ErrClosed", errClosed)
		}
		if !errors.Is(err, context.Canceled) || !errors.Is(errGo, context.Canceled) {
			t.Fatalf("Submit with a canceled ctx under memory pressure: %v; Go: %v; want context.Canceled (rejections counted %+v)", err, errGo, p.Snapshot().Rejected)
		}
	})
}
