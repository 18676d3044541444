package ordotest

import (
	"fmt"
	"slices"
	"strconv"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/ordokafka/ordo/pkg/ordo"
)

// Call is one processor call of a record, as the harness saw it.
type Call struct {
	// Topic, Partition and Offset are the record called: the source
	// topic's, or a retry tier's copy.
	Topic     string
	Partition int32
	Offset    int64
	// Tier is 0 on the source topic, n on retry tier n.
	Tier int
	// Attempt is ordo.RecordInfo.Attempt: the record's calls so far,
	// over every delivery, this one included (a hold does not count).
	Attempt int
	// Err is what the call returned, after the processor's middleware
	// (a panic as *ordo.PanicError); nil: the record is applied.
	Err error
	// At is the clock's time when the call returned.
	At time.Time
	// Canceled is true when Ordo canceled the call's context (a lost
	// partition, StopAndCancel): the call is not the record's failure.
	Canceled bool
}

// State is where a record is.
type State int

// The states of a record.
const (
	// Pending: no call yet.
	Pending State = iota
	// Done: a call returned nil.
	Done
	// Retrying: the last call failed; the engine retries it in place
	// once its backoff has passed (or is producing it to a tier or the
	// dead-letter topic, which Outcome shows once it is there).
	Retrying
	// Held: the last call returned ordo.Hold, HoldFor or HoldPartition.
	Held
	// InTier: the record was produced to retry tier Outcome.Tier and has
	// not been called there yet (it waits for its ordo-not-before: Advance
	// by the tier's delay). A call there that fails makes it Retrying
	// until it is on the next tier or the dead-letter topic.
	InTier
	// DeadLettered: the record is on the dead-letter topic.
	DeadLettered
)

func (s State) String() string {
	switch s {
	case Pending:
		return "pending"
	case Done:
		return "done"
	case Retrying:
		return "retrying"
	case Held:
		return "held"
	case InTier:
		return "in tier"
	case DeadLettered:
		return "dead-lettered"
	}
	return "State(" + strconv.Itoa(int(s)) + ")"
}

// Outcome is what has happened to one record.
type Outcome struct {
	State State
	// Record is the record as produced (nil if it was not produced
	// through the harness).
	Record *kgo.Record
	// Calls are its processor calls, in order, on every delivery.
	Calls []Call
	// Tier is the highest retry tier it was produced to; 0: none.
	Tier int
	// TierRecords are its copies on the retry tiers, in the order read,
	// with Ordo's headers (ordo-tier, ordo-not-before, ordo-attempt...).
	TierRecords []*kgo.Record
	// DeadLetter is its copy on the dead-letter topic, with Ordo's
	// headers (ordo-error, ordo-error-class, ordo-attempt...); nil if
	// none.
	DeadLetter *kgo.Record
}

// Retries returns the record's in-place retries on tier (0: the source
// topic): its calls there that spent an attempt, less the first. A held
// call spends none.
func (o Outcome) Retries(tier int) int {
	var attempts []int
	for _, c := range o.Calls {
		if c.Tier == tier && !slices.Contains(attempts, c.Attempt) {
			attempts = append(attempts, c.Attempt)
		}
	}
	return max(0, len(attempts)-1)
}

// LastErr returns the error of the last call; nil if there was none or it
// succeeded.
func (o Outcome) LastErr() error {
	if len(o.Calls) == 0 {
		return nil
	}
	return o.Calls[len(o.Calls)-1].Err
}

// outcome builds a record's Outcome from what the harness saw. h.mu is
// held.
func (tr *track) outcome() Outcome {
	o := Outcome{Record: tr.rec, Calls: slices.Clone(tr.calls), TierRecords: slices.Clone(tr.tiers), DeadLetter: tr.deadLetter}
	for _, r := range tr.tiers {
		if n, err := strconv.Atoi(HeaderValue(r, ordo.HeaderTier)); err == nil && n > o.Tier {
			o.Tier = n
		}
	}
	var last *Call
	if len(tr.calls) > 0 {
		last = &tr.calls[len(tr.calls)-1]
	}
	switch {
	case tr.deadLetter != nil:
		o.State = DeadLettered
	case last != nil && last.Err == nil:
		o.State = Done
	case last != nil && isHold(last.Err):
		o.State = Held
	case o.Tier > 0 && (last == nil || last.Tier < o.Tier):
		o.State = InTier
	case last != nil:
		o.State = Retrying
	default:
		o.State = Pending
	}
	return o
}

// originOfRecord is the origin of a record produced through the harness,
// or of a tier or dead-letter copy.
func originOfRecord(r *kgo.Record) ordo.Origin {
	if o, ok := originOf(r); ok {
		return o
	}
	return ordo.Origin{Topic: r.Topic, Partition: r.Partition, Offset: r.Offset}
}

// Outcome returns what has happened to r (a record Produce returned, or
// one of its tier or dead-letter copies) so far.
func (h *Harness) Outcome(r *kgo.Record) Outcome {
	h.mu.Lock()
	defer h.mu.Unlock()
	o := originOfRecord(r)
	if tr, ok := h.byOrigin[o]; ok {
		return tr.outcome()
	}
	return Outcome{Record: r}
}

// Wait waits until cond holds for r's outcome and returns it; if it does
// not within WaitTimeout, the test fails, saying what (named by what) it
// waited for and what happened to the record instead.
func (h *Harness) Wait(r *kgo.Record, what string, cond func(Outcome) bool) Outcome {
	h.t.Helper()
	deadline := time.Now().Add(h.timeout)
	for {
		o := h.Outcome(r)
		if cond(o) {
			return o
		}
		if time.Now().After(deadline) {
			h.t.Fatalf("ordotest: record %s: waited %s for it to be %s; %s", coords(r), h.timeout, what, describe(o))
		}
		time.Sleep(2 * time.Millisecond) // polling a condition: the engine runs on its own goroutines
	}
}

func coords(r *kgo.Record) string {
	return fmt.Sprintf("%s/%d@%d (key %q)", r.Topic, r.Partition, r.Offset, r.Key)
}

// WaitDone waits until a call of r returns nil.
func (h *Harness) WaitDone(r *kgo.Record) Outcome {
	h.t.Helper()
	return h.Wait(r, "done", func(o Outcome) bool { return o.State == Done })
}

// WaitHeld waits until r's last call returned a hold.
func (h *Harness) WaitHeld(r *kgo.Record) Outcome {
	h.t.Helper()
	return h.Wait(r, "held", func(o Outcome) bool { return o.State == Held })
}

// WaitCalls waits until r has had at least n processor calls.
func (h *Harness) WaitCalls(r *kgo.Record, n int) Outcome {
	h.t.Helper()
	return h.Wait(r, fmt.Sprintf("called %d times", n), func(o Outcome) bool { return len(o.Calls) >= n })
}

// WaitTier waits until r is on retry tier n and returns that copy, with
// its headers.
func (h *Harness) WaitTier(r *kgo.Record, n int) *kgo.Record {
	h.t.Helper()
	var copyOf *kgo.Record
	h.Wait(r, fmt.Sprintf("produced to tier %d", n), func(o Outcome) bool {
		for _, tr := range o.TierRecords {
			if HeaderValue(tr, ordo.HeaderTier) == strconv.Itoa(n) {
				copyOf = tr
				return true
			}
		}
		return false
	})
	return copyOf
}

// WaitDeadLetter waits until r is on the dead-letter topic and returns the
// dead letter, with its headers.
func (h *Harness) WaitDeadLetter(r *kgo.Record) *kgo.Record {
	h.t.Helper()
	return h.Wait(r, "dead-lettered", func(o Outcome) bool { return o.State == DeadLettered }).DeadLetter
}
