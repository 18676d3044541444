// Package guard protects downstream dependencies: circuit breakers
// (sony/gobreaker v2) that hold work instead of failing it while a
// dependency is down, and rate limits (golang.org/x/time/rate) that send a
// record back until its turn instead of keeping a worker asleep.
//
// Both are ordo.Middleware, and both can also wrap a single call inside a
// processor (Breaker.Do, Limiter.Take) when a processor talks to several
// dependencies. Use one Breaker and one Limiter per dependency, shared by
// every processor that calls it.
//
// In the processor chain they go inside deduplication and outside the
// user's code, the breaker outside the limiter (a rate-limited record is
// not a failure of the dependency):
//
//	cfg.Middleware = []ordo.Middleware{breaker.Middleware(), limiter.Middleware()}
package guard

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/sony/gobreaker/v2"
	"github.com/twmb/franz-go/pkg/kgo"
	"golang.org/x/time/rate"

	"github.com/ordokafka/ordo/pkg/ordo"
	"github.com/ordokafka/ordo/pkg/store"
)

// ErrOpen is wrapped by the error of a call that an open (or half-open and
// busy) breaker did not let through.
var ErrOpen = errors.New("guard: circuit breaker open")

// ErrRateLimited is wrapped by the error of a call that a Limiter sent back
// until its turn.
var ErrRateLimited = errors.New("guard: rate limited")

// State is a breaker's state; its value is the ordo_breaker_state gauge's.
type State int

// States.
const (
	Closed   State = 0
	HalfOpen State = 1
	Open     State = 2
)

func (s State) String() string {
	switch s {
	case Closed:
		return "closed"
	case HalfOpen:
		return "half-open"
	case Open:
		return "open"
	}
	return fmt.Sprintf("State(%d)", int(s))
}

// Breaker defaults.
const (
	DefaultFailures = 5
	DefaultOpenFor  = 5 * time.Second
	DefaultProbes   = 1
)

// BreakerOptions configure a Breaker.
type BreakerOptions struct {
	// Name names the dependency, in ordo_breaker_state{name} and in
	// errors. Required; unique within a Breakers.
	Name string
	// Failures is how many failures in a row open the breaker. Default 5.
	Failures uint32
	// OpenFor is how long the breaker stays open before it lets probes
	// through (half-open). Default 5s.
	OpenFor time.Duration
	// Probes is how many calls run while the breaker is half-open; that
	// many successes in a row close it, one failure opens it again.
	// Default 1.
	Probes uint32
	// IsFailure says whether a call's error counts against the
	// dependency. Default IsFailure.
	IsFailure func(error) bool
	// OnStateChange, if set, is called on every change of state (under
	// the breaker's lock: be quick, and do not call the breaker).
	OnStateChange func(name string, from, to State)
}

// IsFailure is the default BreakerOptions.IsFailure: every error counts
// except a permanent one (ordo.Permanent: the dependency answered, the
// record is bad), a fenced write (the store answered), a rate-limited call
// and a canceled context (a lost partition, a stop).
func IsFailure(err error) bool {
	switch {
	case err == nil:
		return false
	case ordo.ClassOf(err) == ordo.ClassPermanent,
		errors.Is(err, store.ErrFenced),
		errors.Is(err, ErrRateLimited),
		errors.Is(err, context.Canceled):
		return false
	}
	return true
}

// Breakers is a set of circuit breakers whose states are one metric,
// ordo_breaker_state{name} (0 closed, 1 half-open, 2 open), read at scrape
// time.
type Breakers struct {
	desc *prometheus.Desc
	mu   sync.Mutex
	all  map[string]*Breaker
}

// NewBreakers returns an empty set and registers its metric on reg (nil:
// no metric). Ordo never uses the global registry: pass the consumer's
// (ordo.Consumer.Registry) or your own.
func NewBreakers(reg prometheus.Registerer) (*Breakers, error) {
	bs := &Breakers{
		desc: prometheus.NewDesc("ordo_breaker_state", "State of a circuit breaker: 0 closed, 1 half-open, 2 open.", []string{"name"}, nil),
		all:  map[string]*Breaker{},
	}
	if reg != nil {
		if err := reg.Register(bs); err != nil {
			return nil, fmt.Errorf("guard: registering ordo_breaker_state: %w", err)
		}
	}
	return bs, nil
}

// Describe implements prometheus.Collector.
func (bs *Breakers) Describe(ch chan<- *prometheus.Desc) { ch <- bs.desc }

// Collect implements prometheus.Collector.
func (bs *Breakers) Collect(ch chan<- prometheus.Metric) {
	bs.mu.Lock()
	list := make([]*Breaker, 0, len(bs.all))
	for _, b := range bs.all {
		list = append(list, b)
	}
	bs.mu.Unlock()
	sort.Slice(list, func(i, j int) bool { return list[i].name < list[j].name })
	for _, b := range list {
		ch <- prometheus.MustNewConstMetric(bs.desc, prometheus.GaugeValue, float64(b.State()), b.name)
	}
}

// New returns a new breaker of the set.
func (bs *Breakers) New(o BreakerOptions) (*Breaker, error) {
	if o.Name == "" {
		return nil, errors.New("guard: BreakerOptions.Name is required")
	}
	if o.OpenFor < 0 {
		return nil, fmt.Errorf("guard: breaker %s: OpenFor must not be negative, got %s", o.Name, o.OpenFor)
	}
	if o.Failures == 0 {
		o.Failures = DefaultFailures
	}
	if o.OpenFor == 0 {
		o.OpenFor = DefaultOpenFor
	}
	if o.Probes == 0 {
		o.Probes = DefaultProbes
	}
	if o.IsFailure == nil {
		o.IsFailure = IsFailure
	}
	bs.mu.Lock()
	defer bs.mu.Unlock()
	if _, dup := bs.all[o.Name]; dup {
		return nil, fmt.Errorf("guard: a breaker named %q exists already", o.Name)
	}
	isFailure := o.IsFailure
	settings := gobreaker.Settings{
		Name:        o.Name,
		MaxRequests: o.Probes,
		Timeout:     o.OpenFor,
		ReadyToTrip: func(c gobreaker.Counts) bool { return c.ConsecutiveFailures >= o.Failures },
		IsSuccessful: func(err error) bool {
			return !isFailure(err)
		},
		// A canceled call says nothing about the dependency either way.
		IsExcluded: func(err error) bool { return errors.Is(err, context.Canceled) || errors.Is(err, ErrRateLimited) },
	}
	if f := o.OnStateChange; f != nil {
		settings.OnStateChange = func(name string, from, to gobreaker.State) { f(name, state(from), state(to)) }
	}
	b := &Breaker{name: o.Name, cb: gobreaker.NewTwoStepCircuitBreaker[struct{}](settings), isFailure: isFailure}
	bs.all[o.Name] = b
	return b, nil
}

func state(s gobreaker.State) State {
	switch s {
	case gobreaker.StateHalfOpen:
		return HalfOpen
	case gobreaker.StateOpen:
		return Open
	}
	return Closed
}

// Breaker is a circuit breaker for one dependency. It is safe for
// concurrent use.
type Breaker struct {
	name      string
	cb        *gobreaker.TwoStepCircuitBreaker[struct{}]
	isFailure func(error) bool
}

// Name returns the breaker's name.
func (b *Breaker) Name() string { return b.name }

// State returns the breaker's state now.
func (b *Breaker) State() State { return state(b.cb.State()) }

// Do runs fn through the breaker and maps the result to an ordo outcome:
//
//   - open, or half-open with its probes already running: fn is not called
//     and Do returns ordo.HoldPartition (wrapping ErrOpen): the record keeps
//     its place without spending an attempt, its partition pauses, and its
//     next try (after Config.Retry.HoldDelay) is the probe;
//   - fn failed and that opened the breaker (the failure that tripped it,
//     or a failed probe): ordo.HoldPartition(err), for the same reasons;
//   - otherwise fn's error as it is (nil, a failure that did not trip the
//     breaker, a permanent error).
func (b *Breaker) Do(ctx context.Context, fn func(ctx context.Context) error) error {
	done, err := b.cb.Allow()
	if err != nil {
		return ordo.HoldPartition(fmt.Errorf("%w: %s is %s", ErrOpen, b.name, b.State()))
	}
	err = fn(ctx)
	done(err)
	if err != nil && b.isFailure(err) && b.cb.State() != gobreaker.StateClosed {
		return ordo.HoldPartition(fmt.Errorf("%s: %w", b.name, err))
	}
	return err
}

// Middleware returns a Middleware that runs every call through b.
func (b *Breaker) Middleware() ordo.Middleware {
	return func(next ordo.Processor) ordo.Processor {
		return ordo.ProcessorFunc(func(ctx context.Context, r *kgo.Record) error {
			return b.Do(ctx, func(ctx context.Context) error { return next.Process(ctx, r) })
		})
	}
}

// Limiter is a rate limit for one processor or dependency: a token bucket
// (golang.org/x/time/rate) that never makes a worker wait. A call over the
// rate gets ordo.HoldFor(d) back, d being when its turn comes: the record
// goes back to its key's queue without spending an attempt, the worker
// takes other work, and other processors and limits are not affected. It
// is safe for concurrent use.
//
// A record whose turn is near (within MaxAhead) keeps its reservation while
// it waits, and runs when it comes back; a record further back gives its
// reservation up and asks again later. Canceling every reservation instead
// sends every waiting record back at the same instant, each time a turn
// comes up, to find that one of them got it: measured with 200 keys waiting
// at 20/s, about 4,000 calls a second for 20 that pass, and under the race
// detector only 8.8 of the 20 turns a second were taken.
type Limiter struct {
	name     string
	lim      *rate.Limiter
	now      func() time.Time
	maxAhead time.Duration

	mu        sync.Mutex
	reserved  map[*kgo.Record]reservation
	lastSweep time.Time
}

type reservation struct {
	r  *rate.Reservation
	at time.Time // when its turn comes
}

// NewLimiter returns a limit of perSecond calls a second, with bursts of up
// to burst calls (burst < 1 means 1: at most one call per 1/perSecond).
// Its MaxAhead is one second or one turn, whichever is longer.
func NewLimiter(name string, perSecond float64, burst int) (*Limiter, error) {
	if perSecond <= 0 {
		return nil, fmt.Errorf("guard: limiter %s: the rate must be > 0, got %g", name, perSecond)
	}
	return &Limiter{
		name:     name,
		lim:      rate.NewLimiter(rate.Limit(perSecond), max(burst, 1)),
		now:      time.Now,
		maxAhead: max(time.Second, time.Duration(float64(time.Second)/perSecond)),
		reserved: map[*kgo.Record]reservation{},
	}, nil
}

// Name returns the limiter's name.
func (l *Limiter) Name() string { return l.name }

// Take takes a turn for a call that is not a record's: nil if the call may
// run now, else ordo.HoldFor(d) wrapping ErrRateLimited, d being the wait
// for the next turn. It never blocks: a reservation that would have to wait
// is canceled (its token goes back).
func (l *Limiter) Take() error {
	now := l.now()
	r := l.lim.ReserveN(now, 1)
	d := r.DelayFrom(now)
	if d <= 0 {
		return nil
	}
	r.CancelAt(now)
	return l.hold(d)
}

func (l *Limiter) hold(d time.Duration) error {
	return ordo.HoldFor(d, fmt.Errorf("%w: %s, next turn in %s", ErrRateLimited, l.name, d.Round(time.Millisecond)))
}

// TakeFor takes a turn for record r: nil if it may run now, else
// ordo.HoldFor(d) wrapping ErrRateLimited. A record whose turn is within
// MaxAhead keeps its reservation and runs when it comes back after d; a
// reservation not claimed a minute after its turn is forgotten (the record's
// partition moved away).
func (l *Limiter) TakeFor(rec *kgo.Record) error {
	now := l.now()
	l.mu.Lock()
	defer l.mu.Unlock()
	if now.Sub(l.lastSweep) > time.Second {
		l.lastSweep = now
		for k, res := range l.reserved {
			if now.Sub(res.at) > time.Minute {
				delete(l.reserved, k)
			}
		}
	}
	if res, ok := l.reserved[rec]; ok {
		if d := res.at.Sub(now); d > 0 {
			return l.hold(d) // back early: keep waiting for its turn
		}
		delete(l.reserved, rec)
		return nil
	}
	r := l.lim.ReserveN(now, 1)
	d := r.DelayFrom(now)
	switch {
	case d <= 0:
		return nil
	case d <= l.maxAhead:
		l.reserved[rec] = reservation{r: r, at: now.Add(d)}
	default:
		// Come back while the queue of kept turns still holds half of
		// MaxAhead, so that it never runs dry while records wait.
		r.CancelAt(now)
		d -= l.maxAhead / 2
	}
	return l.hold(d)
}

// Middleware returns a Middleware that takes a turn (TakeFor) before each
// call.
func (l *Limiter) Middleware() ordo.Middleware {
	return func(next ordo.Processor) ordo.Processor {
		return ordo.ProcessorFunc(func(ctx context.Context, r *kgo.Record) error {
			if err := l.TakeFor(r); err != nil {
				return err
			}
			return next.Process(ctx, r)
		})
	}
}
