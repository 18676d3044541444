package ordo

import "time"

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
// record is O(1); the finished prefix is popped from a ring buffer.
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
	high      int   // most entries held since the ring was last idle
	small     int   // consecutive busy spells that used under 1/8 of the ring
}

type trackEntry struct {
	offset int64
	epoch  int32
	size   int32
	done   bool
	ts     int64 // record timestamp in unix nanoseconds, for lag in seconds
}

// minRing is the tracker's initial and smallest ring size (a power of two).
const minRing = 1024

// shrinkAfter is how many small busy spells in a row let a grown ring go.
const shrinkAfter = 64

func newTracker() *tracker {
	return &tracker{ring: make([]trackEntry, minRing), next: -1, nextEpoch: -1}
}

// add records an offset delivered to the lane and returns its sequence
// number. Offsets must be added in increasing order; a smaller or equal
// offset is a broker or caller bug and add reports false.
func (t *tracker) add(offset int64, epoch int32, size int32, ts time.Time) (uint64, bool) {
	if t.next >= 0 && offset < t.next {
		return 0, false
	}
	if t.n == 0 {
		// Idle: give back a ring that grew for a burst once many busy
		// spells in a row used little of it (bursts come and go; regrowing
		// on every one costs more than the memory).
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

func (t *tracker) grow() {
	ring := make([]trackEntry, len(t.ring)*2)
	for i := 0; i < t.n; i++ {
		ring[i] = t.ring[(t.head+i)&(len(t.ring)-1)]
	}
	t.ring = ring
	t.head = 0
}

// finish marks the entry with the given sequence number done. It reports
// false if the sequence number is unknown or already finished.
func (t *tracker) finish(seq uint64) bool {
	if seq < t.seq || seq >= t.seq+uint64(t.n) {
		return false
	}
	e := &t.ring[(t.head+int(seq-t.seq))&(len(t.ring)-1)]
	if e.done {
		return false
	}
	e.done = true
	t.bytes -= int64(e.size)
	t.pending--
	for t.n > 0 && t.ring[t.head].done {
		t.ring[t.head] = trackEntry{}
		t.head = (t.head + 1) & (len(t.ring) - 1)
		t.n--
		t.seq++
	}
	return true
}

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

// offsetMap encodes the finished offsets above the watermark as commit
// metadata (see encodeOffsetMap); "" when there are none.
func (t *tracker) offsetMap() string {
	if t.n < 2 {
		return ""
	}
	base := t.ring[t.head].offset
	i := 1
	return encodeOffsetMap(base, func() (int64, bool) {
		for ; i < t.n; i++ {
			e := &t.ring[(t.head+i)&(len(t.ring)-1)]
			if e.done {
				i++
				return e.offset, true
			}
		}
		return 0, false
	})
}
