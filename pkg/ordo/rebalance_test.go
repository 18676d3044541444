package ordo_test

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/ordokafka/ordo/pkg/ordo"
)

// TestRebalanceJoinAndLeaveMidStream runs member A, lets B join while A is
// busy, churns a third member C in and out, then stops A: partitions move
// A -> B (and through C) mid-stream. Every record must be applied, the
// first applications of each key must be in offset order, no key may run on
// two members at once, and no commit may pass an unfinished record or move
// a partition's offset backwards (a stale owner committing late would).
func TestRebalanceJoinAndLeaveMidStream(t *testing.T) {
	const n = 6000
	c := newCluster(t, 6, "t")
	produce(t, c.ListenAddrs(), "t", n, 100, 3)
	led := newLedger()
	watch := watchCommits(c, func(_ string, p int32, off int64) error {
		for o := off - 1; o >= 0 && o >= off-n; o-- {
			if !led.isApplied(p, o) {
				return fmt.Errorf("commit %d@%d passes unfinished offset %d", p, off, o)
			}
		}
		return nil
	})
	proc := ordo.ProcessorFunc(func(ctx context.Context, r *kgo.Record) error {
		led.enter(r, true)
		time.Sleep(time.Millisecond)
		led.exit(r, true)
		return nil
	})
	cfg := baseConfig(c.ListenAddrs(), "g", proc, "t")
	cfg.WorkersPerPartition = 2
	a := startConsumer(t, cfg)
	waitFor(t, 30*time.Second, "A to make progress", func() bool { return led.count() > n/10 })
	b := startConsumer(t, cfg)
	waitFor(t, 30*time.Second, "B to get partitions", func() bool { return len(b.Lanes()) > 0 })
	cm := startConsumer(t, cfg)
	waitFor(t, 30*time.Second, "C to get partitions", func() bool { return len(cm.Lanes()) > 0 })
	stop(t, cm)
	waitFor(t, 30*time.Second, "progress", func() bool { return led.count() > n/2 })
	stop(t, a)
	waitFor(t, 60*time.Second, "all records", func() bool { return led.count() == n })
	if got := len(b.Lanes()); got != 6 {
		t.Errorf("B owns %d partitions after A and C left, want 6", got)
	}
	stop(t, b)
	watch.assert(t)
	checkLedger(t, led, n, false)
	// A graceful revoke runs the fetched records below the highest
	// finished offset before it commits, and commits an offset map of
	// whatever finished above the watermark all the same; the next owner
	// marks those done without running them, so no record is applied twice
	// (with neither: ~9% were). The handoff tests exercise the map itself.
	already := 0.0
	for _, m := range []*ordo.Consumer{a, b, cm} {
		already += metricValue(t, m.Registry(), "ordo_records_total", "outcome", "already_done")
	}
	if led.dups != 0 {
		t.Errorf("%d records applied twice across rebalances, want 0", led.dups)
	}
	t.Logf("records marked from offset maps: %v; duplicates: %d of %d", already, led.dups, n)
}

// TestLostPartitionCancelsAndNeverMarks makes the broker fence the member
// (a heartbeat answered UNKNOWN_MEMBER_ID): its partitions are lost. The
// record in flight must see its context canceled, its late completion must
// be dropped and counted as stale (never marked), and the record must be
// redelivered and applied after the member rejoins.
func TestLostPartitionCancelsAndNeverMarks(t *testing.T) {
	const n = 50
	c := newCluster(t, 1, "t")
	produce(t, c.ListenAddrs(), "t", n, 0, 1)
	led := newLedger()
	const stuck = 5
	var calls atomic.Int32
	canceled := make(chan struct{})
	var once sync.Once
	proc := ordo.ProcessorFunc(func(ctx context.Context, r *kgo.Record) error {
		if r.Offset == stuck && calls.Add(1) == 1 {
			<-ctx.Done()
			once.Do(func() { close(canceled) })
			// Ignore the cancellation and report success, as a careless
			// processor would: Ordo must not mark it.
			led.enter(r, false)
			led.exit(r, true)
			return nil
		}
		led.enter(r, false)
		led.exit(r, true)
		return nil
	})
	cfg := baseConfig(c.ListenAddrs(), "g", proc, "t")
	cons := startConsumer(t, cfg)
	waitFor(t, 30*time.Second, "the stuck record to start", func() bool { return calls.Load() >= 1 })
	// Fence the member on its next heartbeat.
	c.ControlKey(int16(kmsg.Heartbeat), func(req kmsg.Request) (kmsg.Response, error, bool) {
		resp := req.ResponseKind().(*kmsg.HeartbeatResponse)
		resp.ErrorCode = kerr.UnknownMemberID.Code
		return resp, nil, true
	})
	select {
	case <-canceled:
	case <-time.After(30 * time.Second):
		t.Fatal("the in-flight record's context was not canceled on loss")
	}
	reg := cons.Registry()
	waitFor(t, 30*time.Second, "stale completion counted", func() bool {
		return metricValue(t, reg, "ordo_records_total", "outcome", "stale") == 1
	})
	if got := metricValue(t, reg, "ordo_partitions_lost_total", "", ""); got != 1 {
		t.Errorf("ordo_partitions_lost_total = %v, want 1", got)
	}
	waitFor(t, 30*time.Second, "redelivery after rejoin", func() bool { return calls.Load() >= 2 && led.count() == n })
	stop(t, cons)
	led.mu.Lock()
	if led.applied[pk{0, stuck}] != 2 {
		t.Errorf("stuck record applied %d times, want 2 (once stale, once redelivered)", led.applied[pk{0, stuck}])
	}
	led.mu.Unlock()
}

// TestStopDrainsAndCommitsLowestUnfinished stops a busy consumer: records
// already running finish with a live context, no record starts after Stop,
// and the committed offset of each partition is exactly its lowest
// unapplied offset.
func TestStopDrainsAndCommitsLowestUnfinished(t *testing.T) {
	for _, cancel := range []bool{false, true} {
		t.Run(fmt.Sprintf("cancel=%v", cancel), func(t *testing.T) {
			const n = 400
			c := newCluster(t, 2, "t")
			produce(t, c.ListenAddrs(), "t", n, 40, 5)
			led := newLedger()
			var started, ctxErrs, afterStop atomic.Int32
			var stopping atomic.Bool
			proc := ordo.ProcessorFunc(func(ctx context.Context, r *kgo.Record) error {
				if stopping.Load() {
					afterStop.Add(1)
				}
				started.Add(1)
				select {
				case <-time.After(50 * time.Millisecond):
				case <-ctx.Done():
					ctxErrs.Add(1)
					return ctx.Err()
				}
				led.enter(r, false)
				led.exit(r, true)
				return nil
			})
			cfg := baseConfig(c.ListenAddrs(), "g", proc, "t")
			cfg.WorkersPerPartition = 4
			cons := startConsumer(t, cfg)
			waitFor(t, 30*time.Second, "progress", func() bool { return led.count() >= 20 })
			ctx, cancelCtx := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancelCtx()
			// Stop races with workers taking their next record; only a
			// record taken after Stop returned would be a violation.
			var err error
			if cancel {
				err = cons.StopAndCancel(ctx)
			} else {
				err = cons.Stop(ctx)
			}
			stopping.Store(true)
			if err != nil {
				t.Fatal(err)
			}
			select {
			case <-cons.Stopped():
			default:
				t.Fatal("Stopped() not closed after Stop returned")
			}
			final := cons.Lanes() // as Stop left them
			if len(final) != 2 {
				t.Errorf("Lanes() after stop gives %d lanes, want the 2 Stop committed", len(final))
			}
			for _, l := range final {
				if l.Running != 0 || l.Committed != l.Watermark {
					t.Errorf("final lane %s/%d: running %d, committed %d, watermark %d; want 0 running and the watermark committed",
						l.Topic, l.Partition, l.Running, l.Committed, l.Watermark)
				}
			}
			time.Sleep(100 * time.Millisecond)
			if afterStop.Load() != 0 {
				t.Errorf("%d records started after Stop returned", afterStop.Load())
			}
			if !cancel && ctxErrs.Load() != 0 {
				t.Errorf("Stop canceled %d running records; it must let them finish", ctxErrs.Load())
			}
			if cancel && ctxErrs.Load() == 0 {
				t.Error("StopAndCancel canceled no running record")
			}
			// A call ended by Ordo's cancel is counted as canceled, never
			// as the record's failure.
			canceled := metricValue(t, cons.Registry(), "ordo_records_total", "outcome", "canceled")
			failed := metricValue(t, cons.Registry(), "ordo_records_total", "outcome", "error")
			if failed != 0 || (cancel && canceled != float64(ctxErrs.Load())) {
				t.Errorf("outcomes: %v error, %v canceled; want 0 and the %d canceled calls", failed, canceled, ctxErrs.Load())
			}
			adm := kadm.NewClient(newPlainClient(t, c.ListenAddrs()))
			offs, err := adm.FetchOffsets(context.Background(), "g")
			if err != nil {
				t.Fatal(err)
			}
			led.mu.Lock()
			defer led.mu.Unlock()
			for p := int32(0); p < 2; p++ {
				want := int64(0)
				for led.applied[pk{p, want}] > 0 {
					want++
				}
				got, ok := offs.Lookup("t", p)
				if !ok {
					t.Fatalf("no committed offset for partition %d", p)
				}
				if got.At != want {
					t.Errorf("partition %d committed %d, want lowest unapplied %d", p, got.At, want)
				}
			}
		})
	}
}

func newPlainClient(t testing.TB, addrs []string) *kgo.Client {
	t.Helper()
	cl, err := kgo.NewClient(kgo.SeedBrokers(addrs...))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(cl.Close)
	return cl
}

// TestBackpressureBoundsInFlight has a backlog 20 times the per-partition
// budget and a slow processor: the lane's unfinished records never exceed
// the budget plus one fetch, and the partition is paused and resumed. With
// four partitions and a global budget under two lanes' worth, the total
// stays within the global budget plus one poll: a lane that received
// nothing in the poll that filled the budget is paused too (before, each
// lane could overshoot by a poll of its own: 250-261 of 200 measured).
func TestBackpressureBoundsInFlight(t *testing.T) {
	const (
		parts     = 4
		budget    = 100
		perPart   = budget * 20
		fetchMax  = 4 << 10 // bytes per partition per fetch: well under 100 records
		maxGlobal = 150
	)
	c := newCluster(t, parts, "t")
	produce(t, c.ListenAddrs(), "t", parts*perPart, 500, 9)
	led := newLedger()
	gate := make(chan struct{})
	var gated atomic.Bool
	gated.Store(true)
	proc := ordo.ProcessorFunc(func(ctx context.Context, r *kgo.Record) error {
		if gated.Load() {
			select {
			case <-gate:
			case <-ctx.Done():
				return ctx.Err()
			}
		}
		led.enter(r, false)
		led.exit(r, true)
		return nil
	})
	cfg := baseConfig(c.ListenAddrs(), "g", proc, "t")
	cfg.MaxInFlightPerPartition = budget
	cfg.MaxInFlight = maxGlobal
	cfg.MaxPollRecords = 50
	cfg.KgoOpts = append(cfg.KgoOpts, kgo.FetchMaxPartitionBytes(fetchMax), kgo.FetchMaxBytes(fetchMax*parts))
	cons := startConsumer(t, cfg)
	var peakLane, peakTotal int
	sample := func() {
		total := 0
		for _, s := range cons.Lanes() {
			peakLane = max(peakLane, s.InFlight)
			total += s.InFlight
		}
		peakTotal = max(peakTotal, total)
	}
	// Let the lanes fill while the processor is gated.
	deadline := time.Now().Add(2 * time.Second)
	for time.Now().Before(deadline) {
		sample()
		time.Sleep(5 * time.Millisecond)
	}
	pausedSeen := false
	for _, s := range cons.Lanes() {
		pausedSeen = pausedSeen || s.Paused
	}
	if !pausedSeen {
		t.Error("no partition paused with a full budget")
	}
	// Release the gate and let everything drain while sampling.
	close(gate)
	for led.count() < parts*perPart {
		sample()
		time.Sleep(2 * time.Millisecond)
	}
	stop(t, cons)
	// One poll may overshoot the budget by at most MaxPollRecords.
	if peakLane > budget+cfg.MaxPollRecords {
		t.Errorf("peak in-flight of a lane %d > budget %d + one poll %d", peakLane, budget, cfg.MaxPollRecords)
	}
	if peakTotal > maxGlobal+cfg.MaxPollRecords {
		t.Errorf("peak in-flight total %d > global budget %d + one poll %d", peakTotal, maxGlobal, cfg.MaxPollRecords)
	}
	if peakTotal < maxGlobal/2 {
		t.Errorf("peak in-flight total %d: the budget was never approached, the test proves nothing", peakTotal)
	}
	pauses := metricValue(t, cons.Registry(), "ordo_partition_pauses_total", "topic", "t")
	if pauses < 1 {
		t.Errorf("ordo_partition_pauses_total = %v", pauses)
	}
	t.Logf("backlog %d, peak lane %d, peak total %d, pauses %v", parts*perPart, peakLane, peakTotal, pauses)
	checkLedger(t, led, parts*perPart, true)
}

// metricValue sums the samples of the metric family name in reg whose
// label equals value (an empty label matches every sample).
func metricValue(t testing.TB, reg *prometheus.Registry, name, label, value string) float64 {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	sum := 0.0
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
		for _, m := range mf.GetMetric() {
			match := label == ""
			for _, lp := range m.GetLabel() {
				if lp.GetName() == label && lp.GetValue() == value {
					match = true
				}
			}
			if !match {
				continue
			}
			switch {
			case m.Counter != nil:
				sum += m.GetCounter().GetValue()
			case m.Gauge != nil:
				sum += m.GetGauge().GetValue()
			}
		}
	}
	return sum
}

// TestRebalanceDuringStopWaitsForItsCommit: A is stopping and draining a
// slow record when B joins. The rebalance must not hand A's partition to B
// before A committed it: B would run the same key concurrently and A's late
// commit could move the partition's offset backwards.
func TestRebalanceDuringStopWaitsForItsCommit(t *testing.T) {
	const n = 200
	c := newCluster(t, 2, "t")
	produce(t, c.ListenAddrs(), "t", n, 10, 11)
	led := newLedger()
	watch := watchCommits(c, func(string, int32, int64) error { return nil })
	gate := make(chan struct{})
	var started atomic.Int32
	proc := ordo.ProcessorFunc(func(ctx context.Context, r *kgo.Record) error {
		led.enter(r, true)
		if r.Offset == 0 {
			started.Add(1)
			<-gate // both partitions' first records hold the drain
		}
		led.exit(r, true)
		return nil
	})
	cfg := baseConfig(c.ListenAddrs(), "g", proc, "t")
	cfg.WorkersPerPartition = 1
	cfg.RevokeTimeout = 3 * time.Second
	a := startConsumer(t, cfg)
	waitFor(t, 30*time.Second, "both slow records to start", func() bool { return started.Load() == 2 })
	stopped := make(chan error, 1)
	go func() {
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
		defer cancel()
		stopped <- a.Stop(ctx)
	}()
	time.Sleep(100 * time.Millisecond) // A is draining
	b := startConsumer(t, cfg)
	time.Sleep(1500 * time.Millisecond) // time for a rebalance to (wrongly) hand over
	close(gate)
	if err := <-stopped; err != nil {
		t.Fatal(err)
	}
	waitFor(t, 30*time.Second, "all records", func() bool { return led.count() == n })
	stop(t, b)
	watch.assert(t)
	checkLedger(t, led, n, false)
}

// TestRunStopsGracefullyWhenCtxEnds: Run returns once its context ends,
// after letting the running record finish (not canceling it) and
// committing past it.
func TestRunStopsGracefullyWhenCtxEnds(t *testing.T) {
	c := newCluster(t, 1, "t")
	produce(t, c.ListenAddrs(), "t", 1, 0, 1)
	started, finished := make(chan struct{}), make(chan error, 1)
	proc := ordo.ProcessorFunc(func(ctx context.Context, r *kgo.Record) error {
		close(started)
		time.Sleep(200 * time.Millisecond)
		finished <- ctx.Err()
		return nil
	})
	cons, err := ordo.New(baseConfig(c.ListenAddrs(), "g", proc, "t"))
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- cons.Run(ctx) }()
	<-started
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if err := <-finished; err != nil {
		t.Errorf("the running record's context ended (%v): Run must drain, not cancel", err)
	}
	adm := kadm.NewClient(newPlainClient(t, c.ListenAddrs()))
	offs, err := adm.FetchOffsets(context.Background(), "g")
	if err != nil {
		t.Fatal(err)
	}
	if o, _ := offs.Lookup("t", 0); o.At != 1 {
		t.Errorf("committed %d, want 1", o.At)
	}
}
