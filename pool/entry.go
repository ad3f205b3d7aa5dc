package pool

import "context"

// entry is one accepted task (a Pool's Task, or a Batcher's message: P) as
// it waits in its group's queue: 40 bytes on 64-bit platforms for a Task.
type entry[K comparable, P any] struct {
	val P
	ctx context.Context
	enq int64 // nanoseconds since the pool's epoch, flags in the low bits
	// plain: ctx.Done() was nil at Submit, so ctx has no deadline and can
	// never be canceled; the task gets ctx itself and no deadline check.
	plain bool
}

// cacheLine is the padding unit: x86 fetches lines in adjacent pairs.
const cacheLine = 128
