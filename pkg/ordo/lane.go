package ordo

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"runtime/debug"
	"sync"
	"sync/atomic"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
)

// A lane owns one assigned partition: its offset tracker, its scheduler,
// its workers and its in-flight bounds. A lane lives for one assignment of
// the partition to this consumer; a reassignment makes a new lane with a
// new epoch, and anything that completes for an old lane is dropped (never
// marked) and counted.
//
// # Two ways to run a record
//
// Received records wait in the lane's stream (pending), in offset order.
//
//   - The stream runner. While calls are fast, one worker at a time claims a
//     chunk of the stream under the lock and runs it in order without the
//     lock: in offset order, records of one key cannot overlap, so no key
//     bookkeeping is needed. The chunk's records are marked finished at its
//     end, under the lock.
//   - The scheduler. A record that leaves the stream (it failed and waits
//     for a retry, it is being dead-lettered, it was stolen from a stuck
//     runner, or the lane is in slow mode) blocks its key: the key's later
//     records are diverted from the stream into the key's FIFO, and run
//     one at a time by any worker once the record before them finished.
//
// A runner stuck in one call (longer than stallAfter) is found by the
// consumer's watchdog, which steals the runner's unstarted records back
// into the stream, blocks the stuck record's key and puts the lane in slow
// mode: one slow key never holds the others (G6). In slow mode each worker
// takes the next record of the stream under the lock, as a scheduled
// record, so that records of different keys overlap; when calls are fast
// again the lane returns to the runner.
//
// # Locking
//
// Lock order: the consumer's commit semaphore, then Consumer.mu, then
// metrics.mu, then lane.mu. lane.mu guards every field below it. The runner reads its
// claimed chunk without the lock; the chunk is its own until it ends it
// under the lock, or until a steal, which takes the chunk's unstarted part
// under the lock after winning a compare-and-swap on the runner's state
// while the runner is inside a call. Pausing and resuming the partition
// are called under lane.mu so that they can never be reordered.
type lane struct {
	cfg       *laneConfig
	deps      laneDeps
	topic     string
	partition int32
	epoch     uint64
	// fetchNext is the offset the next fetched record should be at, or -1:
	// set at assignment and by the poll goroutine (see checkFetchGap).
	fetchNext atomic.Int64
	tier      int // 0: a source topic; n: retry tier n of source
	source    string

	ctx    context.Context // canceled when the partition is lost or work is canceled
	cancel context.CancelFunc
	sctx   streamCtx // the context of stream calls

	wg sync.WaitGroup // the lane's workers

	runner     atomic.Pointer[runSlot] // the stream's runner while it runs a chunk
	token      atomic.Int64            // the fencing token (Config.Fencer)
	fenced     chan struct{}           // closed once token is set; nil without a Fencer
	interrupt  atomic.Uint32           // for the runner between calls: interruptClosing, interruptHold
	closeLimit atomic.Int64            // while closing, only records below it start

	// The watchdog's view of the runner; only the watchdog touches them.
	wdSlot  *runSlot
	wdState uint64

	mu        sync.Mutex
	cond      *sync.Cond // signaled when work becomes runnable or the lane closes
	tr        *tracker
	pending   stream               // received records not started, in offset order
	streaming bool                 // a runner holds a chunk
	runFirst  int64                // offset of the first record of the runner's chunk
	slow      bool                 // slow mode: workers take stream records one at a time
	keys      map[string]*keyQueue // keys blocked by a scheduled record (OrderKey)
	// failing holds the keys of the source lane whose record went to retry
	// tier 1 after its in-place attempts, until when: their next failures
	// go to tier 1 after one call (see keyFailing). At most maxFailing.
	failing map[string]time.Time
	single  *keyQueue // the one queue of OrderPartition
	free    []*keyQueue
	runq    workDeque
	running int // stream chunks held, and scheduled records in a call or dead-letter produce
	waiting int // workers waiting on cond
	// idleWakes counts workers woken from cond that found nothing to
	// start (a test's measure of needless wake-ups).
	idleWakes uint64
	timers    map[*work]Timer // records waiting for a retry, or for a dead-letter produce retry
	holding   int             // records held by HoldPartition: while > 0 only they run
	probes    workDeque       // held records due for another try
	closing   bool            // only records below closeLimit start
	closed    bool            // the tracker is frozen: completions are stale
	lost      bool            // the partition was lost: commit nothing for it
	cnt       laneCounts      // per-record counts, summed into metrics at scrape time
	// Finished records and bytes not yet taken off the consumer-wide
	// budget; flushed in batches to keep a shared atomic off the
	// per-record path.
	finRecs, finBytes int64
	slowCalls         int     // scheduled calls timed since slow mode began
	slowSeconds       float64 // their total duration
	drained           chan struct{}
	closeCh           chan struct{} // closed by beginClose: wakes workers waiting for a token
	paused            bool          // fetching of the partition is paused
	pauseWhy          string        // the reason of the current pause
	hw                int64         // high watermark seen in the last fetch
	commit            int64         // last committed offset; -1 before any
	mapDropped        int64         // offsets the last offset map could not hold
	lastWM            int64         // the watermark when last looked at (each commit)
	movedAt           time.Time     // when it last moved; zero before any record
	notDueUntil       time.Time     // a retry tier's next record is not due before this
	dueTimer          Timer         // wakes the lane's workers when it is
	maxRecs           int           // cfg.maxRecs; on a retry tier at most tierMaxWaiting
	refencing         bool          // a refence is under way
	refencedAt        time.Time     // when the last one started
	blockedBy         *work         // a record whose produce out keeps failing
	blockedWhy        string        // its reason
	blockedSince      time.Time
}

// laneRole says what a lane's topic is to the group: a source topic (tier
// 0), or retry tier n of source.
type laneRole struct {
	tier   int
	source string
}

// laneConfig is what a lane reads of the Config, computed once.
type laneConfig struct {
	group          string
	ordering       Ordering
	workers        int
	maxRecs        int
	maxBytes       int64
	maxSpan        int64
	mapCap         mapCapacity
	processTimeout time.Duration
	produceRetry   time.Duration
	clock          Clock
	log            *slog.Logger
	chunk          int      // most records a runner claims at once
	maxOutBytes    int      // the producer's batch limit: a copy sent out is cut below it
	maxAttempts    int      // Retry.MaxAttempts
	tierAttempts   int      // Retry.TierAttempts
	edge           *edgeLog // warnings at a bounded rate
	// failingFor is how long a key stays failing after one of its records
	// went to retry tier 1 (Retry.Tiers[0]); 0 without tiers.
	failingFor time.Duration
}

// laneDeps are the parts a lane works with, as narrow interfaces.
type laneDeps struct {
	proc       Processor // the chain inside Recover, for scheduled calls
	streamProc Processor // the chain without it: the runner recovers per chunk
	budget     laneBudget
	router     laneRouter
	fetch      fetchPauser
	sem        chan struct{} // consumer-wide worker tokens (Config.MaxWorkers)
	metrics    *topicMetrics
	// sourceMetrics are the source topic's (metrics, but on a retry
	// tier): ordo_routed_total counts by source topic.
	sourceMetrics *topicMetrics
	watch         stallWatch
	fencer        Fencer          // nil: no fencing
	attempts      AttemptStore    // nil: attempts are counted in memory
	gate          *sync.RWMutex   // with attempts: a suspect's call runs alone
	workCtx       context.Context // parent of the lane's context
	// owns asks the group coordinator whether this member owns the
	// partition now (a Stable group, the partition in its assignment):
	// see refence. Nil without a Fencer.
	owns func(ctx context.Context, topic string, partition int32) (bool, error)
}

// fetchPauser pauses and resumes fetching a partition; *kgo.Client is one.
type fetchPauser interface {
	PauseFetchPartitions(map[string][]int32) map[string][]int32
	ResumeFetchPartitions(map[string][]int32)
}

// stallWatch is the watchdog, as the runner sees it.
type stallWatch interface {
	enter() // a runner starts a chunk
	leave() // it ended it
}

// Mode thresholds. A runner's chunk whose calls averaged more than
// slowCall puts the lane in slow mode (calls that long usually wait on
// I/O, and overlap well); a slow lane whose last slowWindow calls averaged
// under fastMode returns to the runner.
const (
	slowCall    = 50 * time.Microsecond
	fastMode    = 10 * time.Microsecond
	slowWindow  = 1024
	streamChunk = 512
)

// keyQueue is the FIFO of one key's records that wait behind the key's
// active record. active is true while a record of the key is runnable,
// running, waiting for a retry or being dead-lettered outside the stream.
type keyQueue struct {
	key        string
	head, tail *work
	active     bool
}

// work is one record outside the stream.
type work struct {
	lane    *lane
	rec     *kgo.Record
	seq     uint64
	size    int64
	kq      *keyQueue // nil for an independent record
	attempt int       // number of the next counted processor call, from 1
	next    *work     // next record of the same key
	lastErr error
	copied  bool // rec no longer points into a fetch buffer
	held    bool // held by HoldPartition: counted in lane.holding
	// A record of a retry tier carries where it came from and how many
	// calls it had before this delivery (its ordo- headers, Ordo's own on
	// the group's tier topics).
	orig   *Origin
	origTS time.Time
	prior  int
	cut    int       // the value is cut to this length when sent out; -1: whole
	sentAt time.Time // when the last produce out began
	// gateRelease ends a counted call (Config.Attempts): it records the
	// end and releases the consumer's call gate.
	gateRelease func()
}

// origin is where w's record was first produced.
func (w *work) origin() Origin {
	if w.orig != nil {
		return *w.orig
	}
	return Origin{Topic: w.rec.Topic, Partition: w.rec.Partition, Offset: w.rec.Offset}
}

// originTime is the original record's timestamp.
func (w *work) originTime() time.Time {
	if w.orig != nil {
		return w.origTS
	}
	return w.rec.Timestamp
}

// calls is the number of calls made so far, every delivery counted.
func (w *work) calls() int { return w.prior + w.attempt }

// stream is the lane's queue of received records not started: segments of
// fetched records with consecutive sequence numbers. A nil record in a
// segment was taken out of it (diverted or run elsewhere).
type stream struct {
	segs []segment
	n    int // records, nil ones included
}

type segment struct {
	recs      []*kgo.Record
	seq0      uint64
	compacted bool // recs are copies: they keep no fetch buffer alive
}

func (s *stream) push(seg segment) {
	s.segs = append(s.segs, seg)
	s.n += len(seg.recs)
}

func (s *stream) pushFront(seg segment) {
	s.segs = append(s.segs, segment{})
	copy(s.segs[1:], s.segs)
	s.segs[0] = seg
	s.n += len(seg.recs)
}

// first returns the first record that is not nil, dropping nil ones.
func (s *stream) first() (*kgo.Record, uint64, bool) {
	for len(s.segs) > 0 {
		seg := &s.segs[0]
		for len(seg.recs) > 0 {
			if r := seg.recs[0]; r != nil {
				return r, seg.seq0, true
			}
			seg.recs = seg.recs[1:]
			seg.seq0++
			s.n--
		}
		s.popSeg()
	}
	return nil, 0, false
}

func (s *stream) popSeg() {
	s.segs[0] = segment{}
	s.segs = s.segs[1:]
	if len(s.segs) == 0 {
		s.segs = nil
	}
}

// take removes up to n records from the front of the first segment, all
// with offsets below limit (nil ones included), and returns them.
func (s *stream) take(n int, limit int64) segment {
	if _, _, ok := s.first(); !ok {
		return segment{}
	}
	seg := &s.segs[0]
	k := min(n, len(seg.recs))
	if limit != math.MaxInt64 {
		for i := range k {
			if r := seg.recs[i]; r != nil && r.Offset >= limit {
				k = i
				break
			}
		}
	}
	out := segment{recs: seg.recs[:k:k], seq0: seg.seq0}
	seg.recs = seg.recs[k:]
	seg.seq0 += uint64(k)
	s.n -= k
	if len(seg.recs) == 0 {
		s.popSeg()
	}
	return out
}

// compact copies the stream's records out of the fetch buffers and record
// slabs they were decoded into (franz-go decodes a batch's records into
// one slab, so one waiting record keeps its whole batch alive): two
// allocations per segment, holding only the records' own bytes.
func (s *stream) compact() {
	for i := range s.segs {
		if seg := &s.segs[i]; !seg.compacted {
			seg.recs = copyRecords(seg.recs)
			seg.compacted = true
		}
	}
}

func copyRecords(recs []*kgo.Record) []*kgo.Record {
	n := 0
	for _, r := range recs {
		if r != nil {
			n += len(r.Key) + len(r.Value)
			for _, h := range r.Headers {
				n += len(h.Value)
			}
		}
	}
	buf := make([]byte, 0, n)
	cut := func(b []byte) []byte {
		if b == nil {
			return nil
		}
		start := len(buf)
		buf = append(buf, b...)
		return buf[start:len(buf):len(buf)]
	}
	slab := make([]kgo.Record, len(recs))
	out := make([]*kgo.Record, len(recs))
	for i, r := range recs {
		if r == nil {
			continue
		}
		c := &slab[i]
		*c = *r // Context too: it holds the record's trace, not its bytes
		c.Key, c.Value = cut(r.Key), cut(r.Value)
		if r.Headers != nil {
			c.Headers = make([]kgo.RecordHeader, len(r.Headers))
			for j, h := range r.Headers {
				c.Headers[j] = kgo.RecordHeader{Key: h.Key, Value: cut(h.Value)}
			}
		}
		out[i] = c
	}
	return out
}

// runSlot is a worker's state as the stream's runner: its chunk, and a
// word that says whether it is inside a call (odd) and which (the chunk's
// generation and the record's index in it). A steal replaces the word with
// stolenState.
type runSlot struct {
	chunk  segment
	gen    uint64        // chunks claimed, the high half of the state word
	state  atomic.Uint64 // gen<<32 | index<<1 | 1 while in a call; even when not
	stolen *work         // set by a steal: the record the runner was running
}

const stolenState = math.MaxUint64

// Bits of lane.interrupt.
const (
	interruptClosing = 1 << iota // the lane closes: only records below closeLimit start
	interruptHold                // a record holds the partition: nothing else starts
)

// streamCtx is the context of stream calls: the lane's context, plus the
// call's RecordInfo (a stream call is always a record's first attempt).
type streamCtx struct{ l *lane }

func (s *streamCtx) Deadline() (time.Time, bool) { return s.l.ctx.Deadline() }
func (s *streamCtx) Done() <-chan struct{}       { return s.l.ctx.Done() }
func (s *streamCtx) Err() error                  { return s.l.ctx.Err() }
func (s *streamCtx) Value(key any) any {
	if _, ok := key.(infoKey); ok {
		return s
	}
	return s.l.ctx.Value(key)
}

// recordCtx adds the values of a record's own context (kgo.Record.Context,
// set by franz-go hooks such as kotel's, which put the trace a record
// carries there) to the context of its call: cancellation and RecordInfo
// stay Ordo's. Made only for records that have one.
type recordCtx struct {
	context.Context
	rec context.Context
}

func (c *recordCtx) Value(key any) any {
	if _, ok := key.(infoKey); !ok {
		if v := c.rec.Value(key); v != nil {
			return v
		}
	}
	return c.Context.Value(key)
}

// A *work is the context of its processor calls: the lane's context, plus
// the record's RecordInfo as a value.

func (w *work) Deadline() (time.Time, bool) { return w.lane.ctx.Deadline() }
func (w *work) Done() <-chan struct{}       { return w.lane.ctx.Done() }
func (w *work) Err() error                  { return w.lane.ctx.Err() }
func (w *work) Value(key any) any {
	if _, ok := key.(infoKey); ok {
		return w
	}
	return w.lane.ctx.Value(key)
}

// newLane starts a lane. prev is the partition's previous lane on this
// member, if it is still retiring: its calls that overran a drain (their
// processor ignored the cancel) may still run, so the new lane's workers
// start only once prev's have returned. A key never runs twice at once in
// one member. inherited is the done set of the partition's previous owner.
func newLane(cfg *laneConfig, deps laneDeps, role laneRole, topic string, partition int32, epoch uint64, prev *lane, inherited []offRun) *lane {
	ctx, cancel := context.WithCancel(deps.workCtx)
	l := &lane{
		cfg:       cfg,
		deps:      deps,
		topic:     topic,
		partition: partition,
		epoch:     epoch,
		tier:      role.tier,
		source:    role.source,
		ctx:       ctx,
		cancel:    cancel,
		tr:        newTracker(),
		keys:      make(map[string]*keyQueue),
		timers:    make(map[*work]Timer),
		closeCh:   make(chan struct{}),
		hw:        -1,
		commit:    -1,
	}
	l.maxRecs = cfg.maxRecs
	if role.tier > 0 {
		l.maxRecs = min(cfg.maxRecs, tierMaxWaiting)
	}
	l.sctx.l = l
	l.fetchNext.Store(-1)
	l.tr.inherit(inherited)
	l.slow = l.alwaysSlow()
	l.cond = sync.NewCond(&l.mu)
	if cfg.ordering == OrderPartition {
		l.single = &keyQueue{}
	}
	if deps.fencer != nil {
		l.fenced = make(chan struct{})
		l.wg.Go(l.fence)
	}
	n := cfg.workers
	if cfg.ordering == OrderPartition {
		n = 1
	}
	l.wg.Add(n)
	for range n {
		go func() {
			if prev != nil {
				prev.wg.Wait()
			}
			l.worker()
		}()
	}
	return l
}

func (l *lane) String() string { return fmt.Sprintf("%s/%d", l.topic, l.partition) }

func recSize(r *kgo.Record) int64 { return int64(len(r.Key) + len(r.Value)) }

// add hands records fetched for the lane's partition to its stream. It
// runs on the poll goroutine. Records at or below an offset already
// received are ignored (the client never redelivers within an assignment).
func (l *lane) add(recs []*kgo.Record, hw int64) {
	var nrecs, nbytes int64
	l.mu.Lock()
	if l.closing {
		l.mu.Unlock()
		return
	}
	l.hw = hw
	if l.tr.addable(recs) {
		// The usual batch: every record new, none finished by a previous
		// owner. One pass, one segment.
		seq0, bytes := l.tr.addRecords(recs)
		l.pending.push(segment{recs: recs, seq0: seq0})
		nrecs, nbytes = int64(len(recs)), bytes
	} else {
		nrecs, nbytes = l.addEach(recs)
	}
	l.deps.budget.add(nrecs, nbytes)
	if !l.paused {
		if why := l.pauseReason(); why != "" {
			l.pauseLocked(why)
		}
	} else if l.stuck() {
		l.pending.compact() // arrived after the pause: waits as long
	}
	switch {
	case nrecs == 0:
	case l.tier > 0:
		l.wakeTier()
	case l.slow:
		for range min(int(nrecs), l.waiting) {
			l.cond.Signal()
		}
	case !l.streaming && l.waiting > 0:
		l.cond.Signal()
	}
	l.mu.Unlock()
}

// addEach adds records one by one: some are at or below an offset already
// received (ignored), or finished by the previous owner (marked at once).
// It returns the records and bytes that entered the stream. l.mu is held.
func (l *lane) addEach(recs []*kgo.Record) (nrecs, nbytes int64) {
	start := 0 // first record of the segment being built
	var seq0 uint64
	flush := func(end int) {
		if end > start {
			l.pending.push(segment{recs: recs[start:end:end], seq0: seq0})
		}
	}
	for i, r := range recs {
		size := recSize(r)
		seq, ok := l.tr.add(r.Offset, r.LeaderEpoch, int32(min(size, math.MaxInt32)), r.Timestamp)
		if !ok {
			// At or below an offset already received: the client never
			// redelivers within an assignment, so this is a log rewind
			// (truncation after an unclean leader election). Say so loudly.
			flush(i)
			start = i + 1
			l.deps.metrics.rewound.Add(1)
			l.cfg.log.Error("record at or below an offset already received; ignored",
				"topic", l.topic, "partition", l.partition, "offset", r.Offset)
			continue
		}
		if len(l.tr.inherited) > 0 && l.tr.inheritedDone(r.Offset) {
			// Finished by the partition's previous owner above its
			// committed offset: mark it without running it again. Key
			// order makes this safe: a record finishes only after the
			// earlier records of its key.
			flush(i)
			start = i + 1
			l.tr.finish(seq)
			l.cnt.alreadyDone++
			continue
		}
		if i == start {
			seq0 = seq
		}
		nrecs++
		nbytes += size
	}
	flush(len(recs))
	return nrecs, nbytes
}

// startLimit is the offset at or above which no record may start now: the
// offset map's window when the done set could outgrow a map, and, while
// the lane closes, the close limit.
func (l *lane) startLimit() int64 {
	lim := int64(math.MaxInt64)
	if l.closing {
		lim = l.closeLimit.Load()
	}
	if head, ok := l.tr.headOffset(); ok && l.tr.mapRuns()+1 > l.cfg.mapCap.runs {
		lim = min(lim, head+l.cfg.mapCap.window)
	}
	return lim
}

// blockedQueue returns the queue r must wait in because an earlier record
// of its key is outside the stream; nil if r may run.
func (l *lane) blockedQueue(r *kgo.Record) *keyQueue {
	switch l.cfg.ordering {
	case OrderPartition:
		if l.single.active {
			return l.single
		}
	case OrderKey:
		if r.Key != nil && len(l.keys) > 0 {
			return l.keys[string(r.Key)]
		}
	}
	return nil
}

// block makes w the active record of its key, which must not be blocked:
// the key's later records wait behind it. It returns the key's queue, nil
// for an independent record.
func (l *lane) block(w *work) *keyQueue {
	var kq *keyQueue
	switch l.cfg.ordering {
	case OrderPartition:
		kq = l.single
	case OrderKey:
		if w.rec.Key == nil {
			return nil
		}
		kq = l.newKeyQueue(string(w.rec.Key))
		l.keys[kq.key] = kq
	default:
		return nil
	}
	kq.active = true
	w.kq = kq
	return kq
}

// queueBehind puts w at the end of kq's FIFO; w leaves the fetch buffer.
func (l *lane) queueBehind(kq *keyQueue, w *work) {
	w.kq = kq
	l.detach(w)
	if kq.tail == nil {
		kq.head = w
	} else {
		kq.tail.next = w
	}
	kq.tail = w
}

func (l *lane) newKeyQueue(key string) *keyQueue {
	if n := len(l.free); n > 0 {
		kq := l.free[n-1]
		l.free = l.free[:n-1]
		kq.key = key
		return kq
	}
	return &keyQueue{key: key}
}

func (l *lane) newWork(r *kgo.Record, seq uint64) *work {
	w := &work{lane: l, rec: r, seq: seq, size: recSize(r), attempt: 1, cut: -1}
	if l.tier > 0 {
		tr := readTierHeaders(r, l.source)
		if tr.ok {
			w.orig, w.origTS, w.prior = &tr.origin, tr.originTime, tr.attempts
		}
	}
	return w
}

// detach copies w's record out of the fetch buffer it was decoded into, so
// that a record waiting outside the stream keeps only its own bytes alive
// (G5: retained memory stays within the byte budget).
func (l *lane) detach(w *work) {
	if w.copied {
		return
	}
	w.copied = true
	w.rec = copyRecord(w.rec)
}

func copyRecord(r *kgo.Record) *kgo.Record { return copyRecords([]*kgo.Record{r})[0] }

// advanceKey runs after w is finished: the next record of its key becomes
// runnable, or the key is forgotten.
func (l *lane) advanceKey(w *work) {
	kq := w.kq
	if kq == nil {
		return
	}
	if next := kq.head; next != nil {
		kq.head = next.next
		if kq.head == nil {
			kq.tail = nil
		}
		next.next = nil
		l.runq.pushBack(next)
		l.cond.Signal()
		return
	}
	kq.active = false
	if kq != l.single {
		delete(l.keys, kq.key)
		kq.key = ""
		if len(l.free) < 1024 {
			l.free = append(l.free, kq)
		}
	} else {
		// The partition's queue is free: the stream may run again.
		l.cond.Signal()
	}
}

// fence takes the lane's fencing token from the Fencer, retrying with
// backoff until it has one or the lane ends; the workers wait for it.
func (l *lane) fence() {
	backoff := 100 * time.Millisecond
	for {
		tok, err := l.deps.fencer.Fence(l.ctx, l.cfg.group, l.topic, l.partition)
		if err == nil {
			l.token.Store(tok)
			close(l.fenced)
			return
		}
		if l.ctx.Err() != nil {
			return
		}
		l.cfg.log.Warn("taking a fencing token; the partition waits", "topic", l.topic, "partition", l.partition, "err", err, "retry_in", backoff)
		t := time.NewTimer(backoff)
		select {
		case <-t.C:
		case <-l.ctx.Done():
			t.Stop()
			return
		case <-l.closeCh:
			t.Stop()
			return
		}
		backoff = min(2*backoff, 5*time.Second)
	}
}

// refenceEvery bounds how often a lane asks the coordinator about a
// partition whose writes are fenced.
const refenceEvery = time.Second

// refenceLocked starts a refence unless one is under way or one started
// less than refenceEvery ago. l.mu is held.
func (l *lane) refenceLocked() {
	if l.deps.fencer == nil || l.deps.owns == nil || l.refencing || l.closing ||
		!l.refencedAt.IsZero() && time.Since(l.refencedAt) < refenceEvery {
		return
	}
	l.refencing, l.refencedAt = true, time.Now()
	l.wg.Go(l.refence)
}

// refence runs when a write of the lane was fenced (ErrFenced) while the
// member believes it owns the partition. Either another member owns it
// now and this one has not heard yet (a zombie: its writes must stay
// fenced until the revoke arrives), or a Fence taken by the partition's
// previous owner landed after this lane's own (it was in flight when that
// owner lost the partition) and holds the partition's token above the
// lane's. Only the group coordinator can tell them apart: if it says this
// member owns the partition (the group Stable, the partition in the
// member's assignment), no other member does, and the lane takes a new
// token; the held record's next try then writes. Otherwise the record
// stays held, and the question is asked again at its next fenced try (at
// most every refenceEvery).
func (l *lane) refence() {
	defer func() {
		l.mu.Lock()
		l.refencing = false
		l.mu.Unlock()
	}()
	ctx, cancel := context.WithTimeout(l.ctx, 10*time.Second)
	defer cancel()
	go func() { // a closing lane does not wait for the answer
		select {
		case <-l.closeCh:
			cancel()
		case <-ctx.Done():
		}
	}()
	owned, err := l.deps.owns(ctx, l.topic, l.partition)
	if err != nil || !owned {
		l.cfg.log.Info("a write was fenced; the coordinator does not say this member owns the partition, so it stays held",
			"topic", l.topic, "partition", l.partition, "err", err)
		return
	}
	tok, err := l.deps.fencer.Fence(ctx, l.cfg.group, l.topic, l.partition)
	if err != nil {
		l.cfg.log.Warn("a write was fenced and this member owns the partition; taking a new fencing token failed", "topic", l.topic, "partition", l.partition, "err", err)
		return
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.closing || l.lost {
		return // the partition is going away: the token is the next owner's business
	}
	old := l.token.Swap(tok)
	l.deps.metrics.refences.Add(1)
	l.cfg.log.Warn("a write was fenced while this member owns the partition (a previous owner's late fence); took a new fencing token",
		"topic", l.topic, "partition", l.partition, "old_token", old, "token", tok)
}

// worker runs the lane's records until the lane is frozen, or closes with
// nothing below its close limit left to start. It holds a token of the
// consumer-wide worker bound while it has work, and gives it back before
// it waits or after a streak, so that other lanes get their turn.
func (l *lane) worker() {
	defer l.wg.Done()
	sem := l.deps.sem
	held, streak := false, 0
	ct := callTimer{now: time.Now}
	slot := &runSlot{}
	if l.fenced != nil {
		// Nothing runs before the partition's fencing token is taken.
		select {
		case <-l.fenced:
		case <-l.ctx.Done():
			return
		case <-l.closeCh:
			select {
			case <-l.fenced:
			default:
				return
			}
		}
	}
	l.mu.Lock()
	defer func() {
		l.mu.Unlock()
		if held {
			<-sem
		}
	}()
	woke := false
	for !l.closed {
		if l.probes.n == 0 && (l.holding > 0 || l.runq.n == 0 && !l.streamReady()) {
			if woke {
				l.idleWakes++
				woke = false
			}
			l.flushInflight()
			if l.deps.budget.shouldResume() {
				// This flush brought the consumer under half its bound.
				l.mu.Unlock()
				l.deps.budget.resumePaused()
				l.mu.Lock()
				continue
			}
			if l.closing {
				l.signalDrained()
				if l.running == 0 {
					return
				}
			}
			if held {
				l.mu.Unlock()
				<-sem
				held = false
				l.mu.Lock()
				continue
			}
			l.waiting++
			l.cond.Wait()
			l.waiting--
			woke = true
			continue
		}
		woke = false
		if !held || streak >= 64 {
			// Take a token before taking work, so that work once taken
			// runs at once.
			l.mu.Unlock()
			if held {
				<-sem
				held = false
			}
			select {
			case sem <- struct{}{}:
				held, streak = true, 0
			case <-l.ctx.Done():
			}
			l.mu.Lock()
			if !held {
				// The lane's work is canceled: nothing more starts here.
				l.dropRunnable()
				l.signalDrained()
				return
			}
			continue
		}
		w := l.probes.popFront()
		if w == nil && l.holding == 0 {
			w = l.runq.popFront()
		}
		if w != nil {
			if l.closing && w.rec.Offset >= l.closeLimit.Load() {
				continue // left unfinished for the next owner
			}
			l.running++
			streak++
			l.runScheduled(w)
			continue
		}
		if l.slow {
			if w := l.takeOne(); w != nil {
				if l.tier > 0 {
					l.wakeTier() // the next due record, if any, to the next worker
				}
				l.running++
				streak++
				l.runScheduled(w)
			}
			continue
		}
		if l.claim(slot) {
			streak += len(slot.chunk.recs)
			l.runStream(slot, &ct)
		}
	}
}

// wakeForStream wakes waiting workers if the stream has records that may
// start and no runner will take them: one in fast mode (it becomes the
// runner), all in slow mode. For finishes that happen outside the workers.
// l.mu is held.
func (l *lane) wakeForStream() {
	if l.waiting == 0 || l.closed || !l.streamReady() {
		return
	}
	if l.slow && l.tier == 0 {
		l.cond.Broadcast()
	} else {
		l.cond.Signal()
	}
}

// streamReady reports whether the stream has a record that may start now
// (diversions aside). l.mu is held.
func (l *lane) streamReady() bool {
	if l.streaming && !l.slow {
		return false // its runner takes it
	}
	if l.single != nil && l.single.active {
		return false // OrderPartition: the stream waits for the partition's queue
	}
	r, _, ok := l.pending.first()
	return ok && r.Offset < l.startLimit() && (l.tier == 0 || l.dueLocked(r))
}

// dueLocked reports whether r, the next record of a retry tier, is due
// (its ordo-not-before has passed). If it is not, it arms a timer that
// wakes the lane's workers when it is: no worker waits on it, and the
// source topic and the other tiers keep flowing. Fetching goes on: what a
// tier lane holds is bounded by tierMaxWaiting (see pauseReason), not by
// its head's due time, so that a tier fed a record at a time is not paused
// and resumed for each one. l.mu is held.
func (l *lane) dueLocked(r *kgo.Record) bool {
	now := l.cfg.clock.Now()
	if !l.notDueUntil.IsZero() && now.Before(l.notDueUntil) {
		return false
	}
	nb := notBefore(r)
	if nb.IsZero() || !now.Before(nb) {
		l.notDueUntil = time.Time{}
		return true
	}
	l.notDueUntil = nb
	if l.dueTimer == nil {
		l.dueTimer = l.cfg.clock.AfterFunc(nb.Sub(now), func() {
			l.mu.Lock()
			defer l.mu.Unlock()
			l.dueTimer = nil
			l.notDueUntil = time.Time{}
			l.wakeTier()
		})
	}
	return false
}

// wakeTier wakes one waiting worker of a retry tier's lane if its stream
// has a due record. A tier's workers are woken one at a time, each after
// the last took its record (a chain, see worker): most records of a tier
// arrive or fall due one by one, and waking a worker per record fetched,
// or all of them per record finished, woke eight for each record that
// ran. l.mu is held.
func (l *lane) wakeTier() {
	if l.waiting > 0 && l.streamReady() {
		l.cond.Signal()
	}
}

// dropRunnable leaves the scheduled runnable records unfinished; the lane
// is going away. l.mu is held.
func (l *lane) dropRunnable() {
	for l.runq.popFront() != nil {
	}
}

// takeOne takes the next record of the stream as a scheduled record (slow
// mode), diverting the records of blocked keys on the way. l.mu is held.
func (l *lane) takeOne() *work {
	lim := l.startLimit()
	for {
		r, seq, ok := l.pending.first()
		if !ok || r.Offset >= lim || l.tier > 0 && !l.dueLocked(r) {
			return nil
		}
		l.pending.take(1, lim).recs[0] = nil // the work holds it now
		w := l.newWork(r, seq)
		if kq := l.blockedQueue(r); kq != nil {
			l.queueBehind(kq, w)
			continue
		}
		l.block(w)
		return w
	}
}

// runScheduled makes one processor call for w, a scheduled record counted
// in l.running, and applies its outcome. Called and returns with l.mu
// held; the call runs without it.
func (l *lane) runScheduled(w *work) {
	l.mu.Unlock()
	if st := l.deps.attempts; st != nil {
		if l.beginCounted(st, w) {
			return // dead-lettered or sent on, uncalled; l.mu is held
		}
	}
	ctx := context.Context(w)
	if w.rec.Context != nil {
		ctx = &recordCtx{Context: ctx, rec: w.rec.Context}
	}
	var cancel context.CancelFunc
	if l.cfg.processTimeout > 0 {
		ctx, cancel = context.WithTimeout(ctx, l.cfg.processTimeout)
	}
	start := time.Now()
	err := l.deps.proc.Process(ctx, w.rec)
	d := time.Since(start).Seconds()
	if cancel != nil {
		cancel()
	}
	if w.gateRelease != nil {
		w.gateRelease()
		w.gateRelease = nil
	}
	w.lastErr = err
	if err != nil {
		l.cfg.log.Debug("processor error", "topic", l.topic, "partition", l.partition,
			"offset", w.rec.Offset, "attempt", w.attempt, "err", err)
	}
	l.mu.Lock()
	act := action{kind: actDone}
	if err != nil {
		act = l.deps.router.route(l.ctx, err, l.delivery(w, w.attempt))
	}
	l.cnt.observeN(d, 1)
	if l.slow && !l.alwaysSlow() {
		l.slowCalls++
		l.slowSeconds += d
		if l.slowCalls >= slowWindow {
			if l.slowSeconds/float64(l.slowCalls) < fastMode.Seconds() {
				l.slow = false // back to the runner
			}
			l.slowCalls, l.slowSeconds = 0, 0
		}
	}
	l.resolve(w, act, true)
}

// claim makes the calling worker the stream's runner with a chunk of the
// stream, diverting the records of blocked keys. It reports false if no
// record may start. l.mu is held.
func (l *lane) claim(slot *runSlot) bool {
	if l.streaming || l.slow || (l.single != nil && l.single.active) {
		return false
	}
	seg := l.pending.take(l.cfg.chunk, l.startLimit())
	if len(seg.recs) == 0 {
		return false
	}
	if l.cfg.ordering == OrderKey && len(l.keys) > 0 {
		for i, r := range seg.recs {
			if r == nil {
				continue
			}
			if kq := l.blockedQueue(r); kq != nil {
				l.queueBehind(kq, l.newWork(r, seg.seq0+uint64(i)))
				seg.recs[i] = nil
			}
		}
	}
	slot.chunk = seg
	slot.stolen = nil
	l.runFirst = math.MaxInt64
	for _, r := range seg.recs {
		if r != nil {
			l.runFirst = r.Offset
			break
		}
	}
	l.streaming = true
	l.running++
	l.runner.Store(slot)
	return true
}

// runStream runs the runner's chunk in offset order without the lock, then
// ends it under the lock. Called and returns with l.mu held.
func (l *lane) runStream(slot *runSlot, ct *callTimer) {
	l.mu.Unlock()
	l.deps.watch.enter()
	start := time.Now()
	ok, stop, stolen, stolenErr := l.runChunk(slot, ct)
	elapsed := time.Since(start)
	l.deps.watch.leave()
	l.mu.Lock()
	ct.blocked()
	ct.apply(&l.cnt)
	if !l.closed {
		l.cnt.ok += uint64(ok)
	}
	if stolen {
		// The watchdog took the chunk's rest and the record in the call.
		w := slot.stolen
		slot.stolen = nil
		w.lastErr = stolenErr
		act := action{kind: actDone}
		if stolenErr != nil {
			act = l.deps.router.route(l.ctx, stolenErr, l.delivery(w, w.attempt))
		}
		l.resolve(w, act, true)
		return
	}
	l.runner.Store(nil)
	l.streaming = false
	l.running--
	seg := slot.chunk
	slot.chunk = segment{}
	l.finishChunk(seg.recs[:stop], seg.seq0)
	if stop < len(seg.recs) {
		// Stopped by the close or a partition hold: the rest was never
		// started.
		l.pending.pushFront(segment{recs: seg.recs[stop:], seq0: seg.seq0 + uint64(stop)})
	}
	if calls := ok; calls > 0 && !l.slow && elapsed/time.Duration(calls) > slowCall {
		l.goSlow()
	}
	l.afterFinish()
}

// runChunk runs the chunk's records in order, without the lock. It returns
// the records that succeeded, the index it stopped at (len of the chunk
// unless the lane began closing), and whether the watchdog stole the call
// in progress (with that call's error).
//
// The runner's state word says which call is in progress: from one call to
// the next it moves with a single compare-and-swap, which fails only if the
// watchdog stole the call that just returned. A panic is recovered once per
// chunk rather than once per call: it ends runChunkPart, becomes the
// record's *PanicError, and the chunk goes on after it.
func (l *lane) runChunk(slot *runSlot, ct *callTimer) (ok, stop int, stolen bool, stolenErr error) {
	slot.gen++
	cr := chunkRun{gen: (slot.gen & (1<<31 - 1)) << 32, stop: len(slot.chunk.recs)}
	for !cr.done {
		pe := l.runChunkPart(slot, ct, &cr)
		if pe == nil {
			continue
		}
		ct.end()
		i := cr.i
		cr.i++
		if !slot.state.CompareAndSwap(cr.st, cr.st&^1) {
			return cr.ok, 0, true, pe
		}
		cr.st = 0
		l.mu.Lock()
		l.failStream(slot, i, pe)
		l.mu.Unlock()
	}
	return cr.ok, cr.stop, cr.stolen, cr.stolenErr
}

// chunkRun is where runChunk is in its chunk, kept across a recovered
// panic.
type chunkRun struct {
	gen       uint64 // the chunk's generation, in the state word's high half
	i         int    // the record being looked at
	st        uint64 // the state word while in a call; 0 when idle
	okPending bool   // the call in st returned nil; counted once st is released
	ok, stop  int
	stolen    bool
	stolenErr error
	done      bool
}

// runChunkPart runs the chunk from cr.i until it ends, is stolen, or a
// call panics (then it returns the panic, with cr.i and cr.st at the call).
func (l *lane) runChunkPart(slot *runSlot, ct *callTimer, cr *chunkRun) (pe *PanicError) {
	defer func() {
		if v := recover(); v != nil {
			pe = &PanicError{Value: v, Stack: debug.Stack()}
		}
	}()
	proc := l.deps.streamProc
	var ctx context.Context = &l.sctx
	recs := slot.chunk.recs
	for ; cr.i < len(recs); cr.i++ {
		i, r := cr.i, recs[cr.i]
		if r == nil {
			continue
		}
		if f := l.interrupt.Load(); f != 0 && (f&interruptHold != 0 || r.Offset >= l.closeLimit.Load()) {
			cr.stop = i // the rest goes back to the stream
			break
		}
		next := cr.gen | uint64(i)<<1 | 1
		if cr.st == 0 {
			slot.state.Store(next)
		} else if !slot.state.CompareAndSwap(cr.st, next) {
			cr.stolen, cr.done = true, true // the call that returned nil was stolen
			return nil
		}
		if cr.okPending {
			cr.ok++
			cr.okPending = false
		}
		cr.st = next
		ct.begin()
		var err error
		cctx := ctx
		if r.Context != nil {
			cctx = &recordCtx{Context: ctx, rec: r.Context}
		}
		if l.cfg.processTimeout > 0 {
			tctx, cancel := context.WithTimeout(cctx, l.cfg.processTimeout)
			err = proc.Process(tctx, r)
			cancel()
		} else {
			err = proc.Process(cctx, r)
		}
		ct.end()
		if err != nil {
			if !slot.state.CompareAndSwap(cr.st, cr.st&^1) {
				cr.stolen, cr.stolenErr, cr.done = true, err, true
				return nil
			}
			cr.st = 0
			l.mu.Lock()
			l.failStream(slot, i, err)
			l.mu.Unlock()
			continue
		}
		cr.okPending = true
	}
	cr.done = true
	if cr.st != 0 {
		if !slot.state.CompareAndSwap(cr.st, cr.st&^1) {
			cr.stolen = true
			return nil
		}
		if cr.okPending {
			cr.ok++
		}
	}
	return nil
}

// failStream takes the runner's record i, whose first call failed, out of
// the stream: it blocks the record's key (diverting the chunk's later
// records of that key) and applies the outcome. l.mu is held.
func (l *lane) failStream(slot *runSlot, i int, err error) {
	recs := slot.chunk.recs
	r := recs[i]
	recs[i] = nil
	w := l.newWork(r, slot.chunk.seq0+uint64(i))
	w.lastErr = err
	l.cfg.log.Debug("processor error", "topic", l.topic, "partition", l.partition,
		"offset", r.Offset, "attempt", 1, "err", err)
	if kq := l.block(w); kq != nil {
		for j := i + 1; j < len(recs); j++ {
			if o := recs[j]; o != nil && l.blockedQueue(o) == kq {
				l.queueBehind(kq, l.newWork(o, slot.chunk.seq0+uint64(j)))
				recs[j] = nil
			}
		}
	}
	l.running++
	l.resolve(w, l.deps.router.route(l.ctx, err, l.delivery(w, 1)), true)
}

// steal runs on the watchdog when the runner of slot has been in the same
// call (state st) for longer than stallAfter: the record in the call
// becomes a scheduled one (its key blocked, so the key's later records
// wait), the chunk's unstarted records go back to the stream, and the lane
// goes to slow mode so that its other workers run them.
func (l *lane) steal(slot *runSlot, st uint64) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.runner.Load() != slot || !slot.state.CompareAndSwap(st, stolenState) {
		return // the call ended meanwhile
	}
	seg := slot.chunk
	i := int(st>>1) & (1<<31 - 1)
	for j, r := range seg.recs[:i] {
		if r != nil {
			l.finishStream(seg.seq0 + uint64(j))
			seg.recs[j] = nil
		}
	}
	r := seg.recs[i]
	seg.recs[i] = nil
	w := l.newWork(r, seg.seq0+uint64(i))
	l.block(w)
	slot.stolen = w // the runner resolves it when its call returns
	if rest := seg.recs[i+1:]; len(rest) > 0 {
		// A copy: the runner may still read the next entry of its chunk
		// before it learns of the steal, so nothing else may write there.
		rest = append([]*kgo.Record(nil), rest...)
		l.pending.pushFront(segment{recs: rest, seq0: seg.seq0 + uint64(i) + 1})
	}
	slot.chunk = segment{}
	l.runner.Store(nil)
	l.streaming = false // the runner's count in l.running is now w's
	l.deps.metrics.stalls.Add(1)
	l.goSlow()
	l.afterFinish()
}

// beginCounted counts w's call in the AttemptStore before it is made, and
// arranges for its end to be counted after. A record whose earlier calls
// ran alone and never ended as many times as its delivery allows is sent
// on uncalled (ErrInterrupted), and beginCounted returns true with l.mu
// held. A record with any earlier call that never ended runs alone: the
// consumer's other calls wait (the gate). Otherwise the call shares the
// gate. Called without l.mu; returns false without it, the gate taken and
// its release deferred to the end of the call (see runScheduled).
func (l *lane) beginCounted(st AttemptStore, w *work) bool {
	limit := l.cfg.maxAttempts
	if l.tier > 0 {
		limit = l.cfg.tierAttempts
	}
	key := attemptKey(l.cfg.group, w.origin(), l.tier)
	alone, crashed, err := st.Begin(l.ctx, key, false)
	if err != nil {
		l.cfg.edge.warn("attempts:"+l.String(), "counting a call in the store failed; the call goes ahead uncounted",
			"topic", l.topic, "partition", l.partition, "err", err)
		l.deps.gate.RLock()
		w.gateRelease = l.deps.gate.RUnlock
		return false
	}
	end := func() {
		if err := st.End(context.WithoutCancel(l.ctx), key); err != nil {
			l.cfg.edge.warn("attempts:"+l.String(), "recording the end of a call in the store failed", "topic", l.topic, "partition", l.partition, "err", err)
		}
	}
	if alone >= limit {
		w.lastErr = fmt.Errorf("%w: %d calls, each alone in its process, did not end", ErrInterrupted, alone)
		w.attempt = max(w.attempt, alone)
		end()
		l.mu.Lock()
		act := l.deps.router.route(l.ctx, w.lastErr, l.delivery(w, limit))
		l.resolve(w, act, false)
		return true
	}
	if !crashed {
		l.deps.gate.RLock()
		w.gateRelease = func() { end(); l.deps.gate.RUnlock() }
		return false
	}
	// A suspect: an earlier call never ended. It runs alone, so that if
	// it kills the process again, it alone is counted.
	l.deps.gate.Lock()
	if _, _, err := st.Begin(l.ctx, key, true); err != nil {
		l.cfg.edge.warn("attempts:"+l.String(), "counting a call in the store failed; the call goes ahead uncounted",
			"topic", l.topic, "partition", l.partition, "err", err)
	}
	w.attempt = max(w.attempt, alone+1)
	w.gateRelease = func() { end(); l.deps.gate.Unlock() }
	return false
}

// attemptKey names a record's delivery in the AttemptStore.
func attemptKey(group string, o Origin, tier int) string {
	return fmt.Sprintf("%s/%s/%d/%d/%d", group, o.Topic, o.Partition, o.Offset, tier)
}

// alwaysSlow reports whether the lane never runs an in-order runner: a
// retry tier (each record is checked for its due time, and carries its
// own attempts and origin) and any lane counting attempts in a store
// before each call.
func (l *lane) alwaysSlow() bool { return l.tier > 0 || l.deps.attempts != nil }

// goSlow puts the lane in slow mode. l.mu is held.
func (l *lane) goSlow() {
	if l.cfg.ordering == OrderPartition || l.cfg.workers < 2 {
		return // one worker: nothing to overlap
	}
	l.slow = true
	l.slowCalls, l.slowSeconds = 0, 0
	l.cond.Broadcast()
}

// checkStall is the watchdog's look at the lane's runner: a runner seen in
// the same call on two consecutive looks is stuck, and is stolen from.
// Only the watchdog calls it.
func (l *lane) checkStall() {
	slot := l.runner.Load()
	if slot == nil || l.cfg.ordering == OrderPartition || l.cfg.workers < 2 {
		l.wdSlot = nil
		return
	}
	st := slot.state.Load()
	if st&1 == 1 && st != stolenState && slot == l.wdSlot && st == l.wdState {
		l.wdSlot = nil
		l.steal(slot, st)
		return
	}
	l.wdSlot, l.wdState = slot, st
}

// resolve applies act to w, a scheduled record counted in l.running;
// called says whether the processor was called. It is called with l.mu
// held and returns with it held (it may release it for a call that must
// not run under the lock).
func (l *lane) resolve(w *work, act action, called bool) {
	switch {
	case called && act.kind == actDrop:
		l.cnt.canceled++ // canceled by a loss, a stop or a drain deadline: not the record's failure
	case called && w.lastErr != nil:
		l.cnt.failed++
	}
	switch act.kind {
	case actDone:
		if !l.closed {
			l.cnt.ok++
		}
		l.running--
		l.unhold(w)
		l.finishWork(w)
		l.afterFinish()
	case actRetry, actHold:
		l.running--
		l.unhold(w)
		if act.kind == actRetry {
			l.deps.metrics.retried.Add(1)
			w.attempt++
		} else {
			l.deps.metrics.held.Add(1)
		}
		l.detach(w)
		l.schedule(w, act.delay, l.requeue)
		l.signalDrained()
	case actHoldPartition:
		l.running--
		l.deps.metrics.held.Add(1)
		if errors.Is(w.lastErr, ErrFenced) {
			l.refenceLocked()
		}
		if !w.held {
			w.held = true
			l.holding++
			l.interrupt.Or(interruptHold)
			if !l.paused {
				l.pauseLocked(pauseHold)
			}
		}
		l.detach(w)
		l.schedule(w, act.delay, l.reprobe)
		l.signalDrained()
	case actDLQ, actTier:
		// The record stays running, and its offset unfinished, until the
		// produce is acked; but it has left its key's order: the key's
		// next record may start now (waiting for the ack would only hold
		// the key, and the partition's offset map, for a produce's round
		// trip per record of a failing key).
		l.unhold(w)
		l.detach(w)
		if act.kind == actTier && l.tier == 0 {
			l.markFailing(w.rec.Key)
		}
		l.advanceKey(w)
		w.kq = nil
		w.sentAt = l.cfg.clock.Now()
		l.mu.Unlock()
		l.sendOut(w, act)
		l.mu.Lock()
	case actDrop:
		l.running--
		l.unhold(w)
		l.signalDrained()
	}
}

// maxFailing bounds a lane's failing keys.
const maxFailing = 10000

// delivery describes w's failed call number attempt, for the router. l.mu
// is held.
func (l *lane) delivery(w *work, attempt int) delivery {
	return delivery{tier: l.tier, attempt: attempt, keyFailing: l.keyFailing(w.rec.Key)}
}

// keyFailing reports whether key's records fail for now: one of its
// records went to retry tier 1 after its in-place attempts less than
// Retry.Tiers[0] ago. Then its next failures go to tier 1 after one call
// rather than each waiting out Retry.MaxAttempts backoffs in place: a
// poisoned key drains at the speed of its calls, and the partition's other
// keys do not wait for it behind a full offset map. l.mu is held.
func (l *lane) keyFailing(key []byte) bool {
	if len(l.failing) == 0 {
		return false
	}
	until, ok := l.failing[string(key)]
	if !ok {
		return false
	}
	if l.cfg.clock.Now().Before(until) {
		return true
	}
	delete(l.failing, string(key))
	return false
}

// markFailing marks key failing for Retry.Tiers[0]. l.mu is held.
func (l *lane) markFailing(key []byte) {
	if l.cfg.failingFor <= 0 {
		return
	}
	now := l.cfg.clock.Now()
	if l.failing == nil {
		l.failing = make(map[string]time.Time)
	}
	if len(l.failing) >= maxFailing {
		for k, until := range l.failing {
			if !now.Before(until) {
				delete(l.failing, k)
			}
		}
		if len(l.failing) >= maxFailing {
			return
		}
	}
	l.failing[string(key)] = now.Add(l.cfg.failingFor)
}

// schedule calls fn(w) after d on the consumer's clock, unless the lane
// closes first.
func (l *lane) schedule(w *work, d time.Duration, fn func(*work)) {
	if l.closing {
		return
	}
	l.timers[w] = l.cfg.clock.AfterFunc(d, func() {
		l.mu.Lock()
		defer l.mu.Unlock()
		if _, ok := l.timers[w]; !ok {
			return // the lane closed and abandoned w
		}
		delete(l.timers, w)
		if l.closing {
			return
		}
		fn(w)
	})
}

// requeue puts a record whose retry is due back at the front of the run
// queue. Its key was blocked all along.
func (l *lane) requeue(w *work) {
	l.runq.pushFront(w)
	l.cond.Signal()
}

// reprobe makes a record held by HoldPartition runnable again: the probe.
func (l *lane) reprobe(w *work) {
	l.probes.pushBack(w)
	l.cond.Signal()
}

// unhold ends w's partition hold, if it had one: once no record holds the
// partition, the others run again and fetching resumes. l.mu is held.
func (l *lane) unhold(w *work) {
	if !w.held {
		return
	}
	w.held = false
	l.holding--
	if l.holding == 0 {
		l.interrupt.And(^uint32(interruptHold))
		if l.paused && l.pauseWhy == pauseHold && l.mayResume() {
			l.resumeLocked()
		}
		l.cond.Broadcast()
	}
}

// sendOut has the router produce w to a retry tier or its dead-letter
// topic (act), and finishes w once the produce is acknowledged. A copy too
// large for the producer is sent again at once with its value cut (headers
// say so, and where the original is). Any other failure is tried again
// every Retry.MaxBackoff, without end: a record is never skipped. Meanwhile
// the partition is marked blocked (ordo_out_blocked, Consumer.Ready) and
// the failure logged at a bounded rate. Called without l.mu.
func (l *lane) sendOut(w *work, act action) {
	l.deps.router.send(l.ctx, w, act, func(err error) {
		l.mu.Lock()
		defer l.mu.Unlock()
		if err == nil {
			if act.kind == actTier {
				l.deps.sourceMetrics.routed(act.tier)
			} else {
				l.deps.metrics.dlq.Add(1)
				l.deps.sourceMetrics.routed(0)
			}
			if l.blockedBy == w {
				l.blockedBy, l.blockedWhy = nil, ""
			}
			l.running--
			l.finishWork(w)
			l.afterFinish()
			// This runs on the producer's goroutine, not a worker's: if
			// the finish let records of the stream start (the watermark
			// moved past w and lifted the offset map's gate), the
			// workers may all be waiting, and no one else will wake them.
			l.wakeForStream()
			return
		}
		if l.closed {
			l.deps.metrics.stale.Add(1)
			return
		}
		why := produceFailure(err)
		l.deps.metrics.outErrors(why)
		if why == outTooLarge && w.cut < 0 {
			// Cut the value to what the producer takes, less room for
			// the key and headers, and send again at once.
			w.cut = max(0, l.cfg.maxOutBytes-len(w.rec.Key)-outHeaderRoom)
			l.mu.Unlock()
			l.sendOut(w, act)
			l.mu.Lock()
			return
		}
		if l.blockedBy == nil {
			l.blockedBy, l.blockedSince = w, l.cfg.clock.Now()
		}
		l.blockedWhy = why
		target := "the dead-letter topic"
		if act.kind == actTier {
			target = fmt.Sprintf("retry tier %d", act.tier)
		}
		l.cfg.edge.warn("out:"+l.String(), "producing a failed record to "+target+" failed; the partition waits for it and it is tried again",
			"topic", l.topic, "partition", l.partition, "offset", w.rec.Offset, "reason", why, "err", err,
			"retry_in", l.cfg.produceRetry)
		l.running--
		l.signalDrained()
		l.schedule(w, max(0, l.cfg.produceRetry-l.cfg.clock.Now().Sub(w.sentAt)), func(w *work) {
			// Runs on the timer's goroutine with l.mu held.
			l.running++
			w.sentAt = l.cfg.clock.Now()
			l.mu.Unlock()
			l.sendOut(w, act)
			l.mu.Lock()
		})
	})
}

// Why a produce to a tier or dead-letter topic failed: the reason label of
// ordo_out_produce_errors_total.
const (
	outTooLarge     = "too_large"     // over the producer's or broker's limit
	outUnauthorized = "authorization" // the topic does not let us write
	outUnknownTopic = "unknown_topic" // not created: run ordo topics apply
	outInvalid      = "invalid"       // the broker refused the record
	outTimeout      = "timeout"       // no answer within Retry.MaxBackoff
	outOther        = "other"
)

// outHeaderRoom is what a cut dead letter leaves for its headers.
const outHeaderRoom = 16 << 10

func produceFailure(err error) string {
	switch {
	case errors.Is(err, kerr.MessageTooLarge), errors.Is(err, kerr.RecordListTooLarge):
		return outTooLarge
	case errors.Is(err, kerr.TopicAuthorizationFailed), errors.Is(err, kerr.ClusterAuthorizationFailed):
		return outUnauthorized
	case errors.Is(err, kerr.UnknownTopicOrPartition):
		return outUnknownTopic
	case errors.Is(err, kerr.InvalidRecord), errors.Is(err, kerr.CorruptMessage), errors.Is(err, kerr.InvalidTopicException):
		return outInvalid
	case errors.Is(err, context.DeadlineExceeded):
		return outTimeout
	}
	return outOther
}

// finishChunk marks the records of a runner's chunk finished (nil ones
// were taken out of the stream) and lets go of them. A run of them at the
// tracker's head, the usual case, is popped at once. l.mu is held.
func (l *lane) finishChunk(recs []*kgo.Record, seq0 uint64) {
	for i := 0; i < len(recs); {
		if recs[i] == nil {
			i++
			continue
		}
		j := i + 1
		for j < len(recs) && recs[j] != nil {
			j++
		}
		if seq := seq0 + uint64(i); !l.closed && seq == l.tr.seq {
			l.finBytes += l.tr.finishHead(j - i)
			l.finRecs += int64(j - i)
		} else {
			for k := i; k < j; k++ {
				l.finishStream(seq0 + uint64(k))
			}
		}
		clear(recs[i:j]) // let the fetch buffer go once its records are done
		i = j
	}
}

// finishStream marks a stream record finished. l.mu is held.
func (l *lane) finishStream(seq uint64) {
	if l.closed {
		// The partition was revoked or lost meanwhile: its offset is no
		// longer ours to mark.
		l.deps.metrics.stale.Add(1)
		return
	}
	if size, ok := l.tr.finish(seq); ok {
		l.finRecs++
		l.finBytes += size
	}
}

// finishWork marks a scheduled record finished and lets its key's next
// record run. l.mu is held.
func (l *lane) finishWork(w *work) {
	if l.closed {
		l.deps.metrics.stale.Add(1)
		return
	}
	if _, ok := l.tr.finish(w.seq); ok {
		l.finRecs++
		l.finBytes += w.size
	}
	l.advanceKey(w)
}

// afterFinish flushes the budget and resumes the partition if finishes
// brought it under its bounds; it resumes lanes paused for the global
// budget if that came under half (taking their locks, so l.mu is released
// for it). l.mu is held.
func (l *lane) afterFinish() {
	if l.finRecs >= 64 || l.paused || l.deps.budget.shouldResume() {
		l.flushInflight()
	}
	if l.paused && !l.closed {
		if l.mayResume() {
			l.resumeLocked()
		} else if l.deps.budget.overHalf() {
			l.notePausedGlobal()
		}
	}
	l.signalDrained()
	if l.deps.budget.shouldResume() {
		l.mu.Unlock()
		l.deps.budget.resumePaused()
		l.mu.Lock()
	}
}

// flushInflight takes the finished records off the consumer-wide budget.
// l.mu is held.
func (l *lane) flushInflight() {
	if l.finRecs != 0 {
		l.deps.budget.sub(l.finRecs, l.finBytes)
		l.finRecs, l.finBytes = 0, 0
	}
}

func (l *lane) signalDrained() {
	if l.closing && l.running == 0 && l.drained != nil && l.runq.n == 0 && l.probes.n == 0 && !l.streamReady() {
		select {
		case <-l.drained:
		default:
			close(l.drained)
		}
	}
}

// Pause reasons, the reason label of ordo_partition_pauses_total.
const (
	pauseRecords   = "records"    // MaxInFlightPerPartition
	pauseBytes     = "bytes"      // MaxInFlightBytesPerPartition
	pauseSpan      = "span"       // MaxTrackedSpan
	pauseOffsetMap = "offset_map" // the done set would outgrow an offset map
	pauseGlobal    = "global"     // MaxInFlight or MaxInFlightBytes
	pauseHold      = "hold"       // a record returned HoldPartition
	pauseNotDue    = "not_due"    // a retry tier holds tierMaxWaiting records, its next not due yet
)

// tierMaxWaiting bounds the records a retry tier's partition holds (when
// MaxInFlightPerPartition is not lower): at it, the partition pauses
// (not_due while its next record is not due) and resumes once half are
// gone. Records waiting for their due time hold no worker, but they hold
// memory and the consumer-wide budget: a tier behind a long delay holds
// this many, not its whole backlog. A tier fed a record at a time (1% of
// keys failing) holds a few and never pauses.
const tierMaxWaiting = 1000

// headDueLocked reports whether the stream's next record is due; a lane
// without one counts as due. l.mu is held.
func (l *lane) headDueLocked() bool {
	r, _, ok := l.pending.first()
	return !ok || l.dueLocked(r)
}

// pauseReason says why the lane must pause now; "" if it need not.
func (l *lane) pauseReason() string {
	switch {
	case l.tr.span() >= l.cfg.maxSpan:
		return pauseSpan
	case l.mapGated():
		return pauseOffsetMap
	case l.tr.pending >= l.maxRecs:
		if l.tier > 0 && !l.headDueLocked() {
			return pauseNotDue
		}
		return pauseRecords
	case l.tr.bytes >= l.cfg.maxBytes:
		return pauseBytes
	case l.deps.budget.full():
		return pauseGlobal
	}
	return ""
}

// stuck reports whether the lane holds records it cannot start until its
// oldest unfinished record finishes, and that record is out of the stream
// (held, waiting for a retry, in a long call): the lane is not merely
// behind.
func (l *lane) stuck() bool {
	if l.tr.span() < l.cfg.maxSpan && !l.mapGated() {
		return false
	}
	head, ok := l.tr.headOffset()
	if !ok {
		return false
	}
	if r, _, ok := l.pending.first(); ok && r.Offset <= head {
		return false // the head waits in the stream: the lane is behind
	}
	return !l.streaming || head < l.runFirst
}

// mapGated reports whether received records are past the offset map's
// window and cannot start until the done set shrinks.
func (l *lane) mapGated() bool {
	return l.tr.n > 0 && l.tr.next-1 >= l.startLimitMap()
}

func (l *lane) startLimitMap() int64 {
	if head, ok := l.tr.headOffset(); ok && l.tr.mapRuns()+1 > l.cfg.mapCap.runs {
		return head + l.cfg.mapCap.window
	}
	return math.MaxInt64
}

// mayResume reports whether a paused lane may fetch again: its own and the
// global usage fell to half their bounds (hysteresis keeps a busy
// partition from flapping), or, for the global bound, the lane ran dry
// and usage is under the bound (see budget).
func (l *lane) mayResume() bool {
	return l.ownMayResume() && (!l.deps.budget.overHalf() || l.dry() && !l.deps.budget.full())
}

// ownMayResume reports whether the lane's own bounds let it resume: it
// holds no partition and is back under half of each of them.
func (l *lane) ownMayResume() bool {
	return l.holding == 0 &&
		l.tr.pending <= l.maxRecs/2 &&
		l.tr.bytes <= l.cfg.maxBytes/2 &&
		l.tr.span() <= l.cfg.maxSpan/2 &&
		(l.tr.n == 0 || l.tr.next-1 < l.startLimitMap()-l.cfg.mapCap.window/2)
}

// dry reports whether the lane is running low: fewer records wait in its
// stream than a quarter of its own bound (MaxInFlightPerPartition), or
// than it has workers. A fetch takes a round trip, up to FetchMaxWait if
// one is in flight for other partitions: a lane that waited until it was
// empty would idle that long.
func (l *lane) dry() bool { return l.pending.n < max(l.cfg.workers, l.maxRecs/4) }

// notePausedGlobal tells the budget that l stays paused for it: starved if
// l is dry and its own bounds would let it resume (it waits only for usage
// under the bound), else paused (it waits for usage under half). A lane
// held by its own bounds is never noted starved: each finish under the
// bound would otherwise resume every lane's check again, for nothing.
// l.mu is held.
func (l *lane) notePausedGlobal() {
	if l.dry() && l.ownMayResume() {
		l.deps.budget.noteStarved()
		return
	}
	l.deps.budget.notePaused()
}

func (l *lane) pauseLocked(why string) {
	l.paused = true
	l.pauseWhy = why
	if l.stuck() {
		// Stuck behind its oldest record: what waits in the stream may
		// wait long, so it should not keep whole fetches alive.
		l.pending.compact()
	}
	l.deps.fetch.PauseFetchPartitions(map[string][]int32{l.topic: {l.partition}})
	if l.deps.budget.full() {
		l.notePausedGlobal()
	}
	l.deps.metrics.pause(why)
}

func (l *lane) resumeLocked() {
	l.paused = false
	l.pauseWhy = ""
	l.deps.fetch.ResumeFetchPartitions(map[string][]int32{l.topic: {l.partition}})
}

// beginClose stops the lane from starting records, but for, on a graceful
// close (revoke or Stop), records below the highest finished offset: they
// fill the gaps below it, so that the committed watermark passes them. The
// records waiting for a retry are abandoned (they stay unfinished: the next
// owner gets them). It returns a channel closed once no record is running
// and none below the limit can start.
func (l *lane) beginClose(graceful bool) <-chan struct{} {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.drained == nil {
		l.drained = make(chan struct{})
	}
	if !l.closing {
		limit := int64(-1)
		if graceful {
			limit = l.tr.maxDone
		}
		l.closeLimit.Store(limit)
		l.closing = true
		l.interrupt.Or(interruptClosing)
		close(l.closeCh)
	}
	for w, t := range l.timers {
		t.Stop()
		delete(l.timers, w)
	}
	if l.dueTimer != nil {
		l.dueTimer.Stop()
		l.dueTimer = nil
	}
	l.cond.Broadcast()
	l.signalDrained()
	return l.drained
}

// stopStarting makes a closing lane start nothing more.
func (l *lane) stopStarting() {
	l.mu.Lock()
	l.closeLimit.Store(-1)
	l.cond.Broadcast()
	l.signalDrained()
	l.mu.Unlock()
}

// mark is what a commit carries for one lane.
type mark struct {
	offset  int64
	epoch   int32
	meta    string // the offset map of records finished above offset
	dropped int64  // offsets the map could not hold
}

// freeze makes the tracker final: from now on completions are stale. It
// returns the watermark to commit and resumes fetching if the lane had
// paused it, so that a later assignment of the partition starts unpaused.
func (l *lane) freeze(mapMax int) (mark, bool) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if !l.closed {
		l.closed = true
		l.flushInflight()
		if l.paused {
			l.resumeLocked()
		}
		// Give back the global budget the abandoned records held.
		l.deps.budget.sub(int64(l.tr.pending), l.tr.bytes)
		l.cond.Broadcast()
	}
	if l.lost {
		return mark{}, false
	}
	return l.markLocked(true, mapMax)
}

func (l *lane) isLost() bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.lost
}

// setLost makes sure nothing is committed for the lane: the partition may
// already belong to another member.
func (l *lane) setLost() {
	l.mu.Lock()
	l.lost = true
	l.mu.Unlock()
}

// markLost is setLost, then cancels the lane's work.
func (l *lane) markLost() {
	l.setLost()
	l.cancel()
}

// watermark returns what a periodic commit would commit for the lane; ok is
// false if there is nothing new to commit.
func (l *lane) watermark(mapMax int) (mark, bool) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.closed {
		return mark{}, false
	}
	return l.markLocked(false, mapMax)
}

// markLocked returns the lane's watermark and offset map. A commit is due
// when the watermark moved, or, on a final commit, when the offset map
// would tell the next owner something.
func (l *lane) markLocked(final bool, mapMax int) (mark, bool) {
	off, epoch, ok := l.tr.watermark()
	if ok && (off != l.lastWM || l.movedAt.IsZero()) {
		l.lastWM, l.movedAt = off, l.cfg.clock.Now()
	}
	if !ok {
		if len(l.tr.inherited) == 0 {
			return mark{}, false
		}
		// Nothing received yet, but an inherited done set to carry on.
		off, epoch = l.tr.inherited[0].start-1, -1
		if l.commit >= 0 {
			off = l.commit
		}
	}
	var runs []offRun
	l.tr.doneRuns(func(r offRun) bool {
		runs = append(runs, r)
		return true
	})
	// Nothing unfinished, and the done set starts at the watermark (an
	// inherited run of offsets not received yet): those offsets are done,
	// so the commit may pass them.
	for len(runs) > 0 && runs[0].start == off {
		off = runs[0].end()
		epoch = -1
		runs = runs[1:]
	}
	m := mark{offset: off, epoch: epoch}
	if off > l.commit || final {
		m.meta, m.dropped = encodeOffsetMap(off, runs, mapMax)
		l.mapDropped = m.dropped
	}
	return m, off > l.commit || (final && m.meta != "")
}

func (l *lane) committed(offset int64) {
	l.mu.Lock()
	if offset > l.commit {
		l.commit = offset
	}
	l.mu.Unlock()
}

// LaneSnapshot is a read-only view of one partition lane.
type LaneSnapshot struct {
	Topic     string
	Partition int32
	// Epoch identifies this assignment of the partition to the consumer.
	Epoch uint64
	// InFlight and InFlightBytes count records received and not finished.
	InFlight      int
	InFlightBytes int64
	// Running counts records in a processor call or a dead-letter produce
	// outside the stream, plus 1 while a stream runner holds a chunk.
	Running int
	// WaitingRetry counts records waiting for their retry delay.
	WaitingRetry int
	// Keys counts keys blocked behind a record outside the stream.
	Keys   int
	Paused bool
	// PauseReason says why the partition is paused: records, bytes, span,
	// offset_map or global (a budget), hold (a record returned
	// HoldPartition), not_due (a retry tier holds as many records as it
	// may, the next not due yet); "" when it is not.
	PauseReason string
	// Slow is true while the lane runs records one at a time under its
	// scheduler (its calls are slow, or one stalled), false while its
	// stream runner runs them in order.
	Slow bool
	// Span is the number of offsets from the lowest unfinished offset to
	// the newest received one (0 when nothing is unfinished); at
	// Config.MaxTrackedSpan the partition pauses.
	Span int64
	// Watermark is the lowest unfinished offset (what the next commit
	// commits); -1 before any record was received.
	Watermark int64
	// Committed is the last offset this lane committed; -1 before any.
	Committed int64
	// HighWatermark is the partition's end offset in the last fetch.
	HighWatermark int64
	// Oldest is the timestamp of the oldest unfinished record; zero when
	// nothing is unfinished.
	Oldest time.Time
	// MovedAt is when the watermark was last seen to move (it is looked at
	// on each commit); zero before any record.
	MovedAt time.Time
	// Tier is 0 for a source topic's partition, n for retry tier n.
	Tier int
	// Waiting counts records received and not started; on a retry tier,
	// the records waiting to be due.
	Waiting int
	// Blocked is the reason a failed record of the partition keeps failing
	// to be produced to its retry tier or dead-letter topic (too_large,
	// authorization, unknown_topic, invalid, timeout, other), since
	// BlockedSince; "" when none does.
	Blocked      string
	BlockedSince time.Time
	// DueAt is, on a retry tier, when its next record is due, while a
	// timer waits for it to wake the partition's workers; zero when none
	// does.
	DueAt time.Time
}

func (l *lane) snapshot() LaneSnapshot {
	l.mu.Lock()
	defer l.mu.Unlock()
	s := LaneSnapshot{
		Topic: l.topic, Partition: l.partition, Epoch: l.epoch,
		InFlight: l.tr.pending, InFlightBytes: l.tr.bytes,
		Running: l.running, WaitingRetry: len(l.timers), Keys: len(l.keys),
		Paused: l.paused, PauseReason: l.pauseWhy, Slow: l.slow, Span: l.tr.span(),
		Watermark: -1, Committed: l.commit, HighWatermark: l.hw, MovedAt: l.movedAt,
		Tier: l.tier, Waiting: l.pending.n, Blocked: l.blockedWhy, BlockedSince: l.blockedSince,
	}
	if l.dueTimer != nil {
		s.DueAt = l.notDueUntil
	}
	if l.single != nil && l.single.active {
		s.Keys = 1
	}
	if off, _, ok := l.tr.watermark(); ok {
		s.Watermark = off
	}
	if ts, ok := l.tr.oldest(); ok {
		s.Oldest = ts
	}
	return s
}

// workDeque is a FIFO of runnable records that also takes records due for
// a retry at its front.
type workDeque struct {
	buf  []*work
	head int
	n    int
}

func (d *workDeque) grow() {
	size := max(16, len(d.buf)*2)
	buf := make([]*work, size)
	for i := 0; i < d.n; i++ {
		buf[i] = d.buf[(d.head+i)%len(d.buf)]
	}
	d.buf, d.head = buf, 0
}

func (d *workDeque) pushBack(w *work) {
	if d.n == len(d.buf) {
		d.grow()
	}
	d.buf[(d.head+d.n)%len(d.buf)] = w
	d.n++
}

func (d *workDeque) pushFront(w *work) {
	if d.n == len(d.buf) {
		d.grow()
	}
	d.head = (d.head - 1 + len(d.buf)) % len(d.buf)
	d.buf[d.head] = w
	d.n++
}

func (d *workDeque) popFront() *work {
	if d.n == 0 {
		return nil
	}
	w := d.buf[d.head]
	d.buf[d.head] = nil
	d.head = (d.head + 1) % len(d.buf)
	d.n--
	return w
}
