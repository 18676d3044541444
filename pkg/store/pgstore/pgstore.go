// Package pgstore is an idempotency store on PostgreSQL (pgx v5): a write
// inserts its key into an inbox table with INSERT ... ON CONFLICT DO
// NOTHING in the same transaction as the business write and the fence
// check, so that the effect and its dedup mark commit together or not at
// all.
//
// The schema (schema.sql in this package: the inbox and the fence table) is
// created by Migrate, which `ordo store migrate` also runs. Two ways to
// write:
//
//   - Apply(ctx, op, stmts...): SQL statements. Concurrent calls are
//     coalesced into one transaction per batch (one round trip for the
//     checks, one for the statements and the commit), which is what makes
//     a write per record affordable; a batch whose statements fail is run
//     again one call per transaction, so one bad write fails alone.
//   - ApplyTx(ctx, op, fn): any Go code on a pgx.Tx, one transaction per
//     call.
package pgstore

import (
	"context"
	_ "embed"
	"errors"
	"fmt"
	"regexp"
	"slices"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/ordokafka/ordo/pkg/store"
	"github.com/ordokafka/ordo/pkg/store/internal/batch"
)

//go:embed schema.sql
var schemaSQL string

// Defaults.
const (
	DefaultInbox     = "ordo_inbox"
	DefaultFences    = "ordo_fence"
	DefaultBatchers  = 4
	DefaultMaxBatch  = 256
	DefaultTimeout   = 10 * time.Second
	maxTableNameSize = 48
)

// Options configure a Store.
type Options struct {
	// Pool is the connection pool. Required. The Store does not close it.
	Pool *pgxpool.Pool
	// Inbox names the inbox table. Default "ordo_inbox". Give each sink its
	// own: keys are unique within an inbox.
	Inbox string
	// Fences names the fence table. Default "ordo_fence".
	Fences string
	// Batchers is how many batch transactions may run at once. Default 4.
	Batchers int
	// MaxBatch bounds the writes of one batch transaction. Default 256. 1
	// turns coalescing off.
	MaxBatch int
	// Timeout bounds one batch transaction. Default 10s.
	Timeout time.Duration
}

var tableName = regexp.MustCompile(`^[a-z_][a-z0-9_]*$`)

// CheckTableName reports whether name is a table name the store accepts:
// lower-case letters, digits and underscores, not starting with a digit, at
// most 48 characters (so that the index names derived from it fit).
func CheckTableName(name string) error {
	if !tableName.MatchString(name) || len(name) > maxTableNameSize {
		return fmt.Errorf("%q is not a table name: want lower-case letters, digits and _, not starting with a digit, at most %d characters", name, maxTableNameSize)
	}
	return nil
}

func (o Options) withDefaults() (Options, error) {
	if o.Inbox == "" {
		o.Inbox = DefaultInbox
	}
	if o.Fences == "" {
		o.Fences = DefaultFences
	}
	if o.Batchers == 0 {
		o.Batchers = DefaultBatchers
	}
	if o.MaxBatch == 0 {
		o.MaxBatch = DefaultMaxBatch
	}
	if o.Timeout == 0 {
		o.Timeout = DefaultTimeout
	}
	var errs []error
	if err := CheckTableName(o.Inbox); err != nil {
		errs = append(errs, fmt.Errorf("pgstore: Options.Inbox: %w", err))
	}
	if err := CheckTableName(o.Fences); err != nil {
		errs = append(errs, fmt.Errorf("pgstore: Options.Fences: %w", err))
	}
	if o.Inbox == o.Fences {
		errs = append(errs, errors.New("pgstore: Options.Inbox and Options.Fences name the same table"))
	}
	if o.Batchers < 0 || o.MaxBatch < 0 || o.Timeout < 0 {
		errs = append(errs, errors.New("pgstore: Options.Batchers, MaxBatch and Timeout must be > 0"))
	}
	return o, errors.Join(errs...)
}

// Schema returns the migration's SQL for the tables of opts (its defaults
// where unset).
func Schema(opts Options) (string, error) {
	o, err := opts.withDefaults()
	if err != nil {
		return "", err
	}
	return schemaFor(o), nil
}

func schemaFor(o Options) string {
	return strings.NewReplacer("ordo_inbox", o.Inbox, "ordo_fence", o.Fences).Replace(schemaSQL)
}

// Migrate creates the tables of opts if they do not exist: the inbox, its
// index on applied_at and the fence table. It is idempotent, and safe to
// run from several processes at once (it takes an advisory lock).
func Migrate(ctx context.Context, pool *pgxpool.Pool, opts Options) error {
	o, err := opts.withDefaults()
	if err != nil {
		return err
	}
	tx, err := pool.Begin(ctx)
	if err != nil {
		return classify(err)
	}
	defer func() { _ = tx.Rollback(context.WithoutCancel(ctx)) }()
	if _, err := tx.Exec(ctx, "SELECT pg_advisory_xact_lock(hashtext('ordo-pgstore-migrate'))"); err != nil {
		return classify(err)
	}
	if _, err := tx.Exec(ctx, schemaFor(o)); err != nil {
		return fmt.Errorf("pgstore: migrate: %w", err)
	}
	return classify(tx.Commit(ctx))
}

// Stmt is one SQL statement of a write.
type Stmt struct {
	SQL  string
	Args []any
}

// Store is an idempotency store on PostgreSQL and an ordo.Fencer. It is
// safe for concurrent use; Close stops its batchers.
type Store struct {
	store.Counters
	opts Options
	co   *batch.Coalescer[req, store.Outcome]

	qFence, qLock, qInbox, qInboxOne, qLockOne string
}

type req struct {
	op    store.Op
	stmts []Stmt
}

var _ store.Store = (*Store)(nil)

// New returns a Store on the tables of opts, which Migrate creates. It does
// not connect.
func New(opts Options) (*Store, error) {
	if opts.Pool == nil {
		return nil, errors.New("pgstore: Options.Pool is required")
	}
	o, err := opts.withDefaults()
	if err != nil {
		return nil, err
	}
	in, fe := pgx.Identifier{o.Inbox}.Sanitize(), pgx.Identifier{o.Fences}.Sanitize()
	s := &Store{
		opts: o,
		qFence: "INSERT INTO " + fe + " AS f (grp, topic, partition, token) VALUES ($1, $2, $3, 1) " +
			"ON CONFLICT (grp, topic, partition) DO UPDATE SET token = f.token + 1 RETURNING token",
		// Lock the fences of the batch's partitions FOR SHARE: a Fence
		// (UPDATE) waits for this transaction, so once Fence returns no
		// write with an older token can commit.
		qLock: "SELECT f.grp, f.topic, f.partition, f.token FROM " + fe + " f " +
			"JOIN unnest($1::text[], $2::text[], $3::int[]) AS s(g, t, p) ON f.grp = s.g AND f.topic = s.t AND f.partition = s.p " +
			"ORDER BY f.grp, f.topic, f.partition FOR SHARE OF f",
		qLockOne: "SELECT token FROM " + fe + " WHERE grp = $1 AND topic = $2 AND partition = $3 FOR SHARE",
		// Insert the keys of the unfenced writes (sorted, so that two
		// batches lock keys in one order); RETURNING names the new ones.
		// The fence condition repeats the check on the rows just locked, so
		// that both go in one round trip.
		qInbox: "INSERT INTO " + in + " (key) SELECT t.k FROM unnest($1::text[], $2::text[], $3::text[], $4::int[], $5::bigint[]) AS t(k, g, tp, p, tok) " +
			"WHERE t.tok = 0 OR NOT EXISTS (SELECT 1 FROM " + fe + " f WHERE f.grp = t.g AND f.topic = t.tp AND f.partition = t.p AND f.token > t.tok) " +
			"ORDER BY t.k ON CONFLICT DO NOTHING RETURNING key",
		qInboxOne: "INSERT INTO " + in + " (key) VALUES ($1) ON CONFLICT DO NOTHING",
	}
	s.co = batch.New(o.Batchers, o.MaxBatch, s.flush)
	return s, nil
}

// Close stops the store's batchers; writes after it fail. It does not close
// the pool.
func (s *Store) Close() { s.co.Close() }

// Inbox returns the inbox table's name.
func (s *Store) Inbox() string { return s.opts.Inbox }

// Fence implements ordo.Fencer: the partition's row in the fence table,
// updated with token = token + 1 (created with 1).
func (s *Store) Fence(ctx context.Context, group, topic string, partition int32) (int64, error) {
	ctx, cancel := context.WithTimeout(ctx, s.opts.Timeout)
	defer cancel()
	var tok int64
	if err := s.opts.Pool.QueryRow(ctx, s.qFence, group, topic, partition).Scan(&tok); err != nil {
		return 0, classify(err)
	}
	s.CountFence()
	return tok, nil
}

// Apply runs stmts once for op.Key, if op's token is the partition's latest
// (or 0), in one transaction with the inbox insert and the fence check: it
// returns store.Applied, store.Duplicate when the key was applied before
// (the statements did not run), an error wrapping store.ErrFenced when the
// token is stale, a statement's error when one failed (nothing of the write
// commits), or an error wrapping store.ErrUnavailable when the database
// could not be reached. The write joins the next batch transaction.
func (s *Store) Apply(ctx context.Context, op store.Op, stmts ...Stmt) (store.Outcome, error) {
	o, err := s.co.Do(ctx, req{op: op, stmts: stmts})
	s.Count(o, err)
	return o, err
}

// ApplyTx runs fn once for op.Key, if op's token is the partition's latest
// (or 0), in its own transaction with the inbox insert and the fence check;
// fn's error rolls all of it back and is returned. The outcomes are
// Apply's.
func (s *Store) ApplyTx(ctx context.Context, op store.Op, fn func(ctx context.Context, tx pgx.Tx) error) (o store.Outcome, err error) {
	defer func() { s.Count(o, err) }()
	tx, err := s.opts.Pool.Begin(ctx)
	if err != nil {
		return 0, classify(err)
	}
	defer func() { _ = tx.Rollback(context.WithoutCancel(ctx)) }()
	if op.Fence.Token != 0 {
		var cur int64
		err := tx.QueryRow(ctx, s.qLockOne, op.Fence.Group, op.Fence.Topic, op.Fence.Partition).Scan(&cur)
		switch {
		case errors.Is(err, pgx.ErrNoRows):
		case err != nil:
			return 0, classify(err)
		case op.Fence.Token < cur:
			return 0, &store.FencedError{Fence: op.Fence, Current: cur}
		}
	}
	tag, err := tx.Exec(ctx, s.qInboxOne, op.Key)
	if err != nil {
		return 0, classify(err)
	}
	if tag.RowsAffected() == 0 {
		return store.Duplicate, nil
	}
	if err := fn(ctx, tx); err != nil {
		return 0, err
	}
	if err := tx.Commit(ctx); err != nil {
		return 0, classify(err)
	}
	return store.Applied, nil
}

// Prune deletes the inbox rows applied more than olderThan ago, and returns
// how many. A redelivery of a pruned key applies again: keep olderThan
// above the topics' retention if you replay.
func (s *Store) Prune(ctx context.Context, olderThan time.Duration) (int64, error) {
	tag, err := s.opts.Pool.Exec(ctx, "DELETE FROM "+pgx.Identifier{s.opts.Inbox}.Sanitize()+" WHERE applied_at < now() - $1::interval", olderThan)
	if err != nil {
		return 0, classify(err)
	}
	return tag.RowsAffected(), nil
}

// forgetBatch bounds the keys of one Forget statement.
const forgetBatch = 1000

var _ store.Forgetter = (*Store)(nil)

// Forget implements store.Forgetter: it deletes the inbox rows of keys
// (DELETE ... WHERE key = ANY($1), up to 1,000 keys a statement, each
// within Options.Timeout and committed on its own) and returns how many
// it deleted. A key listed twice is counted once. On an error, the count
// is of the statements that committed.
func (s *Store) Forget(ctx context.Context, keys []string) (int64, error) {
	q := "DELETE FROM " + pgx.Identifier{s.opts.Inbox}.Sanitize() + " WHERE key = ANY($1::text[])"
	var n int64
	for len(keys) > 0 {
		b := keys[:min(len(keys), forgetBatch)]
		keys = keys[len(b):]
		bctx, cancel := context.WithTimeout(ctx, s.opts.Timeout)
		tag, err := s.opts.Pool.Exec(bctx, q, b)
		cancel()
		if err != nil {
			return n, classify(err)
		}
		n += tag.RowsAffected()
	}
	return n, nil
}

// flush runs a batch in one transaction; if its statements fail, each call
// runs again alone, so that the bad one fails alone.
func (s *Store) flush(calls []*batch.Call[req, store.Outcome]) {
	ctx, cancel := context.WithTimeout(context.Background(), s.opts.Timeout)
	defer cancel()
	err := s.runBatch(ctx, calls)
	if err == nil {
		return
	}
	var stmtErr *stmtError
	if len(calls) == 1 || !errors.As(err, &stmtErr) {
		for _, c := range calls {
			c.Err = err
			if errors.As(err, &stmtErr) {
				c.Err = stmtErr.err
			}
		}
		return
	}
	for _, c := range calls {
		one := []*batch.Call[req, store.Outcome]{c}
		if err := s.runBatch(ctx, one); err != nil {
			if errors.As(err, &stmtErr) {
				err = stmtErr.err
			}
			c.Err = err
		}
	}
}

// stmtError is a business statement's failure in a batch.
type stmtError struct{ err error }

func (e *stmtError) Error() string { return e.err.Error() }

// runBatch runs calls in one transaction and sets their results. It
// returns an error, without setting results, if the transaction did not
// commit; a *stmtError if a statement of a call failed.
func (s *Store) runBatch(ctx context.Context, calls []*batch.Call[req, store.Outcome]) (err error) {
	conn, err := s.opts.Pool.Acquire(ctx)
	if err != nil {
		return classify(err)
	}
	inTx := false
	defer func() {
		if inTx {
			if _, rerr := conn.Exec(context.WithoutCancel(ctx), "ROLLBACK"); rerr != nil {
				// The connection's state is unknown: do not reuse it.
				_ = conn.Conn().Close(context.WithoutCancel(ctx))
			}
		}
		conn.Release()
	}()

	// Round trip 1: BEGIN, lock the fences, insert the keys of the
	// unfenced writes.
	type scope struct {
		g, t string
		p    int32
	}
	var gs, ts []string
	var ps []int32
	seenScope := map[scope]bool{}
	ks, kg, kt := make([]string, len(calls)), make([]string, len(calls)), make([]string, len(calls))
	kp, ktok := make([]int32, len(calls)), make([]int64, len(calls))
	for i, c := range calls {
		f := c.Req.op.Fence
		ks[i], kg[i], kt[i], kp[i], ktok[i] = c.Req.op.Key, f.Group, f.Topic, f.Partition, f.Token
		sc := scope{f.Group, f.Topic, f.Partition}
		if f.Token != 0 && !seenScope[sc] {
			seenScope[sc] = true
			gs, ts, ps = append(gs, sc.g), append(ts, sc.t), append(ps, sc.p)
		}
	}
	b1 := &pgx.Batch{}
	b1.Queue("BEGIN")
	if len(gs) > 0 {
		b1.Queue(s.qLock, gs, ts, ps)
	}
	b1.Queue(s.qInbox, ks, kg, kt, kp, ktok)
	br := conn.SendBatch(ctx, b1)
	inTx = true
	current := map[scope]int64{}
	fresh := map[string]bool{}
	readRows := func(scan func(pgx.Rows) error) error {
		rows, err := br.Query()
		if err != nil {
			return err
		}
		defer rows.Close()
		for rows.Next() {
			if err := scan(rows); err != nil {
				return err
			}
		}
		return rows.Err()
	}
	_, err = br.Exec()
	if err == nil && len(gs) > 0 {
		err = readRows(func(rows pgx.Rows) error {
			var sc scope
			var tok int64
			if err := rows.Scan(&sc.g, &sc.t, &sc.p, &tok); err != nil {
				return err
			}
			current[sc] = tok
			return nil
		})
	}
	if err == nil {
		err = readRows(func(rows pgx.Rows) error {
			var k string
			if err := rows.Scan(&k); err != nil {
				return err
			}
			fresh[k] = true
			return nil
		})
	}
	if cerr := br.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return classify(err)
	}
	fenced := make([]int64, len(calls)) // the current token of a fenced call
	for i, c := range calls {
		f := c.Req.op.Fence
		if cur := current[scope{f.Group, f.Topic, f.Partition}]; f.Token != 0 && f.Token < cur {
			fenced[i] = cur
		}
	}

	// Round trip 2: the statements of the new writes, and COMMIT (the
	// server skips what follows a failed statement, COMMIT included).
	out := make([]store.Outcome, len(calls))
	b2 := &pgx.Batch{}
	var owners []int // the call of each queued statement
	for i, c := range calls {
		switch {
		case fenced[i] != 0:
			continue
		case !fresh[c.Req.op.Key]:
			out[i] = store.Duplicate
			continue
		}
		delete(fresh, c.Req.op.Key) // a second call for the key in this batch is a duplicate
		out[i] = store.Applied
		for _, st := range c.Req.stmts {
			b2.Queue(st.SQL, st.Args...)
			owners = append(owners, i)
		}
	}
	b2.Queue("COMMIT")
	br = conn.SendBatch(ctx, b2)
	for range owners {
		if _, err := br.Exec(); err != nil {
			_ = br.Close()
			var pgErr *pgconn.PgError
			if errors.As(err, &pgErr) && !unavailableCode(pgErr.Code) {
				return &stmtError{err: err}
			}
			return classify(err)
		}
	}
	_, err = br.Exec() // COMMIT
	if cerr := br.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		// A failed COMMIT ends the transaction, but a broken pipeline may
		// not have sent it: the deferred ROLLBACK settles both.
		return classify(err)
	}
	inTx = false
	for i, c := range calls {
		if fenced[i] != 0 {
			c.Err = &store.FencedError{Fence: c.Req.op.Fence, Current: fenced[i]}
			continue
		}
		c.Res = out[i]
	}
	return nil
}

// unavailableCode reports whether a server error means "not now": a
// connection problem, a lack of resources, a shutdown, or a lost
// serialization race (trying again is then the cure).
func unavailableCode(code string) bool {
	return strings.HasPrefix(code, "08") || strings.HasPrefix(code, "53") || strings.HasPrefix(code, "57P") ||
		slices.Contains([]string{"40001", "40P01"}, code)
}

// classify wraps errors that did not come from the server as a statement's
// reply (a connection, a timeout) as store.ErrUnavailable.
func classify(err error) error {
	if err == nil {
		return nil
	}
	var pgErr *pgconn.PgError
	if errors.As(err, &pgErr) && !unavailableCode(pgErr.Code) {
		return err
	}
	return store.Unavailable(err)
}
