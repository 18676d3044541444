//go:build unix

package bench

import (
	"runtime"
	"syscall"
	"time"
)

// rusageMaxRSS returns getrusage's peak resident set size in bytes.
//
// On Linux this is not the process's own peak: the kernel carries the
// high-water mark of the memory image an exec replaced into the new image's
// ru_maxrss, and Go starts children with vfork semantics (the child runs on
// the parent's memory until it execs), so a child reports at least its
// parent's peak. maxRSS reads the peak of the process's own image instead.
func rusageMaxRSS() int64 {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	if runtime.GOOS == "darwin" || runtime.GOOS == "ios" {
		return int64(ru.Maxrss) // bytes there
	}
	return int64(ru.Maxrss) * 1024 // KiB elsewhere
}

// processCPU returns the user and system CPU time this process has used.
func processCPU() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
