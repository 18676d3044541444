package postgres_test

import (
	"context"
	"fmt"
	"os"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/ordokafka/ordo/pkg/store/pgstore"
	"github.com/ordokafka/ordo/processors/postgres"
)

// Each record is upserted into the table once, in the transaction of its
// inbox row. In a pipeline, set the store as ordo.Config.Fencer and the
// processor as the Processor.
func Example() {
	dsn := os.Getenv("ORDO_TEST_POSTGRES_DSN")
	if dsn == "" {
		fmt.Println("1 row, 1 applied, 1 duplicate") // ORDO_TEST_POSTGRES_DSN unset: the output PostgreSQL gives
		return
	}
	ctx := context.Background()
	pool, err := pgxpool.New(ctx, dsn)
	if err != nil {
		panic(err)
	}
	defer pool.Close()
	opts := pgstore.Options{Pool: pool, Inbox: "example_pg_inbox", Fences: "example_pg_fence"}
	if err := pgstore.Migrate(ctx, pool, opts); err != nil {
		panic(err)
	}
	if err := postgres.Migrate(ctx, pool, "example_customers"); err != nil {
		panic(err)
	}
	defer func() { _, _ = pool.Exec(ctx, "DROP TABLE example_pg_inbox, example_pg_fence, example_customers") }()
	st, err := pgstore.New(opts)
	if err != nil {
		panic(err)
	}
	defer st.Close()
	p, err := postgres.New(postgres.Options{Store: st, Table: "example_customers"})
	if err != nil {
		panic(err)
	}
	r := &kgo.Record{Topic: "customers", Offset: 3, Key: []byte("c-1"), Value: []byte(`{"name":"Ada"}`)}
	for range 2 { // delivered, then redelivered
		if err := p.Process(ctx, r); err != nil {
			panic(err)
		}
	}
	var rows int
	_ = pool.QueryRow(ctx, "SELECT count(*) FROM example_customers").Scan(&rows)
	fmt.Printf("%d row, %d applied, %d duplicate\n", rows, st.Stats().Applied, st.Stats().Duplicates)
	// Output:
	// 1 row, 1 applied, 1 duplicate
}
