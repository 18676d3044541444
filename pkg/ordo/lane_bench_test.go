package ordo

import (
	"context"
	"strconv"
	"sync/atomic"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
)

// BenchmarkLaneStream measures what the engine adds per record, without a
// broker: batches of records are added to one lane whose processor only
// counts, until the lane's watermark passes them all (the in-order stream
// runner, the tracker, the budget).
func BenchmarkLaneStream(b *testing.B) {
	var seen atomic.Int64
	chain := ProcessorFunc(func(context.Context, *kgo.Record) error { seen.Add(1); return nil })
	l, end := testLane(b, "t", laneRole{source: "t"}, laneConfig{workers: 4, maxRecs: 1 << 30, maxBytes: 1 << 40, maxSpan: 1_000_000},
		chain, newBudget(1<<30, 1<<40), nil)
	const batch = 1000
	recs := make([]*kgo.Record, 0, b.N+batch)
	for i := range b.N + batch {
		recs = append(recs, &kgo.Record{Topic: "t", Key: []byte("k" + strconv.Itoa(i%1000)), Value: make([]byte, 100), Offset: int64(i), Timestamp: time.Unix(0, 0)})
	}
	b.ResetTimer()
	for i := 0; i < b.N; i += batch {
		l.add(recs[i:min(i+batch, b.N)], int64(b.N))
		// As a paused partition would: take no more while 10,000 are
		// unfinished.
		for {
			l.mu.Lock()
			n := l.tr.pending
			l.mu.Unlock()
			if n < 10000 {
				break
			}
			time.Sleep(20 * time.Microsecond)
		}
	}
	for {
		l.mu.Lock()
		off, _, _ := l.tr.watermark()
		l.mu.Unlock()
		if off >= int64(b.N) {
			break
		}
		time.Sleep(10 * time.Microsecond)
	}
	b.StopTimer()
	end()
}
