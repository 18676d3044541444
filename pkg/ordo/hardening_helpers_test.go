package ordo_test

// Helpers of the hardening regression tests (issue 5): heap measurement,
// held broker requests, log capture and a per-member ledger.

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// errHeld is what a processor wraps in ordo.Hold while the test holds it.
var errHeld = errors.New("held by the test")

// heapInUse returns the live heap after two full collections: what the
// process keeps reachable, the measure of the memory tests.
func heapInUse() int64 {
	runtime.GC()
	runtime.GC()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	return int64(ms.HeapAlloc)
}

const mib = 1 << 20

// releaser is a gate a test opens once: held processors and held broker
// requests wait for it. Open is idempotent, so a test can both open it on
// its path and register it as a cleanup.
type releaser struct {
	once sync.Once
	ch   chan struct{}
}

func newReleaser() *releaser { return &releaser{ch: make(chan struct{})} }

func (r *releaser) Open() { r.once.Do(func() { close(r.ch) }) }
func (r *releaser) isOpen() bool {
	select {
	case <-r.ch:
		return true
	default:
		return false
	}
}

// holdRequests makes the broker leave every request of the given key
// unanswered until rel opens (kfake's SleepControl: the request and the
// ones behind it on the same connection wait, as they would behind a
// coordinator that does not answer). held counts the requests that were
// held. The hold is released in a cleanup registered here, so it runs
// before the cluster's own Close (cleanups run last-in first-out): nothing
// stays asleep for goleak to find.
func holdRequests(t testing.TB, c *kfake.Cluster, key kmsg.Key, rel *releaser) *atomic.Int32 {
	t.Helper()
	var held atomic.Int32
	c.ControlKey(int16(key), func(kmsg.Request) (kmsg.Response, error, bool) {
		c.KeepControl()
		if rel.isOpen() {
			return nil, nil, false
		}
		held.Add(1)
		c.SleepControl(func() { <-rel.ch })
		return nil, nil, false
	})
	t.Cleanup(rel.Open)
	return &held
}

// logRecord is one captured log line.
type logRecord struct {
	at    time.Time
	level slog.Level
	msg   string
	attrs string // key=value ...
}

// logCapture is a slog handler that keeps the lines whose message starts
// with one of its prefixes (all lines if none), at any level.
type logCapture struct {
	prefixes []string
	mu       sync.Mutex
	recs     []logRecord
}

func (h *logCapture) Enabled(context.Context, slog.Level) bool { return true }
func (h *logCapture) Handle(_ context.Context, r slog.Record) error {
	keep := len(h.prefixes) == 0
	for _, p := range h.prefixes {
		keep = keep || strings.HasPrefix(r.Message, p)
	}
	if !keep {
		return nil
	}
	var attrs strings.Builder
	r.Attrs(func(a slog.Attr) bool {
		fmt.Fprintf(&attrs, "%s=%v ", a.Key, a.Value)
		return true
	})
	h.mu.Lock()
	h.recs = append(h.recs, logRecord{at: time.Now(), level: r.Level, msg: r.Message, attrs: attrs.String()})
	h.mu.Unlock()
	return nil
}
func (h *logCapture) WithAttrs([]slog.Attr) slog.Handler { return h }
func (h *logCapture) WithGroup(string) slog.Handler      { return h }

// find returns the first captured line at or after since whose message
// starts with prefix.
func (h *logCapture) find(prefix string, since time.Time) (logRecord, bool) {
	h.mu.Lock()
	defer h.mu.Unlock()
	for _, r := range h.recs {
		if !r.at.Before(since) && strings.HasPrefix(r.msg, prefix) {
			return r, true
		}
	}
	return logRecord{}, false
}

// ownerLedger records which member ran which record of a partition, in a
// test where consumers of one group take turns.
type ownerLedger struct {
	mu   sync.Mutex
	runs map[pk][]string // members that completed the record, in order
}

func newOwnerLedger() *ownerLedger { return &ownerLedger{runs: map[pk][]string{}} }

func (o *ownerLedger) ran(member string, r *kgo.Record) {
	o.mu.Lock()
	o.runs[pk{r.Partition, r.Offset}] = append(o.runs[pk{r.Partition, r.Offset}], member)
	o.mu.Unlock()
}

// finishedBy returns the records member completed.
func (o *ownerLedger) finishedBy(member string) map[pk]bool {
	o.mu.Lock()
	defer o.mu.Unlock()
	out := map[pk]bool{}
	for k, ms := range o.runs {
		for _, m := range ms {
			if m == member {
				out[k] = true
			}
		}
	}
	return out
}

// rerunsOf counts the records in set that a member other than first ran
// after first had finished them.
func (o *ownerLedger) rerunsOf(set map[pk]bool, first string) (n int, sample []pk) {
	o.mu.Lock()
	defer o.mu.Unlock()
	for k := range set {
		ms := o.runs[k]
		seen := false
		for _, m := range ms {
			if m == first {
				seen = true
				continue
			}
			if seen {
				n++
				if len(sample) < 10 {
					sample = append(sample, k)
				}
				break
			}
		}
	}
	return n, sample
}

func (o *ownerLedger) distinct() int {
	o.mu.Lock()
	defer o.mu.Unlock()
	return len(o.runs)
}

// stableFor polls f until it returns the same value for d, or until
// timeout; it returns the last value and whether it was stable.
func stableFor(d, timeout time.Duration, f func() int64) (int64, bool) {
	deadline := time.Now().Add(timeout)
	last, since := f(), time.Now()
	for time.Now().Before(deadline) {
		time.Sleep(20 * time.Millisecond)
		v := f()
		if v != last {
			last, since = v, time.Now()
			continue
		}
		if time.Since(since) >= d {
			return v, true
		}
	}
	return last, false
}
