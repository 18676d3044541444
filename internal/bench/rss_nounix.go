//go:build !unix

package bench

// maxRSS is unknown on this platform.
func maxRSS() int64 { return 0 }

func rusageMaxRSS() int64 { return 0 }
