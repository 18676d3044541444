package ordotest_test

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/ordokafka/ordo/pkg/ordo"
	"github.com/ordokafka/ordo/pkg/ordotest"
)

func backoff(initial, maxB time.Duration) ordotest.Option {
	return ordotest.Configure(func(c *ordo.Config) {
		c.Retry.InitialBackoff, c.Retry.MaxBackoff = initial, maxB
	})
}

// failFirst fails the first n calls of every record, then succeeds.
func failFirst(n int) ordo.Processor {
	return ordo.ProcessorFunc(func(ctx context.Context, _ *kgo.Record) error {
		if info, _ := ordo.InfoFromContext(ctx); info.Attempt <= n {
			return errors.New("downstream said 503")
		}
		return nil
	})
}

func TestDone(t *testing.T) {
	h := ordotest.New(t, failFirst(0))
	rec := h.Produce("k", "v")
	o := h.WaitDone(rec)
	if len(o.Calls) != 1 || o.Calls[0].Attempt != 1 || o.Calls[0].Offset != rec.Offset || o.Record != rec {
		t.Errorf("outcome %+v", o)
	}
	// The processor's result is what the engine counts.
	for deadline := time.Now().Add(5 * time.Second); h.Counter("ordo_records_total", "outcome", "ok") != 1; time.Sleep(time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("ordo_records_total{outcome=ok} = %v", h.Counter("ordo_records_total", "outcome", "ok"))
		}
	}
}

// In-place retries wait on the fake clock: no second call until the
// backoff (1s, jittered over [0.5s, 1s)) has passed on it, then one.
func TestInPlaceRetriesFollowTheClock(t *testing.T) {
	h := ordotest.New(t, failFirst(2), backoff(time.Second, 10*time.Second))
	rec := h.Produce("k", "v")
	if o := h.WaitCalls(rec, 1); o.State != ordotest.Retrying {
		t.Fatalf("after a failed call: %v", o.State)
	}
	h.Advance(499 * time.Millisecond) // below the jitter's floor
	if o := h.Outcome(rec); len(o.Calls) != 1 {
		t.Fatalf("%d calls before the backoff passed", len(o.Calls))
	}
	h.Advance(501 * time.Millisecond) // 1s: the first retry is due, called (fails), the second armed
	o := h.Outcome(rec)
	if len(o.Calls) != 2 || o.State != ordotest.Retrying {
		t.Fatalf("after 1s: %d calls, %v", len(o.Calls), o.State)
	}
	if gap := o.Calls[1].At.Sub(o.Calls[0].At); gap < 500*time.Millisecond || gap >= time.Second {
		t.Errorf("first retry %s after the failure, want [500ms, 1s)", gap)
	}
	h.Advance(2 * time.Second) // the second backoff, 2s jittered
	o = h.Outcome(rec)
	if o.State != ordotest.Done || o.Retries(0) != 2 || o.Calls[2].Attempt != 3 {
		t.Fatalf("after 3s: %v, %d retries, calls %+v", o.State, o.Retries(0), o.Calls)
	}
}

// A record that keeps failing goes through the tiers, each waiting for
// its delay on the fake clock (ordo-not-before is written from it), then
// to the dead-letter topic with Ordo's headers.
func TestTiersThenDeadLetter(t *testing.T) {
	h := ordotest.New(t, failFirst(100), ordotest.MaxAttempts(2), ordotest.Tiers(time.Minute, time.Hour),
		backoff(100*time.Millisecond, time.Second))
	rec := h.Produce("k", "v", kgo.RecordHeader{Key: "trace", Value: []byte("abc")})
	h.WaitCalls(rec, 1)
	h.Advance(100 * time.Millisecond) // the in-place retry: fails, attempts used up
	t1 := h.WaitTier(rec, 1)
	o := h.Outcome(rec)
	if o.State != ordotest.InTier || o.Tier != 1 || len(o.Calls) != 2 || o.Retries(0) != 1 {
		t.Fatalf("after the in-place attempts: %v tier %d, %d calls", o.State, o.Tier, len(o.Calls))
	}
	failedAt := o.Calls[1].At
	due := failedAt.Add(time.Minute + time.Millisecond - 1).UnixMilli() // rounded up to the ms
	if nb := ordotest.HeaderValue(t1, ordo.HeaderNotBefore); nb != strconv.FormatInt(due, 10) {
		t.Errorf("tier 1 ordo-not-before %s, want the failure (%s) + 1m on the fake clock", nb, failedAt)
	}
	if t1.Topic != h.TierTopic(1) || ordotest.HeaderValue(t1, "trace") != "abc" {
		t.Errorf("tier copy on %s, headers %v", t1.Topic, t1.Headers)
	}

	h.Advance(59 * time.Second)
	if o := h.Outcome(rec); len(o.Calls) != 2 {
		t.Fatalf("called on tier 1 %s early", time.Second)
	}
	// One Advance plays out the rest: tier 1 due at +1m, fails, tier 2 due
	// an hour later, fails, dead letter.
	h.Advance(2 * time.Hour)
	dl := h.WaitDeadLetter(rec)
	o = h.Outcome(rec)
	if len(o.Calls) != 4 || o.Calls[2].Tier != 1 || o.Calls[3].Tier != 2 || o.Tier != 2 {
		t.Fatalf("calls %+v", o.Calls)
	}
	if gap := o.Calls[3].At.Sub(o.Calls[2].At); gap != time.Hour+time.Millisecond && gap != time.Hour {
		t.Errorf("tier 2 ran %s after tier 1's failure, want 1h (rounded up to the ms)", gap)
	}
	for k, want := range map[string]string{
		ordo.HeaderErrorClass:        "retryable",
		ordo.HeaderAttempt:           "4",
		ordo.HeaderError:             "downstream said 503",
		ordo.HeaderOriginalTopic:     h.Topic(),
		ordo.HeaderOriginalOffset:    strconv.FormatInt(rec.Offset, 10),
		ordo.HeaderOriginalPartition: strconv.Itoa(int(rec.Partition)),
		ordo.HeaderGroup:             ordotest.DefaultGroup,
		"trace":                      "abc",
	} {
		if got := ordotest.HeaderValue(dl, k); !strings.Contains(got, want) {
			t.Errorf("dead letter %s = %q, want %q", k, got, want)
		}
	}
	if dl.Topic != h.DLQTopic() || string(dl.Value) != "v" {
		t.Errorf("dead letter on %s, value %q", dl.Topic, dl.Value)
	}
	for target, want := range map[string]float64{"tier-1": 1, "tier-2": 1, "dlq": 1} {
		if got := h.Counter("ordo_routed_total", "target", target); got != want {
			t.Errorf("ordo_routed_total{target=%s} = %v, want %v", target, got, want)
		}
	}
}

// Permanent skips the retries and the tiers.
func TestPermanentIsDeadLetteredAtOnce(t *testing.T) {
	h := ordotest.New(t, ordo.ProcessorFunc(func(context.Context, *kgo.Record) error {
		return ordo.Permanent(errors.New("amount is not a number"))
	}), ordotest.Tiers(time.Minute))
	dl := h.WaitDeadLetter(h.Produce("k", `{"amount":"ten"}`))
	if c := ordotest.HeaderValue(dl, ordo.HeaderErrorClass); c != "permanent" {
		t.Errorf("class %q", c)
	}
	if a := ordotest.HeaderValue(dl, ordo.HeaderAttempt); a != "1" {
		t.Errorf("attempt %q", a)
	}
	if h.Counter("ordo_routed_total", "target", "tier-1") != 0 {
		t.Error("a permanent failure went through a tier")
	}
}

// A hold waits on the clock without spending attempts: with one attempt
// allowed, a record held five times is still not dead-lettered.
func TestHoldSpendsNoAttempt(t *testing.T) {
	var down atomic.Bool
	down.Store(true)
	h := ordotest.New(t, ordo.ProcessorFunc(func(context.Context, *kgo.Record) error {
		if down.Load() {
			return ordo.HoldFor(30*time.Second, errors.New("sink down"))
		}
		return nil
	}), ordotest.MaxAttempts(1))
	rec := h.Produce("k", "v")
	h.WaitHeld(rec)
	for range 4 {
		h.Advance(30 * time.Second)
	}
	o := h.Outcome(rec)
	if o.State != ordotest.Held || len(o.Calls) != 5 || o.Retries(0) != 0 {
		t.Fatalf("held: %v, %d calls, %d retries", o.State, len(o.Calls), o.Retries(0))
	}
	down.Store(false)
	h.Advance(30 * time.Second)
	if o := h.Outcome(rec); o.State != ordotest.Done || o.Calls[len(o.Calls)-1].Attempt != 1 {
		t.Fatalf("after the sink came back: %v, calls %+v", o.State, o.Calls)
	}
}

// A panic is a failed attempt of class panic, recovered.
func TestPanicIsAFailedAttempt(t *testing.T) {
	h := ordotest.New(t, ordo.ProcessorFunc(func(context.Context, *kgo.Record) error {
		panic("nil map")
	}), ordotest.MaxAttempts(1))
	rec := h.Produce("k", "v")
	dl := h.WaitDeadLetter(rec)
	var pe *ordo.PanicError
	if c := ordotest.HeaderValue(dl, ordo.HeaderErrorClass); c != "panic" || !errors.As(h.Outcome(rec).LastErr(), &pe) {
		t.Errorf("class %q, last error %v", c, h.Outcome(rec).LastErr())
	}
}

// The processor's middleware runs, and its error is the one routed: here
// it turns a failure into a hold.
func TestMiddlewareRunsInside(t *testing.T) {
	holdAll := func(next ordo.Processor) ordo.Processor {
		return ordo.ProcessorFunc(func(ctx context.Context, r *kgo.Record) error {
			return ordo.Hold(next.Process(ctx, r))
		})
	}
	var calls atomic.Int32
	h := ordotest.New(t, ordo.ProcessorFunc(func(context.Context, *kgo.Record) error {
		if calls.Add(1) == 1 {
			return errors.New("first call fails")
		}
		return nil
	}), ordotest.Middleware(holdAll), ordotest.MaxAttempts(1))
	rec := h.Produce("k", "v")
	h.WaitHeld(rec)
	h.Advance(ordo.DefaultHoldDelay)
	if o := h.Outcome(rec); o.State != ordotest.Done {
		t.Fatalf("%v", o.State)
	}
}

// Commits follow the clock: one each CommitInterval advanced, up to the
// lowest unfinished offset.
func TestPeriodicCommitFollowsTheClock(t *testing.T) {
	h := ordotest.New(t, failFirst(0))
	rec := h.WaitDone(h.Produce("k", "v")).Record
	h.Advance(ordo.DefaultCommitInterval)
	var got int64 = -1
	for deadline := time.Now().Add(5 * time.Second); got != rec.Offset+1; time.Sleep(time.Millisecond) {
		for _, c := range h.Commits() {
			got = c.Offsets[h.Topic()][rec.Partition]
		}
		if time.Now().After(deadline) {
			t.Fatalf("committed %d, want %d", got, rec.Offset+1)
		}
	}
}

// HoldPartition is held too, and its partition waits for it: a record of
// another key behind it is not called until the held one gets through.
func TestHoldPartitionHoldsThePartition(t *testing.T) {
	var open atomic.Bool
	open.Store(true)
	h := ordotest.New(t, ordo.ProcessorFunc(func(_ context.Context, r *kgo.Record) error {
		if string(r.Key) == "a" && open.Load() {
			return fmt.Errorf("breaker open: %w", ordo.HoldPartition(errors.New("sink down")))
		}
		return nil
	}), ordotest.MaxAttempts(1))
	a := h.Produce("a", "v")
	h.WaitHeld(a)
	b := h.Produce("b", "v")
	h.Advance(ordo.DefaultHoldDelay) // the probe: still open
	if o := h.Outcome(a); o.State != ordotest.Held || len(o.Calls) != 2 {
		t.Fatalf("a: %v after %d calls", o.State, len(o.Calls))
	}
	if o := h.Outcome(b); len(o.Calls) != 0 {
		t.Fatalf("b was called while a held its partition")
	}
	open.Store(false)
	h.Advance(ordo.DefaultHoldDelay)
	h.WaitDone(a)
	h.WaitDone(b)
}
