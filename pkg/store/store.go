// Package store is Ordo's seam for idempotent, fenced writes: the promise
// that a record delivered again (after a crash, a rebalance, a redrive or a
// replay) never applies twice, and that a member that lost its partition
// never writes.
//
// A write is described by an [Op]: its deduplication key (the record's
// event-id header, else its origin topic, partition and offset) and its
// [Fence] (the partition whose fencing token the call carries). Each backend
// applies a write of its own kind in one atomic step that checks the key,
// checks the token and applies the effect:
//
//   - pkg/store/redisstore: one Lua script per write (go-redis v9),
//     coalesced into pipelines; the dedup key expires after a TTL.
//   - pkg/store/pgstore: an inbox row inserted with ON CONFLICT DO NOTHING
//     in the same transaction as the business write (pgx v5).
//   - pkg/store/memstore: the same semantics in memory, for `ordo dev` and
//     for tests.
//
// Every store is also an [ordo.Fencer]: set it as ordo.Config.Fencer and
// each partition assignment takes a new token (Redis INCR, a Postgres row
// updated with token = token + 1), which every call carries in its
// ordo.RecordInfo. A write whose token is below the partition's latest is
// rejected with an error that wraps [ErrFenced], and counted.
//
// What a processor does with the outcome:
//
//	op := keys.For(ctx, r)
//	res, err := st.Apply(ctx, op, ...)      // backend-specific write
//	switch {
//	case errors.Is(err, store.ErrFenced):   // the partition moved
//		return ordo.HoldPartition(err)
//	case errors.Is(err, store.ErrUnavailable):
//		return ordo.Hold(err)                // an outage never dead-letters
//	case err != nil:
//		return err
//	}
//	_ = res // store.Applied or store.Duplicate: both mean done
//
// Why HoldPartition for a fenced write: the token only grows when another
// member was assigned the partition, so every record of the partition would
// be fenced too; the record must not go to the dead-letter topic (the new
// owner processes it), and no attempt may be spent. The engine holds the
// record and pauses the partition until the lane is closed, which it is as
// soon as this member learns of the loss; the held record is then dropped
// and nothing is committed for it. See docs/idempotency.md.
package store

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"sync/atomic"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/ordokafka/ordo/pkg/ordo"
)

// ErrFenced is wrapped by the error of a write whose fencing token is below
// the partition's current one: another member owns the partition now, or a
// previous owner's late fence moved the token past this member's. It is
// ordo.ErrFenced, so that the engine knows the write was fenced (and asks
// the group coordinator which of the two it is: see ordo.ErrFenced).
var ErrFenced = ordo.ErrFenced

// ErrUnavailable is wrapped by the error of a write that could not reach the
// store (a refused or cut connection, a timeout): whether it applied is
// unknown, and trying it again is safe, since a write applies once.
var ErrUnavailable = errors.New("store: unavailable")

// DefaultDedupHeader is the record header whose value, when present, is the
// deduplication key.
const DefaultDedupHeader = "event-id"

// Fence is the fencing scope and token of a write: the partition the call
// belongs to (the partition of the lane, which for a retry-topic record is
// the retry topic's) and the token of this member's ownership of it.
type Fence struct {
	Group     string
	Topic     string
	Partition int32
	// Token is the fencing token from ordo.RecordInfo; 0 means the consumer
	// has no Fencer, and the write is not fenced.
	Token int64
}

// Op identifies one write to apply at most once, fenced.
type Op struct {
	// Key is the deduplication key. Keys live in the store's namespace
	// (its key prefix or inbox table): give each sink its own.
	Key   string
	Fence Fence
}

// Outcome is what an applied write did.
type Outcome int

const (
	// Applied: the write took effect now.
	Applied Outcome = iota + 1
	// Duplicate: the key was already applied; nothing was written.
	Duplicate
)

func (o Outcome) String() string {
	switch o {
	case Applied:
		return "applied"
	case Duplicate:
		return "duplicate"
	}
	return "Outcome(" + strconv.Itoa(int(o)) + ")"
}

// Keys derives an Op from a record in a processor call. The zero value uses
// the "event-id" header.
type Keys struct {
	// Header names the header whose value is the dedup key. Default
	// "event-id". A record without it (or with an empty value) is keyed
	// by its origin: topic/partition/offset from ordo.OriginOf.
	Header string
}

// For returns the Op of r in the call whose context is ctx: its dedup key,
// and its fence from ordo.InfoFromContext (token 0 outside a call made by
// Ordo, or without a Fencer).
func (k Keys) For(ctx context.Context, r *kgo.Record) Op {
	info, _ := ordo.InfoFromContext(ctx)
	return Op{
		Key:   k.Key(ctx, r),
		Fence: Fence{Group: info.Group, Topic: r.Topic, Partition: r.Partition, Token: info.Token},
	}
}

// Key returns the dedup key of r: "id:" and its header value, or "at:" and
// its origin's topic/partition/offset.
func (k Keys) Key(ctx context.Context, r *kgo.Record) string {
	h := k.Header
	if h == "" {
		h = DefaultDedupHeader
	}
	for _, rh := range r.Headers {
		if rh.Key == h && len(rh.Value) > 0 {
			return "id:" + string(rh.Value)
		}
	}
	o := ordo.OriginOf(ctx, r)
	return "at:" + o.Topic + "/" + strconv.FormatInt(int64(o.Partition), 10) + "/" + strconv.FormatInt(o.Offset, 10)
}

// FencedError is the error of a fenced write. It wraps ErrFenced.
type FencedError struct {
	Fence Fence
	// Current is the partition's token in the store, above Fence.Token.
	Current int64
}

func (e *FencedError) Error() string {
	return fmt.Sprintf("%v: %s/%s/%d token %d, current %d", ErrFenced, e.Fence.Group, e.Fence.Topic, e.Fence.Partition, e.Fence.Token, e.Current)
}

// Unwrap returns ErrFenced.
func (e *FencedError) Unwrap() error { return ErrFenced }

// Unavailable wraps err so that it matches both ErrUnavailable and err.
func Unavailable(err error) error {
	if err == nil {
		return nil
	}
	return &unavailableError{err: err}
}

type unavailableError struct{ err error }

func (e *unavailableError) Error() string   { return "store: unavailable: " + e.err.Error() }
func (e *unavailableError) Unwrap() []error { return []error{ErrUnavailable, e.err} }

// Stats counts a store's writes since it was created.
type Stats struct {
	Applied    int64 // writes that took effect
	Duplicates int64 // writes skipped because their key was applied before
	Fenced     int64 // writes rejected for a stale token
	Errors     int64 // writes that failed otherwise (the effect's error, an outage)
	Fences     int64 // fencing tokens handed out
}

// Counters is the Stats of a store, updated atomically. Backends embed it.
type Counters struct {
	applied, duplicates, fenced, errors, fences atomic.Int64
}

// Count adds one write's result: its outcome if err is nil, else its error.
func (c *Counters) Count(o Outcome, err error) {
	switch {
	case errors.Is(err, ErrFenced):
		c.fenced.Add(1)
	case err != nil:
		c.errors.Add(1)
	case o == Applied:
		c.applied.Add(1)
	case o == Duplicate:
		c.duplicates.Add(1)
	}
}

// CountFence counts one fencing token handed out.
func (c *Counters) CountFence() { c.fences.Add(1) }

// Stats returns the counts so far.
func (c *Counters) Stats() Stats {
	return Stats{Applied: c.applied.Load(), Duplicates: c.duplicates.Load(), Fenced: c.fenced.Load(),
		Errors: c.errors.Load(), Fences: c.fences.Load()}
}

// Store is what every backend has in common: it hands out fencing tokens
// and counts its writes. Apply is backend-specific (its write is a Lua
// script, SQL statements or a Go func).
type Store interface {
	ordo.Fencer
	Stats() Stats
}

// Forgetter is a store that can forget applied keys: a record whose key
// was forgotten applies again when it is delivered again. It is what
// `ordo replay reset --reprocess` uses to make a replayed range apply
// again (see docs/replay.md). redisstore, pgstore and memstore implement
// it.
//
// Forget is meant for keys no running consumer is writing (the group is
// stopped): a write of a key that races its Forget may apply or not.
type Forgetter interface {
	// Forget removes keys (Op.Key values) from the store and returns how
	// many of them it held: keys it never applied, or that expired or
	// were pruned, are not counted, nor is a key listed twice. On an
	// error, the count is of the keys forgotten before it; forgetting
	// the same keys again is harmless.
	Forget(ctx context.Context, keys []string) (int64, error)
}

// NewCollector returns a Prometheus collector of st's counts, read at
// scrape time: ordo_store_writes_total{store,result} (result applied,
// duplicate, fenced, error) and ordo_store_fences_total{store}. Register it
// on your own registry (for `ordo run`, the consumer's).
func NewCollector(name string, st Store) prometheus.Collector {
	return &collector{
		name: name, st: st,
		writes: prometheus.NewDesc("ordo_store_writes_total", "Writes through an idempotency store, by result.", []string{"store", "result"}, nil),
		fences: prometheus.NewDesc("ordo_store_fences_total", "Fencing tokens handed out by a store (partition assignments).", []string{"store"}, nil),
	}
}

type collector struct {
	name           string
	st             Store
	writes, fences *prometheus.Desc
}

func (c *collector) Describe(ch chan<- *prometheus.Desc) { ch <- c.writes; ch <- c.fences }

func (c *collector) Collect(ch chan<- prometheus.Metric) {
	s := c.st.Stats()
	for _, v := range []struct {
		result string
		n      int64
	}{{"applied", s.Applied}, {"duplicate", s.Duplicates}, {"fenced", s.Fenced}, {"error", s.Errors}} {
		ch <- prometheus.MustNewConstMetric(c.writes, prometheus.CounterValue, float64(v.n), c.name, v.result)
	}
	ch <- prometheus.MustNewConstMetric(c.fences, prometheus.CounterValue, float64(s.Fences), c.name)
}

// ProcessorError maps the error of a write to what a processor returns for
// it: nil stays nil; a fenced write holds its partition (ordo.HoldPartition:
// no attempt spent, no dead letter, the lane is closed once the member
// learns of the loss); an unavailable store holds the record (ordo.Hold: an
// outage never dead-letters); any other error is returned as it is.
func ProcessorError(err error) error {
	switch {
	case err == nil:
		return nil
	case errors.Is(err, ErrFenced):
		return ordo.HoldPartition(err)
	case errors.Is(err, ErrUnavailable):
		return ordo.Hold(err)
	}
	return err
}
