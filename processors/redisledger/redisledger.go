// Package redisledger is the reference processor for effectively-once
// effects: it appends each record to a per-key Redis list, with a sequence
// check, in one Lua script that also checks the record's dedup key and its
// fencing token (pkg/store/redisstore). A record delivered again (a crash,
// a rebalance, a redrive, a replay) is not appended again, and a member
// that lost the partition appends nothing. Ordo's reliability tests read
// its lists to check that every record was applied once, in order.
//
// Keys, under the ledger's prefix (default: the store's prefix + "ledger:"):
//
//	<prefix>list:<record key>    the entries, oldest first
//	<prefix>seq:<record key>     per origin partition, the last origin offset appended
//	<prefix>violations           entries appended after a later offset of their key
//
// An entry is "<origin topic>/<origin partition>/<origin offset> <value>".
// The sequence check compares a record's origin offset with the last one
// appended for its key and origin partition: a lower or equal one is an
// order violation (a record applied after a later one of its key). It is
// counted (Violations), or with Options.Strict the record is refused as
// permanent (to the dead-letter topic).
package redisledger

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/ordokafka/ordo/pkg/ordo"
	"github.com/ordokafka/ordo/pkg/store"
	"github.com/ordokafka/ordo/pkg/store/redisstore"
)

// Options configure a Processor.
type Options struct {
	// Store is the Redis store the appends go through. Required. Set it as
	// ordo.Config.Fencer too, or the appends are not fenced.
	Store *redisstore.Store
	// Keys derives each record's dedup key. Default: the "event-id"
	// header, else the record's origin.
	Keys store.Keys
	// Prefix is put before the ledger's keys. Default: the store's prefix
	// and "ledger:".
	Prefix string
	// Strict refuses an out-of-order record with ordo.Permanent instead
	// of appending it and counting a violation.
	Strict bool
}

// appendScript is the effect: KEYS = list, seq hash, violations counter;
// ARGV = entry, origin partition field, origin offset, strict ("1").
var appendScript = redisstore.NewScript(`local last = tonumber(redis.call('HGET', KEYS[2], ARGV[2]) or '-1')
local off = tonumber(ARGV[3])
if off <= last then
  if ARGV[4] == '1' then
    return redis.error_reply('ORDO_SEQUENCE ' .. ARGV[2] .. ' offset ' .. ARGV[3] .. ' at or below ' .. last)
  end
  redis.call('INCR', KEYS[3])
else
  redis.call('HSET', KEYS[2], ARGV[2], ARGV[3])
end
return redis.call('RPUSH', KEYS[1], ARGV[1])`)

// Script returns the ledger's effect, for a hand-written pipeline that
// applies the same script (the benchmark's baseline).
func Script() *redisstore.Script { return appendScript }

// Processor appends records to the ledger. It is safe for concurrent use.
type Processor struct {
	opts Options
}

// New returns a Processor.
func New(opts Options) (*Processor, error) {
	if opts.Store == nil {
		return nil, errors.New("redisledger: Options.Store is required")
	}
	if opts.Prefix == "" {
		opts.Prefix = opts.Store.Prefix() + "ledger:"
	}
	return &Processor{opts: opts}, nil
}

// ListKey returns the Redis list of a record key.
func (p *Processor) ListKey(key []byte) string { return p.opts.Prefix + "list:" + string(key) }

// ViolationsKey returns the Redis key of the violations counter.
func (p *Processor) ViolationsKey() string { return p.opts.Prefix + "violations" }

// Args returns the keys and arguments of the append of r whose origin is o.
func (p *Processor) Args(r *kgo.Record, o ordo.Origin) (keys []string, args []any) {
	field := o.Topic + "/" + strconv.FormatInt(int64(o.Partition), 10)
	entry := field + "/" + strconv.FormatInt(o.Offset, 10) + " " + string(r.Value)
	strict := "0"
	if p.opts.Strict {
		strict = "1"
	}
	return []string{p.ListKey(r.Key), p.opts.Prefix + "seq:" + string(r.Key), p.ViolationsKey()},
		[]any{entry, field, o.Offset, strict}
}

// Process implements ordo.Processor: it appends r once. A fenced append
// holds the partition, an unreachable Redis holds the record (see
// store.ProcessorError); an order violation with Strict is permanent.
func (p *Processor) Process(ctx context.Context, r *kgo.Record) error {
	keys, args := p.Args(r, ordo.OriginOf(ctx, r))
	_, _, err := p.opts.Store.Apply(ctx, p.opts.Keys.For(ctx, r), appendScript, keys, args...)
	var effErr *redisstore.EffectError
	if errors.As(err, &effErr) && strings.HasPrefix(effErr.Msg, "ORDO_SEQUENCE") {
		return ordo.Permanent(fmt.Errorf("redisledger: %s/%d@%d: %w", r.Topic, r.Partition, r.Offset, err))
	}
	return store.ProcessorError(err)
}

// Entry is one ledger entry.
type Entry struct {
	Origin ordo.Origin
	Value  string
}

// ParseEntry parses an entry as the ledger writes it.
func ParseEntry(s string) (Entry, error) {
	coords, value, ok := strings.Cut(s, " ")
	parts := strings.Split(coords, "/")
	if !ok || len(parts) < 3 {
		return Entry{}, fmt.Errorf("redisledger: malformed entry %q", s)
	}
	n := len(parts)
	p, err1 := strconv.ParseInt(parts[n-2], 10, 32)
	off, err2 := strconv.ParseInt(parts[n-1], 10, 64)
	if err1 != nil || err2 != nil {
		return Entry{}, fmt.Errorf("redisledger: malformed entry %q", s)
	}
	return Entry{Origin: ordo.Origin{Topic: strings.Join(parts[:n-2], "/"), Partition: int32(p), Offset: off}, Value: value}, nil
}
