package pgstore_test

import (
	"context"
	"fmt"
	"os"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/ordokafka/ordo/pkg/store"
	"github.com/ordokafka/ordo/pkg/store/pgstore"
)

// A processor's write is SQL that commits in one transaction with the
// record's inbox row and the fence check.
func Example() {
	dsn := os.Getenv("ORDO_TEST_POSTGRES_DSN")
	if dsn == "" {
		fmt.Println("applied\nduplicate") // ORDO_TEST_POSTGRES_DSN unset: the output PostgreSQL gives
		return
	}
	ctx := context.Background()
	pool, err := pgxpool.New(ctx, dsn)
	if err != nil {
		panic(err)
	}
	defer pool.Close()
	opts := pgstore.Options{Pool: pool, Inbox: "example_inbox", Fences: "example_fence"}
	if err := pgstore.Migrate(ctx, pool, opts); err != nil { // or: ordo store migrate
		panic(err)
	}
	defer func() { _, _ = pool.Exec(ctx, "DROP TABLE example_inbox, example_fence, example_balances") }()
	if _, err := pool.Exec(ctx, "CREATE TABLE IF NOT EXISTS example_balances (customer text PRIMARY KEY, cents bigint)"); err != nil {
		panic(err)
	}
	st, err := pgstore.New(opts)
	if err != nil {
		panic(err)
	}
	defer st.Close()

	tok, err := st.Fence(ctx, "ledger", "payments", 0) // what ordo.Config.Fencer does on assignment
	if err != nil {
		panic(err)
	}
	op := store.Op{Key: "id:pay-1", Fence: store.Fence{Group: "ledger", Topic: "payments", Partition: 0, Token: tok}}
	credit := pgstore.Stmt{
		SQL:  "INSERT INTO example_balances VALUES ($1, $2) ON CONFLICT (customer) DO UPDATE SET cents = example_balances.cents + $2",
		Args: []any{"c-1", 250},
	}
	for range 2 { // delivered, then redelivered
		o, err := st.Apply(ctx, op, credit)
		if err != nil {
			panic(err)
		}
		fmt.Println(o)
	}
	// Output:
	// applied
	// duplicate
}
