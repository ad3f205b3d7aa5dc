package snapshot_test

import (
	"strconv"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/shoal-go/shoal/snapshot"
)

func BenchmarkCellLoad(b *testing.B) {
	var c snapshot.Cell[wide]
	c.Store(wide{1, 2, 3, 4})
	b.RunParallel(func(pb *testing.PB) {
		var sink uint64
		for pb.Next() {
			v, ver := c.Load()
			sink += v.a + ver
		}
		_ = sink
	})
}

func BenchmarkCellLoadSerial(b *testing.B) {
	var c snapshot.Cell[wide]
	c.Store(wide{1, 2, 3, 4})
	var sink uint64
	for b.Loop() {
		v, ver := c.Load()
		sink += v.a + ver
	}
	_ = sink
}

func BenchmarkCellUpdate(b *testing.B) {
	var c snapshot.Cell[int]
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			c.Update(func(x int) int { return x + 1 })
		}
	})
}

// kv is the interface the map benchmarks share.
type kv interface {
	get(k string) (int, bool)
	set(k string, v int)
}

type storeKV struct{ s snapshot.Store[string, int] }

func (m *storeKV) get(k string) (int, bool) { v, _, ok := m.s.Get(k); return v, ok }
func (m *storeKV) set(k string, v int)      { m.s.Set(k, v) }

type rwKV struct {
	mu sync.RWMutex
	m  map[string]int
}

func (m *rwKV) get(k string) (int, bool) {
	m.mu.RLock()
	v, ok := m.m[k]
	m.mu.RUnlock()
	return v, ok
}
func (m *rwKV) set(k string, v int) { m.mu.Lock(); m.m[k] = v; m.mu.Unlock() }

type syncKV struct{ m sync.Map }

func (m *syncKV) get(k string) (int, bool) {
	v, ok := m.m.Load(k)
	if !ok {
		return 0, false
	}
	return v.(int), true
}
func (m *syncKV) set(k string, v int) { m.m.Store(k, v) }

const benchKeys = 1 << 12

var keyNames = func() []string {
	ks := make([]string, benchKeys)
	for i := range ks {
		ks[i] = "room-" + strconv.Itoa(i)
	}
	return ks
}()

// BenchmarkMapMix compares Store with an RWMutex map and sync.Map on 4096
// string keys, at 100 %, 90 % and 50 % reads, with GOMAXPROCS goroutines.
func BenchmarkMapMix(b *testing.B) {
	impls := []struct {
		name string
		mk   func() kv
	}{
		{"Store", func() kv { return &storeKV{} }},
		{"RWMutexMap", func() kv { return &rwKV{m: make(map[string]int)} }},
		{"SyncMap", func() kv { return &syncKV{} }},
	}
	for _, reads := range []int{100, 90, 50} {
		for _, im := range impls {
			b.Run("reads="+strconv.Itoa(reads)+"%/"+im.name, func(b *testing.B) {
				m := im.mk()
				for i, k := range keyNames {
					m.set(k, i)
				}
				for _, k := range keyNames { // let Store and sync.Map promote their read maps
					m.get(k)
					m.get(k)
				}
				var seq atomic.Uint64
				b.ResetTimer()
				b.RunParallel(func(pb *testing.PB) {
					i := seq.Add(1) * 7919
					var sink int
					for pb.Next() {
						i++
						k := keyNames[i%benchKeys]
						if int(i*2654435761%100) < reads {
							v, _ := m.get(k)
							sink += v
						} else {
							m.set(k, int(i))
						}
					}
					_ = sink
				})
			})
		}
	}
}
