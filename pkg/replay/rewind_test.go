package replay_test

import (
	"context"
	"errors"
	"log/slog"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/ordokafka/ordo/pkg/ordo"
	"github.com/ordokafka/ordo/pkg/replay"
)

// runLog records which records a phase's consumer processed.
type runLog struct {
	mu   sync.Mutex
	seen map[string]map[int64]int // "t/<p>" -> offset -> calls that returned nil
}

func newRunLog() *runLog { return &runLog{seen: map[string]map[int64]int{}} }

func (l *runLog) add(r *kgo.Record) {
	l.mu.Lock()
	defer l.mu.Unlock()
	k := r.Topic + "/" + strconv.Itoa(int(r.Partition))
	if l.seen[k] == nil {
		l.seen[k] = map[int64]int{}
	}
	l.seen[k][r.Offset]++
}

func (l *runLog) distinct() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	n := 0
	for _, m := range l.seen {
		n += len(m)
	}
	return n
}

func (l *runLog) has(tp string, off int64) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.seen[tp][off] > 0
}

var errHeld = errors.New("held by the test")

func consumerConfig(c *kfake.Cluster, group string, p ordo.Processor) ordo.Config {
	return ordo.Config{
		Brokers:          c.ListenAddrs(),
		Group:            group,
		Topics:           []string{"t"},
		Processor:        p,
		CommitInterval:   50 * time.Millisecond,
		SessionTimeout:   2 * time.Second,
		RebalanceTimeout: 4 * time.Second,
		RevokeTimeout:    2 * time.Second,
		Retry:            ordo.RetryPolicy{HoldDelay: 50 * time.Millisecond},
		Logger:           slog.New(slog.DiscardHandler),
		KgoOpts:          []kgo.Opt{kgo.FetchMaxWait(100 * time.Millisecond), kgo.HeartbeatInterval(200 * time.Millisecond)},
	}
}

func runConsumer(t *testing.T, cfg ordo.Config) *ordo.Consumer {
	t.Helper()
	cons, err := ordo.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	if err := cons.Start(ctxT(t)); err != nil {
		t.Fatal(err)
	}
	return cons
}

func stopConsumer(t *testing.T, cons *ordo.Consumer) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	if err := cons.Stop(ctx); err != nil {
		t.Fatalf("stop: %v", err)
	}
}

// counter reads the ordo_records_total series of the given outcome.
func counter(t *testing.T, reg *prometheus.Registry, outcome string) float64 {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	var sum float64
	for _, mf := range mfs {
		if mf.GetName() != "ordo_records_total" {
			continue
		}
		for _, m := range mf.GetMetric() {
			for _, l := range m.GetLabel() {
				if l.GetName() == "outcome" && l.GetValue() == outcome {
					sum += m.GetCounter().GetValue()
				}
			}
		}
	}
	return sum
}

// TestRewindOverOffsetMapReprocessesEverything: an Ordo consumer holds
// record 0 of t/0 (ordo.Hold) and finishes every other record, so its
// commits of t/0 carry offset 0 and an offset map listing 1..n-1 as done.
// It stops. `replay reset --to-earliest` then moves t/0 to 0, its offset
// already, and t/1 from n to 0. A new consumer must process every record
// of both partitions again: none may be skipped on the strength of the
// old map.
//
// The control group goes through the same first phase and is not reset:
// its next consumer processes record 0 of t/0 and marks the n-1 others
// done from the map without running them. That is what a reset that kept
// the metadata (or left t/0 alone because its offset did not move) would
// do, and it shows that the first phase leaves a map that matters.
func TestRewindOverOffsetMapReprocessesEverything(t *testing.T) {
	const n = 40
	c := newCluster(t, 2, "t")
	_, adm := newAdmin(t, c)
	var recs []*kgo.Record
	for p := range int32(2) {
		for o := range n {
			key := "k" + strconv.Itoa(o)
			if p == 0 && o == 0 {
				key = "H"
			}
			recs = append(recs, &kgo.Record{Topic: "t", Partition: p, Key: []byte(key), Value: []byte(strconv.Itoa(o))})
		}
	}
	produceManual(t, c, recs...)

	holdFirst := func(log *runLog) ordo.Processor {
		return ordo.ProcessorFunc(func(_ context.Context, r *kgo.Record) error {
			if r.Partition == 0 && r.Offset == 0 {
				return ordo.Hold(errHeld)
			}
			log.add(r)
			return nil
		})
	}
	// firstPhase runs a consumer of group until everything but t/0@0 is
	// processed and committed with an offset map, stops it, and checks
	// the commit it left.
	firstPhase := func(group string) {
		log := newRunLog()
		cons := runConsumer(t, consumerConfig(c, group, holdFirst(log)))
		waitFor(t, 30*time.Second, group+": every record but t/0@0, and a commit with an offset map", func() bool {
			if log.distinct() != 2*n-1 {
				return false
			}
			offs, err := adm.FetchOffsets(ctxT(t), group)
			if err != nil {
				return false
			}
			o0, _ := offs.Lookup("t", 0)
			o1, _ := offs.Lookup("t", 1)
			return o0.At == 0 && strings.HasPrefix(o0.Metadata, "ordo2:0:") && o1.At == n
		})
		stopConsumer(t, cons)
		offs, err := adm.FetchOffsets(ctxT(t), group)
		if err != nil {
			t.Fatal(err)
		}
		if o, _ := offs.Lookup("t", 0); o.At != 0 || !strings.HasPrefix(o.Metadata, "ordo2:0:") {
			t.Fatalf("%s: after stop t/0 is committed at %d with metadata %q; the test needs 0 and an offset map", group, o.At, o.Metadata)
		}
	}
	firstPhase("g-reset")
	firstPhase("g-control")

	plan, err := replay.PlanReset(ctxT(t), adm, replay.ResetRequest{Group: "g-reset", Topics: []replay.Selection{{Topic: "t"}}, Target: replay.Target{Verb: replay.ToEarliest}})
	if err != nil {
		t.Fatal(err)
	}
	if err := replay.ExecuteReset(ctxT(t), adm, plan); err != nil {
		t.Fatal(err)
	}

	// The reset group: every record runs again.
	again := newRunLog()
	cons := runConsumer(t, consumerConfig(c, "g-reset", ordo.ProcessorFunc(func(_ context.Context, r *kgo.Record) error {
		again.add(r)
		return nil
	})))
	waitFor(t, 30*time.Second, "the reset group to commit both partitions at their end", func() bool {
		offs, err := adm.FetchOffsets(ctxT(t), "g-reset")
		o0, _ := offs.Lookup("t", 0)
		o1, _ := offs.Lookup("t", 1)
		return err == nil && o0.At == n && o1.At == n
	})
	stopConsumer(t, cons)
	for p := range 2 {
		for o := range int64(n) {
			if tp := "t/" + strconv.Itoa(p); !again.has(tp, o) {
				t.Errorf("%s@%d was not processed after the rewind", tp, o)
			}
		}
	}
	if skipped := counter(t, cons.Registry(), ordo.OutcomeAlreadyDone); skipped != 0 {
		t.Errorf("after the reset the consumer marked %v records done from an offset map; want 0", skipped)
	}

	// The control group: the old map skips t/0@1..n-1.
	ctl := newRunLog()
	cons = runConsumer(t, consumerConfig(c, "g-control", ordo.ProcessorFunc(func(_ context.Context, r *kgo.Record) error {
		ctl.add(r)
		return nil
	})))
	waitFor(t, 30*time.Second, "the control group to commit t/0 at its end", func() bool {
		offs, err := adm.FetchOffsets(ctxT(t), "g-control")
		o, _ := offs.Lookup("t", 0)
		return err == nil && o.At == n
	})
	stopConsumer(t, cons)
	skipped := counter(t, cons.Registry(), ordo.OutcomeAlreadyDone)
	if ctl.distinct() != 1 || !ctl.has("t/0", 0) || skipped != n-1 {
		t.Errorf("control: processed %d records, marked %v done from the map; want 1 (t/0@0) and %d", ctl.distinct(), skipped, n-1)
	}
	t.Logf("after the reset: %d of %d records processed again; control without a reset: %d processed, %v skipped by the old offset map",
		again.distinct(), 2*n, ctl.distinct(), skipped)
}
