package ordotest_test

import (
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/ordokafka/ordo/pkg/ordotest"
)

func TestClockFiresInDeadlineOrderAtTheirTimes(t *testing.T) {
	start := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	c := ordotest.NewClock(start)
	var mu sync.Mutex
	var fired []string
	at := func(name string) func() {
		return func() {
			mu.Lock()
			fired = append(fired, name+"@"+c.Now().Sub(start).String())
			mu.Unlock()
		}
	}
	c.AfterFunc(3*time.Second, at("c"))
	c.AfterFunc(time.Second, at("a"))
	stopped := c.AfterFunc(2*time.Second, at("stopped"))
	c.AfterFunc(2*time.Second, func() {
		at("b")()
		c.AfterFunc(500*time.Millisecond, at("armed-by-b")) // due at 2.5s: fires in the same Advance
	})
	if !stopped.Stop() || stopped.Stop() {
		t.Fatal("Stop: want true once, then false")
	}
	if c.Pending() != 3 {
		t.Fatalf("%d pending", c.Pending())
	}
	c.Advance(2500 * time.Millisecond)
	want := []string{"a@1s", "b@2s", "armed-by-b@2.5s"}
	mu.Lock()
	got := slices.Clone(fired)
	mu.Unlock()
	if !slices.Equal(got, want) {
		t.Fatalf("fired %v, want %v", got, want)
	}
	if now := c.Now().Sub(start); now != 2500*time.Millisecond {
		t.Errorf("now %s", now)
	}
	c.Advance(time.Hour)
	mu.Lock()
	defer mu.Unlock()
	if len(fired) != 4 || fired[3] != "c@3s" || c.Pending() != 0 {
		t.Errorf("fired %v, %d pending", fired, c.Pending())
	}
}

func TestClockRunsNonPositiveDelaysAtOnce(t *testing.T) {
	c := ordotest.NewClock(time.Unix(0, 0))
	done := make(chan struct{})
	tm := c.AfterFunc(0, func() { close(done) })
	<-done // without any Advance
	if tm.Stop() {
		t.Error("Stop of a fired timer reported true")
	}
}
