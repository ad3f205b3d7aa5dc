package snapshot_test

import (
	"errors"
	"fmt"
	"sync"
	"testing"

	"github.com/shoal-go/shoal/snapshot"
)

func TestStoreZeroValueAndBasics(t *testing.T) {
	var s snapshot.Store[string, int]
	if v, ver, ok := s.Get("a"); ok || v != 0 || ver != 0 {
		t.Fatalf("Get on empty store: (%d, %d, %v)", v, ver, ok)
	}
	if ver, ok := s.Delete("a"); ok || ver != 0 {
		t.Fatalf("Delete of absent key: (%d, %v), want (0, false)", ver, ok)
	}
	if ver := s.Set("a", 1); ver != 1 {
		t.Fatalf("Set: version %d, want 1", ver)
	}
	if ver, ok := s.CompareAndSwap("b", 0, 2); !ok || ver != 2 {
		t.Fatalf("insert by CAS(0): (%d, %v), want (2, true)", ver, ok)
	}
	if ver, ok := s.CompareAndSwap("b", 0, 3); ok || ver != 2 {
		t.Fatalf("stale CAS(0): (%d, %v), want (2, false)", ver, ok)
	}
	if v, ver, ok := s.Get("b"); !ok || v != 2 || ver != 2 {
		t.Fatalf("Get b: (%d, %d, %v)", v, ver, ok)
	}
	v, ver := s.Update("a", func(old int, ok bool) int { return old + 10 })
	if v != 11 || ver != 3 {
		t.Fatalf("Update a: (%d, %d), want (11, 3)", v, ver)
	}
	dver, ok := s.Delete("a")
	if !ok || dver != 4 {
		t.Fatalf("Delete a: (%d, %v), want (4, true)", dver, ok)
	}
	if _, ver, ok := s.Get("a"); ok || ver != 4 {
		t.Fatalf("Get deleted a: (%d, %v), want version 4, absent", ver, ok)
	}
	if _, ok := s.CompareAndSwap("a", 3, 0); ok {
		t.Fatal("CAS with the pre-deletion version succeeded")
	}
	if s.Len() != 1 || s.Version() != 4 {
		t.Fatalf("Len %d Version %d, want 1 and 4", s.Len(), s.Version())
	}
	ch, next, err := s.Since(1)
	if err != nil || next != 4 {
		t.Fatalf("Since(1): next %d err %v", next, err)
	}
	want := []snapshot.Change[string, int]{{Key: "b", Value: 2, Version: 2}, {Key: "a", Version: 4, Deleted: true}}
	if fmt.Sprint(ch) != fmt.Sprint(want) {
		t.Fatalf("Since(1) = %v, want %v", ch, want)
	}
	ch, _, _ = s.Since(0)
	if len(ch) != 1 || ch[0].Key != "b" {
		t.Fatalf("Since(0) = %v, want only the live key b", ch)
	}
	if ch, next, err := s.Since(4); len(ch) != 0 || next != 4 || err != nil {
		t.Fatalf("Since(current) = %v, %d, %v; want nothing", ch, next, err)
	}
}

func TestStoreHighVersions(t *testing.T) {
	var s snapshot.Store[int, int]
	const base = 1<<64 - 1<<20
	snapshot.SetClock(&s, base)
	for i := range 1000 {
		ver := s.Set(i%10, i)
		if ver != base+uint64(i)+1 {
			t.Fatalf("write %d got version %d", i, ver)
		}
	}
	ch, next, err := s.Since(base + 995)
	if err != nil || next != base+1000 || len(ch) != 5 {
		t.Fatalf("Since near the top: %d changes, next %d, err %v", len(ch), next, err)
	}
}

func TestStoreTooOldAfterPurge(t *testing.T) {
	defer snapshot.SetPurgeMin(4)()
	var s snapshot.Store[int, int]
	// Keys all in one shard, so that shard purges.
	var keys []int
	for k := 0; len(keys) < 12; k++ {
		if snapshot.ShardOf(&s, k) == 0 {
			keys = append(keys, k)
		}
	}
	for _, k := range keys {
		s.Set(k, k)
	}
	mark := s.Version()
	for _, k := range keys[:10] {
		s.Delete(k)
	}
	if _, _, err := s.Since(mark); !errors.Is(err, snapshot.ErrTooOld) {
		t.Fatalf("Since before dropped tombstones: err %v, want ErrTooOld", err)
	}
	ch, next, err := s.Since(0)
	if err != nil || len(ch) != 2 || next != s.Version() {
		t.Fatalf("resync Since(0): %v, %d, %v", ch, next, err)
	}
	// An absent key's version is the purge mark: a CAS with the version Get
	// reports succeeds, one with an older version fails.
	_, ver, ok := s.Get(keys[0])
	if ok || ver <= mark {
		t.Fatalf("Get of a purged key: version %d present %v, want the purge mark (> %d), absent", ver, ok, mark)
	}
	if _, ok := s.CompareAndSwap(keys[0], ver-1, 7); ok {
		t.Fatal("stale CAS on a purged key succeeded")
	}
	if _, ok := s.CompareAndSwap(keys[0], ver, 7); !ok {
		t.Fatal("CAS with the reported version of a purged key failed")
	}
	if v, _, ok := s.Get(keys[0]); !ok || v != 7 {
		t.Fatalf("re-inserted key: %d %v", v, ok)
	}
}

// TestStoreConcurrentFollower runs counters, deleters, readers and a Since
// follower at once, then checks that the follower converged on the store
// and that no reader saw a version go back or a stale CAS succeed.
func TestStoreConcurrentFollower(t *testing.T) {
	defer snapshot.SetPurgeMin(8)()
	const counterKeys, churnKeys = 32, 1024
	iters := 20000
	if testing.Short() {
		iters = 4000
	}
	var s snapshot.Store[int, int]
	errs := make(chan string, 16)
	fail := func(format string, a ...any) {
		select {
		case errs <- fmt.Sprintf(format, a...):
		default:
		}
	}
	var writers sync.WaitGroup
	// Counters: keys [0, counterKeys), each value equals its number of
	// increments, never deleted.
	for w := range 3 {
		writers.Go(func() {
			for i := range iters {
				k := (i*7 + w) % counterKeys
				_, ver := s.Update(k, func(old int, ok bool) int { return old + 1 })
				if _, ok := s.CompareAndSwap(k, ver-1, -1); ok {
					fail("stale CAS on key %d succeeded", k)
				}
			}
		})
	}
	// Churn: keys [1000, 1000+churnKeys) set and deleted, so tombstones are
	// dropped and the follower has to resync now and then.
	writers.Go(func() {
		for i := range iters {
			k := 1000 + i%churnKeys
			if i%3 != 0 {
				s.Delete(k)
			} else {
				s.Set(k, i)
			}
		}
	})
	stop := make(chan struct{})
	var readers sync.WaitGroup
	readers.Go(func() {
		last := make(map[int]uint64)
		for {
			select {
			case <-stop:
				return
			default:
			}
			for k := range counterKeys {
				v, ver, ok := s.Get(k)
				if ver < last[k] {
					fail("key %d: version went back from %d to %d", k, last[k], ver)
				}
				last[k] = ver
				if ok && v < 1 {
					fail("key %d: counter value %d", k, v)
				}
			}
		}
	})
	type state struct {
		v   int
		ver uint64
		del bool
	}
	follower := make(map[int]state)
	var next uint64
	resyncs := 0
	poll := func() {
		ch, n, err := s.Since(next)
		if errors.Is(err, snapshot.ErrTooOld) {
			resyncs++
			clear(follower)
			next = 0
			ch, n, err = s.Since(0)
		}
		if err != nil {
			fail("Since(0): %v", err)
			return
		}
		for _, c := range ch {
			if c.Version <= next && next != 0 {
				fail("Since(%d) returned version %d", next, c.Version)
			}
			if old, ok := follower[c.Key]; ok && c.Version < old.ver {
				fail("key %d: follower saw version %d after %d", c.Key, c.Version, old.ver)
			}
			follower[c.Key] = state{c.Value, c.Version, c.Deleted}
		}
		next = n
	}
	readers.Go(func() {
		for {
			select {
			case <-stop:
				poll()
				return
			default:
				poll()
			}
		}
	})
	writers.Wait()
	close(stop)
	readers.Wait()
	close(errs)
	for e := range errs {
		t.Fatal(e)
	}
	// Converged: every live key with its value and version, deleted keys
	// absent or marked deleted.
	all, _, err := s.Since(0)
	if err != nil {
		t.Fatal(err)
	}
	live := 0
	for _, c := range all {
		f := follower[c.Key]
		if f.del || f.v != c.Value || f.ver != c.Version {
			t.Fatalf("key %d: follower has %+v, store has %+v", c.Key, f, c)
		}
		live++
	}
	for k, f := range follower {
		if !f.del {
			live--
		}
		if _, _, ok := s.Get(k); !ok && !f.del {
			t.Fatalf("key %d: follower holds a key the store deleted", k)
		}
	}
	if live != 0 {
		t.Fatalf("follower and store disagree on the number of live keys (%d)", live)
	}
	total := 0
	for k := range counterKeys {
		v, _, _ := s.Get(k)
		total += v
	}
	if total != 3*iters {
		t.Fatalf("counters sum to %d, want %d", total, 3*iters)
	}
	t.Logf("follower resynced %d times", resyncs)
}

func TestStoreGetDoesNotAllocate(t *testing.T) {
	var s snapshot.Store[string, int]
	for i := range 100 {
		s.Set(fmt.Sprint("room-", i), i)
	}
	for i := range 200 { // promote the read maps
		s.Get(fmt.Sprint("room-", i%100))
	}
	var sink int
	if n := testing.AllocsPerRun(1000, func() {
		v, _, _ := s.Get("room-42")
		sink += v
		v, _, _ = s.Get("absent")
		sink += v
	}); n != 0 {
		t.Fatalf("Get allocates %v times", n)
	}
}
