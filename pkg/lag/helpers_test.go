package lag_test

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// fakeClock is a clock the test moves.
type fakeClock struct {
	mu  sync.Mutex
	now time.Time
}

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *fakeClock) Add(d time.Duration) {
	c.mu.Lock()
	c.now = c.now.Add(d)
	c.mu.Unlock()
}

// requestCounter counts the requests a client writes, by Kafka API key.
type requestCounter struct{ n [128]atomic.Int64 }

func (rc *requestCounter) OnBrokerWrite(_ kgo.BrokerMetadata, key int16, _ int, _, _ time.Duration, err error) {
	if err == nil && key >= 0 && int(key) < len(rc.n) {
		rc.n[key].Add(1)
	}
}

func (rc *requestCounter) get(key kmsg.Key) int64 { return rc.n[key].Load() }

// cluster starts a kfake cluster of brokers brokers with topic "t" of parts
// partitions.
func cluster(t *testing.T, brokers, parts int) (*kfake.Cluster, []string) {
	t.Helper()
	c, err := kfake.NewCluster(kfake.NumBrokers(brokers), kfake.SeedTopics(int32(parts), "t"), kfake.GroupMinSessionTimeout(time.Second))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.Close)
	addrs := c.ListenAddrs()
	return c, addrs
}

// client is a plain franz-go client on addrs, closed at cleanup.
func client(t *testing.T, addrs []string, opts ...kgo.Opt) *kgo.Client {
	t.Helper()
	cl, err := kgo.NewClient(append([]kgo.Opt{kgo.SeedBrokers(addrs...)}, opts...)...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(cl.Close)
	return cl
}

// produce writes n records to t/partition, the i-th with timestamp ts(i).
func produce(t *testing.T, cl *kgo.Client, partition int32, n int, ts func(i int) time.Time) {
	t.Helper()
	rs := make([]*kgo.Record, n)
	for i := range rs {
		rs[i] = &kgo.Record{Topic: "t", Partition: partition, Value: fmt.Appendf(nil, "v%d", i), Timestamp: ts(i)}
	}
	if err := cl.ProduceSync(context.Background(), rs...).FirstErr(); err != nil {
		t.Fatal(err)
	}
}

func producer(t *testing.T, addrs []string) *kgo.Client {
	return client(t, addrs, kgo.RecordPartitioner(kgo.ManualPartitioner()))
}

// commit commits offsets of topic t for group with kadm.
func commit(t *testing.T, adm *kadm.Client, group string, at map[int32]int64) {
	t.Helper()
	var os kadm.Offsets
	for p, o := range at {
		os.AddOffset("t", p, o, -1)
	}
	if err := adm.CommitAllOffsets(context.Background(), group, os); err != nil {
		t.Fatal(err)
	}
}

// waitFor polls cond every 20 ms for up to 15 s.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	for deadline := time.Now().Add(15 * time.Second); !cond(); time.Sleep(20 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
	}
}
