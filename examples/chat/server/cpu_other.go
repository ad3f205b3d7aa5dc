//go:build !unix

package server

import "time"

// processCPU returns 0: the system has no getrusage.
func processCPU() time.Duration { return 0 }
