package ordo

import (
	"context"
	"runtime/debug"

	"github.com/twmb/franz-go/pkg/kgo"
)

// Processor handles one record. It is Ordo's unit of user code, shaped like
// net/http's Handler.
//
// Process returns nil when the record's effect is durably applied (an
// idempotent write acknowledged by its store); only then may the record's
// offset be committed. A non-nil error is retried with backoff and then
// dead-lettered; wrap it with [Permanent] to skip the retries, [RetryAfter]
// to choose the delay, or [Hold] to wait without spending an attempt.
//
// Process is called concurrently for records of different keys, and never
// concurrently for two records of the same key (in the default key ordering).
// It must honor ctx: ctx is canceled when the partition is lost, on
// StopAndCancel, and when a revoke or stop drain deadline passes.
type Processor interface {
	Process(ctx context.Context, r *kgo.Record) error
}

// ProcessorFunc adapts a function to a Processor.
type ProcessorFunc func(ctx context.Context, r *kgo.Record) error

// Process calls f(ctx, r).
func (f ProcessorFunc) Process(ctx context.Context, r *kgo.Record) error { return f(ctx, r) }

// Middleware decorates a Processor: logging, tracing, deduplication,
// circuit breaking, rate limiting.
type Middleware func(Processor) Processor

// Chain wraps p in mws so that mws[0] is the outermost: Chain(p, a, b)
// runs a, then b, then p.
func Chain(p Processor, mws ...Middleware) Processor {
	for i := len(mws) - 1; i >= 0; i-- {
		p = mws[i](p)
	}
	return p
}

// Recover is a Middleware that turns a panic in the processor into a
// *PanicError carrying the panic value and stack. Ordo always installs it
// outermost, so a panicking processor never crashes a worker; it is
// exported for users who compose processors themselves.
func Recover(next Processor) Processor {
	return ProcessorFunc(func(ctx context.Context, r *kgo.Record) (err error) {
		defer func() {
			if v := recover(); v != nil {
				err = &PanicError{Value: v, Stack: debug.Stack()}
			}
		}()
		return next.Process(ctx, r)
	})
}

// RecordInfo describes the call in progress. Get it with InfoFromContext.
type RecordInfo struct {
	// Attempt is 1 on the first call for a record, 2 on its first retry.
	Attempt int
	// Group is the consumer group.
	Group string
	// LaneEpoch identifies this member's current ownership of the record's
	// partition. It changes every time the partition is assigned to this
	// consumer; it is local to the consumer: fence on Token.
	LaneEpoch uint64
	// Token is the fencing token of this ownership of the partition, from
	// Config.Fencer (0 without one): it grows across members, so a store
	// can reject the writes of a stale owner.
	Token int64
	// Tier is the retry tier the record is delivered from: 0 on its source
	// topic, n on retry tier n.
	Tier int
}

type infoKey struct{}

// InfoFromContext returns the RecordInfo of the call in progress; ok is
// false outside a call made by Ordo.
func InfoFromContext(ctx context.Context) (RecordInfo, bool) {
	switch v := ctx.Value(infoKey{}).(type) {
	case *work:
		return RecordInfo{Attempt: v.calls(), Group: v.lane.cfg.group, LaneEpoch: v.lane.epoch, Token: v.lane.token.Load(), Tier: v.lane.tier}, true
	case *streamCtx:
		return RecordInfo{Attempt: 1, Group: v.l.cfg.group, LaneEpoch: v.l.epoch, Token: v.l.token.Load()}, true
	}
	return RecordInfo{}, false
}

// Origin is where a record was first produced: its source topic,
// partition and offset. A record redelivered (after a crash, a rebalance, a
// redrive, a replay) or retried through a retry topic keeps its origin, so
// it is the natural deduplication key of a record that has no event id of
// its own.
type Origin struct {
	Topic     string
	Partition int32
	Offset    int64
}

// OriginOf returns the origin of r, a record handed to a processor with ctx:
// its own coordinates for a record of a source topic, and those its
// ordo-original-* headers give for a record of the group's retry tier (or
// redriven there). Stores use it for their default deduplication key.
func OriginOf(ctx context.Context, r *kgo.Record) Origin {
	if w, ok := ctx.Value(infoKey{}).(*work); ok && w.rec == r {
		return w.origin()
	}
	return Origin{Topic: r.Topic, Partition: r.Partition, Offset: r.Offset}
}
