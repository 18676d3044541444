package ordo

import "time"

// callTimer times one worker's processor calls for the duration histogram
// with as few clock reads as it can, keeping the histogram's count and sum
// exact. A clock read costs about 55 ns here, a fifth of what a no-op
// record costs Ordo, so:
//
//   - a worker that goes straight from one call to the next uses the end of
//     the previous call as the start of the next: one read per call;
//   - after a call faster than fastCall, the next calls are timed as a
//     group of up to eight, then 16, 32 and 64 while groups stay fast, with one read at the end (and while groups
//     stay fast, the next group starts at once). The group's
//     elapsed time is exact. If its mean is still fast, each call is
//     counted at the mean; if not, one call (the slow one) is counted at the
//     group's elapsed time less the others at the last fast duration.
//
// A slow call therefore always shows in its bucket; only when two slow
// calls fall in one group of fast ones are they counted as one slower call
// and one fast. Everything a worker does between calls without blocking
// (taking the lane lock, deciding the outcome) is counted in the calls.
type callTimer struct {
	now   func() time.Time
	last  time.Time // end of the previous call; zero if the worker blocked since
	start time.Time // start of the call in progress, when timed alone

	inGroup bool
	gStart  time.Time
	gCalls  int
	gSize   int     // calls in a full group: doubles while groups stay fast
	fast    float64 // duration of the last call timed alone, when fast

	pending []observation // applied to the lane's counts under its lock
}

type observation struct {
	seconds float64
	n       uint64
}

const (
	fastCall     = 20e-6 // seconds
	minGroupSize = 8
	maxGroupSize = 64
)

func (ct *callTimer) begin() {
	if ct.inGroup {
		return
	}
	if ct.last.IsZero() {
		ct.start = ct.now()
	} else {
		ct.start = ct.last
	}
}

func (ct *callTimer) end() {
	if ct.inGroup {
		ct.gCalls++
		if ct.gCalls >= max(ct.gSize, minGroupSize) {
			ct.closeGroup(ct.now(), true)
		}
		return
	}
	end := ct.now()
	d := end.Sub(ct.start).Seconds()
	ct.pending = append(ct.pending, observation{d, 1})
	ct.last = end
	if d < fastCall {
		ct.inGroup, ct.gStart, ct.gCalls, ct.fast = true, end, 0, d
	}
}

// closeGroup counts the group's calls; with reopen, a group of fast calls
// is followed at once by the next group.
func (ct *callTimer) closeGroup(end time.Time, reopen bool) {
	ct.inGroup = false
	ct.last = end
	k := ct.gCalls
	if k == 0 {
		return
	}
	elapsed := end.Sub(ct.gStart).Seconds()
	mean := elapsed / float64(k)
	if mean < 2*fastCall || k == 1 {
		ct.pending = append(ct.pending, observation{mean, uint64(k)})
		if mean < fastCall {
			ct.gSize = min(2*max(ct.gSize, minGroupSize), maxGroupSize)
		} else {
			ct.gSize = minGroupSize
		}
		if reopen && mean < fastCall {
			ct.inGroup, ct.gStart, ct.gCalls = true, end, 0
		}
		return
	}
	ct.gSize = minGroupSize
	fast := min(ct.fast, mean)
	ct.pending = append(ct.pending,
		observation{fast, uint64(k - 1)},
		observation{elapsed - float64(k-1)*fast, 1})
}

// flush closes an open group; call it before the worker blocks.
func (ct *callTimer) flush() {
	if ct.inGroup {
		ct.closeGroup(ct.now(), false)
	}
}

// blocked tells the timer the worker waited: the next call reads its start.
func (ct *callTimer) blocked() {
	ct.flush()
	ct.last = time.Time{}
}

// apply moves the pending observations into lc. The lane's lock is held.
func (ct *callTimer) apply(lc *laneCounts) {
	for _, o := range ct.pending {
		lc.observeN(o.seconds, o.n)
	}
	ct.pending = ct.pending[:0]
}
