package redisledger_test

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/redis/go-redis/v9"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/ordokafka/ordo/internal/kfaketest"
	"github.com/ordokafka/ordo/internal/testenv"
	"github.com/ordokafka/ordo/pkg/guard"
	"github.com/ordokafka/ordo/pkg/ordo"
	"github.com/ordokafka/ordo/pkg/store"
	"github.com/ordokafka/ordo/pkg/store/redisstore"
	"github.com/ordokafka/ordo/processors/redisledger"
)

// setup returns a store on client with a prefix of its own (its keys are
// deleted when t ends) and a ledger on it.
func setup(t *testing.T, client *redis.Client, opts redisstore.Options) (*redisstore.Store, *redisledger.Processor) {
	t.Helper()
	prefix := "ordotest:" + testenv.Name(t) + ":"
	opts.Client, opts.Prefix = client, prefix
	st, err := redisstore.New(opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(st.Close)
	t.Cleanup(func() { deletePrefix(t, prefix) })
	p, err := redisledger.New(redisledger.Options{Store: st})
	if err != nil {
		t.Fatal(err)
	}
	return st, p
}

func deletePrefix(t *testing.T, prefix string) {
	c := redis.NewClient(&redis.Options{Addr: testenv.RedisAddr(t)})
	defer c.Close()
	ctx := context.Background()
	iter := c.Scan(ctx, 0, prefix+"*", 1000).Iterator()
	var keys []string
	for iter.Next(ctx) {
		keys = append(keys, iter.Val())
	}
	if len(keys) > 0 {
		_ = c.Del(ctx, keys...).Err()
	}
}

// ledgerState reads every list of keys k0..k<nkeys-1> (and no key): how
// many times each origin was appended, and per key whether the origins
// appear in offset order.
type ledgerState struct {
	applied    map[ordo.Origin]int
	dups       int
	outOfOrder int
	violations int64
}

func readLedger(t *testing.T, c *redis.Client, p *redisledger.Processor, nkeys int) ledgerState {
	t.Helper()
	ctx := context.Background()
	s := ledgerState{applied: map[ordo.Origin]int{}}
	keys := []string{""}
	for i := range nkeys {
		keys = append(keys, "k"+strconv.Itoa(i))
	}
	for _, k := range keys {
		entries, err := c.LRange(ctx, p.ListKey([]byte(k)), 0, -1).Result()
		if err != nil {
			t.Fatal(err)
		}
		last := map[int32]int64{}
		for _, raw := range entries {
			e, err := redisledger.ParseEntry(raw)
			if err != nil {
				t.Fatal(err)
			}
			s.applied[e.Origin]++
			if s.applied[e.Origin] > 1 {
				s.dups++
			}
			if prev, ok := last[e.Origin.Partition]; ok && e.Origin.Offset <= prev {
				s.outOfOrder++
			}
			last[e.Origin.Partition] = e.Origin.Offset
		}
	}
	v, err := c.Get(ctx, p.ViolationsKey()).Int64()
	if err != nil && !errors.Is(err, redis.Nil) {
		t.Fatal(err)
	}
	s.violations = v
	return s
}

// TestAppliesOnce: the same record delivered twice, then by 8 goroutines
// at once, is appended once; an older offset of the same key after a newer
// one counts a violation (or, strict, is refused as permanent).
func TestAppliesOnce(t *testing.T) {
	client := testenv.Redis(t)
	_, p := setup(t, client, redisstore.Options{})
	ctx := context.Background()
	r := &kgo.Record{Topic: "t", Partition: 0, Offset: 7, Key: []byte("k0"), Value: []byte("v7")}
	for range 2 {
		if err := p.Process(ctx, r); err != nil {
			t.Fatal(err)
		}
	}
	var wg sync.WaitGroup
	for range 8 {
		wg.Go(func() {
			if err := p.Process(ctx, r); err != nil {
				t.Error(err)
			}
		})
	}
	wg.Wait()
	s := readLedger(t, client, p, 1)
	if len(s.applied) != 1 || s.dups != 0 {
		t.Fatalf("ledger %+v: want the record once", s)
	}
	older := &kgo.Record{Topic: "t", Partition: 0, Offset: 3, Key: []byte("k0"), Value: []byte("v3")}
	if err := p.Process(ctx, older); err != nil {
		t.Fatal(err)
	}
	if s := readLedger(t, client, p, 1); s.violations != 1 {
		t.Errorf("violations %d, want 1", s.violations)
	}
	st2, err := redisstore.New(redisstore.Options{Client: client, Prefix: "ordotest:" + testenv.Name(t) + ":"})
	if err != nil {
		t.Fatal(err)
	}
	defer st2.Close()
	strict, _ := redisledger.New(redisledger.Options{Store: st2, Strict: true})
	t.Cleanup(func() { deletePrefix(t, st2.Prefix()) })
	if err := strict.Process(ctx, r); err != nil {
		t.Fatal(err)
	}
	if err := strict.Process(ctx, older); ordo.ClassOf(err) != ordo.ClassPermanent {
		t.Errorf("strict, out of order: %v, want a permanent error", err)
	}
}

// TestZombieIsFenced: member A is slow on one record of each of its two
// partitions (it ignores cancellation, as a processor slower than the
// rebalance timeout would); member B joins and takes one partition, with
// a new token, and applies its records, the slow one included. When A's
// slow calls finally write, the one on the partition B took is rejected as
// fenced (counted); the one on the partition A kept applies. Every record
// is in the ledger once.
func TestZombieIsFenced(t *testing.T) {
	const n, nkeys = 400, 20
	client := testenv.Redis(t)
	st, ledger := setup(t, client, redisstore.Options{})
	c := kfaketest.Cluster(t, 2, "t", "t.dlq")
	recs := kfaketest.Produce(t, c.ListenAddrs(), "t", n, nkeys, false)
	perPartition := map[int32]int{}
	for _, r := range recs {
		perPartition[r.Partition]++
	}

	release := make(chan struct{})
	var slowResults sync.Map // partition -> error of A's slow write
	var slowStarted atomic.Int32
	slowDone := make(chan struct{}, 2)
	procA := ordo.ProcessorFunc(func(ctx context.Context, r *kgo.Record) error {
		if r.Offset == 20 { // one slow record per partition
			slowStarted.Add(1)
			<-release
			err := ledger.Process(context.WithoutCancel(ctx), r) // a processor that ignores ctx
			slowResults.Store(r.Partition, err)
			slowDone <- struct{}{}
			return err
		}
		return ledger.Process(ctx, r)
	})
	cfgA := kfaketest.Config(c.ListenAddrs(), "g", procA, "t")
	cfgA.Fencer = st
	a := kfaketest.Start(t, cfgA)
	kfaketest.WaitFor(t, 20*time.Second, "A to reach the slow records", func() bool { return slowStarted.Load() == 2 })

	cfgB := cfgA
	cfgB.Processor = ledger
	b := kfaketest.Start(t, cfgB)
	var moved int32 = -1
	kfaketest.WaitFor(t, 30*time.Second, "B to take a partition", func() bool {
		ls := b.Lanes()
		if len(ls) == 1 {
			moved = ls[0].Partition
		}
		return moved >= 0
	})
	kfaketest.WaitFor(t, 30*time.Second, "B to apply every record of the partition it took", func() bool {
		s := readLedger(t, client, ledger, nkeys)
		got := 0
		for o := range s.applied {
			if o.Partition == moved {
				got++
			}
		}
		return got == perPartition[moved]
	})
	fencedBefore := st.Stats().Fenced
	close(release)
	<-slowDone
	<-slowDone
	var fenced, applied int
	slowResults.Range(func(_, v any) bool {
		err, _ := v.(error)
		switch {
		case errors.Is(err, store.ErrFenced):
			fenced++
		case err == nil:
			applied++
		default:
			t.Errorf("a slow write failed otherwise: %v", err)
		}
		return true
	})
	if fenced != 1 || applied != 1 {
		t.Errorf("A's slow writes: %d fenced, %d applied; want 1 and 1", fenced, applied)
	}
	if got := st.Stats().Fenced - fencedBefore; got < 1 {
		t.Errorf("the store counted %d fenced writes", got)
	}
	kfaketest.WaitFor(t, 20*time.Second, "every record", func() bool { return len(readLedger(t, client, ledger, nkeys).applied) == n })
	kfaketest.Stop(t, b)
	kfaketest.Stop(t, a)
	s := readLedger(t, client, ledger, nkeys)
	if s.dups != 0 || s.outOfOrder != 0 || s.violations != 0 {
		t.Errorf("ledger: %d duplicates, %d out of order, %d violations", s.dups, s.outOfOrder, s.violations)
	}
	t.Logf("store stats %+v", st.Stats())
}

// TestALateFenceIsTakenBack: a fence taken behind the member's back while
// the group coordinator says the member owns the partition, as a previous
// owner's Fence lands when it was in flight as that owner lost the
// partition. The member's writes are fenced; the record holds its
// partition (no attempt spent, nothing dead-lettered, nothing committed
// past it); the member asks the coordinator, which says it owns the
// partition, takes a new token (ordo_fence_retaken_total), and the held
// record and the rest apply, each once and in order. Before, the
// partition held until its next assignment.
func TestALateFenceIsTakenBack(t *testing.T) {
	client := testenv.Redis(t)
	st, ledger := setup(t, client, redisstore.Options{})
	c := kfaketest.Cluster(t, 1, "t", "t.dlq")
	kfaketest.Produce(t, c.ListenAddrs(), "t", 100, 5, false)
	var committed atomic.Int64
	cfg := kfaketest.Config(c.ListenAddrs(), "g", ledger, "t")
	cfg.Fencer = st
	cfg.Retry.HoldDelay = 50 * time.Millisecond
	cfg.Retry.MaxAttempts = 2
	cfg.OnCommit = func(e ordo.CommitEvent) { committed.Store(e.Offsets["t"][0]) }
	cons := kfaketest.Start(t, cfg)
	kfaketest.WaitFor(t, 20*time.Second, "the first 100 records", func() bool { return len(readLedger(t, client, ledger, 5).applied) == 100 })
	// The late fence: the partition's token moves past this member's.
	late, err := st.Fence(context.Background(), "g", "t", 0)
	if err != nil {
		t.Fatal(err)
	}
	kfaketest.ProduceFrom(t, c.ListenAddrs(), "t", 100, 50, 5, false)
	kfaketest.WaitFor(t, 20*time.Second, "the rest, once the member took a new token", func() bool {
		return len(readLedger(t, client, ledger, 5).applied) == 150
	})
	if got := st.Stats().Fenced; got < 1 {
		t.Errorf("%d writes fenced; the late fence should have fenced at least one", got)
	}
	if r := kfaketest.Metric(t, cons.Registry(), "ordo_fence_retaken_total", "", ""); r != 1 {
		t.Errorf("ordo_fence_retaken_total = %v, want 1", r)
	}
	if cur, _ := client.Get(context.Background(), st.FenceKey("g", "t", 0)).Int64(); cur <= late {
		t.Errorf("the partition's token is %d, not past the late fence's %d", cur, late)
	}
	if d := kfaketest.Metric(t, cons.Registry(), "ordo_records_total", "outcome", "dlq"); d != 0 {
		t.Errorf("%v fenced records dead-lettered", d)
	}
	kfaketest.WaitFor(t, 10*time.Second, "the commit to reach the end", func() bool { return committed.Load() == 150 })
	kfaketest.Stop(t, cons)
	if s := readLedger(t, client, ledger, 5); s.dups != 0 || s.outOfOrder != 0 || len(s.applied) != 150 {
		t.Errorf("ledger: %d applied, %d duplicates, %d out of order", len(s.applied), s.dups, s.outOfOrder)
	}
	t.Logf("store stats %+v", st.Stats())
}

// outage is the Redis outage of TestRedisOutage; a variable so that it
// can be shortened by hand when iterating.
var outage = 10 * time.Second

// TestRedisOutage: Redis is cut off (through a proxy the test controls)
// for 10 s while records keep coming. No committed offset ever passes a
// record whose write is not in Redis (checked at the broker, at each
// OffsetCommit, against Redis directly); nothing is applied twice or out of
// order; nothing is dead-lettered; the breaker opens, and once Redis is back
// everything is applied without help.
func TestRedisOutage(t *testing.T) {
	addr := testenv.RedisAddr(t)
	direct := testenv.Redis(t)
	proxy := testenv.NewProxy(t, addr)
	viaProxy := redis.NewClient(&redis.Options{Addr: proxy.Addr(), DialTimeout: 300 * time.Millisecond,
		ReadTimeout: 500 * time.Millisecond, WriteTimeout: 500 * time.Millisecond, MaxRetries: -1, PoolSize: 16})
	defer viaProxy.Close()
	st, ledger := setup(t, viaProxy, redisstore.Options{Timeout: time.Second})

	const partitions, nkeys, rate = 4, 50, 1000 // records a second
	c := kfaketest.Cluster(t, partitions, "t", "t.dlq")
	var mu sync.Mutex
	checked := map[int32]int64{}
	watch := kfaketest.WatchCommits(c, func(_ string, p int32, off int64) error {
		const topic = "t" // the request names it by ID
		mu.Lock()
		defer mu.Unlock()
		from := checked[p]
		if off <= from {
			return nil
		}
		ctx := context.Background()
		pipe := direct.Pipeline()
		cmds := make([]*redis.IntCmd, 0, off-from)
		for o := from; o < off; o++ {
			cmds = append(cmds, pipe.Exists(ctx, st.DedupKey(fmt.Sprintf("at:%s/%d/%d", topic, p, o))))
		}
		if _, err := pipe.Exec(ctx); err != nil {
			return fmt.Errorf("checking a commit: %w", err)
		}
		for i, cmd := range cmds {
			if cmd.Val() != 1 {
				return fmt.Errorf("commit %s/%d@%d passes offset %d, not applied in Redis", topic, p, off, from+int64(i))
			}
		}
		checked[p] = off
		return nil
	})

	reg := prometheus.NewRegistry()
	bs, _ := guard.NewBreakers(reg)
	var opened atomic.Int32
	br, err := bs.New(guard.BreakerOptions{Name: "redis", Failures: 5, OpenFor: 500 * time.Millisecond,
		OnStateChange: func(_ string, _, to guard.State) {
			if to == guard.Open {
				opened.Add(1)
			}
		}})
	if err != nil {
		t.Fatal(err)
	}
	cfg := kfaketest.Config(c.ListenAddrs(), "g", ledger, "t")
	cfg.Fencer = st
	cfg.Middleware = []ordo.Middleware{br.Middleware()}
	cfg.Retry.HoldDelay = 200 * time.Millisecond
	cfg.Retry.MaxAttempts = 3
	cfg.WorkersPerPartition = 8
	cons := kfaketest.Start(t, cfg)

	// The producer: rate records a second, for 2 s before the outage,
	// during it and 1 s after.
	total := int(rate * (3*time.Second + outage) / time.Second)
	prodDone := make(chan struct{})
	go func() {
		defer close(prodDone)
		const step = 100
		tick := time.NewTicker(step * time.Second / rate)
		defer tick.Stop()
		for i := 0; i < total; i += step {
			kfaketest.ProduceFrom(t, c.ListenAddrs(), "t", i, step, nkeys, false)
			<-tick.C
		}
	}()
	time.Sleep(2 * time.Second)
	before := st.Stats()
	proxy.Cut()
	cutAt := time.Now()
	time.Sleep(outage)
	during := st.Stats()
	proxy.Restore()
	restoredAt := time.Now()
	<-prodDone
	kfaketest.WaitFor(t, 60*time.Second, "every record after Redis came back", func() bool {
		return len(readLedger(t, direct, ledger, nkeys).applied) == total
	})
	caughtUp := time.Since(restoredAt)
	kfaketest.Stop(t, cons) // commits the last offsets
	watch.Assert(t)
	mu.Lock()
	var sum int64
	for _, o := range checked {
		sum += o
	}
	mu.Unlock()
	if sum != int64(total) {
		t.Errorf("the commits checked reach %d of %d records (%v)", sum, total, checked)
	}
	s := readLedger(t, direct, ledger, nkeys)
	if s.dups != 0 || s.outOfOrder != 0 || s.violations != 0 {
		t.Errorf("ledger: %d duplicates, %d out of order, %d violations", s.dups, s.outOfOrder, s.violations)
	}
	if d := kfaketest.Metric(t, cons.Registry(), "ordo_records_total", "outcome", "dlq"); d != 0 {
		t.Errorf("%v records dead-lettered during the outage", d)
	}
	if opened.Load() == 0 {
		t.Error("the breaker never opened")
	}
	after := st.Stats()
	t.Logf("%d records; outage %s from %s; applied before it %d, during it %d (writes in flight at the cut), caught up %s after Redis came back; "+
		"breaker opened %d times; %d failed writes, %d duplicates (writes that applied but whose reply was lost, then redelivered); %d commits checked",
		total, outage, cutAt.Format("15:04:05.000"), before.Applied, during.Applied-before.Applied, caughtUp.Round(time.Millisecond),
		opened.Load(), after.Errors, after.Duplicates, watch.Commits())
}

// TestZombieAfterSessionTimeout: member A is slow on one record (it ignores
// cancellation) and stops heartbeating (the broker drops its heartbeats),
// so its session times out and the group moves on without it: member B
// takes the partition with a new token and applies everything, the slow
// record included. When A's slow call finally writes, it is rejected as
// fenced, whether or not A has rejoined meanwhile. Every record is in the
// ledger once.
func TestZombieAfterSessionTimeout(t *testing.T) {
	const n, nkeys = 200, 10
	client := testenv.Redis(t)
	st, ledger := setup(t, client, redisstore.Options{})
	c := kfaketest.Cluster(t, 1, "t", "t.dlq")
	kfaketest.Produce(t, c.ListenAddrs(), "t", n, nkeys, false)

	release := make(chan struct{})
	slowErr := make(chan error, 1)
	var slowStarted atomic.Bool
	var slowToken atomic.Int64
	procA := ordo.ProcessorFunc(func(ctx context.Context, r *kgo.Record) error {
		if r.Offset == 20 && slowStarted.CompareAndSwap(false, true) {
			info, _ := ordo.InfoFromContext(ctx)
			slowToken.Store(info.Token)
			<-release
			err := ledger.Process(context.WithoutCancel(ctx), r)
			slowErr <- err
			return err
		}
		return ledger.Process(ctx, r)
	})
	cfgA := kfaketest.Config(c.ListenAddrs(), "g", procA, "t")
	cfgA.Fencer = st
	a := kfaketest.Start(t, cfgA)
	kfaketest.WaitFor(t, 20*time.Second, "A to reach the slow record", slowStarted.Load)

	var dropping atomic.Bool
	dropping.Store(true)
	c.ControlKey(int16(kmsg.Heartbeat), func(kmsg.Request) (kmsg.Response, error, bool) {
		c.KeepControl()
		if dropping.Load() {
			return nil, errors.New("heartbeat dropped by the test"), true
		}
		return nil, nil, false
	})
	time.Sleep(cfgA.SessionTimeout + 500*time.Millisecond) // A's session expires at the broker
	dropping.Store(false)

	cfgB := cfgA
	cfgB.Processor = ledger
	b := kfaketest.Start(t, cfgB)
	// The partition has a newer owner (B, or A's own new lane): a new
	// lane of A waits for the slow call to return before it runs, so the
	// rest can only be asserted after the release.
	kfaketest.WaitFor(t, 30*time.Second, "a newer owner's token", func() bool {
		cur, _ := client.Get(context.Background(), st.FenceKey("g", "t", 0)).Int64()
		return cur > slowToken.Load()
	})
	close(release)
	if err := <-slowErr; !errors.Is(err, store.ErrFenced) {
		t.Errorf("the zombie's write: %v, want fenced", err)
	}
	kfaketest.WaitFor(t, 30*time.Second, "every record, the slow one included", func() bool {
		return len(readLedger(t, client, ledger, nkeys).applied) == n
	})
	// The zombie's fenced write must not take the token back: the
	// coordinator does not say it owns the partition (it left the group,
	// or rejoined under a new member ID and has its own lane).
	for name, m := range map[string]*ordo.Consumer{"A": a, "B": b} {
		if r := kfaketest.Metric(t, m.Registry(), "ordo_fence_retaken_total", "", ""); r != 0 {
			t.Errorf("member %s took a fencing token back %v times", name, r)
		}
	}
	kfaketest.Stop(t, b)
	kfaketest.Stop(t, a)
	s := readLedger(t, client, ledger, nkeys)
	if s.dups != 0 || s.outOfOrder != 0 {
		t.Errorf("ledger: %d duplicates, %d out of order", s.dups, s.outOfOrder)
	}
	t.Logf("store stats %+v", st.Stats())
}
