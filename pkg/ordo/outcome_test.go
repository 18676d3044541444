package ordo

import (
	"context"
	"errors"
	"fmt"
	"math"
	"strconv"
	"strings"
	"testing"
	"time"
)

func TestDecide(t *testing.T) {
	rp := RetryPolicy{
		MaxAttempts:    3,
		InitialBackoff: 100 * time.Millisecond,
		MaxBackoff:     time.Second,
		HoldDelay:      2 * time.Second,
	}
	live := context.Background()
	canceled, cancel := context.WithCancel(context.Background())
	cancel()

	boom := errors.New("boom")
	panicErr := &PanicError{Value: "kaboom", Stack: []byte("stack")}

	// delayMin/delayMax bound act.delay (max exclusive) under the real
	// jitter; under the identity jitter the delay must equal delayMax for a
	// backoff retry. exact means the delay ignores jitter entirely.
	type tc struct {
		name     string
		ctx      context.Context
		err      error
		attempt  int
		kind     actionKind
		class    ErrorClass
		delayMin time.Duration
		delayMax time.Duration
		exact    bool
	}
	backoff := func(name string, err error, attempt int, class ErrorClass, b time.Duration) tc {
		return tc{name: name, ctx: live, err: err, attempt: attempt, kind: actRetry, class: class, delayMin: b / 2, delayMax: b}
	}
	exact := func(ctx context.Context, name string, err error, attempt int, kind actionKind, class ErrorClass, d time.Duration) tc {
		return tc{name: name, ctx: ctx, err: err, attempt: attempt, kind: kind, class: class, delayMin: d, delayMax: d, exact: true}
	}
	cases := []tc{
		exact(live, "nil", nil, 1, actDone, "", 0),
		exact(live, "nil at last attempt", nil, 3, actDone, "", 0),
		exact(canceled, "nil with canceled lane", nil, 1, actDone, "", 0),

		backoff("plain error attempt 1", boom, 1, ClassRetryable, 100*time.Millisecond),
		backoff("plain error attempt 2", boom, 2, ClassRetryable, 200*time.Millisecond),
		backoff("wrapped plain error", fmt.Errorf("ctx: %w", boom), 2, ClassRetryable, 200*time.Millisecond),
		exact(live, "plain error at MaxAttempts", boom, 3, actDLQ, ClassRetryable, 0),
		exact(live, "plain error past MaxAttempts", boom, 4, actDLQ, ClassRetryable, 0),

		exact(live, "permanent at attempt 1", Permanent(boom), 1, actDLQ, ClassPermanent, 0),
		exact(live, "wrapped permanent", fmt.Errorf("handler: %w", Permanent(boom)), 1, actDLQ, ClassPermanent, 0),
		exact(live, "doubly wrapped permanent", fmt.Errorf("a: %w", fmt.Errorf("b: %w", Permanent(boom))), 2, actDLQ, ClassPermanent, 0),
		exact(live, "joined permanent", errors.Join(boom, Permanent(boom)), 1, actDLQ, ClassPermanent, 0),

		exact(live, "retry after", RetryAfter(3*time.Second, boom), 1, actRetry, ClassRetryable, 3*time.Second),
		exact(live, "retry after beyond MaxBackoff", RetryAfter(time.Minute, boom), 2, actRetry, ClassRetryable, time.Minute),
		exact(live, "wrapped retry after", fmt.Errorf("x: %w", RetryAfter(3*time.Second, boom)), 1, actRetry, ClassRetryable, 3*time.Second),
		exact(live, "retry after at MaxAttempts", RetryAfter(3*time.Second, boom), 3, actDLQ, ClassRetryable, 0),
		exact(live, "retry after past MaxAttempts", RetryAfter(3*time.Second, boom), 7, actDLQ, ClassRetryable, 0),
		exact(live, "retry after permanent", RetryAfter(3*time.Second, Permanent(boom)), 1, actDLQ, ClassPermanent, 0),

		exact(live, "hold", Hold(boom), 1, actHold, ClassRetryable, 2*time.Second),
		exact(live, "wrapped hold", fmt.Errorf("breaker: %w", Hold(boom)), 1, actHold, ClassRetryable, 2*time.Second),
		exact(live, "hold at MaxAttempts", Hold(boom), 3, actHold, ClassRetryable, 2*time.Second),
		exact(live, "hold far past MaxAttempts", Hold(boom), 1000, actHold, ClassRetryable, 2*time.Second),
		exact(live, "hold for a delay of its own", HoldFor(300*time.Millisecond, boom), 3, actHold, ClassRetryable, 300*time.Millisecond),
		exact(live, "hold for zero: the hold delay", HoldFor(0, boom), 1, actHold, ClassRetryable, 2*time.Second),
		exact(live, "hold the partition", HoldPartition(boom), 9, actHoldPartition, ClassRetryable, 2*time.Second),
		exact(live, "hold the partition, wrapped", fmt.Errorf("breaker: %w", HoldPartition(boom)), 1, actHoldPartition, ClassRetryable, 2*time.Second),

		backoff("panic attempt 1", panicErr, 1, ClassPanic, 100*time.Millisecond),
		exact(live, "panic at MaxAttempts", panicErr, 3, actDLQ, ClassPanic, 0),
		exact(live, "wrapped panic at MaxAttempts", fmt.Errorf("mw: %w", panicErr), 3, actDLQ, ClassPanic, 0),

		backoff("deadline exceeded attempt 1", context.DeadlineExceeded, 1, ClassTimeout, 100*time.Millisecond),
		backoff("wrapped deadline exceeded", fmt.Errorf("call: %w", context.DeadlineExceeded), 2, ClassTimeout, 200*time.Millisecond),
		exact(live, "deadline exceeded at MaxAttempts", context.DeadlineExceeded, 3, actDLQ, ClassTimeout, 0),
		// The processor's own canceled context, with the lane alive, is an
		// ordinary failure.
		backoff("canceled with live lane", context.Canceled, 1, ClassRetryable, 100*time.Millisecond),

		exact(canceled, "canceled lane: plain error", boom, 1, actDrop, "", 0),
		exact(canceled, "canceled lane: at MaxAttempts", boom, 3, actDrop, "", 0),
		exact(canceled, "canceled lane: permanent", Permanent(boom), 1, actDrop, "", 0),
		exact(canceled, "canceled lane: hold", Hold(boom), 1, actDrop, "", 0),
		exact(canceled, "canceled lane: retry after", RetryAfter(time.Second, boom), 1, actDrop, "", 0),
		exact(canceled, "canceled lane: panic", panicErr, 3, actDrop, "", 0),
		exact(canceled, "canceled lane: context.Canceled", context.Canceled, 1, actDrop, "", 0),
	}

	realJitter := jitter
	identity := func(d time.Duration) time.Duration { return d }
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			check := func(act action, identityJitter bool) {
				t.Helper()
				if act.kind != c.kind || act.class != c.class {
					t.Fatalf("decide = %v/%q, want %v/%q", act.kind, act.class, c.kind, c.class)
				}
				switch {
				case c.exact || identityJitter:
					if act.delay != c.delayMax {
						t.Fatalf("delay = %v, want exactly %v", act.delay, c.delayMax)
					}
				case act.delay < c.delayMin || act.delay >= c.delayMax:
					t.Fatalf("delay = %v, want in [%v, %v)", act.delay, c.delayMin, c.delayMax)
				}
			}
			check(decide(c.ctx, c.err, delivery{attempt: c.attempt}, rp, identity), true)
			for range 200 {
				check(decide(c.ctx, c.err, delivery{attempt: c.attempt}, rp, realJitter), false)
			}
		})
	}
}

// TestDecideJitterRange checks the consumer's jitter spreads a delay over
// [d/2, d) and leaves tiny delays alone.
func TestDecideJitterRange(t *testing.T) {
	for _, d := range []time.Duration{0, 1} {
		if got := jitter(d); got != d {
			t.Fatalf("jitter(%v) = %v, want %v", d, got, d)
		}
	}
	for _, d := range []time.Duration{2, 3, 7, time.Millisecond, time.Second, math.MaxInt64} {
		lo, hi := d, time.Duration(0)
		for range 2000 {
			j := jitter(d)
			if j < d/2 || j >= d {
				t.Fatalf("jitter(%v) = %v, want in [%v, %v)", d, j, d/2, d)
			}
			lo, hi = min(lo, j), max(hi, j)
		}
		if d >= time.Millisecond && hi-lo < d/4 {
			t.Fatalf("jitter(%v) spread only over [%v, %v]", d, lo, hi)
		}
	}
}

func TestDecideActionKindString(t *testing.T) {
	want := map[actionKind]string{actDone: "done", actRetry: "retry", actHold: "hold", actDLQ: "dlq", actDrop: "drop", 99: "unknown"}
	for k, s := range want {
		if k.String() != s {
			t.Fatalf("actionKind(%d).String() = %q, want %q", int(k), k.String(), s)
		}
	}
}

func TestDecideErrorWrappers(t *testing.T) {
	if Permanent(nil) != nil {
		t.Fatal("Permanent(nil) != nil")
	}
	if RetryAfter(time.Second, nil) != nil {
		t.Fatal("RetryAfter(d, nil) != nil")
	}
	if Hold(nil) != nil {
		t.Fatal("Hold(nil) != nil")
	}

	type causeErr struct{ error }
	cause := &causeErr{errors.New("downstream 503")}
	wrappers := []struct {
		name   string
		err    error
		prefix string
	}{
		{"Permanent", Permanent(cause), "permanent: "},
		{"RetryAfter", RetryAfter(1500*time.Millisecond, cause), "retry after 1.5s: "},
		{"Hold", Hold(cause), "hold: "},
	}
	for _, w := range wrappers {
		t.Run(w.name, func(t *testing.T) {
			for _, err := range []error{w.err, fmt.Errorf("outer: %w", w.err)} {
				if !errors.Is(err, cause) {
					t.Fatalf("errors.Is(%v, cause) = false", err)
				}
				var got *causeErr
				if !errors.As(err, &got) || got != cause {
					t.Fatalf("errors.As(%v, *causeErr) did not find the cause", err)
				}
			}
			if u := errors.Unwrap(w.err); !errors.Is(u, cause) || u.Error() != cause.Error() {
				t.Fatalf("errors.Unwrap(%v) is not the cause", w.err)
			}
			if w.err.Error() != w.prefix+"downstream 503" {
				t.Fatalf("Error() = %q, want %q", w.err.Error(), w.prefix+"downstream 503")
			}
		})
	}

	// Sentinels survive the wrapping too.
	if !errors.Is(Permanent(context.DeadlineExceeded), context.DeadlineExceeded) {
		t.Fatal("Permanent(context.DeadlineExceeded) does not match the sentinel")
	}
	// Permanent beats the timeout class it wraps.
	if got := classify(Permanent(context.DeadlineExceeded)); got != ClassPermanent {
		t.Fatalf("classify(Permanent(DeadlineExceeded)) = %q, want permanent", got)
	}

	pe := &PanicError{Value: 42}
	if !strings.Contains(pe.Error(), "42") {
		t.Fatalf("PanicError.Error() = %q, want the value", pe.Error())
	}
}

func TestBackoff(t *testing.T) {
	rp := RetryPolicy{InitialBackoff: 100 * time.Millisecond, MaxBackoff: time.Second}
	cases := []struct {
		attempt int
		want    time.Duration
	}{
		{-5, 100 * time.Millisecond},
		{0, 100 * time.Millisecond},
		{1, 100 * time.Millisecond},
		{2, 200 * time.Millisecond},
		{3, 400 * time.Millisecond},
		{4, 800 * time.Millisecond},
		{5, time.Second},
		{6, time.Second},
		{64, time.Second},
		{1000, time.Second},
		{1 << 20, time.Second},
		{math.MaxInt, time.Second},
	}
	for _, c := range cases {
		if got := rp.backoff(c.attempt); got != c.want {
			t.Errorf("backoff(%d) = %v, want %v", c.attempt, got, c.want)
		}
	}

	// Defaults: 100ms doubling to 10s.
	def := Config{}.withDefaults().Retry
	want := 100 * time.Millisecond
	for attempt := 1; attempt <= 200; attempt++ {
		got := def.backoff(attempt)
		if got != want {
			t.Fatalf("default backoff(%d) = %v, want %v", attempt, got, want)
		}
		if got <= 0 || got > DefaultMaxBackoff {
			t.Fatalf("default backoff(%d) = %v out of (0, MaxBackoff]", attempt, got)
		}
		want = min(2*want, DefaultMaxBackoff)
	}

	// Initial == Max: flat.
	flat := RetryPolicy{InitialBackoff: time.Second, MaxBackoff: time.Second}
	for _, a := range []int{0, 1, 2, 1000} {
		if got := flat.backoff(a); got != time.Second {
			t.Fatalf("flat backoff(%d) = %v, want 1s", a, got)
		}
	}

	// A large cap: the doubling stays exact and monotone up to it.
	big := RetryPolicy{InitialBackoff: time.Nanosecond, MaxBackoff: 24 * time.Hour}
	prev := time.Duration(0)
	for a := 1; a <= 1000; a++ {
		got := big.backoff(a)
		if got < prev || got > big.MaxBackoff || got <= 0 {
			t.Fatalf("backoff(%d) = %v after %v with cap %v", a, got, prev, big.MaxBackoff)
		}
		if a <= 40 && got != time.Duration(1)<<(a-1) {
			t.Fatalf("backoff(%d) = %v, want %v", a, got, time.Duration(1)<<(a-1))
		}
		prev = got
	}
}

// Regression: a backoff that lands exactly on 2^63 must cap, not overflow.
func TestBackoffNoOverflowAtMaxInt64(t *testing.T) {
	for _, rp := range []RetryPolicy{
		{InitialBackoff: 1 << 62, MaxBackoff: math.MaxInt64},
		{InitialBackoff: time.Nanosecond, MaxBackoff: math.MaxInt64},
	} {
		for _, a := range []int{2, 63, 64, 65} {
			if d := rp.backoff(a); d <= 0 || d > rp.MaxBackoff {
				t.Errorf("%+v backoff(%d) = %d", rp, a, d)
			}
		}
	}
}

// TestDecideTiers: with retry tiers, in-place attempts come first, then
// tier 1, 2 ... N, then the dead-letter topic; Permanent skips the chain;
// RetryAfter picks the first later tier whose delay is at least the one
// asked (or retries in place if it is short); holds never escalate.
func TestDecideTiers(t *testing.T) {
	rp := RetryPolicy{
		MaxAttempts: 3, TierAttempts: 2,
		InitialBackoff: 100 * time.Millisecond, MaxBackoff: time.Second, HoldDelay: 5 * time.Second,
		Tiers: []time.Duration{time.Second, 10 * time.Second, time.Minute},
	}
	live := context.Background()
	boom := errors.New("boom")
	identity := func(d time.Duration) time.Duration { return d }
	cases := []struct {
		name  string
		err   error
		d     delivery
		kind  actionKind
		tier  int
		delay time.Duration
		class ErrorClass
	}{
		{"source, calls left: in place", boom, delivery{0, 1, false}, actRetry, 0, 100 * time.Millisecond, ClassRetryable},
		{"source, last call: tier 1", boom, delivery{0, 3, false}, actTier, 1, time.Second, ClassRetryable},
		{"tier 1, calls left: in place", boom, delivery{1, 1, false}, actRetry, 0, 100 * time.Millisecond, ClassRetryable},
		{"tier 1, used up: tier 2", boom, delivery{1, 2, false}, actTier, 2, 10 * time.Second, ClassRetryable},
		{"tier 2, used up: tier 3", boom, delivery{2, 2, false}, actTier, 3, time.Minute, ClassRetryable},
		{"last tier, used up: DLQ", boom, delivery{3, 2, false}, actDLQ, 0, 0, ClassRetryable},
		{"panic on the last tier: DLQ", &PanicError{Value: "x"}, delivery{3, 2, false}, actDLQ, 0, 0, ClassPanic},
		{"permanent on the source: DLQ", Permanent(boom), delivery{0, 1, false}, actDLQ, 0, 0, ClassPermanent},
		{"permanent on a tier: DLQ", Permanent(boom), delivery{2, 1, false}, actDLQ, 0, 0, ClassPermanent},
		{"retry after a short delay: in place", RetryAfter(500*time.Millisecond, boom), delivery{0, 1, false}, actRetry, 0, 500 * time.Millisecond, ClassRetryable},
		{"retry after 5s: tier 2 (first >= 5s)", RetryAfter(5*time.Second, boom), delivery{0, 1, false}, actTier, 2, 10 * time.Second, ClassRetryable},
		{"retry after 5s from tier 2: tier 3", RetryAfter(5*time.Second, boom), delivery{2, 1, false}, actTier, 3, time.Minute, ClassRetryable},
		{"retry after 2h: the last tier, waiting 2h", RetryAfter(2*time.Hour, boom), delivery{0, 1, false}, actTier, 3, 2 * time.Hour, ClassRetryable},
		{"retry after 2h from the last tier: DLQ", RetryAfter(2*time.Hour, boom), delivery{3, 1, false}, actDLQ, 0, 0, ClassRetryable},
		{"retry after, calls used up: next tier", RetryAfter(500*time.Millisecond, boom), delivery{0, 3, false}, actTier, 1, time.Second, ClassRetryable},
		{"hold never escalates", Hold(boom), delivery{3, 99, false}, actHold, 0, 5 * time.Second, ClassRetryable},
		{"hold partition never escalates", HoldPartition(boom), delivery{3, 99, false}, actHoldPartition, 0, 5 * time.Second, ClassRetryable},
		{"interrupted calls: next tier", fmt.Errorf("%w: 3 calls", ErrInterrupted), delivery{0, 3, false}, actTier, 1, time.Second, ClassInterrupted},
		{"failing key, first call: tier 1", boom, delivery{0, 1, true}, actTier, 1, time.Second, ClassRetryable},
		{"failing key, permanent: DLQ", Permanent(boom), delivery{0, 1, true}, actDLQ, 0, 0, ClassPermanent},
		{"failing key on a tier: its tier's calls", boom, delivery{1, 1, true}, actRetry, 0, 100 * time.Millisecond, ClassRetryable},
		{"failing key, hold: in place", Hold(boom), delivery{0, 1, true}, actHold, 0, 5 * time.Second, ClassRetryable},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			a := decide(live, c.err, c.d, rp, identity)
			if a.kind != c.kind || a.tier != c.tier || a.delay != c.delay || a.class != c.class {
				t.Errorf("decide = %v tier %d delay %v class %q; want %v tier %d delay %v class %q",
					a.kind, a.tier, a.delay, a.class, c.kind, c.tier, c.delay, c.class)
			}
		})
	}
}

// TestHeaderBufValuesStayPut: headers built on one shared buffer keep
// their values as later ones are appended, through the buffer's growth.
func TestHeaderBufValuesStayPut(t *testing.T) {
	hb := headerBuf{buf: make([]byte, 0, 4)} // small: it grows several times
	want := map[string]string{}
	for i := range 50 {
		k := fmt.Sprintf("h%d", i)
		if i%2 == 0 {
			hb.add(k, strings.Repeat("v", i))
			want[k] = strings.Repeat("v", i)
		} else {
			hb.addInt(k, int64(i)*1_000_003)
			want[k] = fmt.Sprint(int64(i) * 1_000_003)
		}
	}
	if len(hb.hs) != 50 {
		t.Fatalf("%d headers, want 50", len(hb.hs))
	}
	for _, h := range hb.hs {
		if string(h.Value) != want[h.Key] {
			t.Errorf("header %s = %q, want %q", h.Key, h.Value, want[h.Key])
		}
		if cap(h.Value) != len(h.Value) {
			t.Errorf("header %s has room to grow (cap %d, len %d): an append would write past it", h.Key, cap(h.Value), len(h.Value))
		}
	}
}

// TestParseDec: parseDec agrees with strconv.ParseInt on what Ordo writes
// (up to 18 digits, optionally negative) and refuses the rest.
func TestParseDec(t *testing.T) {
	for _, s := range []string{"0", "7", "-1", "2147483647", "-2147483648", "1796034954230", "999999999999999999", "-999999999999999999", "000123"} {
		got, ok := parseDec([]byte(s))
		want, err := strconv.ParseInt(s, 10, 64)
		if !ok || err != nil || got != want {
			t.Errorf("parseDec(%q) = %d, %v; strconv: %d, %v", s, got, ok, want, err)
		}
	}
	for _, s := range []string{"", "-", "+1", "1a", " 1", "1 ", "1.5", "0x10", "1_000", "1234567890123456789"} {
		if n, ok := parseDec([]byte(s)); ok {
			t.Errorf("parseDec(%q) = %d, true; want refused", s, n)
		}
	}
}
