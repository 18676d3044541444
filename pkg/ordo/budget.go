package ordo

import "sync/atomic"

// budget is the consumer-wide in-flight bound: records and bytes received
// and not finished, across every lane (Config.MaxInFlight and
// MaxInFlightBytes). Lanes add what they receive and take off what
// finishes, in batches; a lane that finds the budget full pauses its
// partition and says so (notePaused), and a finish that brings usage under
// half of the bound resumes the lanes paused for it (resumePaused).
//
// Half is hysteresis, not a share: while other partitions' backlogs keep
// usage above half, a paused lane that has run dry (fewer records wait in
// its stream than a quarter of its own bound, or than its workers) would
// idle for nothing. Such a lane resumes as soon as usage is under the
// bound itself, and if it is not, says so (noteStarved): the next finish
// that brings usage under the bound resumes it. Only a lane whose own
// bounds would let it resume is noted starved. The bound still holds (to
// one poll); only its hysteresis gives way, and only for lanes with little
// left to start. A starved note lost to a concurrent resumePaused is noted
// again by the resume's pass over the lanes.
//
// It holds no lock: its counters are atomics, and resume runs without any
// lane's lock held (it takes them one by one).
type budget struct {
	maxRecs, maxBytes int64
	recs, bytes       atomic.Int64
	paused            atomic.Bool // a lane paused (partly) for this bound
	starved           atomic.Bool // a dry lane among them waits for usage under the bound
	resume            func()      // resumes paused lanes; set by the consumer
}

// laneBudget is what a lane needs of the consumer-wide budget.
type laneBudget interface {
	add(recs, bytes int64)
	sub(recs, bytes int64)
	// full reports whether usage is at the bound: the lane must pause.
	full() bool
	// overHalf reports whether usage is still above half the bound: a lane
	// paused for it must stay paused.
	overHalf() bool
	// notePaused records that a lane is paused because of this bound.
	notePaused()
	// noteStarved records that a paused lane has run dry and waits only
	// for usage to fall under the bound (not under half).
	noteStarved()
	// shouldResume reports whether lanes paused for the bound may resume.
	shouldResume() bool
	// resumePaused resumes them; call it without holding a lane's lock.
	resumePaused()
}

func newBudget(maxRecs int, maxBytes int64) *budget {
	return &budget{maxRecs: int64(maxRecs), maxBytes: maxBytes, resume: func() {}}
}

func (b *budget) add(recs, bytes int64) {
	b.recs.Add(recs)
	b.bytes.Add(bytes)
}

func (b *budget) sub(recs, bytes int64) {
	b.recs.Add(-recs)
	b.bytes.Add(-bytes)
}

func (b *budget) full() bool {
	return b.recs.Load() >= b.maxRecs || b.bytes.Load() >= b.maxBytes
}

func (b *budget) overHalf() bool {
	return b.recs.Load() > b.maxRecs/2 || b.bytes.Load() > b.maxBytes/2
}

func (b *budget) notePaused() { b.paused.Store(true) }

func (b *budget) noteStarved() {
	b.starved.Store(true)
	b.paused.Store(true)
}

func (b *budget) shouldResume() bool {
	return b.paused.Load() && (!b.overHalf() || b.starved.Load() && !b.full())
}

func (b *budget) resumePaused() {
	if b.paused.CompareAndSwap(true, false) {
		b.starved.Store(false)
		b.resume()
	}
}
