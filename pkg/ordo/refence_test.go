package ordo

import (
	"context"
	"errors"
	"log/slog"
	"sync/atomic"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"
)

// countingFencer hands out increasing tokens and counts its calls.
type countingFencer struct{ calls, next atomic.Int64 }

func (f *countingFencer) Fence(context.Context, string, string, int32) (int64, error) {
	f.calls.Add(1)
	return f.next.Add(1), nil
}

// refenceLane is a lane with a Fencer and an ownership answer set by the
// test, and a way to end it.
func refenceLane(t *testing.T, f Fencer, owns func() (bool, error)) (*lane, func()) {
	t.Helper()
	chain := ProcessorFunc(func(context.Context, *kgo.Record) error { return nil })
	l, end := testLane(t, "t", laneRole{source: "t"}, laneConfig{workers: 1, maxRecs: 100, maxBytes: 1 << 20, maxSpan: 1000},
		chain, newBudget(1000, 1<<20), func(d *laneDeps) {
			d.fencer = f
			d.owns = func(context.Context, string, int32) (bool, error) { return owns() }
		})
	select {
	case <-l.fenced:
	case <-time.After(5 * time.Second):
		t.Fatal("the lane took no token")
	}
	return l, end
}

// TestRefenceTakesATokenOnlyWhenTheCoordinatorSaysOwned: a lane whose write
// was fenced takes a new token only if the coordinator says this member
// owns the partition; not when it says another does, not when it cannot
// be asked, and not once the lane is closing (the next owner's business).
func TestRefenceTakesATokenOnlyWhenTheCoordinatorSaysOwned(t *testing.T) {
	for _, tc := range []struct {
		name    string
		owned   bool
		err     error
		closing bool
		retaken bool
	}{
		{name: "owned", owned: true, retaken: true},
		{name: "another member owns it", owned: false},
		{name: "the coordinator cannot be asked", err: errors.New("coordinator not available")},
		{name: "owned but the lane is closing", owned: true, closing: true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := &countingFencer{}
			var asked atomic.Int64
			l, end := refenceLane(t, f, func() (bool, error) { asked.Add(1); return tc.owned, tc.err })
			defer end()
			before := l.token.Load()
			if tc.closing {
				l.mu.Lock()
				l.closing = true
				l.mu.Unlock()
			}
			l.refence()
			if asked.Load() != 1 {
				t.Fatalf("the coordinator was asked %d times, want 1", asked.Load())
			}
			got := l.token.Load()
			switch {
			case tc.retaken && got <= before:
				t.Errorf("token %d after the refence, want above %d", got, before)
			case !tc.retaken && got != before:
				t.Errorf("token %d after the refence, want %d kept", got, before)
			}
			if want := map[bool]int64{true: 2, false: 1}[tc.owned && tc.err == nil]; f.calls.Load() != want {
				t.Errorf("Fence called %d times, want %d (once at assignment, once more only if owned)", f.calls.Load(), want)
			}
		})
	}
}

// TestRefenceIsRateLimited: fenced tries of a held record ask the
// coordinator at most once per refenceEvery, and never twice at once.
func TestRefenceIsRateLimited(t *testing.T) {
	release := make(chan struct{})
	var asked atomic.Int64
	l, end := refenceLane(t, &countingFencer{}, func() (bool, error) {
		asked.Add(1)
		<-release
		return false, nil
	})
	defer end()
	for range 10 { // while the first is under way: none starts
		l.mu.Lock()
		l.refenceLocked()
		l.mu.Unlock()
	}
	close(release)
	deadline := time.Now().Add(5 * time.Second)
	for {
		l.mu.Lock()
		busy := l.refencing
		l.mu.Unlock()
		if !busy || time.Now().After(deadline) {
			break
		}
		time.Sleep(time.Millisecond)
	}
	l.mu.Lock()
	l.refenceLocked() // within refenceEvery of the first: not asked
	l.mu.Unlock()
	if n := asked.Load(); n != 1 {
		t.Errorf("the coordinator was asked %d times, want 1", n)
	}
}

// TestOwnsAsksTheCoordinator: with two members on two partitions, each
// member's owns says true for its own partition and false for the other's
// and for a topic it does not read.
func TestOwnsAsksTheCoordinator(t *testing.T) {
	c, err := kfake.NewCluster(kfake.NumBrokers(1), kfake.SeedTopics(2, "t"), kfake.GroupMinSessionTimeout(100*time.Millisecond))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	start := func() *Consumer {
		cons, err := New(Config{
			Brokers: c.ListenAddrs(), Group: "g", Topics: []string{"t"},
			Processor:      ProcessorFunc(func(context.Context, *kgo.Record) error { return nil }),
			SessionTimeout: 2 * time.Second, RebalanceTimeout: 4 * time.Second,
			Logger:  slog.New(slog.DiscardHandler),
			KgoOpts: []kgo.Opt{kgo.HeartbeatInterval(100 * time.Millisecond)},
		})
		if err != nil {
			t.Fatal(err)
		}
		if err := cons.Start(context.Background()); err != nil {
			t.Fatal(err)
		}
		return cons
	}
	a := start()
	b := start()
	defer func() {
		for _, cons := range []*Consumer{a, b} {
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			_ = cons.Stop(ctx)
			cancel()
		}
	}()
	mine := func(cons *Consumer) (int32, bool) {
		ls := cons.Lanes()
		if len(ls) != 1 {
			return -1, false
		}
		return ls[0].Partition, true
	}
	deadline := time.Now().Add(30 * time.Second)
	for {
		pa, okA := mine(a)
		pb, okB := mine(b)
		if okA && okB && pa != pb {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the two members did not settle on a partition each: A %+v, B %+v", a.Lanes(), b.Lanes())
		}
		time.Sleep(20 * time.Millisecond)
	}
	pa, _ := mine(a)
	pb, _ := mine(b)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	check := func(name string, cons *Consumer, topic string, p int32, want bool) {
		t.Helper()
		// The group may still be completing its rebalance: ask until the
		// answer is the settled one, then it must stay so.
		var got bool
		var err error
		for range 100 {
			if got, err = cons.owns(ctx, cons.Client(), topic, p); err == nil && got == want {
				return
			}
			time.Sleep(50 * time.Millisecond)
		}
		t.Errorf("%s owns %s/%d = %v (err %v), want %v", name, topic, p, got, err, want)
	}
	check("A", a, "t", pa, true)
	check("A", a, "t", pb, false)
	check("B", b, "t", pb, true)
	check("B", b, "t", pa, false)
	check("A", a, "other", pa, false)
}
