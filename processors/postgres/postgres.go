// Package postgres is a processor that upserts each record into a table,
// inside the transaction of the record's inbox row and fence check
// (pkg/store/pgstore): the row and the dedup mark commit together, so a
// redelivered record changes nothing and a member that lost the partition
// writes nothing.
//
// The table holds the latest record of each key (a record without a key
// is stored under its dedup key):
//
//	CREATE TABLE IF NOT EXISTS <table> (
//	    key        bytea       PRIMARY KEY,
//	    value      bytea,
//	    topic      text        NOT NULL,  -- the record's origin
//	    partition  integer     NOT NULL,
//	    "offset"   bigint      NOT NULL,
//	    updated_at timestamptz NOT NULL DEFAULT now()
//	);
//
// Migrate creates it (and `ordo store migrate --table` does).
package postgres

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/ordokafka/ordo/pkg/ordo"
	"github.com/ordokafka/ordo/pkg/store"
	"github.com/ordokafka/ordo/pkg/store/pgstore"
)

// Options configure a Processor.
type Options struct {
	// Store is the PostgreSQL store the upserts go through. Required. Set
	// it as ordo.Config.Fencer too, or the upserts are not fenced.
	Store *pgstore.Store
	// Table is the table the records are upserted into. Required; see
	// pgstore.CheckTableName for the names accepted.
	Table string
	// Keys derives each record's dedup key. Default: the "event-id"
	// header, else the record's origin.
	Keys store.Keys
}

// Schema returns the CREATE TABLE statement of table.
func Schema(table string) (string, error) {
	if err := pgstore.CheckTableName(table); err != nil {
		return "", fmt.Errorf("postgres: table: %w", err)
	}
	return "CREATE TABLE IF NOT EXISTS " + pgx.Identifier{table}.Sanitize() + ` (
    key        bytea       PRIMARY KEY,
    value      bytea,
    topic      text        NOT NULL,
    partition  integer     NOT NULL,
    "offset"   bigint      NOT NULL,
    updated_at timestamptz NOT NULL DEFAULT now()
)`, nil
}

// Migrate creates table if it does not exist.
func Migrate(ctx context.Context, pool *pgxpool.Pool, table string) error {
	sql, err := Schema(table)
	if err != nil {
		return err
	}
	if _, err := pool.Exec(ctx, sql); err != nil {
		return fmt.Errorf("postgres: creating %s: %w", table, err)
	}
	return nil
}

// Processor upserts records. It is safe for concurrent use.
type Processor struct {
	opts   Options
	upsert string
}

// New returns a Processor.
func New(opts Options) (*Processor, error) {
	if opts.Store == nil {
		return nil, errors.New("postgres: Options.Store is required")
	}
	if err := pgstore.CheckTableName(opts.Table); err != nil {
		return nil, fmt.Errorf("postgres: Options.Table: %w", err)
	}
	t := pgx.Identifier{opts.Table}.Sanitize()
	return &Processor{opts: opts, upsert: "INSERT INTO " + t + ` (key, value, topic, partition, "offset", updated_at) ` +
		`VALUES ($1, $2, $3, $4, $5, now()) ON CONFLICT (key) DO UPDATE SET value = EXCLUDED.value, topic = EXCLUDED.topic, ` +
		`partition = EXCLUDED.partition, "offset" = EXCLUDED."offset", updated_at = now()`}, nil
}

// Process implements ordo.Processor: it upserts r once. A fenced write
// holds the partition and an unreachable database holds the record (see
// store.ProcessorError); a record the table refuses (a data exception or an
// integrity violation, SQLSTATE classes 22 and 23) is permanent.
func (p *Processor) Process(ctx context.Context, r *kgo.Record) error {
	op := p.opts.Keys.For(ctx, r)
	key := r.Key
	if len(key) == 0 {
		key = []byte(op.Key)
	}
	o := ordo.OriginOf(ctx, r)
	_, err := p.opts.Store.Apply(ctx, op, pgstore.Stmt{SQL: p.upsert, Args: []any{key, r.Value, o.Topic, o.Partition, o.Offset}})
	var pgErr *pgconn.PgError
	if errors.As(err, &pgErr) && (strings.HasPrefix(pgErr.Code, "22") || strings.HasPrefix(pgErr.Code, "23")) {
		return ordo.Permanent(fmt.Errorf("postgres: %s/%d@%d: %w", r.Topic, r.Partition, r.Offset, err))
	}
	return store.ProcessorError(err)
}
