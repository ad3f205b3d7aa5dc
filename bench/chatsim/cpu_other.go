//go:build !unix

package chatsim

import "time"

// processCPU returns 0: the system does not report the process's CPU time
// through package syscall.
func processCPU() time.Duration { return 0 }
