package replay_test

import (
	"context"
	"strconv"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"
	"go.uber.org/goleak"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// base is the timestamp of offset 0 in every partition seeded by
// seedPartitions: offset o of any partition has timestamp base + o seconds.
var base = time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)

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

// newAdmin returns an admin client on c, closed at the test's end.
func newAdmin(t testing.TB, c *kfake.Cluster) (*kgo.Client, *kadm.Client) {
	t.Helper()
	cl, err := kgo.NewClient(kgo.SeedBrokers(c.ListenAddrs()...))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(cl.Close)
	return cl, kadm.NewClient(cl)
}

func ctxT(t testing.TB) context.Context {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	t.Cleanup(cancel)
	return ctx
}

// seedPartitions produces counts[p] records into partition p of topic,
// each with the key "k<o mod 7>", the value "<topic>/<p>/<o>" and the
// timestamp base + o seconds (o: the record's offset).
func seedPartitions(t testing.TB, c *kfake.Cluster, topic string, counts ...int) {
	t.Helper()
	var recs []*kgo.Record
	for p, n := range counts {
		for o := range n {
			recs = append(recs, &kgo.Record{
				Topic:     topic,
				Partition: int32(p),
				Key:       []byte("k" + strconv.Itoa(o%7)),
				Value:     []byte(topic + "/" + strconv.Itoa(p) + "/" + strconv.Itoa(o)),
				Timestamp: base.Add(time.Duration(o) * time.Second),
			})
		}
	}
	produceManual(t, c, recs...)
}

// produceManual produces recs to the partitions they name.
func produceManual(t testing.TB, c *kfake.Cluster, recs ...*kgo.Record) {
	t.Helper()
	p, err := kgo.NewClient(kgo.SeedBrokers(c.ListenAddrs()...), kgo.RecordPartitioner(kgo.ManualPartitioner()))
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	if err := p.ProduceSync(ctxT(t), recs...).FirstErr(); err != nil {
		t.Fatal(err)
	}
}

// commit commits offsets (with metadata) for group as an outside client.
func commit(t testing.TB, adm *kadm.Client, group string, offs ...kadm.Offset) {
	t.Helper()
	os := kadm.Offsets{}
	for _, o := range offs {
		if o.LeaderEpoch == 0 {
			o.LeaderEpoch = -1
		}
		os.Add(o)
	}
	resps, err := adm.CommitOffsets(ctxT(t), group, os)
	if err != nil {
		t.Fatal(err)
	}
	if err := resps.Error(); err != nil {
		t.Fatal(err)
	}
}

func waitFor(t testing.TB, d time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(d)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %s waiting for %s", d, what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}
