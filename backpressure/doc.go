// Package backpressure refuses work before the process runs out of memory.
//
// A Breaker watches the memory the Go runtime holds (runtime/metrics,
// never runtime.ReadMemStats), compares it with a budget, and answers Admit
// with nil or an error that errors.Is ErrMemoryPressure or ErrThrottled.
package backpressure
