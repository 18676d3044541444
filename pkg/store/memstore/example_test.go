package memstore_test

import (
	"context"
	"errors"
	"fmt"

	"github.com/ordokafka/ordo/pkg/store"
	"github.com/ordokafka/ordo/pkg/store/memstore"
)

// A write applies once per key, and only with the partition's latest
// fencing token.
func Example() {
	ctx := context.Background()
	st := memstore.New(memstore.Options{})
	balance := 0
	credit := func(context.Context) error { balance += 100; return nil }

	old, _ := st.Fence(ctx, "ledger", "payments", 0) // member A is assigned partition 0
	op := store.Op{Key: "id:pay-1", Fence: store.Fence{Group: "ledger", Topic: "payments", Partition: 0, Token: old}}
	o, err := st.Apply(ctx, op, credit)
	fmt.Println(o, err, balance)
	o, err = st.Apply(ctx, op, credit) // redelivered
	fmt.Println(o, err, balance)

	cur, _ := st.Fence(ctx, "ledger", "payments", 0) // the partition moves to member B
	op.Key = "id:pay-2"
	_, err = st.Apply(ctx, op, credit) // A, late, with its old token
	fmt.Println(errors.Is(err, store.ErrFenced), balance)
	op.Fence.Token = cur
	o, err = st.Apply(ctx, op, credit) // B
	fmt.Println(o, err, balance)
	// Output:
	// applied <nil> 100
	// duplicate <nil> 100
	// true 100
	// applied <nil> 200
}
