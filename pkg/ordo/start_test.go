package ordo_test

import (
	"context"
	"errors"
	"log/slog"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/ordokafka/ordo/pkg/ordo"
)

// offsetsSeen is a processor that records the offsets it ran, by topic.
type offsetsSeen struct {
	mu   sync.Mutex
	seen map[string][]int64
	tier map[string]int
}

func newOffsetsSeen() *offsetsSeen {
	return &offsetsSeen{seen: map[string][]int64{}, tier: map[string]int{}}
}

func (o *offsetsSeen) Process(ctx context.Context, r *kgo.Record) error {
	info, _ := ordo.InfoFromContext(ctx)
	o.mu.Lock()
	defer o.mu.Unlock()
	o.seen[r.Topic] = append(o.seen[r.Topic], r.Offset)
	o.tier[r.Topic] = info.Tier
	return nil
}

func (o *offsetsSeen) of(topic string) []int64 {
	o.mu.Lock()
	defer o.mu.Unlock()
	return append([]int64(nil), o.seen[topic]...)
}

func admin(t *testing.T, addrs []string) *kadm.Client {
	t.Helper()
	cl, err := kgo.NewClient(kgo.SeedBrokers(addrs...))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(cl.Close)
	return kadm.NewClient(cl)
}

func numbered(topic string, n int, ts func(i int) time.Time) []*kgo.Record {
	recs := make([]*kgo.Record, n)
	for i := range recs {
		recs[i] = &kgo.Record{Topic: topic, Key: []byte("k" + strconv.Itoa(i%3)), Value: []byte("v" + strconv.Itoa(i))}
		if ts != nil {
			recs[i].Timestamp = ts(i)
		}
	}
	return recs
}

func equalOffsets(got []int64, from, to int64) bool {
	if int64(len(got)) != to-from {
		return false
	}
	seen := map[int64]bool{}
	for _, o := range got {
		if o < from || o >= to || seen[o] {
			return false
		}
		seen[o] = true
	}
	return true
}

func committedOffset(t *testing.T, adm *kadm.Client, group, topic string, p int32) int64 {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	resps, err := adm.FetchOffsets(ctx, group)
	if errors.Is(err, kerr.GroupIDNotFound) {
		return -1
	}
	if err != nil {
		t.Fatal(err)
	}
	r, ok := resps.Lookup(topic, p)
	if !ok {
		return -1
	}
	return r.At
}

// TestStartAtTimeAndOffset: with no commit, a source partition starts
// where Config.Start says: at the first record stamped at or after a time
// (the same answer as kadm's ListOffsetsAfterMilli), or at an offset,
// clamped to the log end.
func TestStartAtTimeAndOffset(t *testing.T) {
	t.Parallel()
	c := newCluster(t, 1, "t")
	base := time.Now().Add(-time.Hour).Truncate(time.Second)
	produceRecords(t, c.ListenAddrs(), numbered("t", 10, func(i int) time.Time { return base.Add(time.Duration(i) * time.Second) })...)
	adm := admin(t, c.ListenAddrs())
	at := base.Add(5500 * time.Millisecond) // between records 5 and 6
	listed, err := adm.ListOffsetsAfterMilli(context.Background(), at.UnixMilli(), "t")
	if err != nil {
		t.Fatal(err)
	}
	want, _ := listed.Lookup("t", 0)

	for _, tc := range []struct {
		name     string
		start    ordo.Start
		from, to int64
	}{
		{"time", ordo.StartAtTime(at), want.Offset, 10},
		{"offset", ordo.StartAtOffset(7), 7, 10},
		{"earliest", ordo.StartEarliest(), 0, 10},
	} {
		seen := newOffsetsSeen()
		cfg := baseConfig(c.ListenAddrs(), "g-"+tc.name, seen, "t")
		cfg.Start = tc.start
		cons := startConsumer(t, cfg)
		waitFor(t, 20*time.Second, tc.name+": the committed offset to reach 10", func() bool {
			return committedOffset(t, adm, "g-"+tc.name, "t", 0) == 10
		})
		stop(t, cons)
		if got := seen.of("t"); !equalOffsets(got, tc.from, tc.to) {
			t.Errorf("start %s: ran offsets %v, want [%d, %d)", tc.start, got, tc.from, tc.to)
		}
	}
	if want.Offset != 6 {
		t.Errorf("kadm listed %d for the time between records 5 and 6, want 6", want.Offset)
	}
}

// TestStartBeyondTheEndAndLatest: StartAtOffset past the log end and
// StartLatest skip the backlog and run what is produced afterwards; a
// retry tier with no commit still starts at its log start, so a retry
// produced before the member came is run.
func TestStartBeyondTheEndAndLatest(t *testing.T) {
	t.Parallel()
	const group = "g"
	tier := ordo.DefaultNaming.RetryTopic("t", group, 1)
	for _, start := range []ordo.Start{ordo.StartLatest(), ordo.StartAtOffset(1_000_000)} {
		c := newCluster(t, 1, "t", tier, ordo.DefaultNaming.DLQTopic("t", group))
		produceRecords(t, c.ListenAddrs(), numbered("t", 10, nil)...)
		produceRecords(t, c.ListenAddrs(), &kgo.Record{Topic: tier, Key: []byte("r"), Value: []byte("retry owed")})
		seen := newOffsetsSeen()
		cfg := baseConfig(c.ListenAddrs(), group, seen, "t")
		cfg.Start = start
		cfg.Retry.Tiers = []time.Duration{time.Millisecond}
		cons := startConsumer(t, cfg)
		// Produce until one new record runs: the first ones may land
		// before the member listed the log end.
		waitFor(t, 20*time.Second, "a record produced after the start to run", func() bool {
			produceRecords(t, c.ListenAddrs(), &kgo.Record{Topic: "t", Key: []byte("new"), Value: []byte("new")})
			return len(seen.of("t")) > 0
		})
		waitFor(t, 20*time.Second, "the tier's record to run", func() bool { return len(seen.of(tier)) == 1 })
		stop(t, cons)
		for _, o := range seen.of("t") {
			if o < 10 {
				t.Errorf("start %s: ran backlog offset %d", start, o)
			}
		}
		seen.mu.Lock()
		if seen.tier[tier] != 1 {
			t.Errorf("start %s: the tier's record ran as tier %d, want 1", start, seen.tier[tier])
		}
		seen.mu.Unlock()
	}
}

// TestStartIsIgnoredOnceCommitted: a group with a commit resumes there,
// whatever Config.Start says.
func TestStartIsIgnoredOnceCommitted(t *testing.T) {
	t.Parallel()
	c := newCluster(t, 1, "t")
	produceRecords(t, c.ListenAddrs(), numbered("t", 10, nil)...)
	adm := admin(t, c.ListenAddrs())
	if _, err := adm.CommitOffsets(context.Background(), "g", kadm.OffsetsFromRecords(kgo.Record{Topic: "t", Partition: 0, Offset: 3})); err != nil {
		t.Fatal(err)
	}
	for _, start := range []ordo.Start{ordo.StartLatest(), ordo.StartAtOffset(0)} {
		seen := newOffsetsSeen()
		cfg := baseConfig(c.ListenAddrs(), "g", seen, "t")
		cfg.Start = start
		cons := startConsumer(t, cfg)
		waitFor(t, 20*time.Second, "the group to reach the end", func() bool { return committedOffset(t, adm, "g", "t", 0) == 10 })
		stop(t, cons)
		if got := seen.of("t"); start.String() == "latest" && !equalOffsets(got, 4, 10) {
			t.Errorf("start %s over a commit at 4: ran %v, want [4, 10)", start, got)
		} else if start.String() == "0" && len(got) != 0 {
			t.Errorf("start %s over a commit at the end: ran %v, want nothing", start, got)
		}
	}
}

// lostSetup: 10 records on one partition, the group committed at 3, then
// retention (DeleteRecords) moves the log start to 8: offsets 3..7 are
// lost before the group read them.
func lostSetup(t *testing.T) (addrs []string, adm *kadm.Client) {
	t.Helper()
	c := newCluster(t, 1, "t")
	addrs = c.ListenAddrs()
	produceRecords(t, addrs, numbered("t", 10, nil)...)
	adm = admin(t, addrs)
	ctx := context.Background()
	if _, err := adm.CommitOffsets(ctx, "g", kadm.OffsetsFromRecords(kgo.Record{Topic: "t", Partition: 0, Offset: 2})); err != nil {
		t.Fatal(err)
	}
	del := kadm.Offsets{}
	del.Add(kadm.Offset{Topic: "t", Partition: 0, At: 8})
	resp, err := adm.DeleteRecords(ctx, del)
	if err == nil {
		err = resp.Error()
	}
	if err != nil {
		t.Fatal(err)
	}
	return addrs, adm
}

// TestOffsetsLostAtAssignment: each policy, on a commit that retention
// overtook. earliest runs 8 and 9; latest runs only what comes after;
// fail runs nothing, commits nothing and stops with an *OffsetsLostError
// naming the offsets. Each logs the loss and counts 5 lost offsets.
func TestOffsetsLostAtAssignment(t *testing.T) {
	t.Parallel()
	for _, policy := range []ordo.LostPolicy{ordo.LostEarliest, ordo.LostLatest, ordo.LostFail} {
		t.Run(string(policy), func(t *testing.T) {
			t.Parallel()
			addrs, adm := lostSetup(t)
			logs := &logCapture{prefixes: []string{"records were deleted by retention"}}
			seen := newOffsetsSeen()
			cfg := baseConfig(addrs, "g", seen, "t")
			cfg.OffsetsLost = policy
			cfg.Logger = slog.New(logs)
			cons, err := ordo.New(cfg)
			if err != nil {
				t.Fatal(err)
			}
			if err := cons.Start(context.Background()); err != nil {
				t.Fatal(err)
			}
			switch policy {
			case ordo.LostEarliest:
				waitFor(t, 20*time.Second, "offsets 8 and 9 to run", func() bool { return len(seen.of("t")) == 2 })
				stop(t, cons)
				if got := seen.of("t"); !equalOffsets(got, 8, 10) {
					t.Errorf("ran %v, want [8, 10)", got)
				}
			case ordo.LostLatest:
				waitFor(t, 20*time.Second, "a new record to run", func() bool {
					produceRecords(t, addrs, &kgo.Record{Topic: "t", Value: []byte("new")})
					return len(seen.of("t")) > 0
				})
				stop(t, cons)
				for _, o := range seen.of("t") {
					if o < 10 {
						t.Errorf("ran offset %d of the backlog, want only new records", o)
					}
				}
			case ordo.LostFail:
				select {
				case <-cons.Stopped():
				case <-time.After(20 * time.Second):
					t.Fatal("the consumer did not stop")
				}
				err := cons.Stop(context.Background())
				var lost *ordo.OffsetsLostError
				if !errors.As(err, &lost) {
					t.Fatalf("stop returned %v, want an *ordo.OffsetsLostError", err)
				}
				if lost.Topic != "t" || lost.Partition != 0 || lost.Committed != 3 || lost.LogStart != 8 {
					t.Errorf("error %+v, want t/0 committed 3, log start 8", *lost)
				}
				if !strings.Contains(err.Error(), "ordo replay reset") {
					t.Errorf("error %q does not say how to move on", err)
				}
				if got := seen.of("t"); len(got) != 0 {
					t.Errorf("ran %v, want nothing", got)
				}
				if got := committedOffset(t, adm, "g", "t", 0); got != 3 {
					t.Errorf("committed offset %d after the failure, want 3 (untouched)", got)
				}
			}
			if got := metricValue(t, cons.Registry(), "ordo_offsets_lost_total", "topic", "t"); got != 5 {
				t.Errorf("ordo_offsets_lost_total = %v, want 5", got)
			}
			line, ok := logs.find("records were deleted by retention", time.Time{})
			if !ok || !strings.Contains(line.attrs, "lost=5") || !strings.Contains(line.attrs, "policy="+string(policy)) {
				t.Errorf("log line %+v (found %v), want lost=5 policy=%s", line, ok, policy)
			}
		})
	}
}

// TestOffsetsLostWhileConsuming: the member stands at a low offset (its
// first record is stuck and the partition paused on its tracked span)
// while retention deletes records ahead of it. When it fetches again,
// franz-go resumes at the log start and the lane counts the skipped
// offsets exactly; with LostFail the consumer stops instead, naming the
// offset it stood at and the log start.
func TestOffsetsLostWhileConsuming(t *testing.T) {
	t.Parallel()
	for _, policy := range []ordo.LostPolicy{ordo.LostEarliest, ordo.LostFail} {
		t.Run(string(policy), func(t *testing.T) {
			t.Parallel()
			offsetsLostWhileConsuming(t, policy)
		})
	}
}

func offsetsLostWhileConsuming(t *testing.T, policy ordo.LostPolicy) {
	const n, deleteTo = 200, 120
	c := newCluster(t, 1, "t")
	addrs := c.ListenAddrs()
	recs := make([]*kgo.Record, n)
	for i := range recs {
		recs[i] = &kgo.Record{Topic: "t", Key: []byte("k" + strconv.Itoa(i)), Value: make([]byte, 100)}
	}
	produceRecords(t, addrs, recs...)
	rel := newReleaser()
	t.Cleanup(rel.Open)
	seen := newOffsetsSeen()
	proc := ordo.ProcessorFunc(func(ctx context.Context, r *kgo.Record) error {
		if r.Offset == 0 {
			select {
			case <-rel.ch:
			case <-ctx.Done():
				return ctx.Err()
			}
		}
		return seen.Process(ctx, r)
	})
	cfg := baseConfig(addrs, "g", proc, "t")
	cfg.MaxTrackedSpan = 20
	cfg.MaxPollRecords = 5
	cfg.OffsetsLost = policy
	cfg.KgoOpts = append(cfg.KgoOpts, kgo.FetchMaxBytes(1<<10), kgo.FetchMaxPartitionBytes(1<<10))
	cons := startConsumer(t, cfg)
	waitFor(t, 20*time.Second, "the partition to pause behind offset 0", func() bool {
		ls := cons.Lanes()
		return len(ls) == 1 && ls[0].Paused
	})
	adm := admin(t, addrs)
	del := kadm.Offsets{}
	del.Add(kadm.Offset{Topic: "t", Partition: 0, At: deleteTo})
	if resp, err := adm.DeleteRecords(context.Background(), del); err != nil || resp.Error() != nil {
		t.Fatalf("delete records: %v %v", err, resp.Error())
	}
	rel.Open()
	below := func() int {
		k := 0
		for _, o := range seen.of("t") {
			if o < deleteTo {
				k++
			}
		}
		return k
	}
	if policy == ordo.LostFail {
		select {
		case <-cons.Stopped():
		case <-time.After(20 * time.Second):
			t.Fatal("the consumer did not stop")
		}
		err := cons.Stop(context.Background())
		var lost *ordo.OffsetsLostError
		if !errors.As(err, &lost) {
			t.Fatalf("stop returned %v, want an *ordo.OffsetsLostError", err)
		}
		if lost.Committed != int64(below()) || lost.LogStart != deleteTo {
			t.Errorf("error %+v, want it to stand at %d (the records it ran) with log start %d", *lost, below(), deleteTo)
		}
		for _, o := range seen.of("t") {
			if o >= deleteTo {
				t.Errorf("ran offset %d after the loss", o)
			}
		}
	} else {
		waitFor(t, 20*time.Second, "the last record to run", func() bool {
			for _, o := range seen.of("t") {
				if o == n-1 {
					return true
				}
			}
			return false
		})
		stop(t, cons)
	}
	k := below()
	got := metricValue(t, cons.Registry(), "ordo_offsets_lost_total", "topic", "t")
	if k == 0 || k >= deleteTo || int(got) != deleteTo-k {
		t.Errorf("ran %d records below %d and counted %v lost, want %d lost", k, deleteTo, got, deleteTo-k)
	}
}

func TestParseStart(t *testing.T) {
	for in, want := range map[string]string{
		"earliest": "earliest", "": "earliest", "LATEST": "latest", "42": "42",
		"2026-11-30T07:00:00Z": "2026-11-30T07:00:00Z", "2026-11-30T08:00:00+01:00": "2026-11-30T07:00:00Z",
	} {
		s, err := ordo.ParseStart(in)
		if err != nil || s.String() != want {
			t.Errorf("ParseStart(%q) = %v, %v; want %s", in, s, err, want)
		}
	}
	for _, in := range []string{"-1", "yesterday", "2026-11-30"} {
		if _, err := ordo.ParseStart(in); err == nil {
			t.Errorf("ParseStart(%q) accepted", in)
		}
	}
}
