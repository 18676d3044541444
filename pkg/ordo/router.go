package ordo

import (
	"context"
	"errors"
	"log/slog"
	"math"
	"math/rand/v2"
	"strconv"
	"strings"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
)

// The router decides what happens to a record after a processor call, and
// carries out the actions that produce a record elsewhere: today the
// dead-letter topic; retry tiers and key parking become new targets here.
// It is the one place for the outcome rules (decide), the retry delay
// (RetryPolicy.backoff with jitter) and the header encoding (dlqRecord).
//
// A lane meets it through laneRouter. The lane keeps what is per record and
// per partition (timers, key order, the offset tracker); the router keeps
// what is per consumer and never touches lane state, so it takes no lock.

// laneRouter is what a lane needs of the router.
type laneRouter interface {
	// route maps a failed call's error to an action. d says which
	// delivery of the record failed: its tier (0 on the source topic) and
	// the call's number on it; laneCtx is the lane's context (a done lane
	// leaves the record for the next owner).
	route(laneCtx context.Context, err error, d delivery) action
	// send produces the record of w to the target of a (a retry tier or
	// the dead-letter topic of its source topic) and calls done once with
	// the produce's result: only an acknowledged produce lets the lane
	// finish w.
	send(ctx context.Context, w *work, a action, done func(error))
}

// delivery is one delivery of a record: on its source topic (tier 0) or
// on retry tier n, and the call's number on it, from 1.
type delivery struct {
	tier    int
	attempt int
	// keyFailing: on the source topic, the record's key had a record go to
	// retry tier 1 a moment ago; its failures go there after one call.
	keyFailing bool
}

// recordProducer is the part of *kgo.Client the router uses.
type recordProducer interface {
	Produce(ctx context.Context, r *kgo.Record, promise func(*kgo.Record, error))
}

// router implements laneRouter for a Consumer.
type router struct {
	group, processor string
	retry            RetryPolicy
	naming           Naming
	clock            Clock
	log              *slog.Logger
	jitter           func(time.Duration) time.Duration
	producer         recordProducer // set at Start
	produceTimeout   time.Duration  // bounds one produce: Retry.MaxBackoff, at least 1s
	// chains are the names of each source topic's chain, filled once:
	// [0] the dead-letter topic, [n] retry tier n. Read-only.
	chains map[string][]string
}

// notBefore reads a tier record's ordo-not-before alone; zero if absent
// or malformed.
func notBefore(rec *kgo.Record) time.Time {
	for _, h := range rec.Headers {
		if h.Key == HeaderNotBefore {
			if ms, ok := parseDec(h.Value); ok {
				return time.UnixMilli(ms)
			}
			return time.Time{}
		}
	}
	return time.Time{}
}

// parseDec parses a base-10 integer (an optional '-', then 1 to 18
// digits: every offset, partition and unix-ms time) without allocating.
func parseDec(b []byte) (int64, bool) {
	neg := len(b) > 0 && b[0] == '-'
	if neg {
		b = b[1:]
	}
	if len(b) == 0 || len(b) > 18 {
		return 0, false
	}
	var n int64
	for _, c := range b {
		if c < '0' || c > '9' {
			return 0, false
		}
		n = n*10 + int64(c-'0')
	}
	if neg {
		n = -n
	}
	return n, true
}

// chainOf names the dead-letter topic (tier 0) or retry tier n of topic.
func (r *router) chainOf(topic string, tier int) string {
	if names, ok := r.chains[topic]; ok && tier < len(names) {
		return names[tier]
	}
	if tier == 0 {
		return r.naming.DLQTopic(topic, r.group)
	}
	return r.naming.RetryTopic(topic, r.group, tier)
}

func newRouter(cfg *Config) *router {
	chains := make(map[string][]string, len(cfg.Topics))
	for _, t := range cfg.Topics {
		names := []string{cfg.Naming.DLQTopic(t, cfg.Group)}
		for n := 1; n <= len(cfg.Retry.Tiers); n++ {
			names = append(names, cfg.Naming.RetryTopic(t, cfg.Group, n))
		}
		chains[t] = names
	}
	return &router{
		chains:         chains,
		group:          cfg.Group,
		processor:      cfg.ProcessorName,
		retry:          cfg.Retry,
		naming:         cfg.Naming,
		clock:          cfg.Clock,
		log:            cfg.Logger,
		jitter:         jitter,
		produceTimeout: max(cfg.Retry.MaxBackoff, time.Second),
	}
}

func (r *router) route(laneCtx context.Context, err error, d delivery) action {
	return decide(laneCtx, err, d, r.retry, r.jitter)
}

func (r *router) send(ctx context.Context, w *work, a action, done func(error)) {
	rec := r.outRecord(w, a)
	pctx, cancel := context.WithTimeout(ctx, r.produceTimeout)
	r.producer.Produce(pctx, rec, func(_ *kgo.Record, err error) {
		cancel()
		done(err)
	})
}

// jitter spreads a backoff over [d/2, d).
func jitter(d time.Duration) time.Duration {
	if d <= 1 {
		return d
	}
	half := d / 2
	return half + rand.N(d-half)
}

// actionKind is what the lane does with a record after one processor call.
type actionKind int

const (
	actDone          actionKind = iota // mark the record finished
	actRetry                           // run it again after delay
	actHold                            // run it again after delay, attempt not counted
	actDLQ                             // produce it to the dead-letter topic, then finish it
	actDrop                            // the lane is closing: leave the record unfinished
	actHoldPartition                   // as actHold, and the partition starts nothing else meanwhile
	actTier                            // produce it to retry tier action.tier, then finish it
)

func (k actionKind) String() string {
	switch k {
	case actDone:
		return "done"
	case actRetry:
		return "retry"
	case actHold:
		return "hold"
	case actDLQ:
		return "dlq"
	case actDrop:
		return "drop"
	case actHoldPartition:
		return "hold-partition"
	case actTier:
		return "tier"
	}
	return "unknown"
}

type action struct {
	kind  actionKind
	delay time.Duration // before the next call (in place), or of the tier
	tier  int           // actTier: the retry tier, from 1
	class ErrorClass
}

// decide is the one place that maps a processor's result to what happens to
// the record. d is the delivery that failed: its tier (0 on the source
// topic) and the number of the call that just returned on it (1 for the
// first). laneCtx is the lane's context: if it is done, the failure may
// only be the cancellation, and the record is left unfinished for the next
// owner instead of being retried or dead-lettered.
//
// The rules, in order: a Hold (HoldFor, HoldPartition) waits in place and
// never escalates; Permanent goes to the dead-letter topic; while the
// delivery has calls left (Retry.MaxAttempts on the source topic,
// Retry.TierAttempts on a tier), the record is retried in place after its
// backoff, or after the delay RetryAfter asked for if that is no longer
// than Retry.MaxBackoff (a longer one goes to a tier at once, if there are
// tiers); then it goes to the next tier, or, asked by RetryAfter(d), to the
// first later tier whose delay is at least d (the last if none is, waiting
// d); after the last tier, to the dead-letter topic.
func decide(laneCtx context.Context, err error, d delivery, rp RetryPolicy, jitter func(time.Duration) time.Duration) action {
	if err == nil {
		return action{kind: actDone}
	}
	if laneCtx.Err() != nil {
		return action{kind: actDrop}
	}
	class := classify(err)
	if _, ok := errors.AsType[*holdPartitionError](err); ok {
		return action{kind: actHoldPartition, delay: rp.HoldDelay, class: ClassRetryable}
	}
	if hold, ok := errors.AsType[*holdError](err); ok {
		delay := rp.HoldDelay
		if hold.delay > 0 {
			delay = hold.delay
		}
		return action{kind: actHold, delay: delay, class: ClassRetryable}
	}
	if class == ClassPermanent {
		return action{kind: actDLQ, class: class}
	}
	limit := rp.MaxAttempts
	switch {
	case d.tier > 0:
		limit = rp.TierAttempts
	case d.keyFailing && len(rp.Tiers) > 0:
		limit = 1
	}
	ra, asked := errors.AsType[*retryAfterError](err)
	if d.attempt < limit {
		switch {
		case !asked:
			return action{kind: actRetry, delay: jitter(rp.backoff(d.attempt)), class: class}
		case len(rp.Tiers) == 0 || ra.delay <= rp.MaxBackoff:
			return action{kind: actRetry, delay: ra.delay, class: class}
		}
	}
	next := d.tier + 1
	if next > len(rp.Tiers) {
		return action{kind: actDLQ, class: class}
	}
	if !asked {
		return action{kind: actTier, tier: next, delay: rp.Tiers[next-1], class: class}
	}
	t := next
	for t < len(rp.Tiers) && rp.Tiers[t-1] < ra.delay {
		t++
	}
	return action{kind: actTier, tier: t, delay: max(rp.Tiers[t-1], ra.delay), class: class}
}

// Header names Ordo writes on retry and dead-letter records (see
// docs/dead-letters.md). Values are text: decimal numbers, unix
// milliseconds. Headers with the ordo- prefix (in any case) that arrive on
// a source topic are not trusted: they are dropped from the copies and
// never read; on a group's own retry topics they are Ordo's.
const (
	HeaderOriginalTopic     = "ordo-original-topic"
	HeaderOriginalPartition = "ordo-original-partition"
	HeaderOriginalOffset    = "ordo-original-offset"
	HeaderOriginalTimestamp = "ordo-original-timestamp"
	HeaderAttempt           = "ordo-attempt"     // processor calls made so far, all deliveries
	HeaderNotBefore         = "ordo-not-before"  // unix ms: a retry record is not run before
	HeaderTier              = "ordo-tier"        // the retry tier the record was produced to (1..N)
	HeaderError             = "ordo-error"       // the last error's text, at most 4 KiB
	HeaderErrorClass        = "ordo-error-class" // permanent, retryable, panic, timeout
	HeaderGroup             = "ordo-group"
	HeaderProcessor         = "ordo-processor"
	// A dead letter too large to produce whole is written with its value
	// cut: these say so, and how large the original was (it stays at the
	// original topic, partition and offset).
	HeaderTruncated    = "ordo-truncated"     // "true"
	HeaderOriginalSize = "ordo-original-size" // bytes of the original value
	// HeaderRedriveID marks a record redriven from a dead-letter topic:
	// "<dlq topic>/<partition>/<offset>" of the dead letter.
	HeaderRedriveID = "ordo-redrive-id"
	headerPrefix    = "ordo-"
	maxErrorHeader  = 4096
)

// outRecord builds the copy of w that a goes to: retry tier a.tier or the
// dead-letter topic of w's source topic. It keeps key, value and foreign
// headers byte-exact; headers with the ordo- prefix, in any case, are
// dropped (from a source topic they are not trusted; from a retry tier they
// are Ordo's own, rewritten here), and Ordo's are added.
func (r *router) outRecord(w *work, a action) *kgo.Record {
	src := w.rec
	errText := "unknown error"
	if w.lastErr != nil {
		errText = w.lastErr.Error()
	}
	if len(errText) > maxErrorHeader {
		// Cut, then drop a rune the cut split: the header stays UTF-8.
		errText = strings.ToValidUTF8(errText[:maxErrorHeader], "")
	}
	hs := make([]kgo.RecordHeader, 0, len(src.Headers)+14)
	for _, h := range src.Headers {
		if isOrdoHeader(h.Key) {
			continue
		}
		hs = append(hs, h)
	}
	o := w.origin()
	hb := headerBuf{hs: hs, buf: make([]byte, 0, 64+len(o.Topic)+len(errText)+len(r.group)+len(r.processor))}
	hb.add(HeaderOriginalTopic, o.Topic)
	hb.addInt(HeaderOriginalPartition, int64(o.Partition))
	hb.addInt(HeaderOriginalOffset, o.Offset)
	hb.addInt(HeaderOriginalTimestamp, w.originTime().UnixMilli())
	hb.addInt(HeaderAttempt, int64(w.calls()))
	hb.add(HeaderError, errText)
	hb.add(HeaderErrorClass, string(a.class))
	hb.add(HeaderGroup, r.group)
	hb.add(HeaderProcessor, r.processor)
	if src.Topic != o.Topic {
		// A redriven record that fails again keeps its redrive's id, so
		// that `ordo dlq list` shows which letters came back.
		for _, h := range src.Headers {
			if h.Key == HeaderRedriveID {
				hb.add(HeaderRedriveID, string(h.Value))
				break
			}
		}
	}
	out := &kgo.Record{
		Key:   src.Key,
		Value: src.Value,
		// The origin's partition number (originPartitioner), as Spring
		// Kafka's recoverer and ordo dlq redrive do: a key's retries and
		// dead letters share a partition however its producer hashed it.
		Partition: o.Partition,
		Timestamp: r.clock.Now(),
		// The record's own context (its trace, with franz-go's kotel
		// hooks), so that its retry or dead letter continues the trace.
		Context: src.Context,
	}
	if a.kind == actTier {
		out.Topic = r.chainOf(o.Topic, a.tier)
		hb.addInt(HeaderTier, int64(a.tier))
		due := out.Timestamp.Add(a.delay)
		ms := due.UnixMilli()
		if due.After(time.UnixMilli(ms)) {
			ms++ // never due early: round up to the millisecond
		}
		hb.addInt(HeaderNotBefore, ms)
	} else {
		out.Topic = r.chainOf(o.Topic, 0)
	}
	if w.cut >= 0 && w.cut < len(src.Value) {
		out.Value = src.Value[:w.cut]
		hb.add(HeaderTruncated, "true")
		hb.addInt(HeaderOriginalSize, int64(len(src.Value)))
	}
	out.Headers = hb.hs
	return out
}

// headerBuf builds headers whose values share one buffer: a copy costs a
// few allocations, not two a header. Each value is cut off the buffer
// with a full slice expression, so a later append never writes into it (a
// buffer that grows leaves the earlier values in the old array).
type headerBuf struct {
	hs  []kgo.RecordHeader
	buf []byte
}

func (h *headerBuf) add(k, v string) {
	n := len(h.buf)
	h.buf = append(h.buf, v...)
	h.put(k, n)
}

func (h *headerBuf) addInt(k string, v int64) {
	n := len(h.buf)
	h.buf = strconv.AppendInt(h.buf, v, 10)
	h.put(k, n)
}

func (h *headerBuf) put(k string, n int) {
	h.hs = append(h.hs, kgo.RecordHeader{Key: k, Value: h.buf[n:len(h.buf):len(h.buf)]})
}

// originPartitioner places a retry or dead-letter record on the partition
// number its record came from (Record.Partition, set by outRecord), and
// falls back to the key's murmur2 hash (Kafka's default) when the target
// topic has fewer partitions.
type originPartitioner struct{ fallback kgo.Partitioner }

func (p originPartitioner) ForTopic(t string) kgo.TopicPartitioner {
	return originTopicPartitioner{p.fallback.ForTopic(t)}
}

type originTopicPartitioner struct{ fallback kgo.TopicPartitioner }

func (originTopicPartitioner) RequiresConsistency(*kgo.Record) bool { return true }

func (p originTopicPartitioner) Partition(r *kgo.Record, n int) int {
	if r.Partition >= 0 && int(r.Partition) < n {
		return int(r.Partition)
	}
	return p.fallback.Partition(r, n)
}

// isOrdoHeader reports whether key has the ordo- prefix, in any case.
func isOrdoHeader(key string) bool {
	return len(key) >= len(headerPrefix) && strings.EqualFold(key[:len(headerPrefix)], headerPrefix)
}

// tierHeaders is what a record of a group's retry tier says of itself.
type tierHeaders struct {
	ok         bool // the origin headers were all there and well formed
	origin     Origin
	originTime time.Time
	attempts   int       // calls before this delivery
	notBefore  time.Time // zero if absent
}

// readTierHeaders reads Ordo's headers on a record of a group's own retry
// tier (on a source topic they are never read: not trusted). It allocates
// nothing but the origin topic's name, and not even that when it is
// source, the tier's source topic (what it should be).
func readTierHeaders(rec *kgo.Record, source string) tierHeaders {
	var th tierHeaders
	var have int
	for _, h := range rec.Headers {
		switch h.Key {
		case HeaderOriginalTopic:
			th.origin.Topic = source
			if string(h.Value) != source {
				th.origin.Topic = string(h.Value)
			}
			have |= 1
		case HeaderOriginalPartition:
			if p, ok := parseDec(h.Value); ok && p >= math.MinInt32 && p <= math.MaxInt32 {
				th.origin.Partition = int32(p)
				have |= 2
			}
		case HeaderOriginalOffset:
			if o, ok := parseDec(h.Value); ok {
				th.origin.Offset = o
				have |= 4
			}
		case HeaderOriginalTimestamp:
			if ms, ok := parseDec(h.Value); ok {
				th.originTime = time.UnixMilli(ms)
			}
		case HeaderAttempt:
			if n, ok := parseDec(h.Value); ok && n >= 0 && n <= math.MaxInt32 {
				th.attempts = int(n)
			}
		case HeaderNotBefore:
			if ms, ok := parseDec(h.Value); ok {
				th.notBefore = time.UnixMilli(ms)
			}
		}
	}
	th.ok = have == 7 && th.origin.Topic != ""
	return th
}
