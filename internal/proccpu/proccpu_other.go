//go:build !unix

package proccpu

import "time"

// Read reports false: the system does not report the process's CPU time.
func Read() (time.Duration, bool) { return 0, false }
