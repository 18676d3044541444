package example

import (
	"context"
	"encoding/json"
	"errors"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/ordokafka/ordo/pkg/ordo"
)

func rec(key string, ev any) *kgo.Record {
	v, _ := json.Marshal(ev)
	return &kgo.Record{Topic: "orders", Key: []byte(key), Value: v}
}

func isPermanent(err error) bool {
	return err != nil && ordo.ClassOf(err) == ordo.ClassPermanent
}

func TestProcessAppliesOnceAndCountsViolations(t *testing.T) {
	p := New(Options{})
	ctx := context.Background()
	for _, ev := range []Event{
		{Customer: "c-1", Seq: 1, AmountCents: 10},
		{Customer: "c-1", Seq: 2, AmountCents: 5},
		{Customer: "c-1", Seq: 2, AmountCents: 5},  // a redelivery: not applied twice
		{Customer: "c-1", Seq: 4, AmountCents: 1},  // a gap: seq 3 may be in a tier
		{Customer: "c-1", Seq: 3, AmountCents: 20}, // from the source after 4: a violation
		{Customer: "c-1", Seq: 3, AmountCents: 20}, // again: applied already, not counted again
	} {
		if err := p.Process(ctx, rec(ev.Customer, ev)); err != nil {
			t.Fatal(err)
		}
	}
	if got := p.Balance("c-1"); got != 36 {
		t.Errorf("balance %d, want 36 (each event once)", got)
	}
	if p.Applied() != 4 || p.Violations() != 1 {
		t.Errorf("applied %d violations %d, want 4 and 1", p.Applied(), p.Violations())
	}
}

func TestProcessRejectsMalformedPermanently(t *testing.T) {
	p := New(Options{})
	bad := []*kgo.Record{
		{Key: []byte("c-1"), Value: []byte("{not json")},
		rec("c-1", Event{Customer: "", Seq: 1}),
		rec("c-1", Event{Customer: "c-1", Seq: 0}),
		rec("c-2", Event{Customer: "c-1", Seq: 1}),
	}
	for i, r := range bad {
		if err := p.Process(context.Background(), r); !isPermanent(err) {
			t.Errorf("case %d: err %v, want a permanent error", i, err)
		}
	}
	if p.Applied() != 0 {
		t.Error("a malformed event changed the ledger")
	}
}

func TestProcessWorkHonoursCancellation(t *testing.T) {
	p := New(Options{Work: time.Hour})
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if err := p.Process(ctx, rec("c-1", Event{Customer: "c-1", Seq: 1, AmountCents: 1})); !errors.Is(err, context.Canceled) {
		t.Fatalf("err %v, want context.Canceled", err)
	}
}

func TestRejectUntilThenApplied(t *testing.T) {
	p := New(Options{})
	ev := Event{Customer: "r-1", Seq: 1, AmountCents: 7, RejectUntilMs: time.Now().Add(time.Hour).UnixMilli()}
	if err := p.Process(context.Background(), rec("r-1", ev)); !isPermanent(err) {
		t.Fatalf("before the time: err %v, want a permanent error", err)
	}
	ev.RejectUntilMs = time.Now().Add(-time.Millisecond).UnixMilli()
	if err := p.Process(context.Background(), rec("r-1", ev)); err != nil || p.Balance("r-1") != 7 {
		t.Fatalf("after the time: err %v, balance %d; want it applied", err, p.Balance("r-1"))
	}
}
