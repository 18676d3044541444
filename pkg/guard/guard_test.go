package guard_test

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/ordokafka/ordo/internal/kfaketest"
	"github.com/ordokafka/ordo/pkg/guard"
	"github.com/ordokafka/ordo/pkg/ordo"
	"github.com/ordokafka/ordo/pkg/store"
)

// kind names the outcome an error asks of the engine. ordo exports no
// predicate for its outcome wrappers (see the report), so the unit tests
// read the wrapper's type; the engine tests check the behavior itself.
func kind(err error) string {
	for e := err; e != nil; e = errors.Unwrap(e) {
		switch fmt.Sprintf("%T", e) {
		case "*ordo.holdPartitionError":
			return "hold-partition"
		case "*ordo.holdError":
			return "hold"
		case "*ordo.permanentError":
			return "permanent"
		}
	}
	if err == nil {
		return "ok"
	}
	return "retry"
}

var rec = &kgo.Record{Topic: "t", Key: []byte("k")}

// TestBreakerHoldsWhileOpen: failures below the threshold are plain errors
// (retried, attempts spent); the one that opens the breaker and every call
// while it is open hold the partition (no attempt, no DLQ) without calling
// the dependency; after OpenFor one probe goes through: its failure opens
// it again (and holds), its success closes it. The metric follows.
func TestBreakerHoldsWhileOpen(t *testing.T) {
	reg := prometheus.NewRegistry()
	bs, err := guard.NewBreakers(reg)
	if err != nil {
		t.Fatal(err)
	}
	var changes []string
	var mu sync.Mutex
	b, err := bs.New(guard.BreakerOptions{Name: "sink", Failures: 3, OpenFor: 100 * time.Millisecond,
		OnStateChange: func(_ string, from, to guard.State) {
			mu.Lock()
			changes = append(changes, from.String()+">"+to.String())
			mu.Unlock()
		}})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := bs.New(guard.BreakerOptions{Name: "sink"}); err == nil {
		t.Error("a second breaker with the same name was accepted")
	}
	var down atomic.Bool
	var calls atomic.Int64
	p := b.Middleware()(ordo.ProcessorFunc(func(context.Context, *kgo.Record) error {
		calls.Add(1)
		if down.Load() {
			return errors.New("503")
		}
		return nil
	}))
	state := func() float64 { return kfaketest.Metric(t, reg, "ordo_breaker_state", "name", "sink") }
	ctx := context.Background()
	down.Store(true)
	for i, want := range []string{"retry", "retry", "hold-partition", "hold-partition", "hold-partition"} {
		if got := kind(p.Process(ctx, rec)); got != want {
			t.Fatalf("call %d: %s, want %s", i+1, got, want)
		}
	}
	if calls.Load() != 3 || b.State() != guard.Open || state() != 2 {
		t.Fatalf("%d calls reached the dependency, state %s, metric %v; want 3, open, 2", calls.Load(), b.State(), state())
	}
	time.Sleep(120 * time.Millisecond)
	if state() != 1 {
		t.Errorf("metric %v after OpenFor, want 1 (half-open)", state())
	}
	if got := kind(p.Process(ctx, rec)); got != "hold-partition" || calls.Load() != 4 {
		t.Fatalf("failed probe: %s after %d calls; want hold-partition after 4", got, calls.Load())
	}
	time.Sleep(120 * time.Millisecond)
	down.Store(false)
	if got := kind(p.Process(ctx, rec)); got != "ok" || b.State() != guard.Closed || state() != 0 {
		t.Fatalf("good probe: %s, state %s, metric %v; want ok, closed, 0", got, b.State(), state())
	}
	mu.Lock()
	defer mu.Unlock()
	want := "[closed>open open>half-open half-open>open open>half-open half-open>closed]"
	if fmt.Sprint(changes) != want {
		t.Errorf("changes %v, want %s", changes, want)
	}
}

// TestBreakerIgnoresPermanentAndFenced: permanent errors (the dependency
// answered), fenced writes and canceled calls never open the breaker.
func TestBreakerIgnoresPermanentAndFenced(t *testing.T) {
	bs, _ := guard.NewBreakers(nil)
	b, err := bs.New(guard.BreakerOptions{Name: "sink", Failures: 2})
	if err != nil {
		t.Fatal(err)
	}
	errs := []error{
		ordo.Permanent(errors.New("400 bad request")),
		fmt.Errorf("write: %w", store.ErrFenced),
		context.Canceled,
	}
	for i := range 30 {
		err := errs[i%len(errs)]
		got := b.Do(context.Background(), func(context.Context) error { return err })
		if !errors.Is(got, err) || kind(got) == "hold-partition" {
			t.Fatalf("%v became %v", err, got)
		}
	}
	if b.State() != guard.Closed {
		t.Errorf("state %s, want closed", b.State())
	}
}

// TestLimiterNeverWaits: over the rate, Take returns at once with a hold
// for the time to the next turn, and gives its reservation back.
func TestLimiterNeverWaits(t *testing.T) {
	l, err := guard.NewLimiter("api", 10, 1)
	if err != nil {
		t.Fatal(err)
	}
	if err := l.Take(); err != nil {
		t.Fatalf("first take: %v", err)
	}
	start := time.Now()
	for range 100 {
		err := l.Take()
		if kind(err) != "hold" || !errors.Is(err, guard.ErrRateLimited) {
			t.Fatalf("over the rate: %v, want a hold wrapping ErrRateLimited", err)
		}
	}
	if el := time.Since(start); el > 50*time.Millisecond {
		t.Errorf("100 takes over the rate took %s: the limiter waited", el)
	}
	time.Sleep(110 * time.Millisecond)
	if err := l.Take(); err != nil {
		t.Errorf("a take after 1/rate: %v (the canceled reservations were not given back)", err)
	}
	if _, err := guard.NewLimiter("bad", 0, 1); err == nil {
		t.Error("a zero rate was accepted")
	}
}

// TestRateLimitHonoured: a consumer limited to 20 records a second, with
// 200 keys ready on 4 partitions, runs 20 a second, within 10%, measured
// over 5 seconds; a second consumer of the same records without the limit
// finishes all of them meanwhile (the limit stalls nothing else).
func TestRateLimitHonoured(t *testing.T) {
	const perSecond, window = 20, 5 * time.Second
	c := kfaketest.Cluster(t, 4, "t", "t.dlq")
	kfaketest.Produce(t, c.ListenAddrs(), "t", 2000, 200, false)
	lim, err := guard.NewLimiter("sink", perSecond, 1)
	if err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	var times []time.Time
	limited := ordo.ProcessorFunc(func(context.Context, *kgo.Record) error {
		mu.Lock()
		times = append(times, time.Now())
		mu.Unlock()
		return nil
	})
	cfg := kfaketest.Config(c.ListenAddrs(), "limited", limited, "t")
	cfg.Middleware = []ordo.Middleware{lim.Middleware()}
	cons := kfaketest.Start(t, cfg)

	var free atomic.Int64
	other := kfaketest.Config(c.ListenAddrs(), "free", ordo.ProcessorFunc(func(context.Context, *kgo.Record) error {
		free.Add(1)
		return nil
	}), "t")
	otherCons := kfaketest.Start(t, other)

	kfaketest.WaitFor(t, 10*time.Second, "the first limited record", func() bool { mu.Lock(); defer mu.Unlock(); return len(times) > 0 })
	time.Sleep(2 * time.Second) // past the start (both groups joining, the free consumer at full speed)
	mu.Lock()
	from := time.Now()
	mu.Unlock()
	time.Sleep(window)
	mu.Lock()
	n := 0
	for _, ts := range times {
		if !ts.Before(from) && ts.Before(from.Add(window)) {
			n++
		}
	}
	mu.Unlock()
	var per []int
	for _, ts := range times {
		if s := int(ts.Sub(from) / time.Second); !ts.Before(from) && s < int(window/time.Second) {
			for len(per) <= s {
				per = append(per, 0)
			}
			per[s]++
		}
	}
	t.Logf("per second: %v", per)
	rate := float64(n) / window.Seconds()
	t.Logf("limited consumer: %d calls in %s = %.2f/s (limit %d/s); unlimited consumer: %d of 2000 records meanwhile", n, window, rate, perSecond, free.Load())
	if rate < perSecond*0.9 || rate > perSecond*1.1 {
		t.Errorf("%.2f calls/s, want %d within 10%%", rate, perSecond)
	}
	if free.Load() != 2000 {
		t.Errorf("the unlimited consumer applied %d of 2000 records in the meantime", free.Load())
	}
	if d := kfaketest.Metric(t, cons.Registry(), "ordo_records_total", "outcome", "dlq"); d != 0 {
		t.Errorf("%v records dead-lettered", d)
	}
	kfaketest.Stop(t, otherCons)
	kfaketest.Stop(t, cons)
}
