// Command embedded runs a processor against the embedded broker of `ordo
// dev` (pkg/devbroker), in one file: the complete program of
// docs/processors.md.
package main

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/signal"

	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/ordokafka/ordo/pkg/devbroker"
	"github.com/ordokafka/ordo/pkg/ordo"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()

	broker, err := devbroker.Start(devbroker.Options{
		Addr: "127.0.0.1:9092", // kcat -b 127.0.0.1:9092 -P -t payments -K: ...
		// The source topic and the group's dead-letter topic, payments.payments-ledger.dlq.
		Extra: []kfake.Opt{kfake.SeedTopics(3, "payments", ordo.DefaultNaming.DLQTopic("payments", "payments-ledger"))},
	})
	if err != nil {
		panic(err)
	}
	defer broker.Close()

	cons, err := ordo.New(ordo.Config{
		Brokers: []string{broker.Addr()},
		Group:   "payments-ledger",
		Topics:  []string{"payments"},
		Processor: ordo.ProcessorFunc(func(ctx context.Context, r *kgo.Record) error {
			var p struct{ Cents int64 }
			if err := json.Unmarshal(r.Value, &p); err != nil {
				return ordo.Permanent(err) // to the dead-letter topic, with the reason in ordo-error
			}
			info, _ := ordo.InfoFromContext(ctx)
			fmt.Printf("key %s offset %d attempt %d: %d cents\n", r.Key, r.Offset, info.Attempt, p.Cents)
			return nil
		}),
	})
	if err != nil {
		panic(err)
	}
	if err := cons.Run(ctx); err != nil { // until Ctrl-C, then drain and commit
		panic(err)
	}
}
