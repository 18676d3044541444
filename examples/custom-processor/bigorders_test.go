package main

import (
	"context"
	"strings"
	"sync"
	"testing"

	"github.com/ordokafka/ordo/pkg/ordo"
	"github.com/ordokafka/ordo/pkg/ordotest"
	"github.com/ordokafka/ordo/pkg/registry"
)

func TestBigOrders(t *testing.T) {
	var mu sync.Mutex
	var reported []Order
	proc := BigOrders(5000, func(_ context.Context, o Order) {
		mu.Lock()
		reported = append(reported, o)
		mu.Unlock()
	})
	h := ordotest.New(t, proc)

	h.WaitDone(h.Produce("c-1", `{"customer":"c-1","amount_cents":9000}`))
	h.WaitDone(h.Produce("c-2", `{"customer":"c-2","amount_cents":120}`))
	mu.Lock()
	if len(reported) != 1 || reported[0].Customer != "c-1" {
		t.Errorf("reported %+v, want c-1's order alone", reported)
	}
	mu.Unlock()

	// Malformed, or without a customer: dead-lettered at once, with the reason.
	for value, reason := range map[string]string{
		`{"customer":"c-3","amount_cents":`: "decoding json: unexpected end of JSON input",
		`{"amount_cents":10}`:               "order without a customer",
	} {
		rec := h.Produce("c-3", value)
		dl := h.WaitDeadLetter(rec)
		if got := ordotest.HeaderValue(dl, ordo.HeaderError); !strings.Contains(got, reason) {
			t.Errorf("%s: ordo-error %q, want %q", value, got, reason)
		}
		if n := len(h.Outcome(rec).Calls); n != 1 {
			t.Errorf("%s: %d calls, want 1 (no retry)", value, n)
		}
	}
}

func TestBigOrdersConfig(t *testing.T) {
	for _, tc := range []struct {
		cfg  map[string]any
		want string
	}{
		{map[string]any{"limit_cents": 0}, "limit_cents: must be > 0, got 0"},
		{map[string]any{"limit_cents": "lots"}, `cannot read "lots" as int64`},
		{map[string]any{"limit_cnets": 100}, `unknown option "limit_cnets"`},
	} {
		_, err := newBigOrders(registry.NewSetup("big-orders", tc.cfg, nil))
		if err == nil || err.Error() != tc.want {
			t.Errorf("%v: %v, want %q", tc.cfg, err, tc.want)
		}
	}
	if p, err := newBigOrders(registry.NewSetup("big-orders", nil, nil)); err != nil || p == nil {
		t.Errorf("defaults: %v", err)
	}
}
