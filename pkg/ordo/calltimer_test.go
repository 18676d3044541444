package ordo

import (
	"math"
	"testing"
	"time"
)

// runCalls drives a callTimer with a fake clock through calls of the given
// durations, back to back, and returns the counts it produced.
func runCalls(durs []time.Duration) (laneCounts, int) {
	now := time.Unix(0, 0)
	reads := 0
	ct := callTimer{now: func() time.Time { reads++; return now }}
	var lc laneCounts
	for _, d := range durs {
		ct.begin()
		now = now.Add(d)
		ct.end()
	}
	ct.blocked()
	ct.apply(&lc)
	return lc, reads
}

func TestCallTimerExactCountAndSum(t *testing.T) {
	cases := map[string][]time.Duration{
		"all fast":          repeat(time.Microsecond, 1000),
		"all slow":          repeat(time.Millisecond, 100),
		"one slow in fast":  append(append(repeat(time.Microsecond, 10), 60*time.Millisecond), repeat(time.Microsecond, 10)...),
		"alternating":       alternate(time.Microsecond, 3*time.Millisecond, 200),
		"slow at group end": append(repeat(time.Microsecond, 8), 2*time.Second),
	}
	for name, durs := range cases {
		t.Run(name, func(t *testing.T) {
			lc, reads := runCalls(durs)
			var sum time.Duration
			for _, d := range durs {
				sum += d
			}
			if lc.durCount != uint64(len(durs)) {
				t.Errorf("count %d, want %d", lc.durCount, len(durs))
			}
			if math.Abs(lc.durSum-sum.Seconds()) > 1e-9 {
				t.Errorf("sum %v, want %v", lc.durSum, sum.Seconds())
			}
			if reads > len(durs)+1 {
				t.Errorf("%d clock reads for %d calls", reads, len(durs))
			}
			// Every call slower than 50ms must be above the 50ms bucket.
			slow := 0
			for _, d := range durs {
				if d > 50*time.Millisecond {
					slow++
				}
			}
			var le50 uint64
			for i, b := range durationBuckets {
				if b <= 0.05 {
					le50 += lc.durBuckets[i]
				}
			}
			if got := lc.durCount - le50; got != uint64(slow) {
				t.Errorf("%d calls counted above 50ms, want %d", got, slow)
			}
		})
	}
}

// Fast calls cost about one clock read per group of maxGroupSize.
func TestCallTimerFewReadsForFastCalls(t *testing.T) {
	_, reads := runCalls(repeat(time.Microsecond, 8000))
	if reads > 8000/maxGroupSize+10 {
		t.Errorf("%d clock reads for 8000 fast calls, want about %d", reads, 8000/maxGroupSize)
	}
}

func repeat(d time.Duration, n int) []time.Duration {
	out := make([]time.Duration, n)
	for i := range out {
		out[i] = d
	}
	return out
}

func alternate(a, b time.Duration, n int) []time.Duration {
	out := make([]time.Duration, n)
	for i := range out {
		out[i] = a
		if i%2 == 1 {
			out[i] = b
		}
	}
	return out
}
