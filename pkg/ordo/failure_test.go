package ordo_test

import (
	"context"
	"errors"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/ordokafka/ordo/pkg/ordo"
)

func produceRecords(t testing.TB, addrs []string, recs ...*kgo.Record) {
	t.Helper()
	cl := newPlainClient(t, addrs)
	if err := cl.ProduceSync(context.Background(), recs...).FirstErr(); err != nil {
		t.Fatal(err)
	}
}

// TestRetryBlocksOnlyItsKey runs one worker on one partition. A record of
// key "bad" fails twice; while it waits for its retries, every other key
// must be processed by that single worker (no worker sleeps through a
// backoff), and the later records of "bad" must wait behind it.
func TestRetryBlocksOnlyItsKey(t *testing.T) {
	c := newCluster(t, 1, "t")
	var recs []*kgo.Record
	recs = append(recs, &kgo.Record{Topic: "t", Key: []byte("bad"), Value: []byte("bad-0")})
	for i := range 50 {
		recs = append(recs, &kgo.Record{Topic: "t", Key: []byte("k" + strconv.Itoa(i%10)), Value: []byte("v" + strconv.Itoa(i))})
	}
	recs = append(recs, &kgo.Record{Topic: "t", Key: []byte("bad"), Value: []byte("bad-1")})
	produceRecords(t, c.ListenAddrs(), recs...)

	var mu sync.Mutex
	var order []string
	var attempts []int
	proc := ordo.ProcessorFunc(func(ctx context.Context, r *kgo.Record) error {
		info, ok := ordo.InfoFromContext(ctx)
		if !ok {
			return errors.New("no RecordInfo in context")
		}
		mu.Lock()
		defer mu.Unlock()
		if string(r.Value) == "bad-0" {
			attempts = append(attempts, info.Attempt)
			if info.Attempt < 3 {
				return errors.New("transient")
			}
		}
		order = append(order, string(r.Value))
		return nil
	})
	cfg := baseConfig(c.ListenAddrs(), "g", proc, "t")
	cfg.WorkersPerPartition = 1
	cfg.Retry.InitialBackoff = 200 * time.Millisecond
	cfg.Retry.MaxBackoff = 200 * time.Millisecond
	cons := startConsumer(t, cfg)
	waitFor(t, 30*time.Second, "all records", func() bool {
		mu.Lock()
		defer mu.Unlock()
		return len(order) == len(recs)
	})
	stop(t, cons)
	if want := []int{1, 2, 3}; len(attempts) != 3 || attempts[0] != 1 || attempts[2] != 3 {
		t.Errorf("attempts of bad-0 = %v, want %v", attempts, want)
	}
	// All 50 other records ran while bad-0 waited (>= 200ms of backoff).
	pos := map[string]int{}
	for i, v := range order {
		pos[v] = i
	}
	if pos["bad-0"] != len(recs)-2 || pos["bad-1"] != len(recs)-1 {
		t.Errorf("bad-0 at %d, bad-1 at %d; want them last, in order: %v", pos["bad-0"], pos["bad-1"], order)
	}
	if got := metricValue(t, cons.Registry(), "ordo_records_total", "outcome", "retry"); got != 2 {
		t.Errorf("retries counted %v, want 2", got)
	}
}

// TestRetryDelayUsesTheClock: with a fake clock, a failed record is not
// retried until the clock passes its backoff; nothing sleeps.
func TestRetryDelayUsesTheClock(t *testing.T) {
	c := newCluster(t, 1, "t")
	produceRecords(t, c.ListenAddrs(), &kgo.Record{Topic: "t", Key: []byte("a"), Value: []byte("x")})
	var calls atomic.Int32
	proc := ordo.ProcessorFunc(func(ctx context.Context, r *kgo.Record) error {
		if calls.Add(1) == 1 {
			return errors.New("first call fails")
		}
		return nil
	})
	clock := newFakeClock()
	cfg := baseConfig(c.ListenAddrs(), "g", proc, "t")
	cfg.Clock = clock
	cfg.Retry.InitialBackoff = time.Hour
	cfg.Retry.MaxBackoff = time.Hour
	cons := startConsumer(t, cfg)
	waitFor(t, 30*time.Second, "first call", func() bool { return calls.Load() == 1 })
	waitFor(t, 5*time.Second, "retry timer", func() bool { return len(cons.Lanes()) == 1 && cons.Lanes()[0].WaitingRetry == 1 })
	time.Sleep(50 * time.Millisecond)
	if calls.Load() != 1 {
		t.Fatal("retried before the clock moved")
	}
	clock.Advance(29 * time.Minute) // jitter keeps the delay in [30m, 1h)
	time.Sleep(20 * time.Millisecond)
	if calls.Load() != 1 {
		t.Fatal("retried before its backoff")
	}
	clock.Advance(31 * time.Minute)
	waitFor(t, 5*time.Second, "retry after the clock passed the backoff", func() bool { return calls.Load() == 2 })
	waitFor(t, 5*time.Second, "watermark past the record", func() bool { return cons.Lanes()[0].Watermark == 1 })
	stop(t, cons)
}

// TestPoisonRecordsGoToDLQWithHeaders: a permanent error, an error that
// outlives its attempts and a panic each put the record on <topic>.dlq with
// Ordo's headers; foreign headers are kept and incoming ordo- headers (not
// trusted) are dropped. The consumer never crashes and commits past them.
func TestPoisonRecordsGoToDLQWithHeaders(t *testing.T) {
	c := newCluster(t, 1, "t", "t.g.dlq")
	produceRecords(t, c.ListenAddrs(),
		&kgo.Record{Topic: "t", Key: []byte("p"), Value: []byte("permanent"), Headers: []kgo.RecordHeader{
			{Key: "trace-id", Value: []byte("abc")}, {Key: "ordo-attempt", Value: []byte("99")}}},
		&kgo.Record{Topic: "t", Key: []byte("r"), Value: []byte("retryable")},
		&kgo.Record{Topic: "t", Key: []byte("x"), Value: []byte("panic")},
		&kgo.Record{Topic: "t", Key: []byte("o"), Value: []byte("ok")},
	)
	var okCalls atomic.Int32
	proc := ordo.ProcessorFunc(func(ctx context.Context, r *kgo.Record) error {
		switch string(r.Value) {
		case "permanent":
			return ordo.Permanent(errors.New("bad payload"))
		case "retryable":
			return errors.New("still down")
		case "panic":
			panic("boom")
		}
		okCalls.Add(1)
		return nil
	})
	cfg := baseConfig(c.ListenAddrs(), "g", proc, "t")
	cfg.ProcessorName = "test-proc"
	cfg.Retry.MaxAttempts = 3
	cfg.Retry.InitialBackoff = time.Millisecond
	cfg.Retry.MaxBackoff = 5 * time.Millisecond
	cons := startConsumer(t, cfg)
	waitFor(t, 30*time.Second, "commit past all records", func() bool {
		ls := cons.Lanes()
		return len(ls) == 1 && ls[0].Committed == 4
	})
	if got := metricValue(t, cons.Registry(), "ordo_records_total", "outcome", "dlq"); got != 3 {
		t.Errorf("dlq outcomes %v, want 3", got)
	}
	stop(t, cons)

	cl := newPlainClient(t, c.ListenAddrs())
	cl.AddConsumeTopics("t.g.dlq")
	byValue := map[string]map[string]string{}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	for len(byValue) < 3 {
		fs := cl.PollFetches(ctx)
		if ctx.Err() != nil {
			t.Fatalf("read %d dead letters, want 3", len(byValue))
		}
		fs.EachRecord(func(r *kgo.Record) {
			h := map[string]string{}
			for _, x := range r.Headers {
				if _, dup := h[x.Key]; dup {
					t.Errorf("%s: header %s twice", r.Value, x.Key)
				}
				h[x.Key] = string(x.Value)
			}
			byValue[string(r.Value)] = h
		})
	}
	want := map[string]map[string]string{
		"permanent": {"ordo-error-class": "permanent", "ordo-attempt": "1", "ordo-original-offset": "0", "trace-id": "abc"},
		"retryable": {"ordo-error-class": "retryable", "ordo-attempt": "3", "ordo-original-offset": "1", "ordo-error": "still down"},
		"panic":     {"ordo-error-class": "panic", "ordo-attempt": "3", "ordo-original-offset": "2", "ordo-error": "processor panic: boom"},
	}
	for v, hs := range want {
		got := byValue[v]
		for k, wv := range hs {
			if got[k] != wv {
				t.Errorf("%s: header %s = %q, want %q", v, k, got[k], wv)
			}
		}
		for _, k := range []string{"ordo-original-topic", "ordo-original-partition", "ordo-original-timestamp", "ordo-group", "ordo-processor", "ordo-error"} {
			if got[k] == "" {
				t.Errorf("%s: header %s missing", v, k)
			}
		}
		if got["ordo-group"] != "g" || got["ordo-processor"] != "test-proc" || got["ordo-original-topic"] != "t" {
			t.Errorf("%s: group/processor/topic headers %q %q %q", v, got["ordo-group"], got["ordo-processor"], got["ordo-original-topic"])
		}
	}
	if okCalls.Load() != 1 {
		t.Errorf("ok record processed %d times", okCalls.Load())
	}
}

// TestSlowKeyDoesNotStallOthers (G6): one key hangs; every other record of
// the partition is processed, the watermark stays at the hung record, and
// its age shows in ordo_member_lag_seconds.
func TestSlowKeyDoesNotStallOthers(t *testing.T) {
	c := newCluster(t, 1, "t")
	recs := []*kgo.Record{{Topic: "t", Key: []byte("slow"), Value: []byte("slow-0"), Timestamp: time.Now().Add(-time.Minute)}}
	for i := range 300 {
		recs = append(recs, &kgo.Record{Topic: "t", Key: []byte("k" + strconv.Itoa(i%30)), Value: []byte("v" + strconv.Itoa(i))})
	}
	produceRecords(t, c.ListenAddrs(), recs...)
	release := make(chan struct{})
	led := newLedger()
	proc := ordo.ProcessorFunc(func(ctx context.Context, r *kgo.Record) error {
		if string(r.Key) == "slow" {
			<-release
		}
		led.enter(r, true)
		led.exit(r, true)
		return nil
	})
	cfg := baseConfig(c.ListenAddrs(), "g", proc, "t")
	cfg.WorkersPerPartition = 2
	cons := startConsumer(t, cfg)
	waitFor(t, 30*time.Second, "the other keys", func() bool { return led.count() == 300 })
	s := cons.Lanes()[0]
	if s.Watermark != 0 || s.InFlight != 1 {
		t.Errorf("watermark %d in-flight %d, want 0 and 1", s.Watermark, s.InFlight)
	}
	if lag := metricValue(t, cons.Registry(), "ordo_member_lag_seconds", "", ""); lag < 59 {
		t.Errorf("ordo_member_lag_seconds = %v, want the hung record's age (>= 60s)", lag)
	}
	if lag := metricValue(t, cons.Registry(), "ordo_member_lag_records", "", ""); lag != 301 {
		t.Errorf("ordo_member_lag_records = %v, want 301", lag)
	}
	close(release)
	waitFor(t, 30*time.Second, "commit of all", func() bool { return cons.Lanes()[0].Committed == 301 })
	stop(t, cons)
}

// TestHoldDoesNotSpendAttempts: a record that returns Hold more times than
// MaxAttempts is not dead-lettered; it is applied once the hold ends.
func TestHoldDoesNotSpendAttempts(t *testing.T) {
	c := newCluster(t, 1, "t", "t.g.dlq")
	produceRecords(t, c.ListenAddrs(), &kgo.Record{Topic: "t", Key: []byte("a"), Value: []byte("x")})
	var calls atomic.Int32
	proc := ordo.ProcessorFunc(func(ctx context.Context, r *kgo.Record) error {
		if calls.Add(1) <= 6 {
			return ordo.Hold(errors.New("breaker open"))
		}
		if info, _ := ordo.InfoFromContext(ctx); info.Attempt != 1 {
			return ordo.Permanent(errors.New("holds were counted as attempts"))
		}
		return nil
	})
	cfg := baseConfig(c.ListenAddrs(), "g", proc, "t")
	cfg.Retry.MaxAttempts = 2
	cfg.Retry.HoldDelay = 2 * time.Millisecond
	cons := startConsumer(t, cfg)
	waitFor(t, 30*time.Second, "commit", func() bool { return len(cons.Lanes()) == 1 && cons.Lanes()[0].Committed == 1 })
	if got := metricValue(t, cons.Registry(), "ordo_records_total", "outcome", "dlq"); got != 0 {
		t.Errorf("held record dead-lettered")
	}
	if got := metricValue(t, cons.Registry(), "ordo_records_total", "outcome", "hold"); got != 6 {
		t.Errorf("hold outcomes %v, want 6", got)
	}
	stop(t, cons)
}

// TestDeadLetterProduceFailureIsRetried: the DLQ topic does not exist, so
// the dead-letter produce fails; the record must not be marked (the
// watermark stays on it) and the produce is retried until, once the topic
// is created, it succeeds and the commit moves past it.
func TestDeadLetterProduceFailureIsRetried(t *testing.T) {
	c := newCluster(t, 1, "t")
	produceRecords(t, c.ListenAddrs(),
		&kgo.Record{Topic: "t", Key: []byte("a"), Value: []byte("poison")},
		&kgo.Record{Topic: "t", Key: []byte("b"), Value: []byte("ok")},
	)
	proc := ordo.ProcessorFunc(func(ctx context.Context, r *kgo.Record) error {
		if string(r.Value) == "poison" {
			return ordo.Permanent(errors.New("bad"))
		}
		return nil
	})
	cfg := baseConfig(c.ListenAddrs(), "g", proc, "t")
	cfg.Retry.InitialBackoff = 10 * time.Millisecond
	cfg.Retry.MaxBackoff = 50 * time.Millisecond
	cfg.KgoOpts = append(cfg.KgoOpts, kgo.UnknownTopicRetries(0))
	cons := startConsumer(t, cfg)
	waitFor(t, 30*time.Second, "a failed dead-letter produce", func() bool {
		return metricValue(t, cons.Registry(), "ordo_dlq_produce_errors_total", "", "") >= 1
	})
	s := cons.Lanes()[0]
	if s.Watermark != 0 || s.Committed > 0 {
		t.Fatalf("watermark %d committed %d while the dead letter is not acked, want 0", s.Watermark, s.Committed)
	}
	adm := kadm.NewClient(newPlainClient(t, c.ListenAddrs()))
	if _, err := adm.CreateTopic(context.Background(), 1, 1, nil, "t.g.dlq"); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 30*time.Second, "commit past the poisoned record", func() bool { return cons.Lanes()[0].Committed == 2 })
	if got := metricValue(t, cons.Registry(), "ordo_records_total", "outcome", "dlq"); got != 1 {
		t.Errorf("dlq outcomes %v, want 1", got)
	}
	stop(t, cons)
}

// TestDurationHistogramCountsEveryCall: the processing-duration histogram
// counts every call, fast ones included (they are timed one in eight), and
// a slow call lands in its bucket.
func TestDurationHistogramCountsEveryCall(t *testing.T) {
	c := newCluster(t, 1, "t")
	const n = 1000
	produce(t, c.ListenAddrs(), "t", n, 0, 1)
	proc := ordo.ProcessorFunc(func(ctx context.Context, r *kgo.Record) error {
		if r.Offset == n-1 {
			time.Sleep(60 * time.Millisecond)
		}
		return nil
	})
	cfg := baseConfig(c.ListenAddrs(), "g", proc, "t")
	cfg.WorkersPerPartition = 1
	cons := startConsumer(t, cfg)
	waitFor(t, 30*time.Second, "all records", func() bool { return cons.Stats().Processed == n })
	mfs, err := cons.Registry().Gather()
	if err != nil {
		t.Fatal(err)
	}
	found := false
	for _, mf := range mfs {
		if mf.GetName() != "ordo_processing_duration_seconds" {
			continue
		}
		h := mf.GetMetric()[0].GetHistogram()
		found = true
		if h.GetSampleCount() != n {
			t.Errorf("histogram count %d, want %d", h.GetSampleCount(), n)
		}
		if h.GetSampleSum() < 0.06 {
			t.Errorf("histogram sum %v s, want >= the slow call's 0.06 s", h.GetSampleSum())
		}
		for _, b := range h.GetBucket() {
			if b.GetUpperBound() == 0.05 && b.GetCumulativeCount() != n-1 {
				t.Errorf("calls <= 50ms: %d, want %d (all but the slow one)", b.GetCumulativeCount(), n-1)
			}
		}
	}
	if !found {
		t.Error("no ordo_processing_duration_seconds")
	}
	stop(t, cons)
}
