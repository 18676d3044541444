// Package example is the processor of Ordo's demo pipeline: it applies
// order events to an in-memory ledger of customer balances, once each, and
// checks, as it goes, that each customer's events arrive from the source
// topic in the order they were produced. A malformed event is a permanent
// failure: it goes to the dead-letter topic with its reason, and nothing
// else waits for it. A flaky event fails its first calls (fail_first), so
// the demo shows records moving through the retry tiers; an event with
// reject_until_ms is rejected until then, so that it can be redriven from
// the dead-letter topic once "fixed".
//
// Events are JSON, keyed by customer:
//
//	{"customer":"c-17","seq":42,"amount_cents":1250,"fail_first":4}
//
// seq counts the customer's events from 1, as the demo generator writes
// them. A processor that saw seq 43 before 42 on the source topic would
// report an ordering violation; an event retried through a tier arrives
// after its successors by design (the tiers are non-blocking) and is not
// one. The ledger is a sum, so it does not mind.
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
	// FailFirst makes the event's first calls fail (retryably): the demo's
	// way to send records through the retry tiers.
	FailFirst int `json:"fail_first,omitempty"`
	// RejectUntilMs (unix milliseconds) makes the event rejected as
	// permanently failing until then: a stand-in for a bug that a deploy
	// fixes, so that the demo can show a dead letter redriven after the fix
	// and applied.
	RejectUntilMs int64 `json:"reject_until_ms,omitempty"`
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

	mu        sync.Mutex
	balances  map[string]int64
	customers map[string]*seen

	applied    atomic.Int64
	violations atomic.Int64
}

// seen is what the processor knows of one customer's events.
type seen struct {
	contig    int64              // every seq up to it is applied
	above     map[int64]struct{} // applied seqs above contig
	maxSource int64              // the highest seq delivered from the source topic
}

func (s *seen) applied(seq int64) bool {
	_, ok := s.above[seq]
	return seq <= s.contig || ok
}

func (s *seen) apply(seq int64) {
	s.above[seq] = struct{}{}
	for {
		if _, ok := s.above[s.contig+1]; !ok {
			return
		}
		delete(s.above, s.contig+1)
		s.contig++
	}
}

// New returns a Processor with an empty ledger.
func New(opts Options) *Processor {
	return &Processor{opts: opts, balances: map[string]int64{}, customers: map[string]*seen{}}
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
	if ev.RejectUntilMs > 0 && time.Now().UnixMilli() < ev.RejectUntilMs {
		return ordo.Permanent(fmt.Errorf("event %s#%d: rejected until %s (a bug fixed by then)", ev.Customer, ev.Seq, time.UnixMilli(ev.RejectUntilMs).UTC().Format(time.RFC3339)))
	}
	info, _ := ordo.InfoFromContext(ctx)
	if ev.FailFirst > 0 && info.Attempt <= ev.FailFirst {
		return fmt.Errorf("event %s#%d: flaky, call %d of the first %d that fail", ev.Customer, ev.Seq, info.Attempt, ev.FailFirst)
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
	c := p.customers[ev.Customer]
	if c == nil {
		c = &seen{above: map[int64]struct{}{}}
		p.customers[ev.Customer] = c
	}
	if info.Tier == 0 {
		// From the source topic a customer's events come in order; a
		// redelivery (after a rebalance or restart) repeats one, never
		// goes back past one that was not delivered before.
		if ev.Seq < c.maxSource && !c.applied(ev.Seq) {
			p.violations.Add(1)
		}
		c.maxSource = max(c.maxSource, ev.Seq)
	}
	if c.applied(ev.Seq) {
		return nil // a redelivery: applied already
	}
	c.apply(ev.Seq)
	p.balances[ev.Customer] += ev.AmountCents
	p.applied.Add(1)
	return nil
}

// Applied returns how many events changed the ledger.
func (p *Processor) Applied() int64 { return p.applied.Load() }

// Violations returns how many events of a customer arrived from the source
// topic after a later one that was not applied: it stays 0 under Ordo's
// key ordering.
func (p *Processor) Violations() int64 { return p.violations.Load() }

// Balance returns a customer's balance in cents.
func (p *Processor) Balance(customer string) int64 {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.balances[customer]
}
