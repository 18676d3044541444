package postgres_test

import (
	"context"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/ordokafka/ordo/internal/kfaketest"
	"github.com/ordokafka/ordo/internal/testenv"
	"github.com/ordokafka/ordo/pkg/store/pgstore"
	"github.com/ordokafka/ordo/processors/postgres"
)

// setup migrates a store and an events table of their own, dropped when t
// ends.
func setup(t *testing.T, pool *pgxpool.Pool) (*pgstore.Store, *postgres.Processor, string) {
	t.Helper()
	name := testenv.Name(t)
	ctx := context.Background()
	opts := pgstore.Options{Pool: pool, Inbox: name + "_inbox", Fences: name + "_fence"}
	if err := pgstore.Migrate(ctx, pool, opts); err != nil {
		t.Fatal(err)
	}
	table := name + "_events"
	if err := postgres.Migrate(ctx, pool, table); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_, _ = pool.Exec(context.Background(), "DROP TABLE IF EXISTS "+opts.Inbox+", "+opts.Fences+", "+table)
	})
	st, err := pgstore.New(opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(st.Close)
	p, err := postgres.New(postgres.Options{Store: st, Table: table})
	if err != nil {
		t.Fatal(err)
	}
	return st, p, table
}

func count(t *testing.T, pool *pgxpool.Pool, sql string) int {
	t.Helper()
	var n int
	if err := pool.QueryRow(context.Background(), sql).Scan(&n); err != nil {
		t.Fatal(err)
	}
	return n
}

// TestUpsertsOnce: a record delivered twice and by 8 goroutines at once is
// upserted once (one inbox row); a later record of the key replaces the
// row; a value the table refuses is permanent.
func TestUpsertsOnce(t *testing.T) {
	pool := testenv.Postgres(t)
	st, p, table := setup(t, pool)
	ctx := context.Background()
	r := &kgo.Record{Topic: "t", Offset: 1, Key: []byte("c-1"), Value: []byte(`{"n":1}`)}
	for range 2 {
		if err := p.Process(ctx, r); err != nil {
			t.Fatal(err)
		}
	}
	var wg sync.WaitGroup
	for range 8 {
		wg.Go(func() {
			if err := p.Process(ctx, r); err != nil {
				t.Error(err)
			}
		})
	}
	wg.Wait()
	if s := st.Stats(); s.Applied != 1 || s.Duplicates != 9 {
		t.Errorf("stats %+v, want 1 applied, 9 duplicates", s)
	}
	later := &kgo.Record{Topic: "t", Offset: 2, Key: []byte("c-1"), Value: []byte(`{"n":2}`)}
	if err := p.Process(ctx, later); err != nil {
		t.Fatal(err)
	}
	var value string
	var off int64
	if err := pool.QueryRow(ctx, `SELECT convert_from(value, 'UTF8'), "offset" FROM `+table+` WHERE key = 'c-1'`).Scan(&value, &off); err != nil {
		t.Fatal(err)
	}
	if value != `{"n":2}` || off != 2 || count(t, pool, "SELECT count(*) FROM "+table) != 1 {
		t.Errorf("row %s @%d, want the later record", value, off)
	}
	if _, err := postgres.New(postgres.Options{Store: st, Table: "drop table x"}); err == nil {
		t.Error("New accepted a bad table name")
	}
}

// TestRedeliveredThroughTheEngine: 600 records through a consumer with the
// store as its Fencer, then all of them again through a second group (a
// replay): the second pass applies nothing, and every key's row holds its
// last record.
func TestRedeliveredThroughTheEngine(t *testing.T) {
	const n, nkeys = 600, 30
	pool := testenv.Postgres(t)
	st, p, table := setup(t, pool)
	c := kfaketest.Cluster(t, 3, "t", "t.dlq")
	kfaketest.Produce(t, c.ListenAddrs(), "t", n, nkeys, false)
	for i, group := range []string{"first", "replay"} {
		cfg := kfaketest.Config(c.ListenAddrs(), group, p, "t")
		cfg.Fencer = st
		cons := kfaketest.Start(t, cfg)
		kfaketest.WaitFor(t, 30*time.Second, group+" to finish", func() bool {
			s := st.Stats()
			return s.Applied+s.Duplicates == int64(n*(i+1))
		})
		kfaketest.Stop(t, cons)
		if d := kfaketest.Metric(t, cons.Registry(), "ordo_records_total", "outcome", "dlq"); d != 0 {
			t.Errorf("%s: %v records dead-lettered", group, d)
		}
	}
	s := st.Stats()
	if s.Applied != n || s.Duplicates != n || s.Fenced != 0 {
		t.Errorf("stats %+v, want %d applied then %d duplicates", s, n, n)
	}
	if got := count(t, pool, "SELECT count(*) FROM "+table); got != nkeys {
		t.Errorf("%d rows, want %d", got, nkeys)
	}
	// Each key's row is its last record: k<j> was written by records
	// j, j+nkeys, ..., the last being n-1 - (n-1-j)%nkeys.
	rows, err := pool.Query(context.Background(), "SELECT convert_from(key, 'UTF8'), convert_from(value, 'UTF8') FROM "+table)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	for rows.Next() {
		var key, value string
		if err := rows.Scan(&key, &value); err != nil {
			t.Fatal(err)
		}
		j, _ := strconv.Atoi(strings.TrimPrefix(key, "k"))
		if want := "v" + strconv.Itoa(n-1-(n-1-j)%nkeys); value != want {
			t.Errorf("key %s holds %s, want its last record %s", key, value, want)
		}
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
}
