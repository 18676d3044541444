package ordo_test

// Issue 5, item 2: Stop and the revoke callback keep their deadlines when
// the group coordinator does not answer.

import (
	"context"
	"fmt"
	"log/slog"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/ordokafka/ordo/pkg/ordo"
)

// stopSlack is what Stop and a revoke may take past their deadline.
const stopSlack = 1500 * time.Millisecond

// stopDeadline is the deadline of Stop's context in the Stop tests.
const stopDeadline = 2 * time.Second

// stopWithHeldRequest runs a consumer, makes the broker stop answering
// requests of key (they stay unanswered until released), and calls Stop
// with a 2 s context. It returns how long Stop took, or a negative
// duration if it had not returned after giveUp (then the requests are
// released and Stop is awaited, for cleanup, up to wait).
func stopWithHeldRequest(t *testing.T, key kmsg.Key, giveUp, wait time.Duration) (took time.Duration, err error) {
	t.Helper()
	c := newCluster(t, 2, "t")
	produce(t, c.ListenAddrs(), "t", 100, 10, 1)
	var processed atomic.Int64
	proc := ordo.ProcessorFunc(func(ctx context.Context, r *kgo.Record) error {
		processed.Add(1)
		return nil
	})
	cfg := baseConfig(c.ListenAddrs(), "g", proc, "t")
	cons := startConsumer(t, cfg)
	committedAll := func(n int64) func() bool {
		return func() bool {
			var sum int64
			for _, s := range cons.Lanes() {
				sum += max(0, s.Committed)
			}
			return processed.Load() == n && sum == n
		}
	}
	waitFor(t, 30*time.Second, "100 records processed and committed", committedAll(100))

	rel := newReleaser()
	held := holdRequests(t, c, key, rel)
	if key != kmsg.LeaveGroup {
		// Give the stop something to commit: records processed after the
		// broker stopped answering.
		produce(t, c.ListenAddrs(), "t", 50, 10, 2)
		waitFor(t, 30*time.Second, "50 more records processed", func() bool { return processed.Load() == 150 })
		waitFor(t, 30*time.Second, "a held "+key.Name()+" request", func() bool { return held.Load() > 0 })
	}

	ctx, cancel := context.WithTimeout(context.Background(), stopDeadline)
	defer cancel()
	start := time.Now()
	done := make(chan error, 1)
	go func() { done <- cons.Stop(ctx) }()
	select {
	case err = <-done:
		took = time.Since(start)
	case <-time.After(giveUp):
		took = -1
		rel.Open()
		select {
		case err = <-done:
			t.Logf("Stop returned %s after it was called, %s after the held %s requests were released (err: %v)",
				time.Since(start).Round(10*time.Millisecond), time.Since(start.Add(giveUp)).Round(10*time.Millisecond), key.Name(), err)
		case <-time.After(wait):
			t.Fatalf("Stop did not return even %s after the held %s requests were released", wait, key.Name())
		}
	}
	rel.Open()
	t.Logf("held %s requests: %d", key.Name(), held.Load())
	return took, err
}

// TestStopKeepsItsDeadline: with the coordinator leaving OffsetCommit,
// LeaveGroup or Heartbeat requests unanswered, Stop with a 2 s context
// must return within 2 s + 1.5 s (having committed what it could).
//
// Today: Stop blocks in its final commit (run without cancel) or in
// CloseAllowingRebalance; the test gives up at 3.5 s, releases the
// requests, and Stop returns right after. Left unanswered, Stop returned
// after 31.1 s (OffsetCommit), 30.9 s (LeaveGroup) and 10.3 s (Heartbeat)
// in one run of the same scenario; the issue measured 30.9 s with
// OffsetCommit unanswered.
func TestStopKeepsItsDeadline(t *testing.T) {
	for _, key := range []kmsg.Key{kmsg.OffsetCommit, kmsg.LeaveGroup, kmsg.Heartbeat} {
		t.Run(key.Name(), func(t *testing.T) {
			t.Parallel()
			took, err := stopWithHeldRequest(t, key, stopDeadline+stopSlack, 60*time.Second)
			if took < 0 {
				t.Errorf("Stop with a 2s context had not returned after %s with %s unanswered", stopDeadline+stopSlack, key.Name())
				return
			}
			t.Logf("Stop returned after %s (err: %v)", took.Round(10*time.Millisecond), err)
		})
	}
}

// TestRevokeKeepsItsDeadline: member A owns both partitions when B joins;
// the coordinator leaves OffsetCommit unanswered, so A's revoke commit
// hangs. The revoke callback must return within RevokeTimeout (1 s) +
// 1.5 s: the group cannot finish the rebalance before it returns. It is
// timed from franz-go's own debug logs, "entering OnPartitionsRevoked" to
// the "entering OnPartitionsAssigned" that follows it (a cooperative
// member calls OnPartitionsAssigned once its revoke returned). Periodic
// commits are off (CommitInterval 1h), so the held commit is the revoke's.
//
// Today: the revoke callback blocks in its commit (run without cancel);
// the test gives up at 2.5 s and releases the commit. Left unanswered, the
// revoke returned after 30.7 s in one run.
func TestRevokeKeepsItsDeadline(t *testing.T) {
	t.Parallel()
	const revokeTimeout = time.Second
	bound := revokeTimeout + stopSlack
	took, ok := revokeWithHeldCommit(t, revokeTimeout, bound, true)
	switch {
	case !ok:
		t.Errorf("A's revoke had not returned %s after it began (RevokeTimeout %s) with OffsetCommit unanswered", bound, revokeTimeout)
	case took > bound:
		t.Errorf("A's revoke took %s; want at most RevokeTimeout %s + %s", took, revokeTimeout, stopSlack)
	}
}

// revokeWithHeldCommit runs the scenario of TestRevokeKeepsItsDeadline.
// It returns how long A's revoke callback took, and false if it had not
// returned giveUp after it began (the commit is then released, and the
// true duration logged). With hold false the broker answers every commit:
// the control case.
func revokeWithHeldCommit(t *testing.T, revokeTimeout, giveUp time.Duration, hold bool) (time.Duration, bool) {
	t.Helper()
	c := newCluster(t, 2, "t")
	produce(t, c.ListenAddrs(), "t", 100, 10, 1)
	var processed atomic.Int64
	proc := ordo.ProcessorFunc(func(ctx context.Context, r *kgo.Record) error {
		processed.Add(1)
		return nil
	})
	logs := &logCapture{prefixes: []string{"entering OnPartitions"}}
	cfg := baseConfig(c.ListenAddrs(), "g", proc, "t")
	cfg.CommitInterval = time.Hour
	cfg.RevokeTimeout = revokeTimeout
	cfgA := cfg
	cfgA.Logger = slog.New(logs)
	a := startConsumer(t, cfgA)
	waitFor(t, 30*time.Second, "A to process the records", func() bool { return processed.Load() == 100 && len(a.Lanes()) == 2 })

	rel := newReleaser()
	held := holdRequests(t, c, kmsg.OffsetCommit, rel)
	if !hold {
		rel.Open()
	}
	since := time.Now()
	b := startConsumer(t, cfg)
	defer func() {
		rel.Open()
		stopBoth(t, a, b)
	}()
	var revoke logRecord
	waitFor(t, 30*time.Second, "A's revoke to begin", func() bool {
		var ok bool
		revoke, ok = logs.find("entering OnPartitionsRevoked", since)
		return ok
	})
	if hold {
		waitFor(t, 10*time.Second, "A's revoke commit to reach the broker", func() bool { return held.Load() > 0 })
	}
	returned := func() (time.Duration, bool) {
		r, ok := logs.find("entering OnPartitionsAssigned", revoke.at)
		return r.at.Sub(revoke.at), ok
	}
	if waitForQuiet(time.Until(revoke.at.Add(giveUp)), func() bool { _, ok := returned(); return ok }) {
		took, _ := returned()
		t.Logf("A's revoke returned after %s", took.Round(10*time.Millisecond))
		return took, true
	}
	rel.Open()
	if waitForQuiet(60*time.Second, func() bool { _, ok := returned(); return ok }) {
		took, _ := returned()
		t.Logf("A's revoke returned %s after it began, once the commit was released (at %s)", took.Round(10*time.Millisecond), giveUp)
	}
	return 0, false
}

// waitForQuiet polls cond until it holds or d passes, without failing.
func waitForQuiet(d time.Duration, cond func() bool) bool {
	deadline := time.Now().Add(d)
	for !cond() {
		if time.Now().After(deadline) {
			return false
		}
		time.Sleep(10 * time.Millisecond)
	}
	return true
}

// stopBoth stops consumers concurrently, for cleanup after a test that
// disturbed the group; errors are logged, not failed on.
func stopBoth(t *testing.T, cs ...*ordo.Consumer) {
	t.Helper()
	errs := make(chan error, len(cs))
	for _, c := range cs {
		go func() {
			ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
			defer cancel()
			errs <- c.Stop(ctx)
		}()
	}
	for range cs {
		if err := <-errs; err != nil {
			t.Logf("stop: %v", err)
		}
	}
}

// TestStopLogsWhatItCouldNotCommit: when the coordinator does not answer
// the final commit, Stop still returns by its deadline and logs, at error
// level, each partition it could not commit with the offset it meant to
// commit: what the next owner will process again.
func TestStopLogsWhatItCouldNotCommit(t *testing.T) {
	c := newCluster(t, 2, "t")
	produce(t, c.ListenAddrs(), "t", 100, 10, 1)
	var processed atomic.Int64
	proc := ordo.ProcessorFunc(func(context.Context, *kgo.Record) error { processed.Add(1); return nil })
	logs := &logCapture{prefixes: []string{"could not commit"}}
	cfg := baseConfig(c.ListenAddrs(), "g", proc, "t")
	cfg.Logger = slog.New(logs)
	cfg.CommitInterval = time.Hour // only the stop commits
	cons := startConsumer(t, cfg)
	waitFor(t, 30*time.Second, "100 records", func() bool { return processed.Load() == 100 })
	holdRequests(t, c, kmsg.OffsetCommit, newReleaser())
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	start := time.Now()
	err := cons.Stop(ctx)
	if took := time.Since(start); err == nil || took > time.Second+stopSlack {
		t.Errorf("Stop = %v after %s; want a deadline error within %s", err, took, time.Second+stopSlack)
	}
	line, ok := logs.find("could not commit", start)
	if !ok || line.level != slog.LevelError {
		t.Fatalf("no error line naming what was not committed (found %v: %+v)", ok, line)
	}
	var want []string
	for _, l := range cons.Lanes() {
		want = append(want, fmt.Sprintf("t/%d@%d", l.Partition, l.Watermark))
	}
	for _, w := range want {
		if !strings.Contains(line.attrs, w) {
			t.Errorf("the line %q does not name %s", line.attrs, w)
		}
	}
}
