package ordotest

import (
	"slices"
	"sync"
	"time"

	"github.com/ordokafka/ordo/pkg/ordo"
)

// Clock is a fake ordo.Clock: time stands still until Advance moves it.
// Give it to ordo.Config.Clock and the engine's delays follow it: in-place
// retry backoffs, RetryAfter, holds (Hold, HoldFor, HoldPartition), the
// ordo-not-before of retry-tier records and the tier's wait for it, the
// periodic commit, and the age of records in ordo_consumer_lag_seconds.
// (What it does not drive: see the package documentation.)
//
// It is safe for concurrent use. Timer callbacks run in their own
// goroutines, as ordo.Clock requires; Advance waits for them to return.
type Clock struct {
	mu     sync.Mutex
	now    time.Time
	seq    int
	timers []*timer // armed, in no order
	// running counts callbacks that have not returned; idle is signaled
	// when it falls to 0. (Not a WaitGroup: a timer armed with d <= 0
	// fires while Advance may be waiting.)
	running int
	idle    *sync.Cond
}

type timer struct {
	c   *Clock
	at  time.Time
	seq int // arming order: equal deadlines fire in it
	f   func()
}

// NewClock returns a Clock set at start.
func NewClock(start time.Time) *Clock {
	c := &Clock{now: start}
	c.idle = sync.NewCond(&c.mu)
	return c
}

var _ ordo.Clock = (*Clock)(nil)

// Now returns the clock's time.
func (c *Clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

// AfterFunc arms f to run in its own goroutine once the clock has moved d
// past now; d <= 0 runs it at once.
func (c *Clock) AfterFunc(d time.Duration, f func()) ordo.Timer {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.seq++
	t := &timer{c: c, at: c.now.Add(d), seq: c.seq, f: f}
	if d <= 0 {
		c.fireLocked(t)
		return t
	}
	c.timers = append(c.timers, t)
	return t
}

// Stop implements ordo.Timer.
func (t *timer) Stop() bool {
	t.c.mu.Lock()
	defer t.c.mu.Unlock()
	i := slices.Index(t.c.timers, t)
	if i < 0 {
		return false
	}
	t.c.timers = slices.Delete(t.c.timers, i, i+1)
	return true
}

// fireLocked runs t's callback in a goroutine. c.mu is held.
func (c *Clock) fireLocked(t *timer) {
	c.running++
	go func() {
		defer func() {
			c.mu.Lock()
			c.running--
			if c.running == 0 {
				c.idle.Broadcast()
			}
			c.mu.Unlock()
		}()
		t.f()
	}()
}

// Pending returns how many timers are armed and not yet due.
func (c *Clock) Pending() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.timers)
}

// Advance moves the clock d forward, firing the timers that fall due, one
// deadline at a time and in deadline order, the clock set at each
// deadline as its timers fire, and waits for their callbacks to return.
// A timer armed by a callback fires in the same Advance if it falls due
// by its end.
//
// Harness.Advance also waits, at each deadline, for the engine to act on
// what fired; use it rather than this when testing through a Harness.
func (c *Clock) Advance(d time.Duration) { c.advance(d, nil) }

// advance is Advance, calling settle (if not nil) after each deadline's
// callbacks returned.
func (c *Clock) advance(d time.Duration, settle func()) {
	c.mu.Lock()
	target := c.now.Add(d)
	c.mu.Unlock()
	for c.step(target) {
		c.wait()
		if settle != nil {
			settle()
		}
	}
	c.mu.Lock()
	if c.now.Before(target) {
		c.now = target
	}
	c.mu.Unlock()
}

// step fires the timers of the earliest deadline at or before target,
// with the clock set at it, and reports whether there were any.
func (c *Clock) step(target time.Time) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	var next time.Time
	for _, t := range c.timers {
		if !t.at.After(target) && (next.IsZero() || t.at.Before(next)) {
			next = t.at
		}
	}
	if next.IsZero() {
		return false
	}
	if c.now.Before(next) {
		c.now = next
	}
	var due []*timer
	c.timers = slices.DeleteFunc(c.timers, func(t *timer) bool {
		if t.at.After(next) {
			return false
		}
		due = append(due, t)
		return true
	})
	slices.SortFunc(due, func(a, b *timer) int { return a.seq - b.seq })
	for _, t := range due {
		c.fireLocked(t)
	}
	return true
}

// wait waits until no callback is running.
func (c *Clock) wait() {
	c.mu.Lock()
	defer c.mu.Unlock()
	for c.running > 0 {
		c.idle.Wait()
	}
}
