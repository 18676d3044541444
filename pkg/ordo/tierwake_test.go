package ordo

import (
	"context"
	"strconv"
	"sync/atomic"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
)

// TestATierWakesAWorkerPerDueRecord: a retry tier's lane holding records
// that fall due one at a time wakes one worker for each, not all of them.
// Its 16 workers used to be woken for every record that fell due (and for
// every record finished by the producer): eight woke for nothing for each
// record that ran, on a lane whose whole work is a record now and then.
func TestATierWakesAWorkerPerDueRecord(t *testing.T) {
	const n, workers = 100, 16
	var calls atomic.Int64
	proc := ProcessorFunc(func(context.Context, *kgo.Record) error { calls.Add(1); return nil })
	l, end := testLane(t, "t.g.retry.1", laneRole{tier: 1, source: "t"}, laneConfig{workers: workers, maxRecs: 10_000, maxBytes: 1 << 30, maxSpan: 1 << 20},
		proc, newBudget(1<<20, 1<<30), func(d *laneDeps) { d.sem = make(chan struct{}, 64) })
	defer end()
	// Every worker waits before the records come.
	waitFor(t, 5*time.Second, "the workers waiting", func() bool {
		l.mu.Lock()
		defer l.mu.Unlock()
		return l.waiting == workers
	})
	// One fetch: n records of n keys, due 2 ms apart from 20 ms on.
	start := time.Now()
	recs := make([]*kgo.Record, n)
	for i := range recs {
		due := start.Add(20*time.Millisecond + time.Duration(i)*2*time.Millisecond).UnixMilli()
		recs[i] = &kgo.Record{Topic: "t.g.retry.1", Offset: int64(i), Key: []byte("k" + strconv.Itoa(i)), Value: []byte("v"),
			Headers: []kgo.RecordHeader{{Key: HeaderNotBefore, Value: []byte(strconv.FormatInt(due, 10))}}}
	}
	l.add(recs, n)
	waitFor(t, 10*time.Second, "every record called", func() bool { return calls.Load() == n })
	l.mu.Lock()
	idle := l.idleWakes
	l.mu.Unlock()
	// A record may fall due while a worker is on its way to the one
	// before: some wake-ups find nothing. Not one in two.
	if idle > n/2 {
		t.Errorf("the tier's workers woke %d times for nothing for %d records; want at most %d", idle, n, n/2)
	}
	t.Logf("%d records, %d wake-ups found nothing", n, idle)
}

// waitFor polls cond until it holds, or fails the test after d.
func waitFor(t *testing.T, d time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(d)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(time.Millisecond)
	}
}
