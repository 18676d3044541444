package main

import (
	"bytes"
	"context"
	"io"
	"log/slog"
	"strings"
	"sync"
	"testing"

	"github.com/twmb/franz-go/pkg/kgo"

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

// logErrors is a middleware: it logs each failed call and passes the
// error on, unchanged, for Ordo to route.
func logErrors(log *slog.Logger) ordo.Middleware {
	return func(next ordo.Processor) ordo.Processor {
		return ordo.ProcessorFunc(func(ctx context.Context, r *kgo.Record) error {
			err := next.Process(ctx, r)
			if err != nil {
				log.Warn("record failed", "topic", r.Topic, "offset", r.Offset, "err", err)
			}
			return err
		})
	}
}

// The processor's middleware runs inside the harness as in production.
func TestBigOrdersWithMiddleware(t *testing.T) {
	var logs bytes.Buffer
	var mu sync.Mutex
	log := slog.New(slog.NewTextHandler(&lockedWriter{mu: &mu, w: &logs}, nil))
	h := ordotest.New(t, BigOrders(5000, func(context.Context, Order) {}), ordotest.Middleware(logErrors(log)))
	h.WaitDeadLetter(h.Produce("c-1", `{"amount_cents":10}`))
	mu.Lock()
	defer mu.Unlock()
	if !strings.Contains(logs.String(), "order without a customer") {
		t.Errorf("the middleware logged:\n%s", logs.String())
	}
}

type lockedWriter struct {
	mu *sync.Mutex
	w  io.Writer
}

func (l *lockedWriter) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.w.Write(p)
}
