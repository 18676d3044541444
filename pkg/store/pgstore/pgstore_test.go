package pgstore_test

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/ordokafka/ordo/internal/testenv"
	"github.com/ordokafka/ordo/pkg/store"
	"github.com/ordokafka/ordo/pkg/store/pgstore"
	"github.com/ordokafka/ordo/pkg/store/storetest"
)

// migrated creates a store on tables of its own (dropped when t ends) and
// an effects table: (key text, n int).
func migrated(t *testing.T, pool *pgxpool.Pool, maxBatch int) (*pgstore.Store, string) {
	t.Helper()
	name := testenv.Name(t)
	opts := pgstore.Options{Pool: pool, Inbox: name + "_inbox", Fences: name + "_fence", MaxBatch: maxBatch}
	ctx := context.Background()
	if err := pgstore.Migrate(ctx, pool, opts); err != nil {
		t.Fatal(err)
	}
	if err := pgstore.Migrate(ctx, pool, opts); err != nil { // idempotent
		t.Fatalf("second migrate: %v", err)
	}
	effects := name + "_effects"
	if _, err := pool.Exec(ctx, "CREATE TABLE "+effects+" (key text PRIMARY KEY, n int NOT NULL)"); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_, err := pool.Exec(context.Background(), "DROP TABLE IF EXISTS "+opts.Inbox+", "+opts.Fences+", "+effects)
		if err != nil {
			t.Log(err)
		}
	})
	st, err := pgstore.New(opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(st.Close)
	return st, effects
}

func readEffects(ctx context.Context, pool *pgxpool.Pool, table string) (map[string]int, error) {
	rows, err := pool.Query(ctx, "SELECT key, n FROM "+table)
	if err != nil {
		return nil, err
	}
	out := map[string]int{}
	defer rows.Close()
	for rows.Next() {
		var k string
		var n int
		if err := rows.Scan(&k, &n); err != nil {
			return nil, err
		}
		out[k] = n
	}
	return out, rows.Err()
}

func TestConformance(t *testing.T) {
	for _, mode := range []string{"batched", "unbatched", "tx"} {
		t.Run(mode, func(t *testing.T) {
			t.Parallel()
			pool := testenv.Postgres(t)
			storetest.Run(t, func(t *testing.T) storetest.Harness {
				maxBatch := 0
				if mode == "unbatched" {
					maxBatch = 1
				}
				st, effects := migrated(t, pool, maxBatch)
				upsert := "INSERT INTO " + effects + " (key, n) VALUES ($1, 1) ON CONFLICT (key) DO UPDATE SET n = " + effects + ".n + 1"
				h := storetest.Harness{
					Store:   st,
					Effects: func(ctx context.Context) (map[string]int, error) { return readEffects(ctx, pool, effects) },
				}
				if mode == "tx" {
					h.Apply = func(ctx context.Context, op store.Op) (store.Outcome, error) {
						return st.ApplyTx(ctx, op, func(ctx context.Context, tx pgx.Tx) error {
							_, err := tx.Exec(ctx, upsert, op.Key)
							return err
						})
					}
					h.ApplyFailing = func(ctx context.Context, op store.Op) error {
						_, err := st.ApplyTx(ctx, op, func(ctx context.Context, tx pgx.Tx) error {
							if _, err := tx.Exec(ctx, upsert, op.Key); err != nil {
								return err
							}
							return errors.New("sink refused")
						})
						return err
					}
					return h
				}
				h.Apply = func(ctx context.Context, op store.Op) (store.Outcome, error) {
					return st.Apply(ctx, op, pgstore.Stmt{SQL: upsert, Args: []any{op.Key}})
				}
				h.ApplyFailing = func(ctx context.Context, op store.Op) error {
					_, err := st.Apply(ctx, op, pgstore.Stmt{SQL: upsert, Args: []any{op.Key}},
						pgstore.Stmt{SQL: "SELECT 1/0"})
					return err
				}
				return h
			})
		})
	}
}

// TestBadWriteFailsAlone: in a batch, one write whose statement fails
// fails alone; the others apply.
func TestBadWriteFailsAlone(t *testing.T) {
	pool := testenv.Postgres(t)
	st, effects := migrated(t, pool, 0)
	ctx := context.Background()
	upsert := "INSERT INTO " + effects + " (key, n) VALUES ($1, 1)"
	errs := make(chan error, 50)
	for i := range 50 {
		go func() {
			key := "k" + strings.Repeat("x", i)
			stmts := []pgstore.Stmt{{SQL: upsert, Args: []any{key}}}
			if i == 25 {
				stmts = append(stmts, pgstore.Stmt{SQL: "SELECT 1/0"})
			}
			_, err := st.Apply(ctx, store.Op{Key: key}, stmts...)
			errs <- err
		}()
	}
	failed := 0
	for range 50 {
		if err := <-errs; err != nil {
			failed++
			if errors.Is(err, store.ErrUnavailable) || !strings.Contains(err.Error(), "division by zero") {
				t.Errorf("the bad write's error: %v", err)
			}
		}
	}
	m, err := readEffects(ctx, pool, effects)
	if err != nil {
		t.Fatal(err)
	}
	if failed != 1 || len(m) != 49 {
		t.Errorf("%d failed, %d applied; want 1 and 49", failed, len(m))
	}
}

// TestPruneAndSchema: Prune deletes old inbox rows (their keys apply
// again); Schema names the configured tables.
func TestPruneAndSchema(t *testing.T) {
	pool := testenv.Postgres(t)
	st, _ := migrated(t, pool, 0)
	ctx := context.Background()
	if o, err := st.Apply(ctx, store.Op{Key: "old"}); err != nil || o != store.Applied {
		t.Fatal(o, err)
	}
	if _, err := pool.Exec(ctx, "UPDATE "+st.Inbox()+" SET applied_at = now() - interval '2 hours'"); err != nil {
		t.Fatal(err)
	}
	if o, _ := st.Apply(ctx, store.Op{Key: "new"}); o != store.Applied {
		t.Fatal(o)
	}
	n, err := st.Prune(ctx, time.Hour)
	if err != nil || n != 1 {
		t.Fatalf("pruned %d, %v; want 1", n, err)
	}
	if o, _ := st.Apply(ctx, store.Op{Key: "old"}); o != store.Applied {
		t.Errorf("a pruned key: %v, want applied again", o)
	}
	sql, err := pgstore.Schema(pgstore.Options{Inbox: "x_inbox", Fences: "x_fence"})
	if err != nil || !strings.Contains(sql, "CREATE TABLE IF NOT EXISTS x_inbox") || strings.Contains(sql, "ordo_inbox") {
		t.Errorf("Schema: %v\n%s", err, sql)
	}
	if _, err := pgstore.New(pgstore.Options{Pool: pool, Inbox: "Bad-Name"}); err == nil {
		t.Error("New accepted a bad table name")
	}
}

// Forget deletes only its own inbox's rows: a store on another inbox keeps
// the same keys; a database that cannot be reached fails it with
// ErrUnavailable.
func TestForgetIsPerInbox(t *testing.T) {
	pool := testenv.Postgres(t)
	a, _ := migrated(t, pool, 0)
	b, _ := migrated(t, pool, 0)
	ctx := context.Background()
	for _, st := range []*pgstore.Store{a, b} {
		for _, k := range []string{"x", "y"} {
			if o, err := st.Apply(ctx, store.Op{Key: k}); err != nil || o != store.Applied {
				t.Fatal(o, err)
			}
		}
	}
	if n, err := a.Forget(ctx, []string{"x", "y", "x"}); err != nil || n != 2 {
		t.Fatalf("Forget: %d, %v; want 2", n, err)
	}
	if o, _ := b.Apply(ctx, store.Op{Key: "x"}); o != store.Duplicate {
		t.Errorf("the other inbox's key: %v, want duplicate", o)
	}
	if o, _ := a.Apply(ctx, store.Op{Key: "x"}); o != store.Applied {
		t.Errorf("the forgotten key: %v, want applied", o)
	}

	cfg, err := pgxpool.ParseConfig("postgres://u@127.0.0.1:1/db?sslmode=disable&connect_timeout=1")
	if err != nil {
		t.Fatal(err)
	}
	down, err := pgxpool.NewWithConfig(ctx, cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer down.Close()
	st, err := pgstore.New(pgstore.Options{Pool: down, Timeout: 2 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	if n, err := st.Forget(ctx, []string{"x"}); !errors.Is(err, store.ErrUnavailable) || n != 0 {
		t.Errorf("Forget on an unreachable database: %d, %v; want 0 and ErrUnavailable", n, err)
	}
}
