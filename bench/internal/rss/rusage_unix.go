//go:build unix

package rss

import (
	"os"
	"syscall"
)

// self returns the process's own rusage.
func self() (*syscall.Rusage, error) {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return nil, err
	}
	return &ru, nil
}

// maxRSS returns getrusage's ru_maxrss (KiB on Linux).
func maxRSS() (int64, error) {
	ru, err := self()
	if err != nil {
		return 0, err
	}
	return int64(ru.Maxrss), nil
}

// MinorFaults returns the page faults this process has taken so far that
// needed no disk read (ru_minflt): about one per 4 KiB page it touched for
// the first time. ok is false where getrusage fails.
func MinorFaults() (n int64, ok bool) {
	ru, err := self()
	if err != nil {
		return 0, false
	}
	return int64(ru.Minflt), true
}

// PeakOf returns the peak resident set size of an exited child process,
// in bytes, from its rusage; 0 where the system does not report it.
func PeakOf(ps *os.ProcessState) int64 {
	if ru, ok := ps.SysUsage().(*syscall.Rusage); ok {
		return FromMaxrss(int64(ru.Maxrss))
	}
	return 0
}
