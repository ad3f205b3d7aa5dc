//go:build !unix

package pool

import "time"

// processCPU reports false where the process's CPU time is not read: the
// monitor then judges the processors by the scheduler's counts alone (see
// sampleCPU).
func processCPU() (time.Duration, bool) { return 0, false }
