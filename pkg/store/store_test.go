package store_test

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/twmb/franz-go/pkg/kgo"

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
