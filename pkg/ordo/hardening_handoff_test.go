package ordo_test

// Issue 5, item 3: partitions change hands (graceful stops, rolling
// restarts, several owners in a row) without running again the records
// their previous owner finished.

import (
	"context"
	"log/slog"
	"math/rand/v2"
	"strconv"
	"sync/atomic"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/ordokafka/ordo/pkg/ordo"
)

// keyedRecords returns n records of topic with values prefix<i> (unique
// per prefix) and keys drawn from nkeys keys.
func keyedRecords(topic, prefix string, n, nkeys int, rng *rand.Rand) []*kgo.Record {
	recs := make([]*kgo.Record, n)
	for i := range recs {
		recs[i] = &kgo.Record{Topic: topic, Key: []byte("k" + strconv.Itoa(rng.IntN(nkeys))), Value: []byte(prefix + strconv.Itoa(i))}
	}
	return recs
}

// TestRollingRestartsDoNotRedeliver: three members of one group (key
// order, 8 workers per partition, a processor with small random delays:
// each call sleeps up to 2 ms) are restarted one at a time, gracefully
// (Stop, then a new consumer), six times, while a producer keeps writing.
// Keys are drawn from 30,000 (5,000 per partition), so a key recurs a few
// times within a partition's in-flight window and key order holds records
// back all over it: records finish far out of offset order, as with a real
// key space. A graceful handoff commits the watermark and the offset map of
// the records finished above it, so the next owner must run none of them
// again: the ledger must count 0 records applied twice. Scaled down from
// the 1,000,000 records to 60,000 backlog + 30,000 produced during
// the restarts, on 6 partitions; the delays keep the backlog, and full
// in-flight windows, through all six restarts.
//
// Today: 2,868 to 5,372 of the 90,000 records ran twice (about 3-6%, in
// every run; the issue: 10,561 of 1,000,000, with fewer restarts per
// record): the offset map is cut at 3,800 bytes and shrinks across owners.
func TestRollingRestartsDoNotRedeliver(t *testing.T) {
	if testing.Short() {
		t.Skip("90,000 records and six restarts: not in -short")
	}
	p := rollingParams{parts: 6, backlog: 60_000, live: 30_000, nkeys: 30_000, restarts: 6, sleepOneIn: 1, maxSleep: 2 * time.Millisecond}
	dups, n := rollingRestarts(t, p)
	if dups != 0 {
		t.Errorf("%d of %d records ran twice across %d graceful restarts; want 0", dups, n, p.restarts)
	}
}

type rollingParams struct {
	parts                          int32
	backlog, live, nkeys, restarts int
	sleepOneIn                     int           // one call in sleepOneIn sleeps
	maxSleep                       time.Duration // up to maxSleep
}

// rollingRestarts runs the scenario of TestRollingRestartsDoNotRedeliver
// and returns the records applied twice and the records in all.
func rollingRestarts(t *testing.T, p rollingParams) (dups, n int) {
	t.Helper()
	c := newCluster(t, p.parts, "t")
	rng := rand.New(rand.NewPCG(5, 5))
	produceRecords(t, c.ListenAddrs(), keyedRecords("t", "b", p.backlog, p.nkeys, rng)...)

	led := newLedger()
	proc := ordo.ProcessorFunc(func(ctx context.Context, r *kgo.Record) error {
		led.enter(r, true)
		if rand.IntN(p.sleepOneIn) == 0 {
			time.Sleep(time.Duration(rand.Int64N(int64(p.maxSleep))))
		}
		led.exit(r, true)
		return nil
	})
	cfg := baseConfig(c.ListenAddrs(), "g", proc, "t")
	cfg.WorkersPerPartition = 8
	cfg.SessionTimeout = 6 * time.Second
	cfg.RebalanceTimeout = 12 * time.Second
	cfg.RevokeTimeout = 4 * time.Second

	members := make([]*ordo.Consumer, 3)
	for i := range members {
		members[i] = startConsumer(t, cfg)
	}
	// The producer writes the live records in batches during the restarts.
	prodDone := make(chan struct{})
	go func() {
		defer close(prodDone)
		cl, err := kgo.NewClient(kgo.SeedBrokers(c.ListenAddrs()...), kgo.ProducerLinger(0))
		if err != nil {
			t.Error(err)
			return
		}
		defer cl.Close()
		rng := rand.New(rand.NewPCG(6, 6))
		recs := keyedRecords("t", "l", p.live, p.nkeys, rng)
		for i := 0; i < p.live; i += 500 {
			if err := cl.ProduceSync(context.Background(), recs[i:min(i+500, p.live)]...).FirstErr(); err != nil {
				t.Error(err)
				return
			}
			time.Sleep(30 * time.Millisecond)
		}
	}()
	n = p.backlog + p.live
	for round := range p.restarts {
		before := led.count()
		waitFor(t, 60*time.Second, "progress before a restart", func() bool { return led.count() >= min(n, before+n/(2*p.restarts)) })
		i := round % len(members)
		stop(t, members[i])
		members[i] = startConsumer(t, cfg)
		waitFor(t, 60*time.Second, "the restarted member to own partitions", func() bool { return len(members[i].Lanes()) > 0 })
	}
	<-prodDone
	waitFor(t, 120*time.Second, "every record", func() bool { return led.count() == n })
	for _, m := range members {
		stop(t, m)
	}
	checkLedger(t, led, n, false)
	led.mu.Lock()
	dups = led.dups
	led.mu.Unlock()
	t.Logf("%d records, %d restarts: %d applied twice", n, p.restarts, dups)
	return dups, n
}

// heldKeyProcessor is the processor of one member in the handoff tests:
// records of a key in held return ordo.Hold until its releaser opens;
// other records are logged as run by member.
func heldKeyProcessor(member string, led *ownerLedger, held map[string]*releaser) ordo.Processor {
	return ordo.ProcessorFunc(func(ctx context.Context, r *kgo.Record) error {
		if rel := held[string(r.Key)]; rel != nil && !rel.isOpen() {
			return ordo.Hold(errHeld)
		}
		led.ran(member, r)
		return nil
	})
}

// TestOffsetMapSurvivesThreeOwners: A holds record 0 of a partition (key
// H, ordo.Hold) and finishes the 2,970 records after it but H's (every
// 100th offset: they wait behind record 0), then stops gracefully: it
// commits offset 0 and an offset map of the records it finished. B
// starts and, with MaxInFlightPerPartition 3, pauses after a few hundred
// records (three of H's), then stops gracefully, having received only part
// of what A finished. C starts and the hold is released. Neither B nor C
// may run a record A finished: the done set A handed over must be carried
// forward until the watermark passes it, not cut down to what B received.
//
// Today: B's commit carries only the part of A's map B had received; C
// runs the rest again: B marked 247 records from A's map, C 247 from B's,
// and C re-ran 2,723 of the 2,970 A had finished, in each of 5 runs (the
// issue: C re-ran 480 of 499).
func TestOffsetMapSurvivesThreeOwners(t *testing.T) {
	t.Parallel()
	const n = 3000
	c := newCluster(t, 1, "t")
	recs := make([]*kgo.Record, n)
	for i := range recs {
		key := "k" + strconv.Itoa(i%97)
		if i%100 == 0 {
			key = "H"
		}
		recs[i] = &kgo.Record{Topic: "t", Key: []byte(key), Value: []byte("v" + strconv.Itoa(i))}
	}
	produceRecords(t, c.ListenAddrs(), recs...)
	led := newOwnerLedger()
	rel := newReleaser()
	t.Cleanup(rel.Open)
	held := map[string]*releaser{"H": rel}
	base := baseConfig(c.ListenAddrs(), "g", nil, "t")
	base.Retry.HoldDelay = 50 * time.Millisecond
	base.RevokeTimeout = time.Second

	cfgA := base
	cfgA.Processor = heldKeyProcessor("A", led, held)
	a := startConsumer(t, cfgA)
	waitFor(t, 30*time.Second, "A to finish every record but H's", func() bool { return led.distinct() == n-n/100 })
	stop(t, a)
	finishedByA := led.finishedBy("A")

	cfgB := base
	cfgB.Processor = heldKeyProcessor("B", led, held)
	cfgB.MaxInFlightPerPartition = 3
	cfgB.MaxPollRecords = 50
	cfgB.KgoOpts = append(cfgB.KgoOpts, kgo.FetchMaxBytes(2<<10), kgo.FetchMaxPartitionBytes(2<<10))
	b := startConsumer(t, cfgB)
	waitFor(t, 30*time.Second, "B to pause on its budget", func() bool {
		ls := b.Lanes()
		return len(ls) == 1 && ls[0].Paused
	})
	stop(t, b)
	markedByB := metricValue(t, b.Registry(), "ordo_records_total", "outcome", ordo.OutcomeAlreadyDone)

	rel.Open()
	cfgC := base
	cfgC.Processor = heldKeyProcessor("C", led, held)
	cm := startConsumer(t, cfgC)
	waitFor(t, 30*time.Second, "every record", func() bool { return led.distinct() == n })
	stop(t, cm)
	markedByC := metricValue(t, cm.Registry(), "ordo_records_total", "outcome", ordo.OutcomeAlreadyDone)

	reruns, sample := led.rerunsOf(finishedByA, "A")
	t.Logf("A finished %d; B marked %v from A's map, C marked %v; B or C re-ran %d", len(finishedByA), markedByB, markedByC, reruns)
	if markedByB == 0 || int(markedByB) >= len(finishedByA) {
		t.Errorf("B marked %v of A's %d finished records: the test needs B to stop part-way", markedByB, len(finishedByA))
	}
	if reruns != 0 {
		t.Errorf("B or C re-ran %d of the %d records A had finished (e.g. %v); want 0", reruns, len(finishedByA), sample)
	}
}

// TestOffsetMapTooLargeForBrokerStillCommits: the broker's
// offset.metadata.max.bytes is small (here 100 bytes: brokers may set it
// below Kafka's 4096), so it answers OFFSET_METADATA_TOO_LARGE to a
// commit whose offset map is longer. Record 0 (key H1) is held, the odd
// records 1..399 (keys of their own) finish and the even ones (key H2) are
// held behind their key: every offset map is about 100 runs, too large.
// Once H1 is released the watermark is 2; the engine must then commit it,
// retrying without the map, within a few commit intervals. After H2 is
// released too, the committed offset must reach the end.
//
// Today: every commit with a map fails (a "periodic commit" warning:
// OFFSET_METADATA_TOO_LARGE, every 50 ms: 39 in the 2 s) and nothing is
// ever committed (FetchOffsets: -1) while the watermark is at 2. The
// commit goes through only once nothing is left above the watermark: the
// final check (end offset once every record is done) passes today.
func TestOffsetMapTooLargeForBrokerStillCommits(t *testing.T) {
	t.Parallel()
	const n, maxMeta = 400, 100
	c := newCluster(t, 1, "t")
	recs := make([]*kgo.Record, n+1)
	for i := range recs {
		key := "u" + strconv.Itoa(i)
		switch {
		case i == 0:
			key = "H1"
		case i%2 == 0:
			key = "H2"
		}
		recs[i] = &kgo.Record{Topic: "t", Key: []byte(key), Value: []byte("v" + strconv.Itoa(i))}
	}
	produceRecords(t, c.ListenAddrs(), recs...)
	var rejected atomic.Int32
	c.ControlKey(int16(kmsg.OffsetCommit), func(kreq kmsg.Request) (kmsg.Response, error, bool) {
		c.KeepControl()
		req := kreq.(*kmsg.OffsetCommitRequest)
		tooLarge := false
		for _, t := range req.Topics {
			for _, p := range t.Partitions {
				tooLarge = tooLarge || (p.Metadata != nil && len(*p.Metadata) > maxMeta)
			}
		}
		if !tooLarge {
			return nil, nil, false
		}
		// One partition: the whole request is answered with the error.
		rejected.Add(1)
		resp := req.ResponseKind().(*kmsg.OffsetCommitResponse)
		for _, t := range req.Topics {
			rt := kmsg.NewOffsetCommitResponseTopic()
			rt.Topic, rt.TopicID = t.Topic, t.TopicID
			for _, p := range t.Partitions {
				rp := kmsg.NewOffsetCommitResponseTopicPartition()
				rp.Partition = p.Partition
				rp.ErrorCode = kerr.OffsetMetadataTooLarge.Code
				rt.Partitions = append(rt.Partitions, rp)
			}
			resp.Topics = append(resp.Topics, rt)
		}
		return resp, nil, true
	})
	led := newOwnerLedger()
	rel1, rel2 := newReleaser(), newReleaser()
	t.Cleanup(rel1.Open)
	t.Cleanup(rel2.Open)
	cfg := baseConfig(c.ListenAddrs(), "g", heldKeyProcessor("A", led, map[string]*releaser{"H1": rel1, "H2": rel2}), "t")
	cfg.Retry.HoldDelay = 20 * time.Millisecond
	cfg.Logger = slog.New(slog.DiscardHandler) // a refused commit every 50 ms
	cons := startConsumer(t, cfg)
	waitFor(t, 30*time.Second, "the odd records", func() bool { return led.distinct() == n/2 })
	rel1.Open()
	waitFor(t, 30*time.Second, "the watermark to reach 2", func() bool {
		ls := cons.Lanes()
		return len(ls) == 1 && ls[0].Watermark == 2
	})
	adm := kadm.NewClient(newPlainClient(t, c.ListenAddrs()))
	committed := func() int64 {
		offs, err := adm.FetchOffsets(context.Background(), "g")
		if err != nil {
			t.Fatal(err)
		}
		o, ok := offs.Lookup("t", 0)
		if !ok {
			return -1
		}
		return o.At
	}
	// 40 commit intervals.
	if !waitForQuiet(2*time.Second, func() bool { return committed() == 2 }) {
		t.Errorf("committed offset %d with the watermark at 2 and the broker refusing the offset map (%d commits refused); want 2, committed without the map",
			committed(), rejected.Load())
	}
	rel2.Open()
	waitFor(t, 30*time.Second, "every record", func() bool { return led.distinct() == n+1 })
	if !waitForQuiet(5*time.Second, func() bool { return committed() == n+1 }) {
		t.Errorf("committed offset %d after every record finished; want the end offset %d", committed(), n+1)
	}
	stop(t, cons)
	t.Logf("commits refused for their offset map: %d", rejected.Load())
}

// TestFragmentedDoneSetSurvivesHandoff: record 0 is held (key H, Hold),
// the even records after it are H's too and wait behind it, and the
// 10,000 odd records (keys of their own) finish: a done set of 10,000 runs
// of one record, far more than 3,800 bytes of run-length map. A stops
// gracefully, B takes over and the hold is released. B must run none of
// the records A finished: the engine either encodes the set compactly
// enough or pauses the lane before the set outgrows what its commit can
// carry. Scaled down from the brief's 30,000 finished records to keep the
// test near 10 s under -race.
//
// Today: the map is cut at 3,800 bytes (1,414 runs) and B re-ran 8,586 of
// the 10,000 records A had finished, in each of 5 runs.
func TestFragmentedDoneSetSurvivesHandoff(t *testing.T) {
	t.Parallel()
	const half = 10_000
	c := newCluster(t, 1, "t")
	recs := make([]*kgo.Record, 2*half)
	for i := range recs {
		key := "H"
		if i%2 == 1 {
			key = "u" + strconv.Itoa(i)
		}
		recs[i] = &kgo.Record{Topic: "t", Key: []byte(key), Value: []byte("v" + strconv.Itoa(i))}
	}
	produceRecords(t, c.ListenAddrs(), recs...)
	led := newOwnerLedger()
	rel := newReleaser()
	t.Cleanup(rel.Open)
	held := map[string]*releaser{"H": rel}
	cfg := baseConfig(c.ListenAddrs(), "g", nil, "t")
	cfg.Retry.HoldDelay = 50 * time.Millisecond
	cfg.RevokeTimeout = time.Second
	// The held key's records are unfinished: let the lane hold them all.
	cfg.MaxInFlightPerPartition = 4 * half

	cfgA := cfg
	cfgA.Processor = heldKeyProcessor("A", led, held)
	a := startConsumer(t, cfgA)
	// A finishes every odd record, or pauses before (the map would not fit).
	deadline := time.Now().Add(60 * time.Second)
	for led.distinct() < half && time.Now().Before(deadline) {
		if ls := a.Lanes(); len(ls) == 1 && ls[0].Paused {
			if _, ok := stableFor(500*time.Millisecond, 5*time.Second, func() int64 { return int64(led.distinct()) }); ok {
				break
			}
		}
		time.Sleep(20 * time.Millisecond)
	}
	stop(t, a)
	finishedByA := led.finishedBy("A")

	rel.Open()
	cfgB := cfg
	cfgB.Processor = heldKeyProcessor("B", led, held)
	b := startConsumer(t, cfgB)
	waitFor(t, 60*time.Second, "every record", func() bool { return led.distinct() == 2*half })
	stop(t, b)
	reruns, sample := led.rerunsOf(finishedByA, "A")
	t.Logf("A finished %d records above a held one; B re-ran %d", len(finishedByA), reruns)
	if reruns != 0 {
		t.Errorf("B re-ran %d of the %d records A had finished (e.g. %v); want 0", reruns, len(finishedByA), sample)
	}
}
