package snapshot

// SetPurgeMin lowers the tombstone threshold for a test and returns a
// function that restores it.
func SetPurgeMin(n int) (restore func()) {
	old := purgeMin
	purgeMin = n
	return func() { purgeMin = old }
}

// SetClock starts a fresh store's versions at v, to check that nothing
// assumes small versions.
func SetClock[K comparable, V any](s *Store[K, V], v uint64) { s.clock.Store(v) }

// ShardOf reports which shard k falls in.
func ShardOf[K comparable, V any](s *Store[K, V], k K) int {
	sh, _ := s.shard(k)
	for i := range s.shards {
		if &s.shards[i] == sh {
			return i
		}
	}
	return -1
}
