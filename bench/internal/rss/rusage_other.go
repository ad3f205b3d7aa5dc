//go:build !unix

package rss

import (
	"errors"
	"os"
)

// maxRSS reports an error: the system has no getrusage.
func maxRSS() (int64, error) { return 0, errors.New("no getrusage on this system") }

// MinorFaults reports false: the system has no getrusage.
func MinorFaults() (n int64, ok bool) { return 0, false }

// PeakOf returns 0: the system has no rusage for a child process.
func PeakOf(*os.ProcessState) int64 { return 0 }
