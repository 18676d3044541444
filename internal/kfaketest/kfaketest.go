// Package kfaketest holds the kfake helpers that the tests of the store,
// guard and processor packages share: a broker, a producer, a consumer
// config with short timeouts, and a watch on the offsets the broker is
// asked to commit.
package kfaketest

import (
	"context"
	"strconv"
	"sync"
	"testing"
	"time"

	dto "github.com/prometheus/client_model/go"
	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/ordokafka/ordo/pkg/ordo"
)

// Cluster starts an in-process kfake broker with the given topics, closed
// when t ends.
func Cluster(t testing.TB, partitions int32, topics ...string) *kfake.Cluster {
	t.Helper()
	c, err := kfake.NewCluster(kfake.NumBrokers(1), kfake.SeedTopics(partitions, topics...),
		kfake.GroupMinSessionTimeout(100*time.Millisecond))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.Close)
	return c
}

// Produce writes n records to topic with keys k0..k<nkeys-1> round robin
// (nkeys 0: no key) and values v<i>, and an event-id header e<i> when
// withID is set. It returns the records, with their partitions and
// offsets.
func Produce(t testing.TB, addrs []string, topic string, n, nkeys int, withID bool) []*kgo.Record {
	t.Helper()
	return ProduceFrom(t, addrs, topic, 0, n, nkeys, withID)
}

// ProduceFrom is Produce with values numbered from first.
func ProduceFrom(t testing.TB, addrs []string, topic string, first, n, nkeys int, withID bool) []*kgo.Record {
	t.Helper()
	cl, err := kgo.NewClient(kgo.SeedBrokers(addrs...), kgo.ProducerLinger(0))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	recs := make([]*kgo.Record, 0, n)
	for i := first; i < first+n; i++ {
		r := &kgo.Record{Topic: topic, Value: []byte("v" + strconv.Itoa(i))}
		if nkeys > 0 {
			r.Key = []byte("k" + strconv.Itoa(i%nkeys))
		}
		if withID {
			r.Headers = []kgo.RecordHeader{{Key: "event-id", Value: []byte("e" + strconv.Itoa(i))}}
		}
		recs = append(recs, r)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	if err := cl.ProduceSync(ctx, recs...).FirstErr(); err != nil {
		t.Fatal(err)
	}
	return recs
}

// Config is a consumer config for tests: fast commits, a short session.
func Config(addrs []string, group string, p ordo.Processor, topics ...string) ordo.Config {
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

// Start creates and starts a consumer; it is stopped when t ends unless
// the test stopped it.
func Start(t testing.TB, cfg ordo.Config) *ordo.Consumer {
	t.Helper()
	cons, err := ordo.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	if err := cons.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
		defer cancel()
		_ = cons.Stop(ctx)
	})
	return cons
}

// Stop stops a consumer, failing t on error.
func Stop(t testing.TB, c *ordo.Consumer) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	if err := c.Stop(ctx); err != nil {
		t.Fatalf("stop: %v", err)
	}
}

// WaitFor polls cond every 10ms until it holds, failing t after d.
func WaitFor(t testing.TB, d time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(d)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %s waiting for %s", d, what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// CommitWatch checks every OffsetCommit the broker receives, at that
// instant, through kfake's ControlKey.
type CommitWatch struct {
	mu         sync.Mutex
	violations []string
	commits    int
}

// WatchCommits calls check for every partition of every OffsetCommit the
// broker receives, before the broker applies it; check's errors are
// violations. topic is "" when the request names its topics by ID (as
// recent versions do): tests that watch commits use one topic.
func WatchCommits(c *kfake.Cluster, check func(topic string, partition int32, offset int64) error) *CommitWatch {
	w := &CommitWatch{}
	c.ControlKey(int16(kmsg.OffsetCommit), func(req kmsg.Request) (kmsg.Response, error, bool) {
		c.KeepControl()
		r := req.(*kmsg.OffsetCommitRequest) //nolint:errcheck // the key says the type
		w.mu.Lock()
		defer w.mu.Unlock()
		w.commits++
		for _, t := range r.Topics {
			for _, p := range t.Partitions {
				if err := check(t.Topic, p.Partition, p.Offset); err != nil {
					w.violations = append(w.violations, err.Error())
				}
			}
		}
		return nil, nil, false
	})
	return w
}

// Assert fails t for each violation, and if no commit was seen.
func (w *CommitWatch) Assert(t testing.TB) {
	t.Helper()
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.commits == 0 {
		t.Error("no OffsetCommit observed")
	}
	for i, v := range w.violations {
		if i == 20 {
			t.Errorf("... and %d more", len(w.violations)-20)
			break
		}
		t.Error(v)
	}
}

// Commits returns how many OffsetCommits the broker received.
func (w *CommitWatch) Commits() int {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.commits
}

// Metric returns the value of the first sample of name with the given
// label pair on reg ("" label: any), or 0.
func Metric(t testing.TB, reg interface {
	Gather() ([]*dto.MetricFamily, error)
}, name, label, value string) float64 {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
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
				return m.GetCounter().GetValue()
			case m.Gauge != nil:
				return m.GetGauge().GetValue()
			}
		}
	}
	return 0
}
