package dlq_test

import (
	"context"
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/ordokafka/ordo/pkg/dlq"
	"github.com/ordokafka/ordo/pkg/topics"
)

// env is a kfake cluster with an admin client, a producer and a dlq.Client.
type env struct {
	t     *testing.T
	ctx   context.Context
	addrs []string
	cl    *kgo.Client
	adm   *kadm.Client
	dlq   *dlq.Client
	now   time.Time
}

// newEnv starts a cluster and creates the topics of the declarations yaml
// (each group's chain included) and the extra topics, each with
// partitions partitions.
func newEnv(t *testing.T, yaml string, partitions int32, extra ...string) *env {
	t.Helper()
	c, err := kfake.NewCluster(kfake.NumBrokers(1))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.Close)
	ctx, cancel := context.WithTimeout(t.Context(), 60*time.Second)
	t.Cleanup(cancel)
	// The topics are created with a client of their own: kgo caches
	// metadata (MetadataMinAge), and Apply asks about them before they exist.
	setup, err := kgo.NewClient(kgo.SeedBrokers(c.ListenAddrs()...))
	if err != nil {
		t.Fatal(err)
	}
	defer setup.Close()
	if yaml != "" {
		set, err := topics.Parse("test.yaml", []byte(yaml))
		if err != nil {
			t.Fatal(err)
		}
		if _, err := topics.Apply(ctx, kadm.NewClient(setup), set.Specs(), false); err != nil {
			t.Fatal(err)
		}
	}
	for _, name := range extra {
		if _, err := kadm.NewClient(setup).CreateTopic(ctx, partitions, 1, nil, name); err != nil {
			t.Fatal(err)
		}
	}
	cl, err := kgo.NewClient(kgo.SeedBrokers(c.ListenAddrs()...), kgo.RecordPartitioner(kgo.ManualPartitioner()),
		kgo.MetadataMinAge(50*time.Millisecond))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(cl.Close)
	e := &env{t: t, ctx: ctx, addrs: c.ListenAddrs(), cl: cl, adm: kadm.NewClient(cl),
		now: time.Date(2026, 11, 30, 12, 0, 0, 0, time.UTC)}
	e.dlq, err = dlq.New(dlq.Config{Opts: []kgo.Opt{kgo.SeedBrokers(e.addrs...)}, IdleTimeout: 3 * time.Second,
		Now: func() time.Time { return e.now }})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(e.dlq.Close)
	return e
}

func (e *env) produce(rs ...*kgo.Record) {
	e.t.Helper()
	if err := e.cl.ProduceSync(e.ctx, rs...).FirstErr(); err != nil {
		e.t.Fatal(err)
	}
}

// letter is a dead letter on topic/partition with headers hs.
func letter(topic string, p int32, key, value string, hs []kgo.RecordHeader) *kgo.Record {
	return &kgo.Record{Topic: topic, Partition: p, Key: []byte(key), Value: []byte(value), Headers: hs}
}

// readAll reads every record of topic, up to its end offsets now, with a
// plain franz-go consumer, in (partition, offset) order.
func (e *env) readAll(topic string) []*kgo.Record {
	e.t.Helper()
	ends, err := e.adm.ListEndOffsets(e.ctx, topic)
	if err != nil || ends.Error() != nil {
		e.t.Fatalf("end offsets of %s: %v %v", topic, err, ends.Error())
	}
	want := 0
	ends.Each(func(o kadm.ListedOffset) { want += int(o.Offset) })
	if want == 0 {
		return nil
	}
	cl, err := kgo.NewClient(kgo.SeedBrokers(e.addrs...), kgo.ConsumeTopics(topic), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))
	if err != nil {
		e.t.Fatal(err)
	}
	defer cl.Close()
	var out []*kgo.Record
	for len(out) < want {
		fs := cl.PollFetches(e.ctx)
		if err := e.ctx.Err(); err != nil {
			e.t.Fatalf("reading %s: %d of %d records: %v", topic, len(out), want, err)
		}
		fs.EachRecord(func(r *kgo.Record) { out = append(out, r) })
	}
	slices.SortFunc(out, func(a, b *kgo.Record) int {
		if a.Partition != b.Partition {
			return int(a.Partition - b.Partition)
		}
		return int(a.Offset - b.Offset)
	})
	return out
}

func header(r *kgo.Record, key string) (string, bool) {
	for _, h := range r.Headers {
		if h.Key == key {
			return string(h.Value), true
		}
	}
	return "", false
}

func headerCount(r *kgo.Record, key string) int {
	n := 0
	for _, h := range r.Headers {
		if h.Key == key {
			n++
		}
	}
	return n
}

// ids returns the ordo-redrive-id of each record.
func ids(rs []*kgo.Record) []string {
	out := make([]string, 0, len(rs))
	for _, r := range rs {
		id, _ := header(r, "ordo-redrive-id")
		out = append(out, id)
	}
	slices.Sort(out)
	return out
}

func id(topic string, p int32, off int64) string { return fmt.Sprintf("%s/%d/%d", topic, p, off) }

func contextWithTimeout(e *env, d time.Duration) (context.Context, context.CancelFunc) {
	return context.WithTimeout(e.ctx, d)
}
