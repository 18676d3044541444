package lag

import (
	"encoding/json"
	"testing"
	"time"
)

// The rules of the package doc, one scrape at a time on a made-up clock.
func TestHistoryRules(t *testing.T) {
	const w = time.Minute
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	type step struct {
		at        time.Duration // since t0
		committed int64
		lag       int64
		want      Status
		stuck     bool
	}
	cases := []struct {
		name  string
		steps []step
	}{
		{"unknown until a whole window is watched, then stuck", []step{
			{0, 5, 10, StatusUnknown, false},
			{30 * time.Second, 5, 10, StatusUnknown, false},
			{60 * time.Second, 5, 12, StatusStall, true},
			{90 * time.Second, 5, 12, StatusStall, true},
		}},
		{"caught up now is OK", []step{
			{0, 5, 10, StatusUnknown, false},
			{61 * time.Second, 15, 0, StatusOK, false},
		}},
		{"caught up within the window is OK even if stuck since", []step{
			{0, 5, 3, StatusUnknown, false},
			{10 * time.Second, 5, 0, StatusUnknown, false},
			{61 * time.Second, 5, 3, StatusOK, false},
			{71 * time.Second, 5, 3, StatusStall, true}, // 10s is out of (11s, 71s]
		}},
		{"moving and the lag growing is WARN", []step{
			{0, 0, 10, StatusUnknown, false},
			{20 * time.Second, 5, 15, StatusUnknown, false},
			{40 * time.Second, 10, 20, StatusUnknown, false},
			{60 * time.Second, 15, 25, StatusWarn, false},
			{80 * time.Second, 20, 30, StatusWarn, false},
		}},
		{"moving and the lag shrinking is OK", []step{
			{0, 0, 30, StatusUnknown, false},
			{30 * time.Second, 10, 25, StatusUnknown, false},
			{60 * time.Second, 20, 20, StatusOK, false},
		}},
		{"a reset backwards is a move", []step{
			{0, 50, 10, StatusUnknown, false},
			{59 * time.Second, 20, 40, StatusUnknown, false},
			{60 * time.Second, 20, 40, StatusOK, false},    // grew by 30, the step of the reset
			{118 * time.Second, 20, 40, StatusOK, false},   // the sample at the window's start is 0s's
			{119 * time.Second, 20, 40, StatusStall, true}, // moved at 59s: not within (59s, 119s]
		}},
		{"growth within one commit's step is the saw-tooth, not WARN", []step{
			{0, 0, 10, StatusUnknown, false},
			{30 * time.Second, 20, 15, StatusUnknown, false},
			{60 * time.Second, 40, 30, StatusOK, false},   // grew by 20, steps of 20
			{61 * time.Second, 40, 31, StatusWarn, false}, // grew by 21 since the sample at 0s
		}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			var h history
			for _, s := range tc.steps {
				now := t0.Add(s.at)
				h.observe(now, s.committed, s.lag, w)
				got, stuck := h.evaluate(now, s.lag, w)
				if got != s.want || stuck != s.stuck {
					t.Fatalf("at %s (committed %d, lag %d): %v stuck=%v, want %v stuck=%v", s.at, s.committed, s.lag, got, stuck, s.want, s.stuck)
				}
			}
		})
	}
}

// A consumer that keeps up but commits once a second: the lag read from
// the broker is a saw-tooth (it grows between two commits and drops at
// each), sampled at a phase that drifts. It must stay OK, never WARN;
// the same saw-tooth (steps of 100 records) on a lag that grows by 10
// records a second (300 over the 30 s window) is WARN at every scrape.
func TestHistorySawTooth(t *testing.T) {
	const w = 30 * time.Second
	t0 := time.Unix(1000, 0)
	for _, growth := range []int64{0, 10} {
		var h history
		committed := int64(0)
		warned, oked := 0, 0
		for i := range 400 { // a scrape every 700 ms: 280 s
			at := time.Duration(i) * 700 * time.Millisecond
			now := t0.Add(at)
			sinceCommit := at % time.Second
			committed = int64(at/time.Second) * 100
			lag := 5 + int64(sinceCommit/(10*time.Millisecond)) + growth*int64(at/time.Second) // 5..104, plus the growth
			h.observe(now, committed, lag, w)
			if at < w { // not yet judged
				continue
			}
			switch s, _ := h.evaluate(now, lag, w); s {
			case StatusWarn:
				warned++
			case StatusOK:
				oked++
			}
		}
		switch {
		case growth == 0 && warned > 0:
			t.Errorf("keeping up: WARN %d times of %d", warned, warned+oked)
		case growth > 0 && oked > 0:
			t.Errorf("falling behind by %d/s: OK %d times of %d", growth, oked, warned+oked)
		}
	}
}

// caughtUpAt exactly at the window's start is outside it: the window is
// (now-W, now].
func TestHistoryCaughtUpWithinWindow(t *testing.T) {
	const w = time.Minute
	t0 := time.Unix(1000, 0)
	var h history
	h.observe(t0, 5, 0, w)
	h.observe(t0.Add(30*time.Second), 5, 3, w)
	if s, _ := h.evaluate(t0.Add(59*time.Second), 3, w); s != StatusUnknown {
		t.Fatalf("before a window: %v", s)
	}
	h.observe(t0.Add(61*time.Second), 5, 3, w)
	if s, stuck := h.evaluate(t0.Add(61*time.Second), 3, w); s != StatusStall || !stuck {
		t.Fatalf("lag 0 only before the window: %v, want STALL", s)
	}
	var h2 history
	h2.observe(t0, 5, 3, w)
	h2.observe(t0.Add(30*time.Second), 5, 0, w)
	h2.observe(t0.Add(61*time.Second), 5, 3, w)
	if s, _ := h2.evaluate(t0.Add(61*time.Second), 3, w); s != StatusOK {
		t.Fatalf("lag 0 within the window: %v, want OK", s)
	}
}

// The history stays bounded whatever the scrape interval.
func TestHistoryBounded(t *testing.T) {
	const w = time.Minute
	var h history
	t0 := time.Unix(0, 0)
	for i := range 100000 {
		h.observe(t0.Add(time.Duration(i)*10*time.Millisecond), int64(i), 7, w)
	}
	if n := len(h.samples); n > sampleSpacing+2 {
		t.Fatalf("%d samples kept, want <= %d", n, sampleSpacing+2)
	}
}

func TestStatusJSONAndLabels(t *testing.T) {
	for _, s := range append([]Status{StatusUnknown}, Statuses...) {
		b, err := json.Marshal(s)
		if err != nil {
			t.Fatal(err)
		}
		var back Status
		if err := json.Unmarshal(b, &back); err != nil || back != s {
			t.Errorf("%v: %s -> %v, %v", s, b, back, err)
		}
	}
	if StatusStall.Label() != "stall" || StatusWarn.String() != "WARN" || StatusUnknown.String() != "-" {
		t.Error("labels")
	}
}
