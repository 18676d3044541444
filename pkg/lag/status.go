package lag

import (
	"encoding/json"
	"fmt"
	"strings"
	"time"
)

// Status is a partition's status over the window (see the package doc for
// the rules).
type Status int

// The statuses. StatusUnknown is the zero value: the partition has not been
// watched for a whole window yet.
const (
	StatusUnknown Status = iota
	StatusOK
	StatusWarn
	StatusStall
	StatusStop
)

// Statuses are the known statuses, in the order of the gauge's label values.
var Statuses = []Status{StatusOK, StatusWarn, StatusStall, StatusStop}

// String is the status as `ordo lag` prints it: OK, WARN, STALL, STOP, or
// "-" when unknown.
func (s Status) String() string {
	switch s {
	case StatusOK:
		return "OK"
	case StatusWarn:
		return "WARN"
	case StatusStall:
		return "STALL"
	case StatusStop:
		return "STOP"
	case StatusUnknown:
		return "-"
	}
	return fmt.Sprintf("Status(%d)", int(s))
}

// Label is the status's value of the gauge's status label: ok, warn, stall,
// stop ("" when unknown).
func (s Status) Label() string {
	if s == StatusUnknown {
		return ""
	}
	return strings.ToLower(s.String())
}

// MarshalJSON writes the status as its label; unknown is null.
func (s Status) MarshalJSON() ([]byte, error) {
	if s == StatusUnknown {
		return []byte("null"), nil
	}
	return json.Marshal(s.Label())
}

// UnmarshalJSON reads what MarshalJSON writes.
func (s *Status) UnmarshalJSON(b []byte) error {
	if string(b) == "null" {
		*s = StatusUnknown
		return nil
	}
	var l string
	if err := json.Unmarshal(b, &l); err != nil {
		return err
	}
	for _, st := range Statuses {
		if st.Label() == l {
			*s = st
			return nil
		}
	}
	return fmt.Errorf("lag: unknown status %q", l)
}

// sampleSpacing bounds a partition's history: samples are kept at least
// window/sampleSpacing apart, and only one of them before the window, so a
// history holds at most sampleSpacing+2 samples.
const sampleSpacing = 32

type sample struct {
	at             time.Time
	committed, lag int64
}

func abs(n int64) int64 {
	if n < 0 {
		return -n
	}
	return n
}

// history is what the scrapes saw of one partition, enough to decide its
// status (see the package doc). Guarded by Collector.mu.
type history struct {
	firstSeen  time.Time
	committed  int64     // last seen committed offset (-1: none)
	movedAt    time.Time // first scrape that saw the current committed offset
	caughtUpAt time.Time // last scrape that saw lag 0 (zero: never)
	samples    []sample  // oldest first, >= window/sampleSpacing apart
}

// observe records a scrape at now.
func (h *history) observe(now time.Time, committed, lag int64, window time.Duration) {
	if h.firstSeen.IsZero() {
		h.firstSeen, h.committed, h.movedAt = now, committed, now
	} else if committed != h.committed {
		h.committed, h.movedAt = committed, now
	}
	if lag == 0 {
		h.caughtUpAt = now
	}
	if n := len(h.samples); n == 0 || now.Sub(h.samples[n-1].at) >= window/sampleSpacing {
		h.samples = append(h.samples, sample{at: now, committed: committed, lag: lag})
	}
	// Keep one sample at or before the window's start.
	start := now.Add(-window)
	drop := 0
	for drop+1 < len(h.samples) && !h.samples[drop+1].at.After(start) {
		drop++
	}
	if drop > 0 {
		h.samples = append(h.samples[:0], h.samples[drop:]...)
	}
}

// verdict is the status before ownership is known: evaluate returns
// stuck=true for a partition that is STOP or STALL depending on whether a
// member owns it.
func (h *history) evaluate(now time.Time, lag int64, window time.Duration) (s Status, stuck bool) {
	start := now.Add(-window)
	switch {
	case h.firstSeen.IsZero() || h.firstSeen.After(start):
		return StatusUnknown, false
	case lag == 0 || !h.caughtUpAt.IsZero() && h.caughtUpAt.After(start):
		return StatusOK, false
	case !h.movedAt.After(start):
		return StatusStall, true // or STOP: the caller knows the owners
	}
	// Moving: WARN if the lag grew over the window by more than the
	// committed offset ever advanced between two samples (see the package
	// doc): the saw-tooth of periodic commits must not read as growth.
	lagStart, maxStep, prev := int64(-1), int64(0), int64(0)
	for i, s := range h.samples {
		if !s.at.After(start) {
			lagStart = s.lag
		}
		if i > 0 {
			maxStep = max(maxStep, abs(s.committed-prev))
		}
		prev = s.committed
	}
	if len(h.samples) > 0 {
		maxStep = max(maxStep, abs(h.committed-prev))
	}
	if lagStart >= 0 && lag-lagStart > maxStep {
		return StatusWarn, false
	}
	return StatusOK, false
}
