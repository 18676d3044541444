package ordo_test

import (
	"context"
	"fmt"
	"math/rand/v2"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/ordokafka/ordo/pkg/ordo"
)

// newCluster starts an in-process kfake broker with the given topics.
func newCluster(t testing.TB, partitions int32, topics ...string) *kfake.Cluster {
	t.Helper()
	c, err := kfake.NewCluster(kfake.NumBrokers(1), kfake.SeedTopics(partitions, topics...),
		kfake.GroupMinSessionTimeout(100*time.Millisecond))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.Close)
	return c
}

// produce writes n records with keys drawn from nkeys keys (nkeys 0: no key)
// and returns them by value. Values are unique: "v<i>".
func produce(t testing.TB, addrs []string, topic string, n, nkeys int, seed uint64) {
	t.Helper()
	cl, err := kgo.NewClient(kgo.SeedBrokers(addrs...), kgo.ProducerLinger(0))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	rng := rand.New(rand.NewPCG(seed, seed))
	recs := make([]*kgo.Record, 0, n)
	for i := range n {
		r := &kgo.Record{Topic: topic, Value: []byte("v" + strconv.Itoa(i))}
		if nkeys > 0 {
			r.Key = []byte("k" + strconv.Itoa(rng.IntN(nkeys)))
		}
		recs = append(recs, r)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	if err := cl.ProduceSync(ctx, recs...).FirstErr(); err != nil {
		t.Fatal(err)
	}
}

// baseConfig is a config for tests: fast commits, short session.
func baseConfig(addrs []string, group string, p ordo.Processor, topics ...string) ordo.Config {
	return ordo.Config{
		Brokers:          addrs,
		Group:            group,
		Topics:           topics,
		Processor:        p,
		CommitInterval:   50 * time.Millisecond,
		SessionTimeout:   2 * time.Second,
		RebalanceTimeout: 4 * time.Second,
		RevokeTimeout:    2 * time.Second,
		KgoOpts:          []kgo.Opt{kgo.FetchMaxWait(100 * time.Millisecond), kgo.HeartbeatInterval(200 * time.Millisecond)},
	}
}

type pk struct {
	partition int32
	offset    int64
}

// ledger records what a processor applied, for property checks.
type ledger struct {
	mu      sync.Mutex
	applied map[pk]int      // times each record was applied
	byKey   map[string][]pk // application order per partition+key
	active  map[string]bool // keys in a call right now
	errs    []string        // violations seen during the run
	values  map[string]int  // times each value was applied
	dups    int             // applications of an already applied record
}

func newLedger() *ledger {
	return &ledger{applied: map[pk]int{}, byKey: map[string][]pk{}, active: map[string]bool{}, values: map[string]int{}}
}

func lkey(r *kgo.Record) string { return fmt.Sprintf("%s/%d/%s", r.Topic, r.Partition, r.Key) }

// enter marks the record's key active; it records a violation if the key
// was already in a call.
func (l *ledger) enter(r *kgo.Record, exclusive bool) {
	l.mu.Lock()
	defer l.mu.Unlock()
	k := lkey(r)
	if exclusive && l.active[k] {
		l.errs = append(l.errs, fmt.Sprintf("key %s ran concurrently at offset %d", k, r.Offset))
	}
	l.active[k] = true
}

func (l *ledger) exit(r *kgo.Record, applied bool) {
	l.mu.Lock()
	defer l.mu.Unlock()
	k := lkey(r)
	delete(l.active, k)
	if applied {
		p := pk{r.Partition, r.Offset}
		l.applied[p]++
		l.values[string(r.Value)]++
		if l.applied[p] > 1 {
			l.dups++ // an idempotent sink would ignore it: order counts first applications
			return
		}
		l.byKey[k] = append(l.byKey[k], p)
	}
}

func (l *ledger) count() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return len(l.values)
}

func (l *ledger) isApplied(p int32, off int64) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.applied[pk{p, off}] > 0
}

// waitFor polls cond every 10ms until it holds or d passes.
func waitFor(t testing.TB, d time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(d)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %s waiting for %s", d, what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func stop(t testing.TB, c *ordo.Consumer) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	if err := c.Stop(ctx); err != nil {
		t.Fatalf("stop: %v", err)
	}
}

// fakeClock is a manual Clock for tests: timers fire only when Advance
// moves time past them.
type fakeClock struct {
	mu     sync.Mutex
	now    time.Time
	timers []*fakeTimer
}

type fakeTimer struct {
	c    *fakeClock
	at   time.Time
	f    func()
	done bool
}

func newFakeClock() *fakeClock { return &fakeClock{now: time.Unix(1_700_000_000, 0)} }

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *fakeClock) AfterFunc(d time.Duration, f func()) ordo.Timer {
	c.mu.Lock()
	defer c.mu.Unlock()
	t := &fakeTimer{c: c, at: c.now.Add(d), f: f}
	c.timers = append(c.timers, t)
	return t
}

func (t *fakeTimer) Stop() bool {
	t.c.mu.Lock()
	defer t.c.mu.Unlock()
	was := !t.done
	t.done = true
	return was
}

// Advance moves the clock and runs the timers that came due.
func (c *fakeClock) Advance(d time.Duration) {
	c.mu.Lock()
	c.now = c.now.Add(d)
	var due []func()
	kept := c.timers[:0]
	for _, t := range c.timers {
		switch {
		case t.done:
		case !t.at.After(c.now):
			t.done = true
			due = append(due, t.f)
		default:
			kept = append(kept, t)
		}
	}
	c.timers = kept
	c.mu.Unlock()
	for _, f := range due {
		f()
	}
}

// startConsumer creates and starts a consumer, failing the test on error.
func startConsumer(t *testing.T, cfg ordo.Config) *ordo.Consumer {
	t.Helper()
	cons, err := ordo.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	if err := cons.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	return cons
}
