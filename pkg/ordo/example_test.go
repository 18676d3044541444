package ordo_test

import (
	"context"
	"errors"
	"fmt"
	"sync/atomic"
	"time"

	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/ordokafka/ordo/pkg/ordo"
)

// A consumer on an in-process broker: process three records, then stop,
// which commits each partition's lowest unfinished offset.
func ExampleNew() {
	broker, _ := kfake.NewCluster(kfake.NumBrokers(1), kfake.SeedTopics(1, "orders", "orders.ledger.dlq"))
	defer broker.Close()
	producer, _ := kgo.NewClient(kgo.SeedBrokers(broker.ListenAddrs()...))
	defer producer.Close()
	for _, v := range []string{`{"id":1}`, `not json`, `{"id":2}`} {
		producer.ProduceSync(context.Background(), &kgo.Record{Topic: "orders", Key: []byte("customer-7"), Value: []byte(v)})
	}

	var applied atomic.Int32
	cons, err := ordo.New(ordo.Config{
		Brokers: broker.ListenAddrs(),
		Group:   "ledger",
		Topics:  []string{"orders"},
		Processor: ordo.ProcessorFunc(func(ctx context.Context, r *kgo.Record) error {
			if r.Value[0] != '{' {
				return ordo.Permanent(errors.New("not a JSON object")) // to orders.ledger.dlq
			}
			applied.Add(1)
			return nil
		}),
	})
	if err != nil {
		fmt.Println(err)
		return
	}
	if err := cons.Start(context.Background()); err != nil {
		fmt.Println(err)
		return
	}
	for cons.Stats().Processed+cons.Stats().DeadLettered < 3 {
		time.Sleep(10 * time.Millisecond)
	}
	_ = cons.Stop(context.Background())
	s := cons.Stats()
	fmt.Printf("applied %d, dead-lettered %d\n", applied.Load(), s.DeadLettered)
	// Output: applied 2, dead-lettered 1
}

// Config errors name the field, before anything connects.
func ExampleNew_invalidConfig() {
	_, err := ordo.New(ordo.Config{
		Brokers:          []string{"localhost:9092"},
		Topics:           []string{"orders"},
		Processor:        ordo.ProcessorFunc(func(context.Context, *kgo.Record) error { return nil }),
		RevokeTimeout:    time.Minute,
		RebalanceTimeout: 30 * time.Second,
	})
	fmt.Println(err)
	// Output:
	// ordo: Config.Group is required
	// ordo: Config.RevokeTimeout (1m0s) must be below RebalanceTimeout (30s): the drain must finish before the group gives up on this member
}

// Middleware composes like net/http handlers: the first is outermost.
func ExampleChain() {
	trace := func(name string) ordo.Middleware {
		return func(next ordo.Processor) ordo.Processor {
			return ordo.ProcessorFunc(func(ctx context.Context, r *kgo.Record) error {
				fmt.Println("enter", name)
				defer fmt.Println("leave", name)
				return next.Process(ctx, r)
			})
		}
	}
	p := ordo.Chain(ordo.ProcessorFunc(func(context.Context, *kgo.Record) error {
		fmt.Println("process")
		return nil
	}), trace("outer"), trace("inner"))
	_ = p.Process(context.Background(), &kgo.Record{})
	// Output:
	// enter outer
	// enter inner
	// process
	// leave inner
	// leave outer
}

// Wrap errors to choose what happens to the record.
func ExamplePermanent() {
	err := fmt.Errorf("decoding order: %w", ordo.Permanent(errors.New("unexpected EOF")))
	fmt.Println(err)
	// Output: decoding order: permanent: unexpected EOF
}
