package redisledger_test

import (
	"context"
	"fmt"
	"os"

	"github.com/redis/go-redis/v9"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/ordokafka/ordo/pkg/store/redisstore"
	"github.com/ordokafka/ordo/processors/redisledger"
)

// The ledger appends a record once, however often it is delivered. In a
// pipeline, set the store as ordo.Config.Fencer and the ledger as the
// Processor.
func Example() {
	addr := os.Getenv("ORDO_TEST_REDIS_ADDR")
	if addr == "" {
		fmt.Println("[orders/0/41 {\"amount_cents\":250}]") // ORDO_TEST_REDIS_ADDR unset: the output Redis gives
		return
	}
	ctx := context.Background()
	client := redis.NewClient(&redis.Options{Addr: addr})
	defer client.Close()
	st, err := redisstore.New(redisstore.Options{Client: client, Prefix: "ordo-example-ledger:"})
	if err != nil {
		panic(err)
	}
	defer st.Close()
	ledger, err := redisledger.New(redisledger.Options{Store: st})
	if err != nil {
		panic(err)
	}
	r := &kgo.Record{Topic: "orders", Partition: 0, Offset: 41, Key: []byte("c-1"), Value: []byte(`{"amount_cents":250}`)}
	for range 3 { // delivered, then redelivered twice
		if err := ledger.Process(ctx, r); err != nil {
			panic(err)
		}
	}
	entries, _ := client.LRange(ctx, ledger.ListKey(r.Key), 0, -1).Result()
	fmt.Println(entries)
	client.Del(ctx, ledger.ListKey(r.Key), "ordo-example-ledger:ledger:seq:c-1", "ordo-example-ledger:ledger:violations", st.DedupKey("at:orders/0/41"))
	// Output:
	// [orders/0/41 {"amount_cents":250}]
}
