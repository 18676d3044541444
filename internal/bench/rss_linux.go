package bench

import (
	"bytes"
	"os"
	"strconv"
)

// maxRSS returns the peak resident set size of this process's own memory
// image (VmHWM), in bytes; getrusage's figure if /proc is not readable.
func maxRSS() int64 {
	status, err := os.ReadFile("/proc/self/status")
	if err != nil {
		return rusageMaxRSS()
	}
	for line := range bytes.Lines(status) {
		rest, ok := bytes.CutPrefix(line, []byte("VmHWM:"))
		if !ok {
			continue
		}
		kb, err := strconv.ParseInt(string(bytes.TrimSuffix(bytes.TrimSpace(rest), []byte(" kB"))), 10, 64)
		if err != nil {
			break
		}
		return kb * 1024
	}
	return rusageMaxRSS()
}
