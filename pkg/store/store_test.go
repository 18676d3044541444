package store_test

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/ordokafka/ordo/internal/kfaketest"
	"github.com/ordokafka/ordo/pkg/ordo"
	"github.com/ordokafka/ordo/pkg/store"
	"github.com/ordokafka/ordo/pkg/store/memstore"
)

func TestKeys(t *testing.T) {
	ctx := context.Background()
	r := &kgo.Record{Topic: "orders", Partition: 3, Offset: 42}
	if got := (store.Keys{}).Key(ctx, r); got != "at:orders/3/42" {
		t.Errorf("no header: %q", got)
	}
	r.Headers = []kgo.RecordHeader{{Key: "event-id", Value: []byte("")}, {Key: "msg-id", Value: []byte("m-1")}}
	if got := (store.Keys{}).Key(ctx, r); got != "at:orders/3/42" {
		t.Errorf("empty event-id: %q, want the origin", got)
	}
	if got := (store.Keys{Header: "msg-id"}).Key(ctx, r); got != "id:m-1" {
		t.Errorf("configured header: %q", got)
	}
	op := (store.Keys{}).For(ctx, r)
	if op.Fence != (store.Fence{Topic: "orders", Partition: 3}) {
		t.Errorf("outside a call: fence %+v, want token 0", op.Fence)
	}
}

func TestProcessorError(t *testing.T) {
	fenced := &store.FencedError{Fence: store.Fence{Group: "g", Topic: "t", Token: 1}, Current: 2}
	for _, tc := range []struct {
		err  error
		want string
	}{
		{nil, "<nil>"},
		{fenced, "hold partition: "},
		{store.Unavailable(errors.New("dial tcp: refused")), "hold: "},
		{errors.New("boom"), "boom"},
	} {
		got := fmt.Sprint(store.ProcessorError(tc.err))
		if !strings.HasPrefix(got, tc.want) {
			t.Errorf("%v -> %s, want %s...", tc.err, got, tc.want)
		}
	}
	if !errors.Is(store.ProcessorError(fenced), store.ErrFenced) || ordo.ClassOf(store.ProcessorError(fenced)) == ordo.ClassPermanent {
		t.Error("a fenced write's outcome must wrap ErrFenced and not be permanent")
	}
}

func TestCollector(t *testing.T) {
	st := memstore.New(memstore.Options{})
	ctx := context.Background()
	_, _ = st.Fence(ctx, "g", "t", 0)
	_, _ = st.Apply(ctx, store.Op{Key: "a"}, func(context.Context) error { return nil })
	_, _ = st.Apply(ctx, store.Op{Key: "a"}, func(context.Context) error { return nil })
	reg := prometheus.NewRegistry()
	reg.MustRegister(store.NewCollector("mem", st))
	want := `
# HELP ordo_store_writes_total Writes through an idempotency store, by result.
# TYPE ordo_store_writes_total counter
ordo_store_writes_total{result="applied",store="mem"} 1
ordo_store_writes_total{result="duplicate",store="mem"} 1
ordo_store_writes_total{result="error",store="mem"} 0
ordo_store_writes_total{result="fenced",store="mem"} 0
`
	if err := testutil.GatherAndCompare(reg, strings.NewReader(want), "ordo_store_writes_total"); err != nil {
		t.Error(err)
	}
}

// Keys.Key on a record read outside a processor call (as `ordo replay
// reset --reprocess` reads a range) gives the key the processor's call
// gave for the same record of a source topic: the event-id header, else
// the record's own topic/partition/offset. The records of an aborted
// transaction are among them: Ordo's consumer reads with franz-go's
// default isolation (read_uncommitted) and applies them too.
func TestKeysOutsideACallAreTheProcessors(t *testing.T) {
	c := kfaketest.Cluster(t, 3, "orders")
	addrs := c.ListenAddrs()
	kfaketest.Produce(t, addrs, "orders", 60, 7, true)
	kfaketest.Produce(t, addrs, "orders", 60, 7, false)
	tx, err := kgo.NewClient(kgo.SeedBrokers(addrs...), kgo.TransactionalID("tx"), kgo.DefaultProduceTopic("orders"))
	if err != nil {
		t.Fatal(err)
	}
	defer tx.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := tx.BeginTransaction(); err != nil {
		t.Fatal(err)
	}
	for i := range 5 {
		if err := tx.ProduceSync(ctx, &kgo.Record{Key: []byte("aborted"), Value: fmt.Appendf(nil, "a%d", i)}).FirstErr(); err != nil {
			t.Fatal(err)
		}
	}
	if err := tx.EndTransaction(ctx, kgo.TryAbort); err != nil {
		t.Fatal(err)
	}
	const total = 125

	keys := []store.Keys{{}, {Header: "msg-id"}}
	var mu sync.Mutex
	inCall := map[string]bool{}
	proc := ordo.ProcessorFunc(func(ctx context.Context, r *kgo.Record) error {
		mu.Lock()
		defer mu.Unlock()
		for i, k := range keys {
			inCall[fmt.Sprintf("%d %s", i, k.Key(ctx, r))] = true
		}
		return nil
	})
	cons := kfaketest.Start(t, kfaketest.Config(addrs, "g", proc, "orders"))
	kfaketest.WaitFor(t, 20*time.Second, "every record processed", func() bool { return cons.Stats().Processed == total })
	kfaketest.Stop(t, cons)

	rd, err := kgo.NewClient(kgo.SeedBrokers(addrs...), kgo.ConsumeTopics("orders"), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))
	if err != nil {
		t.Fatal(err)
	}
	defer rd.Close()
	outside := map[string]bool{}
	for n := 0; n < total; {
		fs := rd.PollFetches(ctx)
		if err := fs.Err0(); err != nil {
			t.Fatal(err)
		}
		fs.EachRecord(func(r *kgo.Record) {
			n++
			for i, k := range keys {
				outside[fmt.Sprintf("%d %s", i, k.Key(context.Background(), r))] = true
			}
		})
	}
	if len(inCall) != 2*total { // a key per record for each Keys: no record has a msg-id header
		t.Errorf("%d keys in the processor's calls, want %d", len(inCall), 2*total)
	}
	if !maps.Equal(inCall, outside) {
		t.Errorf("keys differ: %d in the processor's calls, %d outside", len(inCall), len(outside))
	}
	ids, at := 0, 0
	for k := range inCall {
		switch {
		case strings.HasPrefix(k, "0 id:e"):
			ids++
		case strings.HasPrefix(k, "0 at:orders/"):
			at++
		}
	}
	if ids != 60 || at != 65 {
		t.Errorf("default Keys: %d by event id and %d by coordinates, want 60 and 65 (the aborted 5 included)", ids, at)
	}
}
