//go:build unix && !linux

package bench

// maxRSS returns getrusage's peak resident set size.
func maxRSS() int64 { return rusageMaxRSS() }
