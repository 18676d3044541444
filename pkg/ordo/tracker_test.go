package ordo

import (
	"math/rand/v2"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
)

// trackerModel is the trivially correct reference for tracker: every entry
// ever added, in add order (so in offset order), indexed by sequence number.
// lo only saves rescanning: every entry below it is finished.
type trackerModel struct {
	entries   []modelEntry
	lo        int
	inherited []offRun // the previous owner's done set, as given
}

type modelEntry struct {
	offset int64
	epoch  int32
	size   int32
	ts     time.Time
	done   bool
}

// add mirrors tracker.add for an offset the caller knows to be valid.
func (m *trackerModel) add(offset int64, epoch int32, size int32, ts time.Time) uint64 {
	m.entries = append(m.entries, modelEntry{offset: offset, epoch: epoch, size: size, ts: ts})
	return uint64(len(m.entries) - 1)
}

// last returns the last received offset; ok is false before any.
func (m *trackerModel) last() (int64, bool) {
	if len(m.entries) == 0 {
		return 0, false
	}
	return m.entries[len(m.entries)-1].offset, true
}

// finish marks seq finished and moves lo past the finished prefix.
func (m *trackerModel) finish(seq uint64) {
	m.entries[seq].done = true
	for m.lo < len(m.entries) && m.entries[m.lo].done {
		m.lo++
	}
}

// live returns the sequence numbers of the unfinished entries, ascending.
func (m *trackerModel) live() []uint64 {
	var out []uint64
	for i := m.lo; i < len(m.entries); i++ {
		if !m.entries[i].done {
			out = append(out, uint64(i))
		}
	}
	return out
}

// finished returns the sequence numbers of the finished entries, ascending.
func (m *trackerModel) finished() []uint64 {
	var out []uint64
	for i, e := range m.entries {
		if e.done {
			out = append(out, uint64(i))
		}
	}
	return out
}

// checkTracker compares every observable of tr with the model, and the
// ring's internal invariants.
func checkTracker(t testing.TB, tr *tracker, m *trackerModel) {
	t.Helper()
	off, epoch, ok := tr.watermark()
	first := -1
	var pending int
	var bytes int64
	for i := m.lo; i < len(m.entries); i++ {
		if e := m.entries[i]; !e.done {
			if first < 0 {
				first = i
			}
			pending++
			bytes += int64(e.size)
		}
	}
	switch {
	case len(m.entries) == 0:
		if ok {
			t.Fatalf("watermark() = %d, %d, true on an empty tracker; want ok=false", off, epoch)
		}
	case first >= 0:
		e := m.entries[first]
		if !ok || off != e.offset || epoch != e.epoch {
			t.Fatalf("watermark() = %d, %d, %v; want lowest unfinished %d, %d, true", off, epoch, ok, e.offset, e.epoch)
		}
	default:
		e := m.entries[len(m.entries)-1]
		if !ok || off != e.offset+1 || epoch != e.epoch {
			t.Fatalf("watermark() = %d, %d, %v; want last+1 %d, %d, true (nothing unfinished)", off, epoch, ok, e.offset+1, e.epoch)
		}
	}
	// The safety property in its own words: never past an unfinished record.
	for i := m.lo; i < len(m.entries); i++ {
		if e := m.entries[i]; !e.done && off > e.offset {
			t.Fatalf("watermark %d passes unfinished offset %d (seq %d)", off, e.offset, i)
		}
	}
	if tr.pending != pending {
		t.Fatalf("pending = %d, want %d", tr.pending, pending)
	}
	if tr.bytes != bytes {
		t.Fatalf("bytes = %d, want %d", tr.bytes, bytes)
	}
	ts, ok := tr.oldest()
	if first >= 0 {
		if !ok || !ts.Equal(m.entries[first].ts) {
			t.Fatalf("oldest() = %v, %v; want %v, true", ts, ok, m.entries[first].ts)
		}
	} else if ok {
		t.Fatalf("oldest() = %v, true with nothing unfinished", ts)
	}

	// White-box invariants of the ring.
	size := len(tr.ring)
	if size < 64 || size&(size-1) != 0 {
		t.Fatalf("len(ring) = %d, want a power of two >= 64", size)
	}
	if tr.n < 0 || tr.n > size || tr.head < 0 || tr.head >= size {
		t.Fatalf("ring state n=%d head=%d len=%d out of range", tr.n, tr.head, size)
	}
	wantSeq := uint64(len(m.entries))
	if first >= 0 {
		wantSeq = uint64(first)
	}
	if tr.seq != wantSeq || tr.n != len(m.entries)-int(wantSeq) {
		t.Fatalf("ring seq=%d n=%d; want seq=%d n=%d", tr.seq, tr.n, wantSeq, len(m.entries)-int(wantSeq))
	}
	if tr.n > 0 && tr.ring[tr.head].done {
		t.Fatalf("ring head (seq %d) is finished but was not popped", tr.seq)
	}

	// What the bounds and the offset map read: span, highest finished
	// offset, runs of consecutive finished offsets above the watermark.
	var wantSpan int64
	var wantRuns []offRun
	maxDone := int64(-1)
	for i, e := range m.entries {
		if e.done {
			maxDone = max(maxDone, e.offset)
		}
		if first < 0 || i <= first || !e.done {
			continue
		}
		if k := len(wantRuns); k > 0 && wantRuns[k-1].end() == e.offset {
			wantRuns[k-1].n++
		} else {
			wantRuns = append(wantRuns, offRun{start: e.offset, n: 1})
		}
	}
	next := int64(-1)
	if last, ok := m.last(); ok {
		next = last + 1
	}
	for _, r := range m.inherited {
		if r.start < next {
			r = offRun{start: next, n: r.end() - next}
		}
		if r.n <= 0 {
			continue
		}
		if k := len(wantRuns); k > 0 && wantRuns[k-1].end() == r.start {
			wantRuns[k-1].n += r.n
		} else {
			wantRuns = append(wantRuns, r)
		}
	}
	if first >= 0 {
		last, _ := m.last()
		wantSpan = last + 1 - m.entries[first].offset
	}
	if tr.span() != wantSpan {
		t.Fatalf("span() = %d, want %d", tr.span(), wantSpan)
	}
	if tr.maxDone != maxDone {
		t.Fatalf("maxDone = %d, want %d", tr.maxDone, maxDone)
	}
	ringRuns := 0
	for i := first + 1; first >= 0 && i < len(m.entries); i++ {
		prev := m.entries[i-1]
		if m.entries[i].done && (!prev.done || prev.offset+1 != m.entries[i].offset) {
			ringRuns++
		}
	}
	if tr.runs != ringRuns {
		t.Fatalf("runs = %d, want %d", tr.runs, ringRuns)
	}
	var gotRuns []offRun
	tr.doneRuns(func(r offRun) bool { gotRuns = append(gotRuns, r); return true })
	if len(gotRuns) != len(wantRuns) {
		t.Fatalf("doneRuns = %v, want %v", gotRuns, wantRuns)
	}
	for i := range gotRuns {
		if gotRuns[i] != wantRuns[i] {
			t.Fatalf("doneRuns = %v, want %v", gotRuns, wantRuns)
		}
	}
}

// finishBoth finishes seq in both and checks they agree on the result.
func finishBoth(t testing.TB, tr *tracker, m *trackerModel, seq uint64) bool {
	t.Helper()
	want := seq < uint64(len(m.entries)) && !m.entries[seq].done
	size, got := tr.finish(seq)
	if got != want {
		t.Fatalf("finish(%d) = %v, want %v", seq, got, want)
	}
	if got && size != int64(m.entries[seq].size) {
		t.Fatalf("finish(%d) size = %d, want %d", seq, size, m.entries[seq].size)
	}
	if want {
		m.finish(seq)
	}
	return got
}

// addBoth adds offset, which must be above the last one, to both, with a
// timestamp derived from the offset.
func addBoth(t testing.TB, tr *tracker, m *trackerModel, offset int64, epoch int32, size int32) uint64 {
	t.Helper()
	ts := time.Unix(1_700_000_000, 0).Add(time.Duration(offset) * time.Millisecond)
	seq, ok := tr.add(offset, epoch, size, ts)
	if !ok {
		last, _ := m.last()
		t.Fatalf("add(%d) = false after last offset %d", offset, last)
	}
	want := m.add(offset, epoch, size, ts)
	if seq != want {
		t.Fatalf("add(%d) seq = %d, want %d", offset, seq, want)
	}
	inModel := false
	for _, r := range m.inherited {
		inModel = inModel || (offset >= r.start && offset < r.end())
	}
	if got := tr.inheritedDone(offset); got != inModel {
		t.Fatalf("inheritedDone(%d) = %v, want %v", offset, got, inModel)
	} else if got {
		finishBoth(t, tr, m, seq) // as lane.add does: the previous owner finished it
	}
	return seq
}

// byteReader hands out fuzz bytes; past the end it returns zeros.
type byteReader struct {
	b []byte
}

func (r *byteReader) next() byte {
	if len(r.b) == 0 {
		return 0
	}
	c := r.b[0]
	r.b = r.b[1:]
	return c
}

func (r *byteReader) empty() bool { return len(r.b) == 0 }

// Bounds that keep one fuzz input fast (every check is linear in the
// entries) while still reaching rings of 4096 and the shrink path.
const (
	fuzzMaxOps     = 256
	fuzzMaxEntries = 2100
)

// FuzzTracker applies a byte-coded sequence of operations to a tracker and
// to trackerModel and compares them after every operation.
//
// Encoding: byte 0 picks the base offset; then each operation is an opcode
// byte followed by its argument bytes:
//
//	0 add:           gap-1 (mod 4), size, epoch bump (mod 2)
//	1 finish live:   index among live entries
//	2 finish stale:  index among finished entries, or past the end
//	3 double finish: index among live entries
//	4 bad add:       distance below the last offset (offset <= last)
//	5 burst add:     count/8
//	6 finish prefix: share of live entries (ascending or descending order)
//	7 finish most:   keep every k-th live entry, finish the rest
//	8 finish head:   up to b unfinished entries at the head, with finishHead
func FuzzTracker(f *testing.F) {
	f.Add([]byte{})
	f.Add([]byte{0, 0, 0, 10, 0})
	f.Add([]byte{1, 0, 3, 5, 1, 0, 1, 0, 7, 1, 2, 0, 1, 0, 1, 0, 2, 9})
	f.Add([]byte{0, 0, 1, 1, 0, 2, 2, 0, 0, 3, 1, 3, 0, 4, 0, 4, 2, 1, 1, 1, 0, 2, 1})
	// Finished but not yet popped entries: stale and double finish.
	f.Add([]byte{0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1, 1, 2, 0, 3, 1})
	// Growth past 64 with wraparound: adds, finishes from the front, adds.
	f.Add([]byte{2, 5, 8, 6, 128, 0, 5, 12, 1, 3, 1, 0, 6, 255, 1})
	// Growth past 1024, finishing most of it, then the prefix: shrink path.
	f.Add([]byte{0, 5, 255, 5, 255, 5, 255, 7, 5, 6, 255, 0, 0, 2, 50, 1, 0, 2, 0})
	f.Add([]byte{0, 5, 255, 5, 200, 6, 250, 0, 6, 200, 1, 5, 40, 6, 255, 1, 4, 2})

	f.Fuzz(func(t *testing.T, data []byte) {
		r := &byteReader{b: data}
		tr := newTracker()
		m := &trackerModel{}
		base := int64(r.next()) << 32
		var epoch int32
		// The previous owner's done set: up to 3 runs above base.
		o := base
		for range r.next() % 4 {
			o += int64(r.next()%8) + 1
			run := offRun{start: o, n: int64(r.next()%16) + 1}
			m.inherited = append(m.inherited, run)
			o = run.end()
		}
		tr.inherit(append([]offRun(nil), m.inherited...))
		checkTracker(t, tr, m)

		nextOffset := func(gap int64) int64 {
			if last, ok := m.last(); ok {
				return last + gap
			}
			return base + gap - 1
		}

		for ops := 0; ops < fuzzMaxOps && !r.empty(); ops++ {
			switch op := r.next() % 9; op {
			case 0: // add
				gap := int64(r.next()%4) + 1
				size := int32(r.next())
				epoch += int32(r.next() % 2)
				if len(m.entries) < fuzzMaxEntries {
					addBoth(t, tr, m, nextOffset(gap), epoch, size)
				}
			case 1: // finish a live seq
				b := r.next()
				if live := m.live(); len(live) > 0 {
					finishBoth(t, tr, m, live[int(b)%len(live)])
				}
			case 2: // finish a stale or unknown seq
				b := r.next()
				done := m.finished()
				var seq uint64
				if len(done) > 0 && b%2 == 0 {
					seq = done[int(b/2)%len(done)]
				} else {
					seq = uint64(len(m.entries)) + uint64(b%3)
					if b%3 == 2 {
						seq = ^uint64(0) - uint64(b)
					}
				}
				if finishBoth(t, tr, m, seq) {
					t.Fatalf("finish(%d) of a finished or unknown seq succeeded", seq)
				}
			case 3: // double finish
				b := r.next()
				if live := m.live(); len(live) > 0 {
					seq := live[int(b)%len(live)]
					if !finishBoth(t, tr, m, seq) {
						t.Fatalf("first finish(%d) failed", seq)
					}
					checkTracker(t, tr, m)
					if finishBoth(t, tr, m, seq) {
						t.Fatalf("second finish(%d) succeeded", seq)
					}
				}
			case 4: // add at or below the last offset
				b := r.next()
				last, ok := m.last()
				if !ok {
					continue
				}
				offset := last - int64(b%4)
				if b >= 128 {
					offset = last - int64(b)*1_000_003
				}
				before := *tr
				if _, ok := tr.add(offset, epoch, 1, time.Time{}); ok {
					t.Fatalf("add(%d) after last %d succeeded", offset, last)
				}
				if tr.next != before.next || tr.nextEpoch != before.nextEpoch || tr.n != before.n || tr.seq != before.seq {
					t.Fatalf("rejected add(%d) changed the tracker", offset)
				}
			case 5: // burst of adds: one by one, or as one fetched batch
				n := int(r.next())*8 + 1
				if len(m.inherited) > 0 || r.next()%2 == 0 {
					for i := 0; i < n && len(m.entries) < fuzzMaxEntries; i++ {
						addBoth(t, tr, m, nextOffset(int64(i%4)+1), epoch, int32(i%100))
					}
					break
				}
				var recs []*kgo.Record
				off, _ := m.last()
				if len(m.entries) == 0 {
					off = base - 1
				}
				for i := 0; i < n && len(m.entries)+len(recs) < fuzzMaxEntries; i++ {
					off += int64(i%4) + 1
					recs = append(recs, &kgo.Record{Offset: off, LeaderEpoch: epoch, Value: make([]byte, i%100),
						Timestamp: time.Unix(1_700_000_000, 0).Add(time.Duration(off) * time.Millisecond)})
				}
				if !tr.addable(recs) {
					t.Fatalf("a batch above the last offset is not addable")
				}
				seq0, bytes := tr.addRecords(recs)
				var want int64
				for i, rec := range recs {
					if got := m.add(rec.Offset, epoch, int32(len(rec.Value)), rec.Timestamp); got != seq0+uint64(i) {
						t.Fatalf("addRecords: seq %d, want %d", seq0+uint64(i), got)
					}
					want += int64(len(rec.Value))
				}
				if bytes != want {
					t.Fatalf("addRecords: %d bytes, want %d", bytes, want)
				}
			case 6: // finish a share of the live entries from the front or back
				b, dir := r.next(), r.next()
				live := m.live()
				k := len(live) * (int(b) + 1) / 256
				if dir%2 == 0 {
					for _, seq := range live[:k] {
						finishBoth(t, tr, m, seq)
					}
				} else {
					for i := k - 1; i >= 0; i-- {
						finishBoth(t, tr, m, live[i])
					}
				}
			case 7: // finish all but every k-th live entry
				k := int(r.next()%16) + 2
				for i, seq := range m.live() {
					if i%k != 0 {
						finishBoth(t, tr, m, seq)
					}
				}
			case 8: // finishHead: up to b unfinished entries at the head, in one call
				b := int(r.next())
				n := 0
				for i := m.lo; i < len(m.entries) && n < b && !m.entries[i].done; i++ {
					n++
				}
				var want int64
				for i := m.lo; i < m.lo+n; i++ {
					want += int64(m.entries[i].size)
				}
				if got := tr.finishHead(n); got != want {
					t.Fatalf("finishHead(%d) = %d bytes, want %d", n, got, want)
				}
				for i, lo := 0, m.lo; i < n; i++ {
					m.finish(uint64(lo + i))
				}
			}
			checkTracker(t, tr, m)
		}
	})
}

func TestTrackerEmpty(t *testing.T) {
	tr := newTracker()
	if off, epoch, ok := tr.watermark(); ok || epoch != -1 {
		t.Fatalf("watermark() = %d, %d, %v on an empty tracker; want ok=false, epoch -1", off, epoch, ok)
	}
	if _, ok := tr.oldest(); ok {
		t.Fatal("oldest() ok on an empty tracker")
	}
	if _, ok := tr.finish(0); ok {
		t.Fatal("finish on an empty tracker succeeded")
	}
	if _, ok := tr.finish(1); ok {
		t.Fatal("finish on an empty tracker succeeded")
	}
	if tr.pending != 0 || tr.bytes != 0 {
		t.Fatalf("pending %d bytes %d on an empty tracker", tr.pending, tr.bytes)
	}
	checkTracker(t, tr, &trackerModel{})
}

func TestTrackerFirstOffsetZero(t *testing.T) {
	tr := newTracker()
	m := &trackerModel{}
	seq := addBoth(t, tr, m, 0, 3, 7)
	checkTracker(t, tr, m)
	if _, ok := tr.add(0, 3, 1, time.Time{}); ok {
		t.Fatal("a second add of offset 0 succeeded")
	}
	finishBoth(t, tr, m, seq)
	checkTracker(t, tr, m)
	if off, epoch, _ := tr.watermark(); off != 1 || epoch != 3 {
		t.Fatalf("watermark = %d, %d; want 1, 3", off, epoch)
	}
}

// TestTrackerGaps covers non-contiguous offsets (compaction, transaction
// markers): the watermark jumps over offsets that were never received.
func TestTrackerGaps(t *testing.T) {
	tr := newTracker()
	m := &trackerModel{}
	s10 := addBoth(t, tr, m, 10, 1, 100)
	s13 := addBoth(t, tr, m, 13, 1, 20)
	s20 := addBoth(t, tr, m, 20, 2, 3)
	checkTracker(t, tr, m)

	steps := []struct {
		seq       uint64
		wantOff   int64
		wantEpoch int32
		wantBytes int64
	}{
		{s13, 10, 1, 103}, // finishing the middle does not move the watermark
		{s10, 20, 2, 3},   // 11, 12 and 14..19 were never received: skip them
		{s20, 21, 2, 0},   // all finished: last received + 1
	}
	for _, s := range steps {
		finishBoth(t, tr, m, s.seq)
		checkTracker(t, tr, m)
		off, epoch, ok := tr.watermark()
		if !ok || off != s.wantOff || epoch != s.wantEpoch || tr.bytes != s.wantBytes {
			t.Fatalf("after finish(%d): watermark %d/%d/%v bytes %d; want %d/%d bytes %d",
				s.seq, off, epoch, ok, tr.bytes, s.wantOff, s.wantEpoch, s.wantBytes)
		}
	}
	// The next record after a gap.
	s30 := addBoth(t, tr, m, 30, 2, 1)
	checkTracker(t, tr, m)
	if off, _, _ := tr.watermark(); off != 30 {
		t.Fatalf("watermark = %d, want 30", off)
	}
	for _, bad := range []int64{30, 29, 21, 0, -1} {
		if _, ok := tr.add(bad, 2, 1, time.Time{}); ok {
			t.Fatalf("add(%d) after 30 succeeded", bad)
		}
	}
	checkTracker(t, tr, m)
	finishBoth(t, tr, m, s30)
	for _, seq := range []uint64{s10, s13, s20, s30, s30 + 1, 1 << 40} {
		if _, ok := tr.finish(seq); ok {
			t.Fatalf("finish(%d) of a finished or unknown seq succeeded", seq)
		}
	}
	checkTracker(t, tr, m)
}

// TestTrackerGrowWrap grows the ring past its initial minRing entries while
// the live window wraps around the end of the buffer.
func TestTrackerGrowWrap(t *testing.T) {
	tr := newTracker()
	m := &trackerModel{}
	var off int64 = 1000
	add := func(n int) {
		for range n {
			addBoth(t, tr, m, off, 0, 1)
			off += 2
		}
	}
	add(50)
	for seq := uint64(0); seq < 40; seq++ {
		finishBoth(t, tr, m, seq)
	}
	checkTracker(t, tr, m)
	if tr.head != 40 || len(tr.ring) != minRing {
		t.Fatalf("head %d len %d; want 40, %d", tr.head, len(tr.ring), minRing)
	}
	add(minRing - 10) // a full ring, wrapping around its last index
	checkTracker(t, tr, m)
	if len(tr.ring) != minRing || tr.n != minRing {
		t.Fatalf("len %d n %d; want a full ring of %d", len(tr.ring), tr.n, minRing)
	}
	add(1) // grows while wrapped
	checkTracker(t, tr, m)
	if len(tr.ring) != 2*minRing {
		t.Fatalf("len(ring) = %d after growth, want %d", len(tr.ring), 2*minRing)
	}
	add(200)
	checkTracker(t, tr, m)
	// Finish everything in a shuffled order, checking after each step.
	rng := rand.New(rand.NewPCG(1, 2))
	live := m.live()
	rng.Shuffle(len(live), func(i, j int) { live[i], live[j] = live[j], live[i] })
	for _, seq := range live {
		finishBoth(t, tr, m, seq)
		checkTracker(t, tr, m)
	}
	if off, _, _ := tr.watermark(); off != m.entries[len(m.entries)-1].offset+1 {
		t.Fatalf("watermark %d after finishing all", off)
	}
}

// TestTrackerShrink grows the ring far past 4*minRing entries and checks
// that it keeps its size while any record is unfinished (regrowing on every
// burst costs more), then goes back to minRing once the lane is idle, and
// still tracks correctly after.
func TestTrackerShrink(t *testing.T) {
	tr := newTracker()
	m := &trackerModel{}
	const n = 5 * minRing
	for i := range n {
		addBoth(t, tr, m, int64(i)*3, int32(i/1000), int32(i%7))
	}
	checkTracker(t, tr, m)
	grown := len(tr.ring)
	if grown < n || grown&(grown-1) != 0 {
		t.Fatalf("len(ring) = %d after %d adds, want a power of two >= %d", grown, n, n)
	}
	// Finish all but the oldest and every 10th of the last 1000.
	for seq := uint64(1); seq < n; seq++ {
		if seq < n-1000 || seq%10 != 0 {
			finishBoth(t, tr, m, seq)
		}
	}
	checkTracker(t, tr, m)
	finishBoth(t, tr, m, 0) // the finished prefix pops
	checkTracker(t, tr, m)
	if len(tr.ring) != grown || tr.n == 0 {
		t.Fatalf("len %d n %d; want the ring kept at %d while records are unfinished", len(tr.ring), tr.n, grown)
	}
	live := m.live()
	for i := len(live) - 1; i >= 0; i-- {
		finishBoth(t, tr, m, live[i])
		checkTracker(t, tr, m)
	}
	// Idle after a large burst: the ring is kept for the next burst.
	next := m.entries[len(m.entries)-1].offset + 1
	addBoth(t, tr, m, next, 9, 1)
	if len(tr.ring) != grown {
		t.Fatalf("len(ring) = %d after an idle spell that followed a large burst, want %d kept", len(tr.ring), grown)
	}
	finishBoth(t, tr, m, m.live()[0])
	// Many small busy spells in a row: the memory is given back.
	for i := range shrinkAfter {
		addBoth(t, tr, m, next+1+int64(i), 9, 1)
		checkTracker(t, tr, m)
		if i < shrinkAfter-1 && len(tr.ring) != grown {
			t.Fatalf("len(ring) = %d after %d small spells, want %d kept", len(tr.ring), i+1, grown)
		}
		finishBoth(t, tr, m, m.live()[0])
	}
	if len(tr.ring) != minRing {
		t.Fatalf("len(ring) = %d after %d small spells, want %d", len(tr.ring), shrinkAfter, minRing)
	}
	// The shrunk ring still grows, wraps and tracks correctly.
	last := m.entries[len(m.entries)-1].offset
	for i := range 3000 {
		addBoth(t, tr, m, last+1+int64(i), 9, 1)
	}
	checkTracker(t, tr, m)
	for _, seq := range m.live() {
		finishBoth(t, tr, m, seq)
	}
	checkTracker(t, tr, m)
}

// TestTrackerShrinkWrapped empties a large ring whose live window wraps
// around the end of the buffer: it goes back to minRing with a fresh head.
func TestTrackerShrinkWrapped(t *testing.T) {
	tr := newTracker()
	m := &trackerModel{}
	add := func(n int) {
		for range n {
			var off int64 = 500
			if last, ok := m.last(); ok {
				off = last + 1
			}
			addBoth(t, tr, m, off, 1, 2)
		}
	}
	add(4*minRing + 100) // grows to 8*minRing
	for seq := uint64(0); seq < 4*minRing; seq++ {
		finishBoth(t, tr, m, seq)
	}
	add(4 * minRing) // the window now wraps past the buffer's end
	checkTracker(t, tr, m)
	if tr.head+tr.n <= len(tr.ring) {
		t.Fatalf("len %d head %d n %d; want a wrapped window", len(tr.ring), tr.head, tr.n)
	}
	rng := rand.New(rand.NewPCG(3, 4))
	live := m.live()
	rng.Shuffle(len(live), func(i, j int) { live[i], live[j] = live[j], live[i] })
	for _, seq := range live {
		finishBoth(t, tr, m, seq)
	}
	checkTracker(t, tr, m)
	for range shrinkAfter { // small spells in a row: given back at the last
		add(1)
		finishBoth(t, tr, m, m.live()[0])
	}
	add(1)
	checkTracker(t, tr, m)
	if len(tr.ring) != minRing || tr.head != 0 || tr.n != 1 {
		t.Fatalf("len %d head %d n %d; want %d, 0, 1", len(tr.ring), tr.head, tr.n, minRing)
	}
	add(700)
	checkTracker(t, tr, m)
	for _, seq := range m.live() {
		finishBoth(t, tr, m, seq)
	}
}
