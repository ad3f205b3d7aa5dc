package pool

import "context"

// entry is one accepted task as it waits in its group's queue: 40 bytes on
// 64-bit platforms.
type entry[K comparable] struct {
	task Task
	ctx  context.Context
	enq  int64 // nanoseconds since the pool's epoch, flags in the low bits
	// plain: ctx.Done() was nil at Submit, so ctx has no deadline and can
	// never be canceled; the task gets ctx itself and no deadline check.
	plain bool
}

// cacheLine is the padding unit: x86 fetches lines in adjacent pairs.
const cacheLine = 128
