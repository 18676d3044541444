package ordo_test

import (
	"context"
	"errors"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/ordokafka/ordo/pkg/ordo"
)

// TestHoldPartitionPausesThePartition: a breaker opens (every call returns
// HoldPartition) after some records. While it is open, the partition starts
// no other record (the calls are the held records' probes only, about one
// per HoldDelay each), nothing is dead-lettered, no attempt is spent; once
// it closes every record is applied exactly once, in key order.
func TestHoldPartitionPausesThePartition(t *testing.T) {
	const n = 2000
	c := newCluster(t, 1, "t", "t.g.dlq")
	produce(t, c.ListenAddrs(), "t", n, 50, 3)
	var open atomic.Bool
	var callsWhileOpen, applied atomic.Int64
	led := newLedger()
	proc := ordo.ProcessorFunc(func(ctx context.Context, r *kgo.Record) error {
		if open.Load() {
			callsWhileOpen.Add(1)
			return ordo.HoldPartition(errors.New("breaker open"))
		}
		if info, _ := ordo.InfoFromContext(ctx); info.Attempt != 1 {
			return ordo.Permanent(errors.New("a hold spent an attempt"))
		}
		led.enter(r, true)
		led.exit(r, true)
		if applied.Add(1) == n/4 {
			open.Store(true) // the downstream goes down
		}
		return nil
	})
	cfg := baseConfig(c.ListenAddrs(), "g", proc, "t")
	cfg.WorkersPerPartition = 4
	cfg.Retry.HoldDelay = 50 * time.Millisecond
	cons := startConsumer(t, cfg)
	waitFor(t, 30*time.Second, "the breaker to open", open.Load)
	waitFor(t, 10*time.Second, "the partition to pause for the hold", func() bool {
		ls := cons.Lanes()
		return len(ls) == 1 && ls[0].Paused && ls[0].PauseReason == "hold"
	})
	time.Sleep(500 * time.Millisecond) // ten hold delays with the breaker open
	calls := callsWhileOpen.Load()
	// Only the held records run while it is open: the ones that were in a
	// call when it opened (at most the workers, plus the runner's chunk
	// records already past the check), each about once per hold delay.
	if calls > 4*(500/50+2)+8 {
		t.Errorf("%d calls in 500 ms with the breaker open; want only the held records' probes", calls)
	}
	if got := applied.Load(); got >= n {
		t.Fatalf("applied %d of %d records with the breaker open", got, n)
	}
	open.Store(false)
	waitFor(t, 30*time.Second, "every record after the breaker closed", func() bool { return led.count() == n })
	waitFor(t, 10*time.Second, "fetching to resume", func() bool {
		ls := cons.Lanes()
		return len(ls) == 1 && !ls[0].Paused
	})
	if d := metricValue(t, cons.Registry(), "ordo_records_total", "outcome", "dlq"); d != 0 {
		t.Errorf("%v records dead-lettered during the hold", d)
	}
	stop(t, cons)
	checkLedger(t, led, n, true)
	t.Logf("%d calls while the breaker was open for ~0.5 s", calls)
}

// countingFencer is a store's fencing counter: a token per partition that
// grows at each Fence, as Redis INCR would give. fail makes the first calls
// fail.
type countingFencer struct {
	mu     sync.Mutex
	tokens map[string]int64
	fail   atomic.Int32
}

func (f *countingFencer) Fence(_ context.Context, group, topic string, partition int32) (int64, error) {
	if f.fail.Add(-1) >= 0 {
		return 0, errors.New("store unreachable")
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	k := group + "/" + topic + "/" + strconv.Itoa(int(partition))
	f.tokens[k]++
	return f.tokens[k], nil
}

// TestFencingTokensGrowAcrossMembers: with a Fencer, every call carries the
// token of its partition's current ownership; when the partition moves from
// A to B, B's token is higher than any A used (a store fencing on it
// rejects A). A lane whose Fencer fails at first runs nothing until it has
// a token.
func TestFencingTokensGrowAcrossMembers(t *testing.T) {
	c := newCluster(t, 1, "t")
	produce(t, c.ListenAddrs(), "t", 200, 10, 1)
	f := &countingFencer{tokens: map[string]int64{}}
	f.fail.Store(3)
	var mu sync.Mutex
	tokens := map[string][]int64{}
	proc := func(member string) ordo.Processor {
		return ordo.ProcessorFunc(func(ctx context.Context, r *kgo.Record) error {
			info, _ := ordo.InfoFromContext(ctx)
			mu.Lock()
			tokens[member] = append(tokens[member], info.Token)
			mu.Unlock()
			return nil
		})
	}
	count := func(m string) int { mu.Lock(); defer mu.Unlock(); return len(tokens[m]) }
	cfgA := baseConfig(c.ListenAddrs(), "g", proc("A"), "t")
	cfgA.Fencer = f
	a := startConsumer(t, cfgA)
	waitFor(t, 30*time.Second, "A to apply the first records", func() bool { return count("A") == 200 })
	stop(t, a)
	produce(t, c.ListenAddrs(), "t", 200, 10, 2)
	cfgB := cfgA
	cfgB.Processor = proc("B")
	b := startConsumer(t, cfgB)
	waitFor(t, 30*time.Second, "B to apply the rest", func() bool { return count("B") == 200 })
	stop(t, b)
	mu.Lock()
	defer mu.Unlock()
	maxA := int64(0)
	for _, tok := range tokens["A"] {
		if tok <= 0 {
			t.Fatalf("A ran a record with token %d: nothing may run before the token", tok)
		}
		maxA = max(maxA, tok)
	}
	for _, tok := range tokens["B"] {
		if tok <= maxA {
			t.Fatalf("B's token %d is not above A's %d", tok, maxA)
		}
	}
}

// TestReady: Ready fails before Start, passes once the member is in its
// group with a broker answering, fails naming the partition when a record
// holds its partition's watermark for longer than StallAfter, and fails
// after Stop.
func TestReady(t *testing.T) {
	c := newCluster(t, 2, "t")
	produceRecords(t, c.ListenAddrs(), &kgo.Record{Topic: "t", Key: []byte("stuck"), Value: []byte("x"), Partition: 0})
	release := newReleaser()
	t.Cleanup(release.Open)
	proc := ordo.ProcessorFunc(func(ctx context.Context, r *kgo.Record) error {
		if !release.isOpen() {
			return ordo.Hold(errors.New("not yet"))
		}
		return nil
	})
	cfg := baseConfig(c.ListenAddrs(), "g", proc, "t")
	cfg.StallAfter = 300 * time.Millisecond
	cfg.Retry.HoldDelay = 20 * time.Millisecond
	cons, err := ordo.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	if cons.Ready() == nil {
		t.Error("Ready before Start")
	}
	if err := cons.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 10*time.Second, "ready", func() bool { return cons.Ready() == nil })
	var stalled error
	waitFor(t, 10*time.Second, "the held record to stall its partition", func() bool {
		stalled = cons.Ready()
		return stalled != nil
	})
	if !strings.Contains(stalled.Error(), "stalled") || !strings.Contains(stalled.Error(), "t/") {
		t.Errorf("Ready = %v; want a stall naming the partition", stalled)
	}
	release.Open()
	waitFor(t, 10*time.Second, "ready again once the record is through", func() bool { return cons.Ready() == nil })
	stop(t, cons)
	if !errors.Is(cons.Ready(), ordo.ErrStopped) {
		t.Errorf("Ready after Stop = %v, want ErrStopped", cons.Ready())
	}
}
