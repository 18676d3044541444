package ordo_test

// Tests of issue 5 that use API the fix adds (Config.MaxTrackedSpan). They
// do not compile before it; remove the build tag once it exists.

import (
	"testing"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/ordokafka/ordo/pkg/ordo"
)

// TestMaxTrackedSpanPausesBehindHeldRecord: one record returns Hold at the
// head of its partition with 100,000 records behind it (the issue used
// 1,000,000). With Config.MaxTrackedSpan = 5,000 (the most offsets between
// a partition's oldest unfinished record and its newest received one), the
// lane must pause once the span reaches it: the processor sees at most the
// span plus one poll (MaxPollRecords = 500) of the records behind, the lane
// reports Paused, and the heap grows by no more than the tracker of that
// span (64 bytes an entry, generously), two fetches (64 KiB each) and 3 MiB
// for the client and the test (the same run without a hold grows by about
// 0.8 MiB). After the release the lane resumes and every record runs.
//
// Today: does not compile (no MaxTrackedSpan). Run on main with the field
// left out, the lane never paused, the processor saw all 100,000 records
// and the heap grew by 4.5 MiB. The same scenario with default config is
// TestHeldHeadRecordBoundsMemoryWithDefaults.
func TestMaxTrackedSpanPausesBehindHeldRecord(t *testing.T) {
	const (
		behind   = 100_000
		span     = 5_000
		pollMax  = 500
		fetchMax = 64 << 10
	)
	h := runHeldHead(t, behind, func(cfg *ordo.Config) {
		cfg.MaxTrackedSpan = span
		cfg.MaxPollRecords = pollMax
		cfg.KgoOpts = append(cfg.KgoOpts, kgo.FetchMaxBytes(fetchMax), kgo.FetchMaxPartitionBytes(fetchMax))
	})
	if !h.paused {
		t.Errorf("the lane is not paused with a held record at its head and %d records behind it (MaxTrackedSpan %d)", behind, span)
	}
	if h.processed > span+pollMax {
		t.Errorf("the processor saw %d records behind the held one; want at most MaxTrackedSpan %d + one poll %d", h.processed, span, pollMax)
	}
	if bound := int64((span+pollMax)*64 + 2*fetchMax + 3*mib); h.growth > bound {
		t.Errorf("heap grew by %.1f MiB; want under %.1f MiB", float64(h.growth)/mib, float64(bound)/mib)
	}
}
