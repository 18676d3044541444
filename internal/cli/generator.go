package cli

import (
	"context"
	"encoding/json"
	"errors"
	"math/rand/v2"
	"strconv"
	"sync/atomic"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
	"golang.org/x/time/rate"

	"github.com/ordokafka/ordo/processors/example"
)

// generator produces demo order events keyed by customer, each customer's
// events numbered from 1 so the example processor can check their order.
type generator struct {
	topic          string
	rate           int
	customers      int
	malformedEvery int
	flakyEvery     int   // one event in this many fails its first calls
	failFirst      int   // how many (the in-place attempts, so it reaches tier 1; +1: tier 2)
	produced       int64 // -1: no generator; read with Produced
	acked          atomic.Int64
}

// Produced returns the events acknowledged by the broker, or -1 when the
// generator is off.
func (g *generator) Produced() int64 {
	if g.produced < 0 {
		return -1
	}
	return g.acked.Load()
}

func (g *generator) run(ctx context.Context, addr string) error {
	cl, err := kgo.NewClient(kgo.SeedBrokers(addr), kgo.DefaultProduceTopic(g.topic))
	if err != nil {
		return err
	}
	defer cl.Close()
	// Produce in small batches: 100 limiter tokens a second at most.
	batch := max(1, g.rate/100)
	lim := rate.NewLimiter(rate.Limit(g.rate), batch)
	seq := make([]int64, g.customers)
	var n int64
	for {
		if err := lim.WaitN(ctx, batch); err != nil {
			break
		}
		for range batch {
			n++
			c := rand.IntN(g.customers)
			seq[c]++
			key := "c-" + strconv.Itoa(c)
			var val []byte
			if g.malformedEvery > 0 && n%int64(g.malformedEvery) == 0 {
				val = []byte(`{"customer":"` + key + `","seq":`) // truncated: malformed
				seq[c]--                                         // not a real event of the customer
			} else {
				ev := example.Event{Customer: key, Seq: seq[c], AmountCents: int64(rand.IntN(10000))}
				if g.flakyEvery > 0 && n%int64(g.flakyEvery) == int64(g.flakyEvery)/2 {
					// Fails its in-place calls, so it goes to retry tier 1;
					// one in three also fails there, and goes to tier 2.
					ev.FailFirst = g.failFirst + min(1, int(n/int64(g.flakyEvery))%3/2)
				}
				val, _ = json.Marshal(ev)
			}
			// Not ctx: events already numbered must reach the broker.
			cl.Produce(context.WithoutCancel(ctx), &kgo.Record{Key: []byte(key), Value: val}, func(_ *kgo.Record, err error) {
				if err == nil {
					g.acked.Add(1)
				}
			})
		}
	}
	fctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := cl.Flush(fctx); err != nil && !errors.Is(err, context.Canceled) {
		return err
	}
	return nil
}
