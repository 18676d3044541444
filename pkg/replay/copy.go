package replay

import (
	"cmp"
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"golang.org/x/time/rate"
)

// The headers a copy adds to every record, after the record's own.
const (
	// HeaderSource is "topic/partition/offset" of the copied record.
	HeaderSource = "ordo-replay-source"
	// HeaderID identifies the copy run (CopyConfig.ID).
	HeaderID = "ordo-replay-id"
)

// Bound is one end of a copy's range: an offset, a time, or (the zero
// Bound) the log's start or end.
type Bound struct {
	offset int64
	time   time.Time
	kind   boundKind
}

type boundKind int8

const (
	boundLog boundKind = iota
	boundOffset
	boundTime
)

// AtOffset is the bound at offset o of every partition.
func AtOffset(o int64) Bound { return Bound{offset: o, kind: boundOffset} }

// AtTime is the bound at the first offset of each partition whose
// timestamp is at or after t (the broker's time index).
func AtTime(t time.Time) Bound { return Bound{time: t, kind: boundTime} }

// IsZero reports whether b is the log's own bound.
func (b Bound) IsZero() bool { return b.kind == boundLog }

func (b Bound) String() string {
	switch b.kind {
	case boundOffset:
		return "offset " + strconv.FormatInt(b.offset, 10)
	case boundTime:
		return b.time.UTC().Format(time.RFC3339Nano)
	}
	return "log bound"
}

// CopyConfig configures a Copy.
type CopyConfig struct {
	// Brokers are the seed brokers. Required.
	Brokers []string
	// KgoOpts are passed to both clients (reader and producer) after
	// Copy's own: TLS, SASL, client ID.
	KgoOpts []kgo.Opt
	// From is the source topic; Into the target topic, which must exist.
	// Required.
	From, Into string
	// Partitions of From to copy. Default: all.
	Partitions []int32
	// Start is the first offset copied of each partition (inclusive).
	// Default: the log start.
	Start Bound
	// End is where each partition's range ends (exclusive). Default: the
	// partition's end offset when the copy starts. An end past that is
	// cut to it: a copy never waits for new records.
	End Bound
	// Rate bounds the records produced per second. Default 0: no bound.
	Rate float64
	// Limit bounds the records copied in all; each partition copies a
	// prefix of its range. Default 0: no bound.
	Limit int64
	// ID is the value of the ordo-replay-id header. Default: NewID().
	ID string
	// OnPlan, if set, is called with the ranges once they are resolved,
	// before anything is copied.
	OnPlan func([]CopyRange)
	// Progress, if set, is called about every ProgressInterval from
	// Copy's own goroutine, and once at the end with Done set.
	Progress func(CopyProgress)
	// ProgressInterval defaults to 1s.
	ProgressInterval time.Duration
}

// CopyRange is one partition's range.
type CopyRange struct {
	Partition int32
	// From is the first offset to copy, To the offset the copy stops
	// before.
	From, To int64
	// LogStart and LogEnd are the partition's bounds when the copy started
	// (LogEnd is its last stable offset: records of open transactions are
	// not copied).
	LogStart, LogEnd int64
	// Warning says why the range is not what was asked (records deleted,
	// an end past the log's end); "" if it is.
	Warning string
}

// Len is the number of offsets in the range (records, unless some were
// compacted away or are transaction markers).
func (r CopyRange) Len() int64 { return max(0, r.To-r.From) }

// CopyProgress is a snapshot of a running copy.
type CopyProgress struct {
	// Offsets is how far the copy has read into the ranges, in offsets;
	// TotalOffsets the ranges' length (with a Limit, at most the Limit).
	Offsets, TotalOffsets int64
	// Produced are records handed to the producer; Copied those it has
	// acknowledged.
	Produced, Copied int64
	Elapsed          time.Duration
	Done             bool
}

// PartitionCopy is what a copy did in one partition.
type PartitionCopy struct {
	Partition int32
	// Copied are the records acknowledged by the target's brokers.
	Copied int64
	// LastOffset is the source offset of the last record acknowledged; -1
	// if none was. A copy cut short can be resumed after it.
	LastOffset int64
}

// CopyResult is what a copy did.
type CopyResult struct {
	ID         string
	Ranges     []CopyRange
	Partitions []PartitionCopy
	Copied     int64
	// LimitReached reports that the copy stopped at CopyConfig.Limit.
	LimitReached bool
	Elapsed      time.Duration
}

// NewID returns a fresh copy id: the UTC time and 32 random bits, e.g.
// 20260918T120000Z-1a2b3c4d.
func NewID() string {
	var b [4]byte
	_, _ = rand.Read(b[:]) // crypto/rand.Read never fails
	return time.Now().UTC().Format("20060102T150405Z") + "-" + hex.EncodeToString(b[:])
}

func (c *CopyConfig) check() error {
	var errs []error
	if len(c.Brokers) == 0 {
		errs = append(errs, errors.New("no brokers"))
	}
	for _, t := range []struct{ what, name string }{{"source", c.From}, {"target", c.Into}} {
		if err := ValidTopic(t.name); err != nil {
			errs = append(errs, fmt.Errorf("%s topic: %w", t.what, err))
		}
	}
	for _, p := range c.Partitions {
		if p < 0 {
			errs = append(errs, fmt.Errorf("partition %d is negative", p))
		}
	}
	if c.Start.kind == boundOffset && c.Start.offset < 0 {
		errs = append(errs, fmt.Errorf("start offset %d is negative", c.Start.offset))
	}
	if c.End.kind == boundOffset && c.End.offset < 0 {
		errs = append(errs, fmt.Errorf("end offset %d is negative", c.End.offset))
	}
	if c.Start.kind == boundOffset && c.End.kind == boundOffset && c.End.offset <= c.Start.offset {
		errs = append(errs, fmt.Errorf("end offset %d is not after start offset %d", c.End.offset, c.Start.offset))
	}
	if c.Start.kind == boundTime && c.End.kind == boundTime && !c.End.time.After(c.Start.time) {
		errs = append(errs, fmt.Errorf("end time %s is not after start time %s", c.End, c.Start))
	}
	if c.Rate < 0 {
		errs = append(errs, fmt.Errorf("rate %g is negative", c.Rate))
	}
	if c.Limit < 0 {
		errs = append(errs, fmt.Errorf("limit %d is negative", c.Limit))
	}
	return errors.Join(errs...)
}

// PlanCopy resolves cfg's bounds into a range per partition, as Copy
// would, and changes nothing. A start below the log start (records
// deleted or expired) begins at the log start, and an end past the end
// offset is cut to it, each with a warning on its range.
func PlanCopy(ctx context.Context, adm *kadm.Client, cfg CopyConfig) ([]CopyRange, error) {
	if err := cfg.check(); err != nil {
		return nil, err
	}
	topics := []string{cfg.From}
	if cfg.Into != cfg.From {
		topics = append(topics, cfg.Into)
	}
	details, err := adm.ListTopics(ctx, topics...)
	if err != nil {
		return nil, fmt.Errorf("listing topics: %w", err)
	}
	var errs []error
	for _, t := range topics {
		if d, ok := details[t]; !ok || d.Err != nil {
			why := "does not exist"
			if ok && !errors.Is(d.Err, kerr.UnknownTopicOrPartition) {
				why = d.Err.Error()
			}
			role := "source"
			if t == cfg.Into {
				role = "target"
			}
			errs = append(errs, fmt.Errorf("%s topic %s %s", role, t, why))
		}
	}
	if len(errs) > 0 {
		return nil, errors.Join(errs...)
	}
	sel := map[string][]int32{cfg.From: cfg.Partitions}
	parts, err := resolvePartitions(sel, details)
	if err != nil {
		return nil, err
	}
	starts, err := adm.ListStartOffsets(ctx, cfg.From)
	if err != nil {
		return nil, fmt.Errorf("listing log start offsets of %s: %w", cfg.From, err)
	}
	// The last stable offset: a reader of committed records stops there,
	// so an end beyond it would wait for an open transaction.
	ends, err := adm.ListCommittedOffsets(ctx, cfg.From)
	if err != nil {
		return nil, fmt.Errorf("listing end offsets of %s: %w", cfg.From, err)
	}
	byTime := func(b Bound) (kadm.ListedOffsets, error) {
		if b.kind != boundTime {
			return nil, nil
		}
		l, err := adm.ListOffsetsAfterMilli(ctx, max(b.time.UnixMilli(), 0), cfg.From)
		if err != nil {
			return nil, fmt.Errorf("listing offsets of %s at %s: %w", cfg.From, b, err)
		}
		return l, nil
	}
	startAt, err := byTime(cfg.Start)
	if err != nil {
		return nil, err
	}
	endAt, err := byTime(cfg.End)
	if err != nil {
		return nil, err
	}
	var out []CopyRange
	for _, k := range parts {
		s, ok1 := starts.Lookup(k.topic, k.partition)
		e, ok2 := ends.Lookup(k.topic, k.partition)
		if !ok1 || !ok2 || s.Err != nil || e.Err != nil {
			errs = append(errs, fmt.Errorf("%s: log bounds: %w", k, cmp.Or(s.Err, e.Err, errors.New("not listed"))))
			continue
		}
		r := CopyRange{Partition: k.partition, LogStart: s.Offset, LogEnd: e.Offset}
		resolve := func(b Bound, l kadm.ListedOffsets, dflt int64) (int64, error) {
			switch b.kind {
			case boundOffset:
				return b.offset, nil
			case boundTime:
				o, ok := l.Lookup(k.topic, k.partition)
				if !ok || o.Err != nil {
					return 0, fmt.Errorf("%s: offset at %s: %w", k, b, cmp.Or(o.Err, errors.New("not listed")))
				}
				return o.Offset, nil
			}
			return dflt, nil
		}
		from, err1 := resolve(cfg.Start, startAt, r.LogStart)
		to, err2 := resolve(cfg.End, endAt, r.LogEnd)
		if err1 != nil || err2 != nil {
			errs = append(errs, cmp.Or(err1, err2))
			continue
		}
		var warns []string
		if to > r.LogEnd {
			if cfg.End.kind == boundOffset {
				warns = append(warns, fmt.Sprintf("the end offset %d is past the end %d; stopping at %d", to, r.LogEnd, r.LogEnd))
			}
			to = r.LogEnd
		}
		if from < r.LogStart {
			if to <= r.LogStart {
				warns = append(warns, fmt.Sprintf("records [%d, %d) were deleted (the log starts at %d); nothing to copy", from, to, r.LogStart))
			} else {
				warns = append(warns, fmt.Sprintf("records [%d, %d) were deleted (the log starts at %d); copying from %d", from, r.LogStart, r.LogStart, r.LogStart))
			}
			from = r.LogStart
		}
		r.From, r.To = from, max(to, from)
		if len(warns) > 0 {
			r.Warning = k.String() + ": " + strings.Join(warns, "; ")
		}
		out = append(out, r)
	}
	if len(errs) > 0 {
		return nil, errors.Join(errs...)
	}
	return out, nil
}

// Copy copies cfg's ranges of cfg.From into cfg.Into and returns what it
// copied. Records are produced in offset order per source partition by one
// idempotent producer, to the partition franz-go's default key partitioner
// picks (murmur2, as Kafka's Java client), so records of a key keep their
// order and one partition. The copy reads committed records only, joins no
// group and commits nothing. It stops when every range is read and every
// record acknowledged, at Limit, at the first produce error, or when ctx
// ends; the result then says what was copied, per partition up to which
// offset.
func Copy(ctx context.Context, cfg CopyConfig) (*CopyResult, error) {
	started := time.Now()
	if err := cfg.check(); err != nil {
		return nil, err
	}
	if cfg.ID == "" {
		cfg.ID = NewID()
	}
	if cfg.ProgressInterval <= 0 {
		cfg.ProgressInterval = time.Second
	}
	prod, err := kgo.NewClient(append([]kgo.Opt{
		kgo.SeedBrokers(cfg.Brokers...),
		kgo.DefaultProduceTopic(cfg.Into),
		kgo.RecordPartitioner(kgo.StickyKeyPartitioner(nil)), // the default, stated: murmur2 for keys
		kgo.ProducerLinger(5 * time.Millisecond),
	}, cfg.KgoOpts...)...)
	if err != nil {
		return nil, err
	}
	defer prod.Close()
	ranges, err := PlanCopy(ctx, kadm.NewClient(prod), cfg)
	if err != nil {
		return nil, err
	}
	if cfg.OnPlan != nil {
		cfg.OnPlan(ranges)
	}
	res := &CopyResult{ID: cfg.ID, Ranges: ranges}
	c := &copier{cfg: cfg, prod: prod, res: res, started: started, parts: map[int32]*partState{}}
	for _, r := range ranges {
		st := &partState{r: r, last: -1, done: r.Len() == 0}
		st.pos.Store(r.From)
		c.parts[r.Partition] = st
		c.total += r.Len()
	}
	if cfg.Limit > 0 && cfg.Limit < c.total {
		c.total, c.byLimit = cfg.Limit, true
	}
	err = c.run(ctx)
	res.Elapsed = time.Since(started)
	for _, r := range ranges {
		st := c.parts[r.Partition]
		c.mu.Lock()
		last := st.last
		c.mu.Unlock()
		pc := PartitionCopy{Partition: r.Partition, Copied: st.copied.Load(), LastOffset: last}
		res.Partitions = append(res.Partitions, pc)
		res.Copied += pc.Copied
	}
	return res, err
}

// copier is one run of Copy. The poll loop owns the partition states;
// the produce callbacks and the progress goroutine meet it through the
// atomics and mu (which guards last and firstErr).
type copier struct {
	cfg     CopyConfig
	prod    *kgo.Client
	res     *CopyResult
	started time.Time
	total   int64 // offsets in the ranges, or Limit if smaller
	byLimit bool  // total is Limit: progress counts records produced

	parts    map[int32]*partState
	produced atomic.Int64

	mu       sync.Mutex
	firstErr error
}

type partState struct {
	r      CopyRange
	pos    atomic.Int64 // next offset to read
	done   bool         // poll loop only
	copied atomic.Int64
	last   int64 // under copier.mu
}

func (c *copier) run(ctx context.Context) error {
	offsets := map[int32]kgo.Offset{}
	for p, st := range c.parts {
		if !st.done {
			offsets[p] = kgo.NewOffset().At(st.r.From)
		}
	}
	progressDone := make(chan struct{})
	var wg sync.WaitGroup
	defer func() {
		close(progressDone)
		wg.Wait()
		c.report(true)
	}()
	if c.cfg.Progress != nil {
		wg.Go(func() {
			t := time.NewTicker(c.cfg.ProgressInterval)
			defer t.Stop()
			for {
				select {
				case <-progressDone:
					return
				case <-t.C:
					c.report(false)
				}
			}
		})
	}
	if len(offsets) == 0 {
		return nil
	}
	cons, err := kgo.NewClient(append([]kgo.Opt{
		kgo.SeedBrokers(c.cfg.Brokers...),
		kgo.ConsumePartitions(map[string]map[int32]kgo.Offset{c.cfg.From: offsets}),
		kgo.FetchIsolationLevel(kgo.ReadCommitted()),
		// Transaction markers come through so that a range ending on one
		// is seen to end.
		kgo.KeepControlRecords(),
	}, c.cfg.KgoOpts...)...)
	if err != nil {
		return err
	}

	var lim *rate.Limiter
	if c.cfg.Rate > 0 {
		lim = rate.NewLimiter(rate.Limit(c.cfg.Rate), max(1, int(c.cfg.Rate/10)))
	}
	rctx, cancel := context.WithCancel(ctx)
	defer cancel()
	loopErr := c.loop(rctx, cancel, cons, lim)
	cons.Close() // stop fetching before waiting for the producer
	// Wait for the acknowledgements of what was handed to the producer,
	// also after an interrupt: a record is either copied or reported as not.
	fctx, fcancel := context.WithTimeout(context.WithoutCancel(ctx), 30*time.Second)
	defer fcancel()
	flushErr := c.prod.Flush(fctx)
	c.mu.Lock()
	prodErr := c.firstErr
	c.mu.Unlock()
	switch {
	case prodErr != nil:
		return fmt.Errorf("producing into %s: %w", c.cfg.Into, prodErr)
	case loopErr != nil:
		return loopErr
	case flushErr != nil:
		return fmt.Errorf("waiting for the acknowledgements of %s: %w", c.cfg.Into, flushErr)
	}
	return nil
}

// loop reads until every range is done, the limit is reached, a produce
// fails (its callback cancels ctx) or ctx ends.
func (c *copier) loop(ctx context.Context, cancel context.CancelFunc, cons *kgo.Client, lim *rate.Limiter) error {
	remaining := 0
	for _, st := range c.parts {
		if !st.done {
			remaining++
		}
	}
	for remaining > 0 {
		fs := cons.PollRecords(ctx, 10000)
		if ctx.Err() != nil {
			return c.stopReason(ctx)
		}
		var fetchErr error
		fs.EachError(func(t string, p int32, err error) {
			if fetchErr == nil {
				fetchErr = fmt.Errorf("reading %s/%d: %w", t, p, err)
			}
		})
		if fetchErr != nil {
			return fetchErr
		}
		var finished []int32
		var stop error
		fs.EachPartition(func(fp kgo.FetchTopicPartition) {
			st := c.parts[fp.Partition]
			if stop != nil || st == nil || st.done {
				return
			}
			stop = c.copyRecords(ctx, cancel, st, fp.Records, lim)
			if st.done {
				finished = append(finished, fp.Partition)
			}
		})
		if errors.Is(stop, errLimit) {
			c.res.LimitReached = true
			return nil
		}
		if stop != nil {
			return stop
		}
		if len(finished) > 0 {
			remaining -= len(finished)
			cons.PauseFetchPartitions(map[string][]int32{c.cfg.From: finished})
		}
	}
	return nil
}

var errLimit = errors.New("limit reached")

// copyRecords produces the records of one partition's fetch that lie in
// its range, in order. A record at or past the range's end, or the
// range's last offset (a record or a transaction marker), ends the range.
func (c *copier) copyRecords(ctx context.Context, cancel context.CancelFunc, st *partState, recs []*kgo.Record, lim *rate.Limiter) error {
	for _, r := range recs {
		pos := st.pos.Load()
		if r.Offset < pos {
			continue
		}
		if r.Offset >= st.r.To {
			st.pos.Store(st.r.To)
			st.done = true
			return nil
		}
		if !r.Attrs.IsControl() {
			if lim != nil {
				if err := lim.Wait(ctx); err != nil {
					return c.stopReason(ctx)
				}
			}
			c.produce(ctx, cancel, st, r)
		}
		st.pos.Store(r.Offset + 1)
		if r.Offset+1 >= st.r.To {
			st.done = true
			return nil
		}
		if c.cfg.Limit > 0 && c.produced.Load() >= c.cfg.Limit {
			return errLimit
		}
	}
	return nil
}

// stopReason words why ctx ended: nil after a produce error (run reports
// it), else the caller's cancel.
func (c *copier) stopReason(ctx context.Context) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.firstErr != nil {
		return nil
	}
	return ctx.Err()
}

func (c *copier) produce(ctx context.Context, cancel context.CancelFunc, st *partState, src *kgo.Record) {
	hs := make([]kgo.RecordHeader, 0, len(src.Headers)+2)
	hs = append(hs, src.Headers...)
	hs = append(hs,
		kgo.RecordHeader{Key: HeaderSource, Value: fmt.Appendf(nil, "%s/%d/%d", src.Topic, src.Partition, src.Offset)},
		kgo.RecordHeader{Key: HeaderID, Value: []byte(c.cfg.ID)},
	)
	rec := &kgo.Record{
		Topic:     c.cfg.Into,
		Key:       src.Key,
		Value:     src.Value,
		Headers:   hs,
		Timestamp: src.Timestamp,
	}
	off := src.Offset
	c.produced.Add(1)
	// ctx ends a wait for buffer space and fails the records not yet
	// sent: after an interrupt, what was sent is acknowledged (run
	// flushes) and what was not is not counted.
	c.prod.Produce(ctx, rec, func(_ *kgo.Record, err error) {
		if err == nil {
			st.copied.Add(1)
		}
		c.mu.Lock()
		defer c.mu.Unlock()
		if err != nil && ctx.Err() != nil && errors.Is(err, context.Canceled) {
			return // interrupted, not a failure of the target
		}
		if err != nil {
			if c.firstErr == nil {
				c.firstErr = fmt.Errorf("record %s/%d/%d: %w", src.Topic, src.Partition, off, err)
				cancel()
			}
			return
		}
		st.last = max(st.last, off)
	})
}

func (c *copier) report(done bool) {
	if c.cfg.Progress == nil {
		return
	}
	p := CopyProgress{TotalOffsets: c.total, Elapsed: time.Since(c.started), Done: done, Produced: c.produced.Load()}
	for _, st := range c.parts {
		p.Copied += st.copied.Load()
		p.Offsets += st.pos.Load() - st.r.From
	}
	if c.byLimit {
		p.Offsets = p.Produced
	}
	c.cfg.Progress(p)
}
