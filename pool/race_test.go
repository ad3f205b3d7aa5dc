//go:build race

package pool

// raceEnabled shrinks the stress sizes under the race detector, which slows
// the pool down about tenfold; the assertions stay the same.
const raceEnabled = true
