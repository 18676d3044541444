package ordotest

import (
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/ordokafka/ordo/pkg/ordo"
)

// Advance moves the consumer's clock d forward. It first waits for the
// engine to settle (see below), then fires the clock's timers that fall
// due, one deadline at a time and in order, and waits for the engine to
// settle after each: so a retry that falls due is called, and its result
// routed (a further retry armed, a tier copy produced), before later
// timers fire, and Advance(time.Minute) plays out a minute's worth of
// backoffs.
//
// The engine has settled when no processor call is under way, every
// failed call has been acted on (its retry or hold armed on the clock, or
// its tier or dead-letter copy acknowledged and read back), every record
// whose retry fell due has been called again, and every tier copy not yet
// due is waiting on a timer (and every one due has been called). Records
// produced to the source topic but not yet fetched are not waited for. If the engine does not settle within WaitTimeout, the test
// fails.
func (h *Harness) Advance(d time.Duration) {
	h.t.Helper()
	h.settle()
	h.clock.advance(d, h.settle)
}

// settle waits until the engine has settled, or fails the test.
func (h *Harness) settle() {
	h.t.Helper()
	deadline := time.Now().Add(h.timeout)
	for {
		why := h.unsettled()
		if why == "" {
			return
		}
		if time.Now().After(deadline) {
			h.t.Fatalf("ordotest: Advance: the engine did not settle within %s: %s", h.timeout, why)
		}
		time.Sleep(time.Millisecond) // polling a condition: the engine runs on its own goroutines
	}
}

// unsettled says why the engine has not settled; "" if it has.
func (h *Harness) unsettled() string {
	h.clock.wait()
	s := h.cons.Stats()
	// Lanes takes each lane's lock: a retry counted in Stats has its timer
	// armed once the lane's lock is free again.
	lanes := h.cons.Lanes()
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.inflight > 0 {
		return fmt.Sprintf("%d processor calls under way", h.inflight)
	}
	acted := int(s.Retries + s.Holds + s.Tiered + s.DeadLettered)
	if acted < h.failed {
		return fmt.Sprintf("%d failed calls, %d acted on (retries %d, holds %d, tiered %d, dead-lettered %d)",
			h.failed, acted, s.Retries, s.Holds, s.Tiered, s.DeadLettered)
	}
	if int(s.Tiered+s.DeadLettered) > h.copies {
		return fmt.Sprintf("%d tier and dead-letter copies acknowledged, %d read back", s.Tiered+s.DeadLettered, h.copies)
	}
	// Every record waiting for a retry or a hold has its timer in its
	// lane (LaneSnapshot.WaitingRetry); fewer timers than such records
	// means a timer fired and its record has not been called yet.
	type part struct {
		topic string
		p     int32
	}
	waiting := map[part]int{}
	now := h.clock.Now()
	for _, tr := range h.byOrigin {
		o := tr.outcome()
		switch o.State {
		case Retrying, Held:
			last := o.Calls[len(o.Calls)-1]
			waiting[part{last.Topic, last.Partition}]++
		case InTier:
			// A copy not yet due waits on its tier's timer: the tier's
			// partition arms it (LaneSnapshot.DueAt) once the copy, or
			// one before it, is its next record.
			c := o.TierRecords[len(o.TierRecords)-1]
			nb, err := strconv.ParseInt(HeaderValue(c, ordo.HeaderNotBefore), 10, 64)
			if err != nil || !now.Before(time.UnixMilli(nb)) {
				return fmt.Sprintf("tier record %s/%d@%d is due and not called yet", c.Topic, c.Partition, c.Offset)
			}
			if !waitsForDue(lanes, c.Topic, c.Partition) {
				return fmt.Sprintf("tier record %s/%d@%d, due at %s, not yet waiting on its timer",
					c.Topic, c.Partition, c.Offset, time.UnixMilli(nb).Format(time.RFC3339Nano))
			}
		}
	}
	var short []string
	for _, l := range lanes {
		if n := waiting[part{l.Topic, l.Partition}]; l.WaitingRetry < n {
			short = append(short, fmt.Sprintf("%s/%d: %d records to retry, %d timers", l.Topic, l.Partition, n, l.WaitingRetry))
		}
	}
	if len(short) > 0 {
		return "retries fell due and were not called yet (" + strings.Join(short, "; ") + ")"
	}
	return ""
}

// waitsForDue reports whether the tier partition's timer waits for its
// next record (the copy, or one ahead of it) to be due.
func waitsForDue(lanes []ordo.LaneSnapshot, topic string, p int32) bool {
	for _, l := range lanes {
		if l.Topic == topic && l.Partition == p {
			return !l.DueAt.IsZero()
		}
	}
	return false
}
