package snapshot_test

import (
	"sync"
	"testing"

	"github.com/shoal-go/shoal/snapshot"
	"go.uber.org/goleak"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

func TestCellZeroValue(t *testing.T) {
	var c snapshot.Cell[string]
	v, ver := c.Load()
	if v != "" || ver != 0 || c.Version() != 0 {
		t.Fatalf("zero Cell: got (%q, %d), Version %d; want (\"\", 0), 0", v, ver, c.Version())
	}
}

func TestCellWritesIncrementVersion(t *testing.T) {
	var c snapshot.Cell[int]
	if ver := c.Store(10); ver != 1 {
		t.Fatalf("first Store: version %d, want 1", ver)
	}
	if ver, ok := c.CompareAndSwap(1, 11); !ok || ver != 2 {
		t.Fatalf("CAS(1): (%d, %v), want (2, true)", ver, ok)
	}
	if ver, ok := c.CompareAndSwap(1, 99); ok || ver != 2 {
		t.Fatalf("stale CAS(1): (%d, %v), want (2, false)", ver, ok)
	}
	v, ver := c.Update(func(x int) int { return x * 2 })
	if v != 22 || ver != 3 {
		t.Fatalf("Update: (%d, %d), want (22, 3)", v, ver)
	}
	if v, ver := c.Load(); v != 22 || ver != 3 {
		t.Fatalf("Load: (%d, %d), want (22, 3)", v, ver)
	}
	// Storing an equal value still moves the version: a CAS on the old one fails.
	c.Store(22)
	if _, ok := c.CompareAndSwap(3, 0); ok {
		t.Fatal("CAS with version 3 succeeded after a Store of an equal value")
	}
}

// wide is larger than a word, so a torn read would show mismatched fields.
type wide struct{ a, b, c, d uint64 }

func TestCellConcurrentNoTornReadsNoStaleCAS(t *testing.T) {
	const writers, readers = 4, 4
	iters := 20000
	if testing.Short() {
		iters = 2000
	}
	var c snapshot.Cell[wide]
	var wg sync.WaitGroup
	stop := make(chan struct{})
	errs := make(chan string, writers+readers)
	for range readers {
		wg.Go(func() {
			var last uint64
			for {
				select {
				case <-stop:
					return
				default:
				}
				v, ver := c.Load()
				if ver < last {
					errs <- "version went back"
					return
				}
				last = ver
				// Every write is an Update or CAS that increments all fields, so
				// the fields equal the version.
				if v.a != ver || v.b != ver || v.c != ver || v.d != ver {
					errs <- "torn or inconsistent value"
					return
				}
			}
		})
	}
	var ww sync.WaitGroup
	for w := range writers {
		ww.Go(func() {
			for i := range iters {
				if (i+w)%2 == 0 {
					_, ver := c.Update(func(x wide) wide { return wide{x.a + 1, x.b + 1, x.c + 1, x.d + 1} })
					// ver is stale from here on unless nobody wrote; a CAS
					// with ver-1 is always stale.
					if _, ok := c.CompareAndSwap(ver-1, wide{}); ok {
						errs <- "CAS with a stale version succeeded"
						return
					}
					continue
				}
				for {
					v, ver := c.Load()
					if _, ok := c.CompareAndSwap(ver, wide{v.a + 1, v.b + 1, v.c + 1, v.d + 1}); ok {
						break
					}
				}
			}
		})
	}
	ww.Wait()
	close(stop)
	wg.Wait()
	close(errs)
	for e := range errs {
		t.Fatal(e)
	}
	v, ver := c.Load()
	if want := uint64(writers * iters); ver != want || v.a != want {
		t.Fatalf("after %d writes: version %d, value %d", want, ver, v.a)
	}
}

func TestCellLoadDoesNotAllocate(t *testing.T) {
	var c snapshot.Cell[wide]
	c.Store(wide{1, 2, 3, 4})
	var sink uint64
	if n := testing.AllocsPerRun(1000, func() {
		v, ver := c.Load()
		sink += v.a + ver
	}); n != 0 {
		t.Fatalf("Load allocates %v times", n)
	}
	_ = sink
}
