//go:build !unix

package bench

import "time"

// maxRSS is unknown on this platform.
func maxRSS() int64 { return 0 }

func rusageMaxRSS() int64 { return 0 }

// processCPU is unknown on this platform.
func processCPU() time.Duration { return 0 }
