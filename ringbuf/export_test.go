package ringbuf

// NewAt returns an empty ring whose cursors both start at position start,
// so that tests can run the ring across the wrap-around of its uint64
// positions.
func NewAt[T any](capacity int, start uint64) (*Ring[T], error) {
	r, err := New[T](capacity)
	if err != nil {
		return nil, err
	}
	r.head.Store(start)
	r.tail.Store(start)
	for i := range r.slots {
		// Slot i serves the first position p >= start with p&mask == i.
		p := start + ((uint64(i) - start) & r.mask)
		r.slots[i].seq.Store(p)
	}
	return r, nil
}

// Slots returns a copy of every slot's value, so that tests can check that
// popped items are not retained.
func (r *Ring[T]) Slots() []T {
	out := make([]T, len(r.slots))
	for i := range r.slots {
		out[i] = r.slots[i].val
	}
	return out
}
