package pool

import "context"

// entry is one accepted task (a Pool's Task, or a Batcher's message: P) as
// it waits in its group's queue: 32 bytes on 64-bit platforms for a Task.
type entry[K comparable, P any] struct {
	val P
	ctx context.Context
	// enq is the acceptance time in nanoseconds since the pool's epoch,
	// with flags in the low bits (stampFlags).
	enq int64
}

// plain reports that ctx.Done() was nil at Submit, so ctx has no deadline
// and can never be canceled: the task gets ctx itself and no deadline
// check.
func (e *entry[K, P]) plain() bool { return e.enq&stampPlain != 0 }

// cacheLine is the padding unit: x86 fetches lines in adjacent pairs.
const cacheLine = 128
