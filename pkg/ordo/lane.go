package ordo

import (
	"context"
	"fmt"
	"sync"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
)

// A lane owns one assigned partition: its offset tracker, its key
// scheduler, its workers and its in-flight budget. A lane lives for one
// assignment of the partition to this consumer; a reassignment makes a new
// lane with a new epoch, and anything that completes for an old lane is
// dropped (never marked) and counted.
//
// Locking: l.mu guards everything below it. Calls into the kgo client for
// pausing and resuming are made under l.mu so that a pause and a resume of
// the same partition can never be reordered.
type lane struct {
	c         *Consumer
	cl        *kgo.Client
	topic     string
	partition int32
	epoch     uint64
	m         *topicMetrics

	ctx    context.Context // canceled when the partition is lost or work is canceled
	cancel context.CancelFunc

	wg sync.WaitGroup // the lane's workers

	mu      sync.Mutex
	cond    *sync.Cond // signaled when work becomes runnable or the lane closes
	tr      *tracker
	keys    map[string]*keyQueue
	single  *keyQueue // the one queue of OrderPartition
	free    []*keyQueue
	runq    workDeque
	running int             // records taken by a worker or producing to the DLQ
	waiting int             // workers waiting on cond
	timers  map[*work]Timer // records waiting for a retry
	closing bool            // no new record starts
	closed  bool            // the tracker is frozen: completions are stale
	lost    bool            // the partition was lost: commit nothing for it
	cnt     laneCounts      // per-record counts, summed into metrics at scrape time
	// Finished records and bytes not yet taken off the consumer-wide
	// in-flight counters; flushed in batches to keep a shared atomic off
	// the per-record path.
	finRecs, finBytes int64
	drained           chan struct{}      // closed when closing and running == 0
	closeCh           chan struct{}      // closed by beginClose: wakes workers waiting for a token
	paused            bool               // fetching of the partition is paused
	hw                int64              // high watermark seen in the last fetch
	commit            int64              // last committed offset; -1 before any
	done              map[int64]struct{} // offsets a previous owner finished (its offset map)
}

// keyQueue is the FIFO of one key's records that wait behind the key's
// active record. active is true while a record of the key is runnable,
// running, waiting for a retry or being dead-lettered.
type keyQueue struct {
	key        string
	head, tail *work
	active     bool
}

// work is one record in a lane.
type work struct {
	lane    *lane
	rec     *kgo.Record
	seq     uint64
	kq      *keyQueue // nil for an independent record
	attempt int       // number of the next counted processor call, from 1
	next    *work     // next record of the same key
	lastErr error
}

// prev is the partition's previous lane on this member, if it is still
// retiring: its calls that overran a drain (their processor ignored the
// cancel) may still run, so the new lane's workers start only once prev's
// have returned. A key never runs twice at once in one member.
func newLane(c *Consumer, cl *kgo.Client, topic string, partition int32, epoch uint64, prev *lane) *lane {
	ctx, cancel := context.WithCancel(c.workCtx)
	l := &lane{
		c:         c,
		cl:        cl,
		topic:     topic,
		partition: partition,
		epoch:     epoch,
		m:         c.metrics.topic(topic),
		ctx:       ctx,
		cancel:    cancel,
		tr:        newTracker(),
		keys:      make(map[string]*keyQueue),
		timers:    make(map[*work]Timer),
		closeCh:   make(chan struct{}),
		hw:        -1,
		commit:    -1,
	}
	l.cond = sync.NewCond(&l.mu)
	c.metrics.register(l)
	if c.cfg.Ordering == OrderPartition {
		l.single = &keyQueue{}
	}
	n := c.cfg.WorkersPerPartition
	if c.cfg.Ordering == OrderPartition {
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

// add hands records fetched for the lane's partition to the scheduler. It
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
	woke := 0
	slab := make([]work, len(recs)) // one allocation for the batch
	for i, r := range recs {
		size := int32(len(r.Key) + len(r.Value))
		seq, ok := l.tr.add(r.Offset, r.LeaderEpoch, size, r.Timestamp)
		if !ok {
			// At or below an offset already received: the client never
			// redelivers within an assignment, so this is a log rewind
			// (truncation after an unclean leader election). Say so loudly.
			l.m.rewound.Add(1)
			l.c.cfg.Logger.Error("record at or below an offset already received; ignored",
				"topic", l.topic, "partition", l.partition, "offset", r.Offset)
			continue
		}
		if _, was := l.done[r.Offset]; was {
			// Finished by the partition's previous owner above its
			// committed offset: mark it without running it again. Key
			// order makes this safe: a record finishes only after the
			// earlier records of its key.
			delete(l.done, r.Offset)
			l.tr.finish(seq)
			l.cnt.alreadyDone++
			continue
		}
		nrecs++
		nbytes += int64(size)
		w := &slab[i]
		*w = work{lane: l, rec: r, seq: seq, attempt: 1}
		if l.enqueue(w) {
			woke++
		}
	}
	// Wake as many waiting workers as there is new work, no more: a
	// broadcast would wake every worker of the lane to fight for the lock.
	for range min(woke, l.waiting) {
		l.cond.Signal()
	}
	l.c.inflightRecs.Add(nrecs)
	l.c.inflightBytes.Add(nbytes)
	if !l.paused && l.overBudget() {
		l.pauseLocked()
	}
	l.mu.Unlock()
}

// enqueue places w behind its key, or on the run queue if its key is idle.
// It reports whether w became runnable.
func (l *lane) enqueue(w *work) bool {
	var kq *keyQueue
	switch l.c.cfg.Ordering {
	case OrderPartition:
		kq = l.single
	case OrderKey:
		if w.rec.Key != nil {
			kq = l.keys[string(w.rec.Key)]
			if kq == nil {
				kq = l.newKeyQueue(string(w.rec.Key))
				l.keys[kq.key] = kq
			}
		}
	}
	w.kq = kq
	if kq == nil {
		l.runq.pushBack(w)
		return true
	}
	if kq.active {
		if kq.tail == nil {
			kq.head = w
		} else {
			kq.tail.next = w
		}
		kq.tail = w
		return false
	}
	kq.active = true
	l.runq.pushBack(w)
	return true
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
		// No signal: a finishing worker takes from the run queue before it
		// waits; the dead-letter path, which is no worker, signals itself.
		l.runq.pushBack(next)
		return
	}
	kq.active = false
	if kq != l.single {
		delete(l.keys, kq.key)
		kq.key = ""
		if len(l.free) < 1024 {
			l.free = append(l.free, kq)
		}
	}
}

// worker takes runnable records until the lane closes. It holds a token of
// the consumer-wide worker bound while it has work, and gives it back
// before it waits or after a streak, so that other lanes get their turn.
func (l *lane) worker() {
	defer l.wg.Done()
	sem := l.c.sem
	held, streak := false, 0
	ct := callTimer{now: time.Now}
	l.mu.Lock()
	for !l.closing {
		w := l.runq.popFront()
		if w == nil {
			ct.blocked()
			ct.apply(&l.cnt)
			l.flushInflight()
			if l.c.globalPaused.Load() && !l.c.globalOver(true) {
				// This flush brought the consumer under half its bound.
				l.mu.Unlock()
				l.c.resumeGlobal()
				l.mu.Lock()
				continue
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
			continue
		}
		l.running++
		l.mu.Unlock()

		if held && streak >= 64 {
			ct.blocked()
			<-sem
			held = false
		}
		start := true
		if !held {
			ct.blocked()
			select {
			case sem <- struct{}{}:
				held, streak = true, 0
				// The lane may have closed while we waited for the token:
				// a record must not start after its lane stopped taking work.
				l.mu.Lock()
				start = !l.closing && l.ctx.Err() == nil
				l.mu.Unlock()
			case <-l.ctx.Done():
				start = false
			case <-l.closeCh:
				start = false
			}
		}
		streak++
		var act action
		called := held && start
		if called {
			ct.begin()
			act = l.run(w)
			ct.end()
		} else {
			act = action{kind: actDrop}
		}

		l.mu.Lock()
		ct.apply(&l.cnt)
		l.resolve(w, act, called)
	}
	ct.blocked()
	ct.apply(&l.cnt)
	l.mu.Unlock()
	if held {
		<-sem
	}
}

// run makes one processor call for w and decides what happens next.
func (l *lane) run(w *work) action {
	c := l.c
	// w itself is the call's context: no allocation per call.
	var ctx context.Context = w
	if c.cfg.ProcessTimeout > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, c.cfg.ProcessTimeout)
		defer cancel()
	}
	err := c.proc.Process(ctx, w.rec)
	w.lastErr = err
	if err != nil {
		c.cfg.Logger.Debug("processor error", "topic", l.topic, "partition", l.partition,
			"offset", w.rec.Offset, "attempt", w.attempt, "err", err)
	}
	return decide(l.ctx, err, w.attempt, c.cfg.Retry, c.jitter)
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

// resolve applies act to w; called says whether the processor was called
// (a record dropped before its call was not). It is called with l.mu held
// and returns with it held (it may release it for a call that must not run
// under the lock).
func (l *lane) resolve(w *work, act action, called bool) {
	if called && w.lastErr != nil {
		l.cnt.failed++
	}
	switch act.kind {
	case actDone:
		if !l.closed {
			l.cnt.ok++
		}
		if l.finishLocked(w) {
			l.mu.Unlock()
			l.c.resumeGlobal()
			l.mu.Lock()
		}
	case actRetry, actHold:
		l.running--
		if act.kind == actRetry {
			l.m.retried.Add(1)
			w.attempt++
		} else {
			l.m.held.Add(1)
		}
		l.schedule(w, act.delay, l.requeue)
		l.signalDrained()
	case actDLQ:
		// The record stays running until the dead-letter produce is acked.
		l.mu.Unlock()
		l.deadLetter(w, act.class)
		l.mu.Lock()
	case actDrop:
		l.running--
		l.signalDrained()
	}
}

// schedule calls fn(w) after d on the consumer's clock, unless the lane
// closes first.
func (l *lane) schedule(w *work, d time.Duration, fn func(*work)) {
	if l.closing {
		return
	}
	l.timers[w] = l.c.cfg.Clock.AfterFunc(d, func() {
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

// deadLetter produces w to the dead-letter topic and finishes it once the
// produce is acknowledged. A failed produce is retried with backoff, without
// end: a record is never skipped. Called without l.mu.
func (l *lane) deadLetter(w *work, class ErrorClass) {
	c := l.c
	rec := c.dlqRecord(w, class)
	l.cl.Produce(l.ctx, rec, func(_ *kgo.Record, err error) {
		l.mu.Lock()
		if err == nil {
			l.m.dlq.Add(1)
			resume := l.finishLocked(w)
			l.cond.Signal() // the key's next record may be runnable
			l.mu.Unlock()
			if resume {
				c.resumeGlobal()
			}
			return
		}
		defer l.mu.Unlock()
		if l.closed {
			l.m.stale.Add(1)
			return
		}
		l.m.dlqErrors.Inc()
		c.cfg.Logger.Error("dead-letter produce failed; retrying", "topic", l.topic, "partition", l.partition,
			"offset", w.rec.Offset, "dlq", rec.Topic, "err", err)
		l.running--
		l.signalDrained()
		l.schedule(w, c.cfg.Retry.MaxBackoff, func(w *work) {
			// Runs on the timer's goroutine with l.mu held.
			l.running++
			l.mu.Unlock()
			l.deadLetter(w, class)
			l.mu.Lock()
		})
	})
}

// finishLocked marks w finished: the watermark may advance past it, its
// key's next record becomes runnable, and the partition may resume. It
// reports whether lanes paused for the consumer-wide budget may resume now;
// the caller then calls Consumer.resumeGlobal without holding l.mu.
func (l *lane) finishLocked(w *work) (resumeGlobal bool) {
	if l.closed {
		// The partition was revoked or lost while w ran: its offset is no
		// longer ours to mark.
		l.m.stale.Add(1)
		return false
	}
	l.running--
	size := int64(len(w.rec.Key) + len(w.rec.Value))
	l.tr.finish(w.seq)
	l.finRecs++
	l.finBytes += size
	if l.finRecs >= 64 || l.paused || l.c.globalPaused.Load() {
		l.flushInflight()
	}
	l.advanceKey(w)
	if l.paused {
		if l.underResume() {
			l.resumeLocked()
		} else if l.c.globalOver(true) {
			// Only the global bound keeps us paused: let the next finish
			// anywhere that brings usage under half resume us.
			l.c.globalPaused.Store(true)
		}
	}
	l.signalDrained()
	return l.c.globalPaused.Load() && !l.c.globalOver(true)
}

// flushInflight takes the finished records off the consumer-wide
// in-flight counters. l.mu is held.
func (l *lane) flushInflight() {
	if l.finRecs != 0 {
		l.c.inflightRecs.Add(-l.finRecs)
		l.c.inflightBytes.Add(-l.finBytes)
		l.finRecs, l.finBytes = 0, 0
	}
}

func (l *lane) signalDrained() {
	if l.closing && l.running == 0 && l.drained != nil {
		select {
		case <-l.drained:
		default:
			close(l.drained)
		}
	}
}

// overBudget reports whether the lane or the consumer holds more unfinished
// records or bytes than allowed.
func (l *lane) overBudget() bool {
	cfg := &l.c.cfg
	return l.tr.pending >= cfg.MaxInFlightPerPartition ||
		l.tr.bytes >= cfg.MaxInFlightBytesPerPartition ||
		l.c.globalOver(false)
}

// underResume reports whether a paused lane may fetch again: both its own
// and the global usage fell to half their bound (hysteresis keeps a busy
// partition from flapping).
func (l *lane) underResume() bool {
	cfg := &l.c.cfg
	return l.tr.pending <= cfg.MaxInFlightPerPartition/2 &&
		l.tr.bytes <= cfg.MaxInFlightBytesPerPartition/2 &&
		!l.c.globalOver(true)
}

func (l *lane) pauseLocked() {
	l.paused = true
	l.cl.PauseFetchPartitions(map[string][]int32{l.topic: {l.partition}})
	if l.c.globalOver(false) {
		l.c.globalPaused.Store(true)
	}
	l.m.pauses.Inc()
}

func (l *lane) resumeLocked() {
	l.paused = false
	l.cl.ResumeFetchPartitions(map[string][]int32{l.topic: {l.partition}})
}

// beginClose stops the lane from starting records and abandons the ones
// waiting for a retry (they stay unfinished: the next owner gets them).
// It returns a channel closed once no record is running.
func (l *lane) beginClose() <-chan struct{} {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.drained == nil {
		l.drained = make(chan struct{})
	}
	if !l.closing {
		close(l.closeCh)
	}
	l.closing = true
	for w, t := range l.timers {
		t.Stop()
		delete(l.timers, w)
	}
	l.cond.Broadcast()
	l.signalDrained()
	return l.drained
}

// mark is what a commit carries for one lane.
type mark struct {
	offset int64
	epoch  int32
	meta   string // the offset map of records finished above offset
}

// freeze makes the tracker final: from now on completions are stale. It
// returns the watermark to commit and resumes fetching if the lane had
// paused it, so that a later assignment of the partition starts unpaused.
func (l *lane) freeze() (mark, bool) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if !l.closed {
		l.closed = true
		l.flushInflight()
		if l.paused {
			l.resumeLocked()
		}
		// Give back the global budget the abandoned records held.
		l.c.inflightRecs.Add(-int64(l.tr.pending))
		l.c.inflightBytes.Add(-l.tr.bytes)
	}
	if l.lost {
		return mark{}, false
	}
	return l.markLocked(true)
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
func (l *lane) watermark() (mark, bool) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.closed {
		return mark{}, false
	}
	return l.markLocked(false)
}

// markLocked returns the lane's watermark and offset map. A commit is due
// when the watermark moved, or, on a final commit, when the offset map
// would tell the next owner something.
func (l *lane) markLocked(final bool) (mark, bool) {
	off, epoch, ok := l.tr.watermark()
	if !ok {
		return mark{}, false
	}
	m := mark{offset: off, epoch: epoch}
	if off > l.commit || final {
		m.meta = l.tr.offsetMap()
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
	// Running counts records in a processor call or a dead-letter produce.
	Running int
	// WaitingRetry counts records waiting for their retry delay.
	WaitingRetry int
	// Keys counts keys with a record in flight.
	Keys   int
	Paused bool
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
}

func (l *lane) snapshot() LaneSnapshot {
	l.mu.Lock()
	defer l.mu.Unlock()
	s := LaneSnapshot{
		Topic: l.topic, Partition: l.partition, Epoch: l.epoch,
		InFlight: l.tr.pending, InFlightBytes: l.tr.bytes,
		Running: l.running, WaitingRetry: len(l.timers), Keys: len(l.keys),
		Paused: l.paused, Watermark: -1, Committed: l.commit, HighWatermark: l.hw,
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
