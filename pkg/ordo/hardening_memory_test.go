package ordo_test

// Issue 5, item 1: memory is bounded by the budgets, whatever the
// processor does. These tests measure the live heap (after GC) and must not
// run in parallel with other tests.

import (
	"context"
	"strconv"
	"sync/atomic"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/ordokafka/ordo/pkg/ordo"
)

// heldHead is what runHeldHead saw once the consumer settled.
type heldHead struct {
	cons      *ordo.Consumer
	processed int64
	growth    int64
	paused    bool
}

// runHeldHead produces one record of key "stuck" at offset 0 of a
// one-partition topic and behind it `behind` small records of other keys,
// and runs a consumer whose processor holds "stuck" (ordo.Hold) until the
// test releases it. It waits until the consumer has settled (every other
// record processed, or the lane paused and no progress for 500 ms) and
// returns the records processed, whether the lane is paused and the heap
// growth at that moment. Then it releases the hold, waits for every
// record and stops the consumer.
func runHeldHead(t *testing.T, behind int, tune func(*ordo.Config)) heldHead {
	t.Helper()
	c := newCluster(t, 1, "t")
	produceRecords(t, c.ListenAddrs(), &kgo.Record{Topic: "t", Key: []byte("stuck"), Value: []byte("stuck")})
	produce(t, c.ListenAddrs(), "t", behind, 1000, 1)
	rel := newReleaser()
	t.Cleanup(rel.Open)
	var processed atomic.Int64
	proc := ordo.ProcessorFunc(func(ctx context.Context, r *kgo.Record) error {
		if string(r.Key) == "stuck" && !rel.isOpen() {
			return ordo.Hold(errHeld)
		}
		processed.Add(1)
		return nil
	})
	cfg := baseConfig(c.ListenAddrs(), "g", proc, "t")
	cfg.Retry.HoldDelay = 50 * time.Millisecond
	if tune != nil {
		tune(&cfg)
	}
	before := heapInUse()
	cons := startConsumer(t, cfg)
	deadline := time.Now().Add(60 * time.Second)
	paused := false
	for time.Now().Before(deadline) {
		if processed.Load() == int64(behind) {
			break
		}
		ls := cons.Lanes()
		paused = len(ls) == 1 && ls[0].Paused
		if paused {
			if _, ok := stableFor(500*time.Millisecond, 5*time.Second, processed.Load); ok {
				break
			}
		}
		time.Sleep(20 * time.Millisecond)
	}
	ls := cons.Lanes()
	paused = len(ls) == 1 && ls[0].Paused
	growth := heapInUse() - before
	h := heldHead{cons: cons, processed: processed.Load(), growth: growth, paused: paused}
	t.Logf("%d records behind a held one: processed %d, lane paused %v, heap growth %.1f MiB",
		behind, h.processed, h.paused, float64(growth)/mib)
	// Release and drain before stopping: the stop must not wait on a hold.
	rel.Open()
	waitFor(t, 60*time.Second, "all records after the release", func() bool { return processed.Load() == int64(behind)+1 })
	stop(t, cons)
	return h
}

// TestHeldHeadRecordBoundsMemoryWithDefaults: one record returns Hold at
// the head of its partition with 300,000 records behind it (the issue used
// 1,000,000; scaled to stay near 15 s under -race), default budgets. The
// tracker keeps an entry for every record since the oldest unfinished one,
// so the lane must pause at a bounded span (the planned
// Config.MaxTrackedSpan, default about 100,000) instead of taking in the
// whole partition, and the heap must not grow with the partition: the
// bound below, 12 MiB, is the tracker of a 100,000-record span (a ring of
// 131,072 entries of about 32 bytes: 4 MiB) plus one poll and the client's
// buffers (the same run without a hold grows by about 2 MiB); a default
// span above about 200,000 would not fit it.
//
// Today: the lane never pauses, the processor sees all 300,000 records and
// the heap grows by 20.6 MiB (a ring of 524,288 entries).
func TestHeldHeadRecordBoundsMemoryWithDefaults(t *testing.T) {
	if testing.Short() {
		t.Skip("300,000 records: not in -short")
	}
	const behind = 300_000
	h := runHeldHead(t, behind, nil)
	if h.processed >= behind {
		t.Errorf("the lane took in all %d records behind a held one (paused: %v): the tracked span has no bound", behind, h.paused)
	}
	if !h.paused {
		t.Errorf("the lane is not paused with a held record at its head and %d records behind it", behind)
	}
	if bound := int64(12 * mib); h.growth > bound {
		t.Errorf("heap grew by %.1f MiB behind one held record; want under %.0f MiB", float64(h.growth)/mib, float64(bound)/mib)
	}
}

// runPinnedFetches produces groups of one small record of a held key
// (h<i>, about 1 KB) followed by big records of other keys (100 KB
// values), uncompressed, and consumes them with 1 MiB byte budgets and
// 1 MiB fetches, so that each fetch holds one held record. The processor
// holds the h records (ordo.Hold) until the test releases them and runs
// the others at once. It returns the heap growth once the consumer
// settled (every big record processed, or the lane paused and still).
func runPinnedFetches(t *testing.T, groups, bigPerGroup int, hold bool) (growth int64, processedBig int64, paused bool) {
	t.Helper()
	const bigSize, smallSize = 100 << 10, 1000
	c := newCluster(t, 1, "t")
	pcl, err := kgo.NewClient(kgo.SeedBrokers(c.ListenAddrs()...), kgo.ProducerLinger(0),
		kgo.ProducerBatchCompression(kgo.NoCompression()), kgo.ProducerBatchMaxBytes(2<<20),
		kgo.MaxBufferedBytes(64<<20))
	if err != nil {
		t.Fatal(err)
	}
	big := make([]byte, bigSize)
	small := make([]byte, smallSize)
	for g := range groups {
		recs := []*kgo.Record{{Topic: "t", Key: []byte("h" + strconv.Itoa(g)), Value: small}}
		for j := range bigPerGroup {
			recs = append(recs, &kgo.Record{Topic: "t", Key: []byte("b" + strconv.Itoa(g*bigPerGroup+j)), Value: big})
		}
		if err := pcl.ProduceSync(context.Background(), recs...).FirstErr(); err != nil {
			t.Fatal(err)
		}
	}
	pcl.Close()

	rel := newReleaser()
	t.Cleanup(rel.Open)
	if !hold {
		rel.Open()
	}
	var bigs, smalls atomic.Int64
	proc := ordo.ProcessorFunc(func(ctx context.Context, r *kgo.Record) error {
		if r.Key[0] == 'h' {
			if !rel.isOpen() {
				return ordo.Hold(errHeld)
			}
			smalls.Add(1)
			return nil
		}
		bigs.Add(1)
		return nil
	})
	cfg := baseConfig(c.ListenAddrs(), "g", proc, "t")
	cfg.Retry.HoldDelay = 50 * time.Millisecond
	cfg.MaxInFlightBytesPerPartition = 1 << 20
	cfg.MaxInFlightBytes = 1 << 20
	cfg.KgoOpts = append(cfg.KgoOpts, kgo.FetchMaxBytes(1<<20), kgo.FetchMaxPartitionBytes(1<<20))
	before := heapInUse()
	cons := startConsumer(t, cfg)
	nBig := int64(groups * bigPerGroup)
	deadline := time.Now().Add(60 * time.Second)
	for time.Now().Before(deadline) && bigs.Load() < nBig {
		ls := cons.Lanes()
		if len(ls) == 1 && ls[0].Paused {
			if _, ok := stableFor(500*time.Millisecond, 5*time.Second, bigs.Load); ok {
				break
			}
		}
		time.Sleep(20 * time.Millisecond)
	}
	ls := cons.Lanes()
	paused = len(ls) == 1 && ls[0].Paused
	growth = heapInUse() - before
	processedBig = bigs.Load()
	var inflight int64
	if len(ls) == 1 {
		inflight = ls[0].InFlightBytes
	}
	t.Logf("%d held records among %d records of 100 KB: processed %d big, lane paused %v, accounted in flight %d KiB, heap growth %.1f MiB",
		groups, nBig, processedBig, paused, inflight>>10, float64(growth)/mib)
	rel.Open()
	waitFor(t, 60*time.Second, "all records after the release", func() bool {
		return bigs.Load() == nBig && smalls.Load() == int64(groups)
	})
	stop(t, cons)
	return growth, processedBig, paused
}

// TestHeldRecordsDoNotPinFetchBuffers: with 1 MiB byte budgets (per
// partition and in all), records held by the processor must not keep
// alive more than the budget says. franz-go's records point into the
// fetch response they came in, and a pending record keeps its poll's work
// slab (and through it every record of the poll) reachable, so one held
// 1 KB record can pin a whole fetch. Here 40 held records of 1 KB (the
// issue: 500) sit among 400 records of 100 KB fetched 1 MiB at a time, one
// held record per fetch. Want: heap growth under the byte budget, plus one
// fetch in the client's buffer and one being read (2 MiB), plus 4 MiB for
// the client and the test (the same run without holds grows by about 1-2 MiB).
//
// Today: the heap grows by 40.6 MiB while the lane accounts 39 KiB in
// flight and never pauses (without the holds: 1.1 MiB); the issue measured
// 126 MB kept alive by 514 KB of accounted records.
func TestHeldRecordsDoNotPinFetchBuffers(t *testing.T) {
	growth, _, _ := runPinnedFetches(t, 40, 10, true)
	if bound := int64(1*mib + 2*mib + 4*mib); growth > bound {
		t.Errorf("40 held records of 1 KB kept the heap %.1f MiB larger; want under %.0f MiB (the 1 MiB byte budget, two fetches of 1 MiB and 4 MiB)",
			float64(growth)/mib, float64(bound)/mib)
	}
}
