package ordo

import (
	"math"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
)

// tracker is the offset tracker of one partition lane. It records every
// offset handed to the lane, in the order the broker delivered them, and
// which of them are finished. Its watermark is the lowest unfinished offset:
// the only offset Ordo ever commits. It is never "max finished + 1", so a
// commit cannot pass a record that is still running, waiting for a retry or
// waiting for its dead-letter produce to be acknowledged.
//
// Offsets need not be contiguous (compaction, transaction markers): the
// tracker only knows the offsets it was given. When every received offset is
// finished, the watermark is the last received offset + 1.
//
// Entries are addressed by a lane-local sequence number so that finishing a
// record is O(1); the finished prefix is popped from a ring buffer. The
// tracker also keeps, in O(1) per change, what the lane's bounds need: the
// span from the oldest unfinished offset to the newest received one, the
// number of runs of finished entries above the watermark (what the offset
// map must encode), and the done set inherited from the partition's
// previous owner for offsets not received yet.
//
// Invariants, between calls:
//   - n == 0, or ring[head] is unfinished (finished entries at the front are
//     popped at once);
//   - runs is the number of runs of consecutive finished offsets in the
//     ring (a gap in the offsets, from compaction or a transaction marker,
//     starts a new run);
//   - pending and bytes count the unfinished entries and their sizes;
//   - inherited holds disjoint runs, in order, all at or above next.
//
// tracker is not safe for concurrent use; the lane's mutex guards it.
type tracker struct {
	ring []trackEntry // circular buffer, len is a power of two
	head int          // index of the oldest entry
	n    int          // number of entries in the ring
	seq  uint64       // sequence number of the entry at head

	next      int64 // offset after the last received one; -1 before any
	nextEpoch int32 // leader epoch of the last received record
	bytes     int64 // bytes of unfinished records
	pending   int   // unfinished records
	runs      int   // runs of consecutive finished offsets in the ring
	maxDone   int64 // highest finished offset; -1 before any
	high      int   // most entries held since the ring was last idle
	small     int   // consecutive busy spells that used under 1/8 of the ring

	// inherited are the runs of offsets that the previous owner finished
	// (its offset map) and that this lane has not received yet.
	inherited []offRun
}

type trackEntry struct {
	offset int64
	epoch  int32
	size   int32
	done   bool
	ts     int64 // record timestamp in unix nanoseconds, for lag in seconds
}

// offRun is a run of consecutive offsets [start, start+n).
type offRun struct {
	start, n int64
}

func (r offRun) end() int64 { return r.start + r.n }

// minRing is the tracker's initial and smallest ring size (a power of two).
const minRing = 1024

// shrinkAfter is how many small busy spells in a row let a grown ring go.
const shrinkAfter = 64

func newTracker() *tracker {
	return &tracker{ring: make([]trackEntry, minRing), next: -1, nextEpoch: -1, maxDone: -1}
}

// inherit sets the done set of the partition's previous owner: runs of
// offsets finished above the committed offset, in order and disjoint.
func (t *tracker) inherit(runs []offRun) { t.inherited = runs }

// inheritedDone reports whether offset is in the inherited done set, and
// drops the inherited runs that end at or below it (offsets arrive in
// order, so they can never match again).
func (t *tracker) inheritedDone(offset int64) bool {
	for len(t.inherited) > 0 {
		r := t.inherited[0]
		switch {
		case offset < r.start:
			return false
		case offset < r.end():
			return true
		}
		t.inherited = t.inherited[1:]
	}
	return false
}

// add records an offset delivered to the lane and returns its sequence
// number. Offsets must be added in increasing order; a smaller or equal
// offset is a broker or caller bug and add reports false.
func (t *tracker) add(offset int64, epoch int32, size int32, ts time.Time) (uint64, bool) {
	if t.next >= 0 && offset < t.next {
		return 0, false
	}
	if t.n == 0 {
		t.idle()
	}
	if t.n == len(t.ring) {
		t.grow()
	}
	i := (t.head + t.n) & (len(t.ring) - 1)
	var nanos int64 // 0 stands for the zero time
	if !ts.IsZero() {
		nanos = ts.UnixNano()
	}
	t.ring[i] = trackEntry{offset: offset, epoch: epoch, size: size, ts: nanos}
	seq := t.seq + uint64(t.n)
	t.n++
	t.high = max(t.high, t.n)
	t.next = offset + 1
	t.nextEpoch = epoch
	t.bytes += int64(size)
	t.pending++
	return seq, true
}

// addRecords adds a fetched batch whose offsets all lie above the last
// received one, in increasing order (addable reports whether they do), in
// one pass. It returns the first sequence number and the batch's bytes.
func (t *tracker) addRecords(recs []*kgo.Record) (seq0 uint64, bytes int64) {
	if len(recs) == 0 {
		return t.seq + uint64(t.n), 0
	}
	if t.n == 0 {
		t.idle()
	}
	for t.n+len(recs) > len(t.ring) {
		t.grow()
	}
	seq0 = t.seq + uint64(t.n)
	mask := len(t.ring) - 1
	i := (t.head + t.n) & mask
	for _, r := range recs {
		size := len(r.Key) + len(r.Value)
		bytes += int64(size)
		var nanos int64
		if !r.Timestamp.IsZero() {
			nanos = r.Timestamp.UnixNano()
		}
		t.ring[i] = trackEntry{offset: r.Offset, epoch: r.LeaderEpoch, size: int32(min(size, math.MaxInt32)), ts: nanos}
		i = (i + 1) & mask
	}
	last := recs[len(recs)-1]
	t.n += len(recs)
	t.high = max(t.high, t.n)
	t.next = last.Offset + 1
	t.nextEpoch = last.LeaderEpoch
	t.bytes += bytes
	t.pending += len(recs)
	return seq0, bytes
}

// addable reports whether addRecords may take recs: offsets increasing and
// above the last received one, and no inherited done set to consult.
func (t *tracker) addable(recs []*kgo.Record) bool {
	if len(t.inherited) > 0 {
		return false
	}
	prev := t.next - 1
	for _, r := range recs {
		if r.Offset <= prev {
			return false
		}
		prev = r.Offset
	}
	return true
}

// idle runs when a record arrives at an empty ring: it gives back a ring
// that grew for a burst once many busy spells in a row used little of it
// (bursts come and go; regrowing on every one costs more than the memory).
func (t *tracker) idle() {
	if t.high < len(t.ring)/8 {
		t.small++
	} else {
		t.small = 0
	}
	if len(t.ring) > 4*minRing && t.small >= shrinkAfter {
		t.ring = make([]trackEntry, minRing)
		t.head = 0
		t.small = 0
	}
	t.high = 0
}

func (t *tracker) grow() {
	ring := make([]trackEntry, len(t.ring)*2)
	for i := 0; i < t.n; i++ {
		ring[i] = t.ring[(t.head+i)&(len(t.ring)-1)]
	}
	t.ring = ring
	t.head = 0
}

func (t *tracker) at(pos int) *trackEntry { return &t.ring[(t.head+pos)&(len(t.ring)-1)] }

// finish marks the entry with the given sequence number done and returns
// its size. It reports false if the sequence number is unknown or already
// finished.
func (t *tracker) finish(seq uint64) (int64, bool) {
	if seq < t.seq || seq >= t.seq+uint64(t.n) {
		return 0, false
	}
	pos := int(seq - t.seq)
	e := t.at(pos)
	if e.done {
		return 0, false
	}
	size := int64(e.size)
	e.done = true
	t.bytes -= int64(e.size)
	t.pending--
	t.maxDone = max(t.maxDone, e.offset)
	// runs counts the finished entries that start a run of consecutive
	// offsets: those whose ring predecessor is not a finished entry at
	// the offset just below.
	if t.startsRun(pos) {
		t.runs++
	}
	if pos+1 < t.n {
		if nx := t.at(pos + 1); nx.done && nx.offset == e.offset+1 {
			t.runs-- // it started a run; now it continues e's
		}
	}
	if pos > 0 {
		return size, true
	}
	// The head finished: it and the finished entries after it are popped.
	prev := int64(-1)
	for first := true; t.n > 0 && t.ring[t.head].done; first = false {
		h := &t.ring[t.head]
		if first || h.offset != prev+1 {
			t.runs--
		}
		prev = h.offset
		*h = trackEntry{}
		t.head = (t.head + 1) & (len(t.ring) - 1)
		t.n--
		t.seq++
	}
	return size, true
}

// finishHead finishes the n entries at the head of the ring, which must
// be unfinished (a stream runner's chunk, run in order), and pops them
// with the finished entries after them. It returns their total size.
func (t *tracker) finishHead(n int) int64 {
	n = min(n, t.n)
	var size int64
	last := int64(-1)
	for i := range n {
		e := &t.ring[(t.head+i)&(len(t.ring)-1)]
		size += int64(e.size)
		last = e.offset
		e.done = false // the slot is free; add overwrites it whole
	}
	t.head = (t.head + n) & (len(t.ring) - 1)
	t.n -= n
	t.seq += uint64(n)
	t.pending -= n
	t.bytes -= size
	t.maxDone = max(t.maxDone, last)
	// The finished entries now at the head: the first started a run (its
	// predecessor was unfinished), the others if they follow a gap.
	prev := int64(-1)
	for first := true; t.n > 0 && t.ring[t.head].done; first = false {
		h := &t.ring[t.head]
		if first || h.offset != prev+1 {
			t.runs--
		}
		prev = h.offset
		*h = trackEntry{}
		t.head = (t.head + 1) & (len(t.ring) - 1)
		t.n--
		t.seq++
	}
	return size
}

// startsRun reports whether the finished entry at pos starts a run.
func (t *tracker) startsRun(pos int) bool {
	if pos == 0 {
		return true
	}
	p := t.at(pos - 1)
	return !p.done || p.offset+1 != t.at(pos).offset
}

// headOffset is the lowest unfinished offset; ok is false when nothing is
// unfinished.
func (t *tracker) headOffset() (int64, bool) {
	if t.n == 0 {
		return 0, false
	}
	return t.ring[t.head].offset, true
}

// span is the number of offsets from the lowest unfinished one to the
// newest received one, inclusive; 0 when nothing is unfinished.
func (t *tracker) span() int64 {
	if t.n == 0 {
		return 0
	}
	return t.next - t.ring[t.head].offset
}

// mapRuns bounds the runs an offset map of the lane could ever have to
// encode without the lane receiving more: the runs now, one more per
// unfinished record (finishing one can split a gap in two), and the
// inherited runs.
func (t *tracker) mapRuns() int { return t.runs + t.pending + len(t.inherited) }

// watermark returns the offset to commit (the lowest unfinished offset, or
// the last received offset + 1 when nothing is unfinished) and the leader
// epoch to commit with it. ok is false before any offset was received.
func (t *tracker) watermark() (offset int64, epoch int32, ok bool) {
	if t.n > 0 {
		e := t.ring[t.head]
		return e.offset, e.epoch, true
	}
	if t.next < 0 {
		return 0, -1, false
	}
	return t.next, t.nextEpoch, true
}

// oldest returns the timestamp of the oldest unfinished record; ok is false
// when nothing is unfinished.
func (t *tracker) oldest() (time.Time, bool) {
	if t.n == 0 {
		return time.Time{}, false
	}
	if ns := t.ring[t.head].ts; ns != 0 {
		return time.Unix(0, ns), true
	}
	return time.Time{}, true
}

// doneRuns calls fn for each run of finished offsets above the watermark,
// in order: the finished entries of the ring, then the inherited runs not
// received yet. Consecutive offsets are merged into one run.
func (t *tracker) doneRuns(fn func(offRun) bool) {
	var cur offRun
	emit := func(r offRun) bool {
		if cur.n > 0 && r.start == cur.end() {
			cur.n += r.n
			return true
		}
		if cur.n > 0 && !fn(cur) {
			return false
		}
		cur = r
		return true
	}
	for i := 1; i < t.n; i++ {
		if e := t.at(i); e.done && !emit(offRun{e.offset, 1}) {
			return
		}
	}
	for _, r := range t.inherited {
		if r.start < t.next { // partly received: the ring has that part
			r = offRun{start: t.next, n: r.end() - t.next}
		}
		if r.n > 0 && !emit(r) {
			return
		}
	}
	if cur.n > 0 {
		fn(cur)
	}
}
