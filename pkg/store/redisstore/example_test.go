package redisstore_test

import (
	"context"
	"fmt"
	"os"

	"github.com/redis/go-redis/v9"

	"github.com/ordokafka/ordo/pkg/store"
	"github.com/ordokafka/ordo/pkg/store/redisstore"
)

// credit is an effect: add ARGV[1] to the balance at KEYS[1].
var credit = redisstore.NewScript(`return redis.call('INCRBY', KEYS[1], ARGV[1])`)

// A processor applies each record's effect in one script that also checks
// the record's dedup key and its fencing token.
func Example() {
	addr := os.Getenv("ORDO_TEST_REDIS_ADDR")
	if addr == "" {
		fmt.Println("applied 250\nduplicate") // ORDO_TEST_REDIS_ADDR unset: the output Redis gives
		return
	}
	ctx := context.Background()
	client := redis.NewClient(&redis.Options{Addr: addr})
	defer client.Close()
	st, err := redisstore.New(redisstore.Options{Client: client, Prefix: "ordo-example:"})
	if err != nil {
		panic(err)
	}
	defer st.Close()
	defer client.Del(ctx, "ordo-example:balance:c-1", st.DedupKey("id:pay-1"), st.FenceKey("ledger", "payments", 0))

	tok, err := st.Fence(ctx, "ledger", "payments", 0) // what ordo.Config.Fencer does on assignment
	if err != nil {
		panic(err)
	}
	op := store.Op{Key: "id:pay-1", Fence: store.Fence{Group: "ledger", Topic: "payments", Partition: 0, Token: tok}}
	o, v, err := st.Apply(ctx, op, credit, []string{"ordo-example:balance:c-1"}, 250)
	if err != nil {
		panic(err)
	}
	fmt.Println(o, v)
	o, _, _ = st.Apply(ctx, op, credit, []string{"ordo-example:balance:c-1"}, 250) // redelivered
	fmt.Println(o)
	// Output:
	// applied 250
	// duplicate
}
