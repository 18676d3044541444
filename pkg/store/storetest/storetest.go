// Package storetest is the conformance suite every idempotency store
// passes (watermill's pubsub tests are the model): the same writes
// delivered twice and concurrently apply once, a failed write leaves its key
// unmarked, a write with a stale fencing token is rejected, counted, and
// never applied once Fence has returned a newer token, and (for a
// store.Forgetter) a forgotten key applies again while the others stay.
package storetest

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ordokafka/ordo/pkg/store"
)

// Harness adapts a store to the suite. Each test gets a new Harness on a
// namespace of its own (a key prefix, a table), so that the suite can run
// in parallel and again.
type Harness struct {
	Store store.Store
	// Apply applies op with an effect that counts one application of
	// op.Key where Effects can read it.
	Apply func(ctx context.Context, op store.Op) (store.Outcome, error)
	// ApplyFailing applies op with an effect that fails; nothing may be
	// written and the key must stay unmarked.
	ApplyFailing func(ctx context.Context, op store.Op) error
	// Effects returns how many times each key's effect was applied.
	Effects func(ctx context.Context) (map[string]int, error)
}

// Run runs the suite; newHarness makes a fresh Harness per subtest.
func Run(t *testing.T, newHarness func(t *testing.T) Harness) {
	t.Run("DeliveredTwiceAppliesOnce", func(t *testing.T) { t.Parallel(); deliveredTwice(t, newHarness(t)) })
	t.Run("ConcurrentAppliesOnce", func(t *testing.T) { t.Parallel(); concurrent(t, newHarness(t)) })
	t.Run("FailedWriteLeavesKeyUnmarked", func(t *testing.T) { t.Parallel(); failed(t, newHarness(t)) })
	t.Run("StaleTokenRejected", func(t *testing.T) { t.Parallel(); stale(t, newHarness(t)) })
	t.Run("NoStaleWriteAfterFence", func(t *testing.T) { t.Parallel(); raceFence(t, newHarness(t)) })
	t.Run("ForgottenKeysApplyAgain", func(t *testing.T) { t.Parallel(); forget(t, newHarness(t)) })
}

func ctxFor(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	t.Cleanup(cancel)
	return ctx
}

func effects(t *testing.T, h Harness) map[string]int {
	t.Helper()
	m, err := h.Effects(ctxFor(t))
	if err != nil {
		t.Fatal(err)
	}
	return m
}

func op(key string, partition int32, token int64) store.Op {
	return store.Op{Key: key, Fence: store.Fence{Group: "g", Topic: "t", Partition: partition, Token: token}}
}

// deliveredTwice: 200 keys applied, then all of them again: the second pass
// is all duplicates and every effect is applied once.
func deliveredTwice(t *testing.T, h Harness) {
	ctx := ctxFor(t)
	tok, err := h.Store.Fence(ctx, "g", "t", 0)
	if err != nil {
		t.Fatal(err)
	}
	const n = 200
	for pass, want := range []store.Outcome{store.Applied, store.Duplicate} {
		for i := range n {
			o, err := h.Apply(ctx, op(fmt.Sprintf("k%d", i), 0, tok))
			if err != nil {
				t.Fatalf("pass %d key %d: %v", pass, i, err)
			}
			if o != want {
				t.Fatalf("pass %d key %d: %v, want %v", pass, i, o, want)
			}
		}
	}
	m := effects(t, h)
	if len(m) != n {
		t.Errorf("%d keys applied, want %d", len(m), n)
	}
	for k, c := range m {
		if c != 1 {
			t.Errorf("key %s applied %d times", k, c)
		}
	}
	if s := h.Store.Stats(); s.Applied != n || s.Duplicates != n {
		t.Errorf("stats %+v, want %d applied and %d duplicates", s, n, n)
	}
}

// concurrent: 8 goroutines apply the same 300 keys at once, each in its
// own order: each key is applied exactly once, by one of them.
func concurrent(t *testing.T, h Harness) {
	ctx := ctxFor(t)
	const n, g = 300, 8
	var applied, dups atomic.Int64
	var wg sync.WaitGroup
	errs := make(chan error, g)
	for w := range g {
		wg.Go(func() {
			rng := rand.New(rand.NewPCG(uint64(w), 1))
			for _, i := range rng.Perm(n) {
				o, err := h.Apply(ctx, op(fmt.Sprintf("c%d", i), int32(i%3), 0))
				if err != nil {
					errs <- err
					return
				}
				if o == store.Applied {
					applied.Add(1)
				} else {
					dups.Add(1)
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	if applied.Load() != n || dups.Load() != n*(g-1) {
		t.Errorf("%d applied, %d duplicates; want %d and %d", applied.Load(), dups.Load(), n, n*(g-1))
	}
	m := effects(t, h)
	if len(m) != n {
		t.Errorf("%d keys applied, want %d", len(m), n)
	}
	for k, c := range m {
		if c != 1 {
			t.Errorf("key %s applied %d times", k, c)
		}
	}
}

// failed: a write whose effect fails leaves nothing; the same key then
// applies.
func failed(t *testing.T, h Harness) {
	ctx := ctxFor(t)
	if err := h.ApplyFailing(ctx, op("f", 0, 0)); err == nil {
		t.Fatal("a failing effect returned no error")
	} else if errors.Is(err, store.ErrFenced) || errors.Is(err, store.ErrUnavailable) {
		t.Fatalf("a failing effect's error is %v: want the effect's own", err)
	}
	if m := effects(t, h); m["f"] != 0 {
		t.Fatalf("the failed write left an effect: %v", m)
	}
	o, err := h.Apply(ctx, op("f", 0, 0))
	if err != nil || o != store.Applied {
		t.Fatalf("after a failure: %v, %v; want applied", o, err)
	}
}

// stale: tokens grow per partition; a write with an older token than the
// partition's latest is rejected with ErrFenced and counted; the latest
// applies; token 0 is not fenced; other partitions are not affected.
func stale(t *testing.T, h Harness) {
	ctx := ctxFor(t)
	a, err := h.Store.Fence(ctx, "g", "t", 1)
	if err != nil {
		t.Fatal(err)
	}
	b, err := h.Store.Fence(ctx, "g", "t", 1)
	if err != nil {
		t.Fatal(err)
	}
	if b <= a {
		t.Fatalf("second token %d not above first %d", b, a)
	}
	other, err := h.Store.Fence(ctx, "g", "t", 2)
	if err != nil {
		t.Fatal(err)
	}
	_, err = h.Apply(ctx, op("s1", 1, a))
	var fe *store.FencedError
	if !errors.Is(err, store.ErrFenced) || !errors.As(err, &fe) || fe.Current != b {
		t.Fatalf("stale write: %v; want a FencedError with current %d", err, b)
	}
	if m := effects(t, h); m["s1"] != 0 {
		t.Fatal("a fenced write applied")
	}
	for _, w := range []store.Op{op("s1", 1, b), op("s2", 1, 0), op("s3", 2, other)} {
		if o, err := h.Apply(ctx, w); err != nil || o != store.Applied {
			t.Fatalf("%+v: %v, %v; want applied", w, o, err)
		}
	}
	if s := h.Store.Stats(); s.Fenced != 1 || s.Fences != 3 {
		t.Errorf("stats %+v, want 1 fenced and 3 fences", s)
	}
}

// raceFence: writers apply with token a in a loop while Fence hands out b:
// every write that started after Fence returned is rejected, and no write
// is lost or doubled.
func raceFence(t *testing.T, h Harness) {
	ctx := ctxFor(t)
	a, err := h.Store.Fence(ctx, "g", "t", 5)
	if err != nil {
		t.Fatal(err)
	}
	var fencedAt atomic.Int64 // unix ns when Fence returned
	var lateApplied, fenced atomic.Int64
	var wg sync.WaitGroup
	stop := make(chan struct{})
	for w := range 4 {
		wg.Go(func() {
			for i := 0; ; i++ {
				select {
				case <-stop:
					return
				default:
				}
				started := time.Now().UnixNano()
				o, err := h.Apply(ctx, op(fmt.Sprintf("r%d-%d", w, i), 5, a))
				switch {
				case errors.Is(err, store.ErrFenced):
					fenced.Add(1)
				case err != nil:
					t.Error(err)
					return
				case o == store.Applied:
					if at := fencedAt.Load(); at != 0 && started > at {
						lateApplied.Add(1)
					}
				}
			}
		})
	}
	time.Sleep(100 * time.Millisecond)
	if _, err := h.Store.Fence(ctx, "g", "t", 5); err != nil {
		t.Fatal(err)
	}
	fencedAt.Store(time.Now().UnixNano())
	time.Sleep(100 * time.Millisecond)
	close(stop)
	wg.Wait()
	if lateApplied.Load() != 0 {
		t.Errorf("%d writes with the old token applied after Fence returned a new one", lateApplied.Load())
	}
	if fenced.Load() == 0 {
		t.Error("no write was fenced")
	}
	m := effects(t, h)
	for k, c := range m {
		if c != 1 {
			t.Errorf("key %s applied %d times", k, c)
		}
	}
	t.Logf("%d writes applied before the fence, %d fenced after", len(m), fenced.Load())
}

// forget: 1,500 keys applied; Forget of 1,100 of them (one listed twice)
// and 50 never applied counts 1,100; applying all 1,500 again applies the
// forgotten ones (their effect twice) and finds the 400 others
// duplicates. Forget of nothing is 0.
func forget(t *testing.T, h Harness) {
	f, ok := h.Store.(store.Forgetter)
	if !ok {
		t.Skipf("%T is not a store.Forgetter", h.Store)
	}
	ctx := ctxFor(t)
	const n, forgotten = 1500, 1100
	key := func(i int) string { return fmt.Sprintf("fg%d", i) }
	applyAll := func() (applied, dups int64) {
		var a, d atomic.Int64
		var wg sync.WaitGroup
		errs := make(chan error, 16)
		for w := range 16 {
			wg.Go(func() {
				for i := w; i < n; i += 16 {
					o, err := h.Apply(ctx, op(key(i), 0, 0))
					if err != nil {
						errs <- err
						return
					}
					if o == store.Applied {
						a.Add(1)
					} else {
						d.Add(1)
					}
				}
			})
		}
		wg.Wait()
		close(errs)
		for err := range errs {
			t.Fatal(err)
		}
		return a.Load(), d.Load()
	}
	if a, d := applyAll(); a != n || d != 0 {
		t.Fatalf("first pass: %d applied, %d duplicates; want %d and 0", a, d, n)
	}
	keys := []string{key(0)} // listed twice: counted once
	for i := range forgotten {
		keys = append(keys, key(i))
	}
	for i := range 50 {
		keys = append(keys, fmt.Sprintf("never%d", i))
	}
	got, err := f.Forget(ctx, keys)
	if err != nil || got != forgotten {
		t.Fatalf("Forget: %d, %v; want %d (the keys it held)", got, err, forgotten)
	}
	if got, err := f.Forget(ctx, nil); err != nil || got != 0 {
		t.Errorf("Forget(nil): %d, %v", got, err)
	}
	if a, d := applyAll(); a != forgotten || d != n-forgotten {
		t.Errorf("after Forget: %d applied, %d duplicates; want %d and %d", a, d, forgotten, n-forgotten)
	}
	m := effects(t, h)
	for i := range n {
		want := 1
		if i < forgotten {
			want = 2
		}
		if m[key(i)] != want {
			t.Fatalf("key %s applied %d times, want %d", key(i), m[key(i)], want)
		}
	}
	if m["never0"] != 0 {
		t.Error("forgetting a key applied it")
	}
}
