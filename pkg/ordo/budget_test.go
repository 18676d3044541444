package ordo

import (
	"context"
	"testing"

	"github.com/twmb/franz-go/pkg/kgo"
)

// TestBudgetResumesAStarvedLaneUnderTheBound: lanes paused for the
// consumer-wide budget resume once usage is under half of it; a lane noted
// starved (dry, its own bounds clear) resumes once usage is under the bound
// itself, and never while the bound is reached.
func TestBudgetResumesAStarvedLaneUnderTheBound(t *testing.T) {
	for _, tc := range []struct {
		name    string
		used    int64
		starved bool
		want    bool
	}{
		{"paused, over half", 60, false, false},
		{"paused, under half", 50, false, true},
		{"starved, over half", 60, true, true},
		{"starved, at the bound", 100, true, false},
		{"starved, over the bound", 130, true, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			b := newBudget(100, 1<<30)
			b.add(tc.used, 0)
			if tc.starved {
				b.noteStarved()
			} else {
				b.notePaused()
			}
			if got := b.shouldResume(); got != tc.want {
				t.Fatalf("shouldResume() = %v with %d of 100 in use, want %v", got, tc.used, tc.want)
			}
			resumed := 0
			b.resume = func() { resumed++ }
			b.resumePaused()
			if resumed != 1 || b.starved.Load() || b.paused.Load() {
				t.Fatalf("resumePaused: resumed %d times, starved %v, paused %v; want once, both cleared", resumed, b.starved.Load(), b.paused.Load())
			}
		})
	}
}

// TestOnlyADryLaneFreeOfItsOwnBoundsIsNotedStarved: a lane held by its own
// bounds (here a HoldPartition) must not be noted starved, or each finish
// under the bound would run the resume pass over every lane for a lane
// that cannot resume. A lane with records to start is not starved either.
func TestOnlyADryLaneFreeOfItsOwnBoundsIsNotedStarved(t *testing.T) {
	for _, tc := range []struct {
		name    string
		waiting int
		holding int
		starved bool
	}{
		{"dry, own bounds clear", 0, 0, true},
		{"under a quarter of its bound", 24, 0, true},
		{"a quarter of its bound waiting", 25, 0, false},
		{"dry, held by a HoldPartition", 0, 1, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			b := newBudget(1000, 1<<30)
			proc := ProcessorFunc(func(context.Context, *kgo.Record) error { return nil })
			l, end := testLane(t, "t", laneRole{source: "t"}, laneConfig{workers: 4, maxRecs: 100, maxBytes: 1 << 30, maxSpan: 1 << 20}, proc, b, nil)
			defer end()
			l.mu.Lock()
			l.pending.n = tc.waiting // what the lane's stream holds is all dry reads
			l.holding = tc.holding
			l.notePausedGlobal()
			l.pending.n = 0
			l.holding = 0
			l.mu.Unlock()
			if got := b.starved.Load(); got != tc.starved {
				t.Fatalf("noted starved = %v, want %v", got, tc.starved)
			}
			if !b.paused.Load() {
				t.Fatal("not noted paused at all")
			}
		})
	}
}
