// Package example is the processor of Ordo's demo pipeline: it applies
// order events to an in-memory ledger of customer balances, and checks, as
// it goes, that each customer's events arrive in the order they were
// produced. A malformed event is a permanent failure: it goes to the
// dead-letter topic with its reason, and nothing else waits for it.
//
// Events are JSON, keyed by customer:
//
//	{"customer":"c-17","seq":42,"amount_cents":1250}
//
// seq counts the customer's events from 1, as the demo generator writes
// them; a processor that saw seq 43 before 42 would report an ordering
// violation.
package example

import (
	"context"
	"encoding/json"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/ordokafka/ordo/pkg/ordo"
)

// Event is one order event of the demo.
type Event struct {
	Customer    string `json:"customer"`
	Seq         int64  `json:"seq"`
	AmountCents int64  `json:"amount_cents"`
}

// Options configure the processor.
type Options struct {
	// Work is how long applying one event takes, to make the demo's
	// concurrency visible. The wait honors the context. Default 0.
	Work time.Duration
}

// Processor applies events to a ledger. It is safe for concurrent use.
type Processor struct {
	opts Options

	mu       sync.Mutex
	balances map[string]int64
	lastSeq  map[string]int64

	applied    atomic.Int64
	violations atomic.Int64
}

// New returns a Processor with an empty ledger.
func New(opts Options) *Processor {
	return &Processor{opts: opts, balances: map[string]int64{}, lastSeq: map[string]int64{}}
}

// Process implements ordo.Processor.
func (p *Processor) Process(ctx context.Context, r *kgo.Record) error {
	var ev Event
	if err := json.Unmarshal(r.Value, &ev); err != nil {
		return ordo.Permanent(fmt.Errorf("malformed event at %s/%d@%d: %w", r.Topic, r.Partition, r.Offset, err))
	}
	if ev.Customer == "" || ev.Seq < 1 {
		return ordo.Permanent(fmt.Errorf("event at %s/%d@%d: customer and seq >= 1 are required", r.Topic, r.Partition, r.Offset))
	}
	if ev.Customer != string(r.Key) {
		return ordo.Permanent(fmt.Errorf("event at %s/%d@%d: customer %q does not match key %q", r.Topic, r.Partition, r.Offset, ev.Customer, r.Key))
	}
	if p.opts.Work > 0 {
		t := time.NewTimer(p.opts.Work)
		select {
		case <-t.C:
		case <-ctx.Done():
			t.Stop()
			return ctx.Err()
		}
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	last := p.lastSeq[ev.Customer]
	switch {
	case ev.Seq <= last:
		// A redelivery after a rebalance or restart: already applied.
		return nil
	case ev.Seq != last+1 && last != 0:
		p.violations.Add(1)
	}
	p.lastSeq[ev.Customer] = ev.Seq
	p.balances[ev.Customer] += ev.AmountCents
	p.applied.Add(1)
	return nil
}

// Applied returns how many events changed the ledger.
func (p *Processor) Applied() int64 { return p.applied.Load() }

// Violations returns how many events of a customer arrived after a later
// one: it stays 0 under Ordo's key ordering.
func (p *Processor) Violations() int64 { return p.violations.Load() }

// Balance returns a customer's balance in cents.
func (p *Processor) Balance(customer string) int64 {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.balances[customer]
}
