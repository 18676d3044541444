package ordo

import (
	"context"
	"errors"
	"log/slog"
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
	// route maps a failed call's error to an action. attempt is the number
	// of the call that failed (1 for the first); laneCtx is the lane's
	// context (a done lane leaves the record for the next owner).
	route(laneCtx context.Context, err error, attempt int) action
	// send produces the record of w to the target of a (the dead-letter
	// topic of its source topic) and calls done once with the produce's
	// result: only an acknowledged produce lets the lane finish w.
	send(ctx context.Context, w *work, a action, done func(error))
}

// recordProducer is the part of *kgo.Client the router uses.
type recordProducer interface {
	Produce(ctx context.Context, r *kgo.Record, promise func(*kgo.Record, error))
}

// router implements laneRouter for a Consumer.
type router struct {
	group, processor string
	retry            RetryPolicy
	dlqTopic         func(topic string) string
	clock            Clock
	log              *slog.Logger
	jitter           func(time.Duration) time.Duration
	producer         recordProducer // set at Start
}

func newRouter(cfg *Config) *router {
	return &router{
		group:     cfg.Group,
		processor: cfg.ProcessorName,
		retry:     cfg.Retry,
		dlqTopic:  cfg.DLQTopic,
		clock:     cfg.Clock,
		log:       cfg.Logger,
		jitter:    jitter,
	}
}

func (r *router) route(laneCtx context.Context, err error, attempt int) action {
	return decide(laneCtx, err, attempt, r.retry, r.jitter)
}

func (r *router) send(ctx context.Context, w *work, a action, done func(error)) {
	rec := r.dlqRecord(w, a.class)
	r.producer.Produce(ctx, rec, func(_ *kgo.Record, err error) { done(err) })
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
	}
	return "unknown"
}

type action struct {
	kind  actionKind
	delay time.Duration
	class ErrorClass
}

// decide is the one place that maps a processor's result to what happens to
// the record. attempt is the number of the call that just returned (1 for
// the first). laneCtx is the lane's context: if it is done, the failure may
// only be the cancellation, and the record is left unfinished for the next
// owner instead of being retried or dead-lettered.
func decide(laneCtx context.Context, err error, attempt int, rp RetryPolicy, jitter func(time.Duration) time.Duration) action {
	if err == nil {
		return action{kind: actDone}
	}
	if laneCtx.Err() != nil {
		return action{kind: actDrop}
	}
	class := classify(err)
	var holdP *holdPartitionError
	if errors.As(err, &holdP) {
		return action{kind: actHoldPartition, delay: rp.HoldDelay, class: ClassRetryable}
	}
	var hold *holdError
	if errors.As(err, &hold) {
		d := rp.HoldDelay
		if hold.delay > 0 {
			d = hold.delay
		}
		return action{kind: actHold, delay: d, class: ClassRetryable}
	}
	if class == ClassPermanent {
		return action{kind: actDLQ, class: class}
	}
	if attempt >= rp.MaxAttempts {
		return action{kind: actDLQ, class: class}
	}
	var ra *retryAfterError
	if errors.As(err, &ra) {
		return action{kind: actRetry, delay: ra.delay, class: class}
	}
	return action{kind: actRetry, delay: jitter(rp.backoff(attempt)), class: class}
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

// dlqRecord builds the dead-letter copy of w: same key, value and foreign
// headers; headers with the ordo- prefix that came from outside are
// dropped, and Ordo's own are added.
func (r *router) dlqRecord(w *work, class ErrorClass) *kgo.Record {
	src := w.rec
	errText := "unknown error"
	if w.lastErr != nil {
		errText = w.lastErr.Error()
	}
	if len(errText) > maxErrorHeader {
		// Cut, then drop a rune the cut split: the header stays UTF-8.
		errText = strings.ToValidUTF8(errText[:maxErrorHeader], "")
	}
	hs := make([]kgo.RecordHeader, 0, len(src.Headers)+9)
	for _, h := range src.Headers {
		if len(h.Key) >= len(headerPrefix) && h.Key[:len(headerPrefix)] == headerPrefix {
			continue
		}
		hs = append(hs, h)
	}
	add := func(k, v string) { hs = append(hs, kgo.RecordHeader{Key: k, Value: []byte(v)}) }
	add(HeaderOriginalTopic, src.Topic)
	add(HeaderOriginalPartition, strconv.FormatInt(int64(src.Partition), 10))
	add(HeaderOriginalOffset, strconv.FormatInt(src.Offset, 10))
	add(HeaderOriginalTimestamp, strconv.FormatInt(src.Timestamp.UnixMilli(), 10))
	add(HeaderAttempt, strconv.Itoa(w.attempt))
	add(HeaderError, errText)
	add(HeaderErrorClass, string(class))
	add(HeaderGroup, r.group)
	add(HeaderProcessor, r.processor)
	return &kgo.Record{
		Topic:     r.dlqTopic(src.Topic),
		Key:       src.Key,
		Value:     src.Value,
		Headers:   hs,
		Timestamp: r.clock.Now(),
	}
}
