package ordo_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"math/rand/v2"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/ordokafka/ordo/pkg/ordo"
)

// chainTopics are a source topic and the group's retry chain: n tiers and
// the dead-letter topic, named as ordo.DefaultNaming names them.
func chainTopics(topic, group string, tiers int) []string {
	out := []string{topic, ordo.DefaultNaming.DLQTopic(topic, group)}
	for n := 1; n <= tiers; n++ {
		out = append(out, ordo.DefaultNaming.RetryTopic(topic, group, n))
	}
	return out
}

// callLog records each processor call: which record, on which tier, at
// which attempt, when.
type callLog struct {
	mu    sync.Mutex
	calls map[string][]call // by record value
}

type call struct {
	tier, attempt int
	at            time.Time
	origin        ordo.Origin
}

func (c *callLog) add(ctx context.Context, r *kgo.Record) call {
	info, _ := ordo.InfoFromContext(ctx)
	cl := call{tier: info.Tier, attempt: info.Attempt, at: time.Now(), origin: ordo.OriginOf(ctx, r)}
	c.mu.Lock()
	c.calls[string(r.Value)] = append(c.calls[string(r.Value)], cl)
	c.mu.Unlock()
	return cl
}

func (c *callLog) of(v string) []call {
	c.mu.Lock()
	defer c.mu.Unlock()
	return append([]call(nil), c.calls[v]...)
}

// TestRetryChainToTheDLQ: a record that always fails gets exactly its
// calls: MaxAttempts in place on the source topic, TierAttempts on each
// tier, each tier no sooner than its delay after the failure before it;
// then it is dead-lettered once, with every header; the processor sees the
// tier, the attempt counted across deliveries and the record's origin. A
// record that fails twice and then succeeds on tier 1 is applied once.
// Every other record is applied once, and every topic's commits reach its
// end.
func TestRetryChainToTheDLQ(t *testing.T) {
	const group = "g"
	c := newCluster(t, 2, chainTopics("t", group, 2)...)
	var recs []*kgo.Record
	for i := range 200 {
		recs = append(recs, &kgo.Record{Topic: "t", Key: []byte("k" + strconv.Itoa(i%20)), Value: []byte("v" + strconv.Itoa(i))})
	}
	recs = append(recs,
		&kgo.Record{Topic: "t", Key: []byte("poison"), Value: []byte("poison"), Headers: []kgo.RecordHeader{{Key: "trace", Value: []byte("t-1")}}},
		&kgo.Record{Topic: "t", Key: []byte("flaky"), Value: []byte("flaky")},
	)
	produceRecords(t, c.ListenAddrs(), recs...)
	log := &callLog{calls: map[string][]call{}}
	var applied sync.Map
	proc := ordo.ProcessorFunc(func(ctx context.Context, r *kgo.Record) error {
		cl := log.add(ctx, r)
		switch string(r.Value) {
		case "poison":
			return fmt.Errorf("poison call %d", cl.attempt)
		case "flaky":
			if cl.tier == 0 {
				return errors.New("not yet")
			}
		}
		if _, dup := applied.LoadOrStore(string(r.Value), true); dup {
			return ordo.Permanent(fmt.Errorf("%s applied twice", r.Value))
		}
		return nil
	})
	cfg := baseConfig(c.ListenAddrs(), group, proc, "t")
	cfg.ProcessorName = "ledger"
	cfg.Retry = ordo.RetryPolicy{
		MaxAttempts: 2, TierAttempts: 1, InitialBackoff: time.Millisecond, MaxBackoff: 5 * time.Millisecond,
		Tiers: []time.Duration{200 * time.Millisecond, 400 * time.Millisecond},
	}
	cons := startConsumer(t, cfg)
	dead := consumeAll(t, c.ListenAddrs(), ordo.DefaultNaming.DLQTopic("t", group), 1)
	waitFor(t, 30*time.Second, "every other record", func() bool {
		n := 0
		applied.Range(func(any, any) bool { n++; return true })
		return n == 201
	})

	// The poison record's calls: 2 in place, 1 on tier 1, 1 on tier 2.
	calls := log.of("poison")
	want := []struct{ tier, attempt int }{{0, 1}, {0, 2}, {1, 3}, {2, 4}}
	if len(calls) != len(want) {
		t.Fatalf("poison: %d calls, want %d: %+v", len(calls), len(want), calls)
	}
	src := recs[200]
	for i, w := range want {
		got := calls[i]
		if got.tier != w.tier || got.attempt != w.attempt {
			t.Errorf("poison call %d: tier %d attempt %d, want tier %d attempt %d", i+1, got.tier, got.attempt, w.tier, w.attempt)
		}
		if got.origin.Topic != "t" || got.origin.Offset != src.Offset || got.origin.Partition != src.Partition {
			t.Errorf("poison call %d: origin %+v, want t/%d/%d", i+1, got.origin, src.Partition, src.Offset)
		}
	}
	if gap := calls[2].at.Sub(calls[1].at); gap < 200*time.Millisecond {
		t.Errorf("tier 1 ran %s after the failure before it, before its 200ms delay", gap)
	}
	if gap := calls[3].at.Sub(calls[2].at); gap < 400*time.Millisecond {
		t.Errorf("tier 2 ran %s after the failure before it, before its 400ms delay", gap)
	}
	// The dead letter: the source record, byte-exact, with Ordo's headers.
	d := dead[0]
	if string(d.Key) != "poison" || string(d.Value) != "poison" || headerValue(d, "trace") != "t-1" {
		t.Errorf("dead letter %q=%q trace %q: not the source record", d.Key, d.Value, headerValue(d, "trace"))
	}
	for h, v := range map[string]string{
		ordo.HeaderOriginalTopic: "t", ordo.HeaderOriginalPartition: strconv.Itoa(int(src.Partition)),
		ordo.HeaderOriginalOffset: strconv.FormatInt(src.Offset, 10), ordo.HeaderAttempt: "4",
		ordo.HeaderError: "poison call 4", ordo.HeaderErrorClass: "retryable", ordo.HeaderGroup: group,
		ordo.HeaderProcessor: "ledger",
	} {
		if got := headerValue(d, h); got != v {
			t.Errorf("dead letter header %s = %q, want %q", h, got, v)
		}
	}
	// The flaky record: two calls in place, applied on tier 1.
	if fl := log.of("flaky"); len(fl) != 3 || fl[2].tier != 1 || fl[2].attempt != 3 {
		t.Errorf("flaky calls %+v; want two in place, then one on tier 1 (attempt 3)", fl)
	}
	waitFor(t, 30*time.Second, "commits at the end of every topic of the chain", func() bool {
		offs, err := kadm.NewClient(newPlainClient(t, c.ListenAddrs())).FetchOffsets(context.Background(), group)
		if err != nil {
			return false
		}
		ends, err := kadm.NewClient(newPlainClient(t, c.ListenAddrs())).ListEndOffsets(context.Background(), chainTopics("t", group, 2)[2:]...)
		if err != nil {
			return false
		}
		done := true
		ends.Each(func(e kadm.ListedOffset) {
			if o, ok := offs.Lookup(e.Topic, e.Partition); e.Offset > 0 && (!ok || o.At != e.Offset) {
				done = false
			}
		})
		return done
	})
	if got := metricValue(t, cons.Registry(), "ordo_routed_total", "target", "tier-1"); got != 2 {
		t.Errorf("routed to tier 1: %v, want 2 (poison and flaky)", got)
	}
	if got := metricValue(t, cons.Registry(), "ordo_routed_total", "target", "dlq"); got != 1 {
		t.Errorf("routed to the DLQ: %v, want 1", got)
	}
	// Every routed record is counted under its source topic, also when a
	// tier routes it on.
	all := metricValue(t, cons.Registry(), "ordo_routed_total", "", "")
	if bySource := metricValue(t, cons.Registry(), "ordo_routed_total", "topic", "t"); bySource != all || all < 4 {
		t.Errorf("ordo_routed_total: %v in all, %v under topic t: want every one under the source topic", all, bySource)
	}
	stop(t, cons)
}

// TestTierDelayHoldsAcrossRestarts: a record waiting in a retry tier is not
// run before its due time, even by a new consumer started after the one
// that sent it there stopped: the delay comes from the record's header.
// While it waits, no worker waits on it and the source topic keeps flowing.
func TestTierDelayHoldsAcrossRestarts(t *testing.T) {
	const group = "g"
	c := newCluster(t, 1, chainTopics("t", group, 1)...)
	produceRecords(t, c.ListenAddrs(), &kgo.Record{Topic: "t", Key: []byte("a"), Value: []byte("late")})
	var failedAt atomic.Int64
	var tierCallAt atomic.Int64
	var others atomic.Int64
	proc := ordo.ProcessorFunc(func(ctx context.Context, r *kgo.Record) error {
		info, _ := ordo.InfoFromContext(ctx)
		switch {
		case string(r.Value) != "late":
			others.Add(1)
		case info.Tier == 0:
			failedAt.Store(time.Now().UnixNano())
			return errors.New("later")
		default:
			tierCallAt.Store(time.Now().UnixNano())
		}
		return nil
	})
	cfg := baseConfig(c.ListenAddrs(), group, proc, "t")
	cfg.Retry = ordo.RetryPolicy{MaxAttempts: 1, Tiers: []time.Duration{1500 * time.Millisecond}}
	a := startConsumer(t, cfg)
	waitFor(t, 10*time.Second, "the record to go to tier 1", func() bool {
		return metricValue(t, a.Registry(), "ordo_routed_total", "target", "tier-1") == 1
	})
	stop(t, a)
	b := startConsumer(t, cfg)
	// The source keeps flowing while the tier waits.
	var more []*kgo.Record
	for i := range 100 {
		more = append(more, &kgo.Record{Topic: "t", Key: []byte("k" + strconv.Itoa(i)), Value: []byte("v" + strconv.Itoa(i))})
	}
	produceRecords(t, c.ListenAddrs(), more...)
	waitFor(t, 10*time.Second, "the source's records while the tier waits", func() bool { return others.Load() == 100 })
	if tierCallAt.Load() != 0 {
		t.Fatalf("the tier record ran %s after its failure, before its 1.5s delay", time.Duration(tierCallAt.Load()-failedAt.Load()))
	}
	waitFor(t, 10*time.Second, "the tier record once due", func() bool { return tierCallAt.Load() != 0 })
	if gap := time.Duration(tierCallAt.Load() - failedAt.Load()); gap < 1500*time.Millisecond {
		t.Errorf("the tier record ran %s after its failure, before its 1.5s delay", gap)
	}
	stop(t, b)
}

// TestTwoGroupsKeepTheirFailuresApart: two groups read one topic; each
// routes its failures to its own tier and dead-letter topics and consumes
// only its own tier: neither ever sees the other's failures.
func TestTwoGroupsKeepTheirFailuresApart(t *testing.T) {
	topicsA, topicsB := chainTopics("t", "billing", 1), chainTopics("t", "audit", 1)
	c := newCluster(t, 1, append(topicsA, topicsB[1:]...)...)
	produceRecords(t, c.ListenAddrs(),
		&kgo.Record{Topic: "t", Key: []byte("x"), Value: []byte("bad-for-billing")},
		&kgo.Record{Topic: "t", Key: []byte("y"), Value: []byte("bad-for-audit")},
	)
	type seen struct {
		mu    sync.Mutex
		tiers map[string][]int
	}
	run := func(group, poison string) (*ordo.Consumer, *seen) {
		s := &seen{tiers: map[string][]int{}}
		proc := ordo.ProcessorFunc(func(ctx context.Context, r *kgo.Record) error {
			info, _ := ordo.InfoFromContext(ctx)
			s.mu.Lock()
			s.tiers[string(r.Value)] = append(s.tiers[string(r.Value)], info.Tier)
			s.mu.Unlock()
			if string(r.Value) == poison {
				return errors.New(group + " cannot")
			}
			return nil
		})
		cfg := baseConfig(c.ListenAddrs(), group, proc, "t")
		cfg.Retry = ordo.RetryPolicy{MaxAttempts: 1, Tiers: []time.Duration{50 * time.Millisecond}}
		return startConsumer(t, cfg), s
	}
	billing, sb := run("billing", "bad-for-billing")
	audit, sa := run("audit", "bad-for-audit")
	da := consumeAll(t, c.ListenAddrs(), ordo.DefaultNaming.DLQTopic("t", "audit"), 1)
	db := consumeAll(t, c.ListenAddrs(), ordo.DefaultNaming.DLQTopic("t", "billing"), 1)
	if string(db[0].Value) != "bad-for-billing" || string(da[0].Value) != "bad-for-audit" {
		t.Errorf("dead letters crossed: billing got %q, audit got %q", db[0].Value, da[0].Value)
	}
	stop(t, billing)
	stop(t, audit)
	// Each group ran the other's poison once, on its source topic only.
	sb.mu.Lock()
	defer sb.mu.Unlock()
	sa.mu.Lock()
	defer sa.mu.Unlock()
	if got := sb.tiers["bad-for-audit"]; len(got) != 1 || got[0] != 0 {
		t.Errorf("billing ran audit's failure on tiers %v, want once on the source", got)
	}
	if got := sa.tiers["bad-for-billing"]; len(got) != 1 || got[0] != 0 {
		t.Errorf("audit ran billing's failure on tiers %v, want once on the source", got)
	}
	if got := sb.tiers["bad-for-billing"]; len(got) != 2 || got[1] != 1 {
		t.Errorf("billing ran its own failure on tiers %v, want source then tier 1", got)
	}
}

// TestForgedHeadersAreNotTrusted: ordo- headers on a source record, in any
// case, are not read (a forged not-before does not delay it, a forged
// attempt does not count) and never reach the copies Ordo writes.
func TestForgedHeadersAreNotTrusted(t *testing.T) {
	const group = "g"
	c := newCluster(t, 1, chainTopics("t", group, 1)...)
	far := strconv.FormatInt(time.Now().Add(time.Hour).UnixMilli(), 10)
	produceRecords(t, c.ListenAddrs(), &kgo.Record{Topic: "t", Key: []byte("k"), Value: []byte("x"), Headers: []kgo.RecordHeader{
		{Key: "ORDO-Not-Before", Value: []byte(far)},
		{Key: "Ordo-Attempt", Value: []byte("99")},
		{Key: "ordo-original-topic", Value: []byte("evil")},
		{Key: "ORDO-Error", Value: []byte("forged")},
		{Key: "kept", Value: []byte("yes")},
	}})
	var attempts []int
	var mu sync.Mutex
	proc := ordo.ProcessorFunc(func(ctx context.Context, r *kgo.Record) error {
		info, _ := ordo.InfoFromContext(ctx)
		mu.Lock()
		attempts = append(attempts, info.Attempt)
		mu.Unlock()
		return errors.New("no")
	})
	cfg := baseConfig(c.ListenAddrs(), group, proc, "t")
	cfg.Retry = ordo.RetryPolicy{MaxAttempts: 1, Tiers: []time.Duration{20 * time.Millisecond}}
	cons := startConsumer(t, cfg)
	dead := consumeAll(t, c.ListenAddrs(), ordo.DefaultNaming.DLQTopic("t", group), 1)
	stop(t, cons)
	mu.Lock()
	defer mu.Unlock()
	if len(attempts) != 2 || attempts[0] != 1 || attempts[1] != 2 {
		t.Errorf("attempts %v, want [1 2]: the forged attempt was read", attempts)
	}
	for _, h := range dead[0].Headers {
		if strings.HasPrefix(strings.ToLower(h.Key), "ordo-") {
			if h.Key != strings.ToLower(h.Key) || string(h.Value) == "forged" || string(h.Value) == "evil" || string(h.Value) == far {
				t.Errorf("forged header %s=%q reached the dead letter", h.Key, h.Value)
			}
		}
	}
	if headerValue(dead[0], "kept") != "yes" || headerValue(dead[0], ordo.HeaderOriginalTopic) != "t" || headerValue(dead[0], ordo.HeaderAttempt) != "2" {
		t.Errorf("dead letter headers %v: foreign header lost or Ordo's wrong", dead[0].Headers)
	}
}

// TestOversizedDeadLetterIsCutAndThePartitionMovesOn: a record of almost
// 1 MB fails with Permanent; its dead-letter copy, with Ordo's headers, is
// over the producer's limit. It is written with its value cut, headers
// saying so and where the whole record is, and the partition's commits move
// past it (before: MESSAGE_TOO_LARGE every MaxBackoff, forever).
func TestOversizedDeadLetterIsCutAndThePartitionMovesOn(t *testing.T) {
	const group = "g"
	c := newCluster(t, 1, chainTopics("t", group, 0)...)
	big := make([]byte, 999_000)
	for i := range big {
		big[i] = byte('a' + i%26)
	}
	produceRecords(t, c.ListenAddrs(),
		&kgo.Record{Topic: "t", Key: []byte("big"), Value: big},
		&kgo.Record{Topic: "t", Key: []byte("next"), Value: []byte("after")},
	)
	var after atomic.Bool
	proc := ordo.ProcessorFunc(func(ctx context.Context, r *kgo.Record) error {
		if string(r.Key) == "big" {
			return ordo.Permanent(errors.New("cannot parse a megabyte of " + strings.Repeat("x", 3000)))
		}
		after.Store(true)
		return nil
	})
	cons := startConsumer(t, baseConfig(c.ListenAddrs(), group, proc, "t"))
	dead := consumeAll(t, c.ListenAddrs(), ordo.DefaultNaming.DLQTopic("t", group), 1)
	d := dead[0]
	if len(d.Value) >= len(big) || !bytes.Equal(d.Value, big[:len(d.Value)]) {
		t.Errorf("dead letter value of %d bytes: not a cut of the %d-byte original", len(d.Value), len(big))
	}
	if headerValue(d, ordo.HeaderTruncated) != "true" || headerValue(d, ordo.HeaderOriginalSize) != strconv.Itoa(len(big)) ||
		headerValue(d, ordo.HeaderOriginalOffset) != "0" || headerValue(d, ordo.HeaderOriginalTopic) != "t" {
		t.Errorf("headers %v: want truncated, the original size and where the original is", d.Headers)
	}
	waitFor(t, 20*time.Second, "the partition to commit past it", func() bool {
		ls := cons.Lanes()
		return after.Load() && len(ls) == 1 && ls[0].Committed == 2
	})
	if got := metricValue(t, cons.Registry(), "ordo_out_produce_errors_total", "reason", "too_large"); got < 1 {
		t.Errorf("too_large produce errors: %v, want at least 1", got)
	}
	stop(t, cons)
}

// TestUnproducibleDeadLetterBlocksLoudly: the dead-letter topic does not
// exist. The failed record is never skipped: its partition's commits wait
// for it, the partition is reported blocked (ordo_out_blocked, Ready fails
// naming it), the produce is tried again about every MaxBackoff, and the
// warnings stay few. Once the topic exists the record goes through and the
// partition moves on.
func TestUnproducibleDeadLetterBlocksLoudly(t *testing.T) {
	const group = "g"
	c := newCluster(t, 1, "t")
	produceRecords(t, c.ListenAddrs(),
		&kgo.Record{Topic: "t", Key: []byte("bad"), Value: []byte("bad")},
		&kgo.Record{Topic: "t", Key: []byte("ok"), Value: []byte("ok")},
	)
	proc := ordo.ProcessorFunc(func(ctx context.Context, r *kgo.Record) error {
		if string(r.Key) == "bad" {
			return ordo.Permanent(errors.New("bad"))
		}
		return nil
	})
	logs := &logCapture{}
	cfg := baseConfig(c.ListenAddrs(), group, proc, "t")
	cfg.Logger = slog.New(logs)
	cfg.Retry.MaxBackoff = 300 * time.Millisecond
	cons := startConsumer(t, cfg)
	waitFor(t, 20*time.Second, "the partition to be reported blocked", func() bool {
		return metricValue(t, cons.Registry(), "ordo_out_blocked", "", "") == 1
	})
	start := time.Now()
	waitFor(t, 20*time.Second, "a few tries", func() bool {
		return metricValue(t, cons.Registry(), "ordo_out_produce_errors_total", "", "") >= 4
	})
	if err := cons.Ready(); err == nil || !strings.Contains(err.Error(), "t/0") {
		t.Errorf("Ready = %v; want it to name the blocked partition", err)
	}
	if l := cons.Lanes()[0]; l.Committed > 0 {
		t.Errorf("committed %d past the record that could not be dead-lettered", l.Committed)
	}
	tries := metricValue(t, cons.Registry(), "ordo_out_produce_errors_total", "", "")
	if took := time.Since(start); tries > 2+took.Seconds()/0.3*1.5+2 {
		t.Errorf("%v tries in %s with MaxBackoff 300ms: faster than MaxBackoff", tries, took)
	}
	logs.mu.Lock()
	warnings := 0
	for _, r := range logs.recs {
		if strings.Contains(r.msg, "failed record") {
			warnings++
		}
	}
	logs.mu.Unlock()
	if warnings > 2 {
		t.Errorf("%d warnings for %v failed tries: not at a bounded rate", warnings, tries)
	}
	if _, err := kadm.NewClient(newPlainClient(t, c.ListenAddrs())).CreateTopic(context.Background(), 1, 1, nil, ordo.DefaultNaming.DLQTopic("t", group)); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 20*time.Second, "the record to go through and the partition to move on", func() bool {
		ls := cons.Lanes()
		return len(ls) == 1 && ls[0].Committed == 2 && ls[0].Blocked == ""
	})
	stop(t, cons)
}

// TestRoutedRecordsKeepTheirPartition: retries and dead letters land on
// the partition number their record came from, in every tier, whatever
// the key would hash to. A redriven record (ordo-redrive-id) that fails again keeps
// the id in its new dead letter.
func TestRoutedRecordsKeepTheirPartition(t *testing.T) {
	t.Parallel()
	const group, n = "g", 40
	c := newCluster(t, 4, chainTopics("t", group, 1)...)
	recs := make([]*kgo.Record, n)
	for i := range recs {
		// The same key on every partition: a hash would put them together.
		recs[i] = &kgo.Record{Topic: "t", Partition: int32(i % 4), Key: []byte("same"), Value: []byte(strconv.Itoa(i))}
	}
	cl, err := kgo.NewClient(kgo.SeedBrokers(c.ListenAddrs()...), kgo.RecordPartitioner(kgo.ManualPartitioner()))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	if err := cl.ProduceSync(context.Background(), recs...).FirstErr(); err != nil {
		t.Fatal(err)
	}
	redriven := &kgo.Record{Topic: ordo.DefaultNaming.RetryTopic("t", group, 1), Partition: 2, Key: []byte("r"), Value: []byte("again"), Headers: []kgo.RecordHeader{
		{Key: ordo.HeaderOriginalTopic, Value: []byte("t")},
		{Key: ordo.HeaderOriginalPartition, Value: []byte("3")},
		{Key: ordo.HeaderOriginalOffset, Value: []byte("99")},
		{Key: ordo.HeaderRedriveID, Value: []byte("rd-1")},
	}}
	if err := cl.ProduceSync(context.Background(), redriven).FirstErr(); err != nil {
		t.Fatal(err)
	}
	proc := ordo.ProcessorFunc(func(context.Context, *kgo.Record) error { return errors.New("no") })
	cfg := baseConfig(c.ListenAddrs(), group, proc, "t")
	cfg.Retry = ordo.RetryPolicy{MaxAttempts: 1, Tiers: []time.Duration{time.Millisecond}}
	cons := startConsumer(t, cfg)
	dead := consumeAll(t, c.ListenAddrs(), ordo.DefaultNaming.DLQTopic("t", group), n+1)
	stop(t, cons)
	retries := consumeAll(t, c.ListenAddrs(), ordo.DefaultNaming.RetryTopic("t", group, 1), n+1)
	for _, set := range [][]*kgo.Record{dead, retries} {
		for _, r := range set {
			if string(r.Value) == "again" && r.Topic != ordo.DefaultNaming.DLQTopic("t", group) {
				continue // the test wrote it to partition 2
			}
			if want := headerValue(r, ordo.HeaderOriginalPartition); strconv.Itoa(int(r.Partition)) != want {
				t.Errorf("%s/%d: routed from partition %s", r.Topic, r.Partition, want)
			}
		}
	}
	found := false
	for _, r := range dead {
		if string(r.Value) == "again" {
			found = true
			if got := headerValue(r, ordo.HeaderRedriveID); got != "rd-1" {
				t.Errorf("the redriven record's new dead letter has ordo-redrive-id %q, want rd-1", got)
			}
		} else if got := headerValue(r, ordo.HeaderRedriveID); got != "" {
			t.Errorf("dead letter %q has ordo-redrive-id %q", r.Value, got)
		}
	}
	if !found {
		t.Error("the redriven record did not reach the dead-letter topic")
	}
}

// TestARoutedRecordFreesItsKey: a record handed to the dead-letter topic
// has left its key's order, so the key's next record runs while the dead
// letter's produce keeps failing (the topic is missing), and the commit
// still waits at the dead letter.
func TestARoutedRecordFreesItsKey(t *testing.T) {
	t.Parallel()
	c := newCluster(t, 1, "t")
	produceRecords(t, c.ListenAddrs(),
		&kgo.Record{Topic: "t", Key: []byte("k"), Value: []byte("bad")},
		&kgo.Record{Topic: "t", Key: []byte("k"), Value: []byte("good")},
	)
	var ranGood atomic.Bool
	proc := ordo.ProcessorFunc(func(_ context.Context, r *kgo.Record) error {
		if string(r.Value) == "bad" {
			return ordo.Permanent(errors.New("bad"))
		}
		ranGood.Store(true)
		return nil
	})
	cfg := baseConfig(c.ListenAddrs(), "g", proc, "t")
	cfg.Retry.MaxBackoff = 200 * time.Millisecond
	cfg.Logger = slog.New(&logCapture{})
	cons := startConsumer(t, cfg)
	waitFor(t, 20*time.Second, "the key's next record to run", ranGood.Load)
	waitFor(t, 20*time.Second, "the dead letter's produce to be reported failing", func() bool {
		return metricValue(t, cons.Registry(), "ordo_out_blocked", "", "") == 1
	})
	if l := cons.Lanes()[0]; l.Committed > 0 || l.Watermark != 0 {
		t.Errorf("committed %d, watermark %d: past the dead letter not yet produced", l.Committed, l.Watermark)
	}
	stopCtx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	_ = cons.StopAndCancel(stopCtx)
}

// TestAFailingKeyGoesToItsTierAfterOneCall: once a key's record went to
// retry tier 1 after its in-place attempts, its next failing records go
// there after one call each (for Retry.Tiers[0]), instead of each waiting
// out the in-place backoffs; a record of the key that succeeds is applied
// as usual. Without tiers every record gets its in-place attempts.
func TestAFailingKeyGoesToItsTierAfterOneCall(t *testing.T) {
	t.Parallel()
	for _, tiers := range [][]time.Duration{{time.Hour}, nil} {
		c := newCluster(t, 1, chainTopics("t", "g", len(tiers))...)
		var recs []*kgo.Record
		for i := range 5 {
			recs = append(recs, &kgo.Record{Topic: "t", Key: []byte("k"), Value: []byte("bad" + strconv.Itoa(i))})
		}
		recs = append(recs, &kgo.Record{Topic: "t", Key: []byte("k"), Value: []byte("good")})
		produceRecords(t, c.ListenAddrs(), recs...)
		var mu sync.Mutex
		calls := map[string]int{}
		proc := ordo.ProcessorFunc(func(ctx context.Context, r *kgo.Record) error {
			info, _ := ordo.InfoFromContext(ctx)
			if info.Tier > 0 {
				return nil // a tier applies it (not reached within the hour)
			}
			mu.Lock()
			calls[string(r.Value)]++
			mu.Unlock()
			if string(r.Value) == "good" {
				return nil
			}
			return errors.New("bad")
		})
		cfg := baseConfig(c.ListenAddrs(), "g", proc, "t")
		cfg.Retry = ordo.RetryPolicy{MaxAttempts: 3, InitialBackoff: time.Millisecond, MaxBackoff: 5 * time.Millisecond, Tiers: tiers}
		cons := startConsumer(t, cfg)
		waitFor(t, 20*time.Second, "the partition to move past every record", func() bool {
			for _, l := range cons.Lanes() {
				if l.Topic == "t" && l.Committed == 6 {
					return true
				}
			}
			return false
		})
		stop(t, cons)
		mu.Lock()
		want := map[string]int{"bad0": 3, "bad1": 1, "bad2": 1, "bad3": 1, "bad4": 1, "good": 1}
		if tiers == nil {
			want = map[string]int{"bad0": 3, "bad1": 3, "bad2": 3, "bad3": 3, "bad4": 3, "good": 1}
		}
		if !maps.Equal(calls, want) {
			t.Errorf("tiers %v: calls on the source topic %v, want %v", tiers, calls, want)
		}
		mu.Unlock()
	}
}

// TestATierHoldsABoundedBacklog: 5,000 records wait in a retry tier, due
// in an hour. The tier's partition takes a bounded share of them (its
// waiting bound plus what one fetch brought), pauses (not_due), and runs
// nothing: no worker waits on them. Once the clock passes their due time,
// every one is called once, each key's in offset order, and the tier's
// watermark reaches its end.
func TestATierHoldsABoundedBacklog(t *testing.T) {
	const group, n = "g", 5000
	tier := ordo.DefaultNaming.RetryTopic("t", group, 1)
	c := newCluster(t, 1, chainTopics("t", group, 1)...)
	clock := newFakeClock()
	due := strconv.FormatInt(clock.Now().Add(time.Hour).UnixMilli(), 10)
	// Values that do not compress: a fetch (1 MiB of a partition) brings
	// about 1,000 of them.
	rnd := rand.NewChaCha8([32]byte{1})
	recs := make([]*kgo.Record, n)
	for i := range recs {
		value := make([]byte, 1000)
		_, _ = rnd.Read(value)
		recs[i] = &kgo.Record{Topic: tier, Key: []byte("k" + strconv.Itoa(i%10)), Value: append([]byte(strconv.Itoa(i)+":"), value...),
			Headers: []kgo.RecordHeader{
				{Key: ordo.HeaderOriginalTopic, Value: []byte("t")},
				{Key: ordo.HeaderOriginalPartition, Value: []byte("0")},
				{Key: ordo.HeaderOriginalOffset, Value: []byte(strconv.Itoa(i))},
				{Key: ordo.HeaderTier, Value: []byte("1")},
				{Key: ordo.HeaderNotBefore, Value: []byte(due)},
			}}
	}
	produceRecords(t, c.ListenAddrs(), recs...)
	var mu sync.Mutex
	last := map[string]int{}
	var calls, outOfOrder atomic.Int64
	proc := ordo.ProcessorFunc(func(_ context.Context, r *kgo.Record) error {
		calls.Add(1)
		i, _ := strconv.Atoi(string(r.Value[:bytes.IndexByte(r.Value, ':')]))
		mu.Lock()
		if prev, ok := last[string(r.Key)]; ok && prev >= i {
			outOfOrder.Add(1)
		}
		last[string(r.Key)] = i
		mu.Unlock()
		return nil
	})
	cfg := baseConfig(c.ListenAddrs(), group, proc, "t")
	cfg.Clock = clock
	cfg.Retry = ordo.RetryPolicy{MaxAttempts: 1, Tiers: []time.Duration{time.Hour}}
	cons := startConsumer(t, cfg)
	defer stop(t, cons)
	tierLane := func() (ordo.LaneSnapshot, bool) {
		for _, l := range cons.Lanes() {
			if l.Topic == tier {
				return l, true
			}
		}
		return ordo.LaneSnapshot{}, false
	}
	waitFor(t, 10*time.Second, "the tier to pause, not due", func() bool {
		l, ok := tierLane()
		return ok && l.Paused && l.PauseReason == "not_due" && !l.DueAt.IsZero()
	})
	// What was fetched before the pause took effect arrives too; then the
	// partition holds still.
	waitFor(t, 10*time.Second, "the tier's holding to settle", func() bool {
		a, _ := tierLane()
		time.Sleep(200 * time.Millisecond)
		b, _ := tierLane()
		return a.InFlight == b.InFlight
	})
	l, _ := tierLane()
	if l.InFlight >= n/2 {
		t.Errorf("the tier holds %d of %d records not due for an hour; want a bounded share (under %d)", l.InFlight, n, n/2)
	}
	if l.Running != 0 || calls.Load() != 0 {
		t.Errorf("running %d, called %d records not due for an hour", l.Running, calls.Load())
	}
	t.Logf("held %d of %d records, paused %s, due at %s", l.InFlight, n, l.PauseReason, l.DueAt.Format(time.RFC3339))
	clock.Advance(2 * time.Hour)
	waitFor(t, 30*time.Second, "every tier record once due", func() bool {
		l, _ := tierLane()
		return calls.Load() >= n && l.Watermark == n
	})
	if got := calls.Load(); got != n {
		t.Errorf("%d calls for %d tier records", got, n)
	}
	if outOfOrder.Load() != 0 {
		t.Errorf("%d calls out of their key's offset order", outOfOrder.Load())
	}
}

// TestATierFedOneRecordAtATimeIsNotPausedForEach: records fail one at a
// time (a few keys of many), each to a tier with a short delay. Each is
// called once it is due, and the tier's partition never pauses its
// fetching for them: it holds a few waiting records, far under its bound,
// and a timer wakes its workers (pausing for each record not yet due
// costs a pause, a resume and a fetch per record).
func TestATierFedOneRecordAtATimeIsNotPausedForEach(t *testing.T) {
	const group, n = "g", 100
	const delay = 50 * time.Millisecond
	c := newCluster(t, 1, chainTopics("t", group, 1)...)
	var failedAt, calledAt sync.Map // value -> time
	proc := ordo.ProcessorFunc(func(ctx context.Context, r *kgo.Record) error {
		info, _ := ordo.InfoFromContext(ctx)
		if info.Tier == 0 {
			failedAt.Store(string(r.Value), time.Now())
			return errors.New("not yet")
		}
		calledAt.Store(string(r.Value), time.Now())
		return nil
	})
	cfg := baseConfig(c.ListenAddrs(), group, proc, "t")
	cfg.Retry = ordo.RetryPolicy{MaxAttempts: 1, Tiers: []time.Duration{delay}}
	cons := startConsumer(t, cfg)
	defer stop(t, cons)
	cl := newPlainClient(t, c.ListenAddrs())
	for i := range n {
		// One failure every 5 ms: the tier's next record is never due
		// when the one before it has run.
		r := &kgo.Record{Topic: "t", Key: []byte("k" + strconv.Itoa(i)), Value: []byte("v" + strconv.Itoa(i))}
		if err := cl.ProduceSync(context.Background(), r).FirstErr(); err != nil {
			t.Fatal(err)
		}
		time.Sleep(5 * time.Millisecond)
	}
	waitFor(t, 20*time.Second, "every record called on the tier", func() bool {
		got := 0
		calledAt.Range(func(any, any) bool { got++; return true })
		return got == n
	})
	for i := range n {
		v := "v" + strconv.Itoa(i)
		f, _ := failedAt.Load(v)
		c, _ := calledAt.Load(v)
		if gap := c.(time.Time).Sub(f.(time.Time)); gap < delay {
			t.Errorf("%s ran on the tier %s after its failure, before its %s delay", v, gap, delay)
		}
	}
	if p := metricValue(t, cons.Registry(), "ordo_partition_pauses_total", "reason", "not_due"); p != 0 {
		t.Errorf("the tier paused %v times (not_due) for %d records fed one at a time; want 0", p, n)
	}
}

// TestTheClientLingersOnItsCopies: Ordo's client, which produces only the
// retry and dead-letter copies, lingers DefaultCopyLinger on them (failures
// a few at a time share produce requests), unless KgoOpts sets a linger.
func TestTheClientLingersOnItsCopies(t *testing.T) {
	c := newCluster(t, 1, "t")
	for _, tc := range []struct {
		name string
		opts []kgo.Opt
		want time.Duration
	}{
		{name: "default", want: ordo.DefaultCopyLinger},
		{name: "KgoOpts", opts: []kgo.Opt{kgo.ProducerLinger(5 * time.Millisecond)}, want: 5 * time.Millisecond},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cfg := baseConfig(c.ListenAddrs(), "g-"+tc.name, ordo.ProcessorFunc(func(context.Context, *kgo.Record) error { return nil }), "t")
			cfg.KgoOpts = append(cfg.KgoOpts, tc.opts...)
			cons := startConsumer(t, cfg)
			defer stop(t, cons)
			if got := cons.Client().OptValue(kgo.ProducerLinger); got != tc.want {
				t.Errorf("the client lingers %v; want %v", got, tc.want)
			}
		})
	}
}
