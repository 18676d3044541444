package ordo_test

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"sync"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/ordokafka/ordo/pkg/ordo"
)

// commitWatch observes every OffsetCommit the broker receives, through
// kfake's ControlKey, and checks it against a predicate at that instant.
type commitWatch struct {
	mu         sync.Mutex
	violations []string
	commits    int
	max        map[pk]int64 // highest committed offset per topic partition (partition only)
}

func watchCommits(c *kfake.Cluster, check func(topic string, partition int32, offset int64) error) *commitWatch {
	w := &commitWatch{max: map[pk]int64{}}
	c.ControlKey(int16(kmsg.OffsetCommit), func(req kmsg.Request) (kmsg.Response, error, bool) {
		c.KeepControl()
		r := req.(*kmsg.OffsetCommitRequest)
		w.mu.Lock()
		defer w.mu.Unlock()
		w.commits++
		for _, t := range r.Topics {
			for _, p := range t.Partitions {
				if err := check(t.Topic, p.Partition, p.Offset); err != nil {
					w.violations = append(w.violations, err.Error())
				}
				k := pk{partition: p.Partition}
				if prev, ok := w.max[k]; ok && p.Offset < prev {
					w.violations = append(w.violations, fmt.Sprintf("commit of %s/%d went back from %d to %d (member %s gen %d)",
						t.Topic, p.Partition, prev, p.Offset, r.MemberID, r.Generation))
				}
				if p.Offset > w.max[k] {
					w.max[k] = p.Offset
				}
			}
		}
		return nil, nil, false
	})
	return w
}

func (w *commitWatch) assert(t *testing.T) {
	t.Helper()
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.commits == 0 {
		t.Error("no OffsetCommit observed")
	}
	for i, v := range w.violations {
		if i == 20 {
			t.Errorf("... and %d more", len(w.violations)-20)
			break
		}
		t.Error(v)
	}
}

// TestCommitNeverPassesUnfinished checks G4 at the broker: every committed
// offset, at the instant the broker receives it, has every record below it
// applied. Records are slow at random and some fail transiently (waiting
// for a retry), so completions finish far out of offset order.
func TestCommitNeverPassesUnfinished(t *testing.T) {
	for seed := range uint64(4) {
		t.Run(fmt.Sprintf("seed=%d", seed), func(t *testing.T) {
			t.Parallel()
			const n = 3000
			c := newCluster(t, 3, "t")
			produce(t, c.ListenAddrs(), "t", n, 40, seed)
			led := newLedger()
			watch := watchCommits(c, func(topic string, p int32, off int64) error {
				for o := off - 1; o >= 0 && o >= off-n; o-- {
					if !led.isApplied(p, o) {
						return fmt.Errorf("commit %s/%d@%d passes unfinished offset %d", topic, p, off, o)
					}
				}
				return nil
			})
			rng := rand.New(rand.NewPCG(seed, 7))
			var rngMu sync.Mutex
			draw := func() (time.Duration, bool) {
				rngMu.Lock()
				defer rngMu.Unlock()
				var d time.Duration
				if rng.IntN(50) == 0 {
					d = time.Duration(5+rng.IntN(40)) * time.Millisecond
				}
				return d, rng.IntN(20) == 0
			}
			proc := ordo.ProcessorFunc(func(ctx context.Context, r *kgo.Record) error {
				d, fail := draw()
				time.Sleep(d)
				info, _ := ordo.InfoFromContext(ctx)
				if fail && info.Attempt == 1 {
					return errors.New("transient")
				}
				led.enter(r, false)
				led.exit(r, true)
				return nil
			})
			cfg := baseConfig(c.ListenAddrs(), "g", proc, "t")
			cfg.CommitInterval = 5 * time.Millisecond
			cfg.Retry.InitialBackoff = 20 * time.Millisecond
			cons := startConsumer(t, cfg)
			waitFor(t, 60*time.Second, "all records", func() bool { return led.count() == n })
			stop(t, cons)
			watch.assert(t)
			checkLedger(t, led, n, true)
		})
	}
}

// TestDeadLetterCommitWaitsForAck delays the broker's answer to the
// dead-letter produce and checks that no commit passes the poisoned record
// until the produce was acknowledged, while the records after it (other
// keys) are all applied meanwhile.
func TestDeadLetterCommitWaitsForAck(t *testing.T) {
	const n = 200
	const poison = 10
	c := newCluster(t, 1, "t", "t.g.dlq")
	produce(t, c.ListenAddrs(), "t", n, 50, 1)

	var mu sync.Mutex
	acked := false
	rel := newReleaser()
	release := rel.ch
	t.Cleanup(rel.Open) // before the cluster's Close, also if the test fails
	c.ControlKey(int16(kmsg.Produce), func(req kmsg.Request) (kmsg.Response, error, bool) {
		// The first produce after the consumer starts is the dead-letter
		// one (newer Produce versions name topics by ID, not by name).
		// Hold it until the test has seen later commits.
		c.SleepControl(func() { <-release })
		mu.Lock()
		acked = true
		mu.Unlock()
		return nil, nil, false
	})
	led := newLedger()
	watch := watchCommits(c, func(topic string, p int32, off int64) error {
		mu.Lock()
		defer mu.Unlock()
		if off > poison && !acked {
			return fmt.Errorf("commit %d passes poisoned offset %d before its DLQ produce was acked", off, poison)
		}
		return nil
	})
	proc := ordo.ProcessorFunc(func(ctx context.Context, r *kgo.Record) error {
		if r.Offset == poison {
			return ordo.Permanent(errors.New("malformed"))
		}
		led.enter(r, false)
		led.exit(r, true)
		return nil
	})
	cfg := baseConfig(c.ListenAddrs(), "g", proc, "t")
	cfg.CommitInterval = 5 * time.Millisecond
	cons := startConsumer(t, cfg)
	// Every record is applied but the poisoned one, whose dead-letter
	// produce is held, and the later records of its key, which wait behind
	// it in key order.
	waitFor(t, 30*time.Second, "other records", func() bool {
		ls := cons.Lanes()
		return len(ls) == 1 && ls[0].Running == 1 && ls[0].InFlight == n-led.count() && ls[0].InFlight < 20
	})
	// Let several commit ticks pass with the DLQ produce held.
	time.Sleep(100 * time.Millisecond)
	for _, s := range cons.Lanes() {
		if s.Watermark != poison {
			t.Errorf("watermark %d while the DLQ produce is pending, want %d", s.Watermark, poison)
		}
	}
	rel.Open()
	waitFor(t, 30*time.Second, "the poisoned key's later records", func() bool { return led.count() == n-1 })
	waitFor(t, 30*time.Second, "commit past the poisoned record", func() bool {
		for _, s := range cons.Lanes() {
			if s.Committed != n {
				return false
			}
		}
		return true
	})
	stop(t, cons)
	watch.assert(t)
}
