// Package ordotest runs a processor through Ordo's real engine in a test:
// its middleware, the outcome routing (in-place retries, retry tiers, the
// dead-letter topic, holds) and the commits, against kfake, franz-go's
// in-process Kafka broker, with a fake clock so that delays of minutes or
// hours take no time.
//
//	func TestRejectsBadAmounts(t *testing.T) {
//		h := ordotest.New(t, ledger.New(), ordotest.Tiers(time.Minute, time.Hour))
//		rec := h.Produce("c-1", `{"amount": "ten"}`)
//		dl := h.WaitDeadLetter(rec)
//		if got := ordotest.HeaderValue(dl, ordo.HeaderErrorClass); got != "permanent" { ... }
//	}
//
// New starts a kfake cluster with the source topic, its retry tiers and its
// dead-letter topic, and an ordo.Consumer (ordo.New, the code `ordo run`
// uses) with the processor, its middleware and a Clock; t.Cleanup stops
// them. The harness sees each processor call through a middleware of its
// own, outermost of the processor's, and reads the tier and dead-letter
// topics with a kgo client; it never reaches into the engine.
//
// # Outcomes
//
// Outcome(rec) says what has happened to a record produced with Produce,
// and the Wait methods wait (in real time, up to WaitTimeout) for one:
//
//	Done          a call returned nil: the record is applied
//	Retrying      its last call failed; an in-place retry is due (Advance)
//	Held          its last call returned ordo.Hold, HoldFor or HoldPartition
//	InTier        it was produced to retry tier Outcome.Tier, and waits there
//	DeadLettered  it is on the dead-letter topic (Outcome.DeadLetter, with headers)
//
// # Time
//
// The consumer runs on h.Clock(): Advance(d) moves it, firing the timers
// that fall due in order and, at each, waiting for the engine to act on
// them (a retry called and its result routed) before going on. So
// Advance(time.Minute) runs a record's in-place retries and its first tier,
// as a minute would.
//
// What the fake clock does not drive, because the engine reads the wall
// clock there: Config.ProcessTimeout (a context deadline), the produce
// timeout of tier and dead-letter copies, the watchdog that takes hung
// calls off a partition's in-order runner, a Fencer's retry backoff, and
// the group's session and rebalance timers (franz-go's). A test of a
// processor timeout uses a short real ProcessTimeout.
package ordotest

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/ordokafka/ordo/pkg/ordo"
)

// Defaults of New.
const (
	DefaultTopic       = "events"
	DefaultGroup       = "ordotest"
	DefaultPartitions  = 1
	DefaultWaitTimeout = 10 * time.Second
)

// Option configures New.
type Option func(*settings)

type settings struct {
	topic       string
	group       string
	partitions  int32
	tiers       []time.Duration
	maxAttempts int
	mws         []ordo.Middleware
	configure   []func(*ordo.Config)
	waitTimeout time.Duration
	start       time.Time
	logLevel    slog.Level
}

// Tiers sets the retry tiers' delays (ordo.RetryPolicy.Tiers); their
// topics are created. Default none: in place, then the dead-letter topic.
func Tiers(delays ...time.Duration) Option {
	return func(s *settings) { s.tiers = delays }
}

// MaxAttempts sets the calls a record gets in place
// (ordo.RetryPolicy.MaxAttempts). Default ordo's, 5.
func MaxAttempts(n int) Option { return func(s *settings) { s.maxAttempts = n } }

// Middleware wraps the processor (ordo.Config.Middleware; mws[0] is the
// outermost).
func Middleware(mws ...ordo.Middleware) Option {
	return func(s *settings) { s.mws = append(s.mws, mws...) }
}

// Topic names the source topic. Default "events".
func Topic(name string) Option { return func(s *settings) { s.topic = name } }

// Group names the consumer group. Default "ordotest".
func Group(name string) Option { return func(s *settings) { s.group = name } }

// Partitions sets the partitions of every topic the harness creates.
// Default 1.
func Partitions(n int32) Option { return func(s *settings) { s.partitions = n } }

// Configure edits the ordo.Config before ordo.New: Ordering,
// ProcessTimeout, Retry's other fields, a Fencer, anything. Brokers,
// Topics, Group and Clock are the harness's; Middleware gets the
// harness's observer in front of it; an OnCommit is kept.
func Configure(f func(*ordo.Config)) Option {
	return func(s *settings) { s.configure = append(s.configure, f) }
}

// WaitTimeout bounds each Wait and each Advance, in real time. Default 10s.
func WaitTimeout(d time.Duration) Option { return func(s *settings) { s.waitTimeout = d } }

// StartAt sets the clock's start. Default: the wall clock's time at New,
// so that record timestamps and the clock agree.
func StartAt(t time.Time) Option { return func(s *settings) { s.start = t } }

// LogLevel sets the level of the engine's logs, written to t.Log. Default
// warn.
func LogLevel(l slog.Level) Option { return func(s *settings) { s.logLevel = l } }

// TB is the part of testing.TB the harness uses; *testing.T and
// *testing.B are TBs.
type TB interface {
	Helper()
	Log(args ...any)
	Errorf(format string, args ...any)
	Fatalf(format string, args ...any)
	Cleanup(func())
}

// Harness runs one consumer over a kfake cluster. Its methods that wait or
// fail (Produce, the Wait methods, Advance) must be called from the test's
// goroutine.
type Harness struct {
	t       TB
	cfg     ordo.Config
	clock   *Clock
	cluster *kfake.Cluster
	cons    *ordo.Consumer
	cl      *kgo.Client // produces, and reads the tiers and the dead-letter topic
	timeout time.Duration

	mu       sync.Mutex
	byOrigin map[ordo.Origin]*track
	inflight int // calls under way
	failed   int // calls that failed (not canceled by the engine)
	copies   int // tier and dead-letter copies read
	commits  []ordo.CommitEvent
}

// track is what the harness knows of one record, by its origin.
type track struct {
	rec        *kgo.Record // as produced through the harness; nil otherwise
	calls      []Call
	tiers      []*kgo.Record // its copies on the retry tiers, as read
	deadLetter *kgo.Record
}

// New starts a kfake cluster and a consumer running p, and stops both when
// the test ends.
func New(t TB, p ordo.Processor, opts ...Option) *Harness {
	t.Helper()
	s := settings{topic: DefaultTopic, group: DefaultGroup, partitions: DefaultPartitions,
		waitTimeout: DefaultWaitTimeout, logLevel: slog.LevelWarn}
	for _, o := range opts {
		o(&s)
	}
	if s.start.IsZero() {
		s.start = time.Now().Truncate(time.Millisecond)
	}
	h := &Harness{t: t, clock: NewClock(s.start), timeout: s.waitTimeout, byOrigin: map[ordo.Origin]*track{}}

	logs := &testWriter{t: t}
	cfg := ordo.Config{
		Group:         s.group,
		Topics:        []string{s.topic},
		Processor:     p,
		ProcessorName: "ordotest",
		Retry:         ordo.RetryPolicy{MaxAttempts: s.maxAttempts, Tiers: s.tiers},
		Middleware:    s.mws,
		Logger:        slog.New(slog.NewTextHandler(logs, &slog.HandlerOptions{Level: s.logLevel})),
		// A member that leaves gives its partitions up at once; kfake
		// forms a group within milliseconds.
		SessionTimeout: 6 * time.Second,
	}
	for _, f := range s.configure {
		f(&cfg)
	}
	// A partition resumed when its tier record falls due is fetched
	// again in the next fetch: keep the broker's wait for data short.
	cfg.KgoOpts = append([]kgo.Opt{kgo.FetchMaxWait(50 * time.Millisecond)}, cfg.KgoOpts...)
	userCommit := cfg.OnCommit
	cfg.Group, cfg.Topics, cfg.Clock = s.group, []string{s.topic}, h.clock
	cfg.Middleware = append([]ordo.Middleware{h.observe}, cfg.Middleware...)
	cfg.OnCommit = func(e ordo.CommitEvent) {
		h.mu.Lock()
		h.commits = append(h.commits, e)
		h.mu.Unlock()
		if userCommit != nil {
			userCommit(e)
		}
	}

	naming := cfg.Naming
	if naming.RetryTemplate == "" {
		naming.RetryTemplate = ordo.DefaultRetryTopicTemplate
	}
	if naming.DLQTemplate == "" {
		naming.DLQTemplate = ordo.DefaultDLQTopicTemplate
	}
	outs := []string{naming.DLQTopic(s.topic, s.group)}
	for n := range cfg.Retry.Tiers {
		outs = append(outs, naming.RetryTopic(s.topic, s.group, n+1))
	}
	cluster, err := kfake.NewCluster(kfake.NumBrokers(1), kfake.GroupMinSessionTimeout(time.Second),
		kfake.SeedTopics(s.partitions, append([]string{s.topic}, outs...)...))
	if err != nil {
		t.Fatalf("ordotest: kfake: %v", err)
	}
	h.cluster = cluster
	cfg.Brokers = cluster.ListenAddrs()
	h.cfg = cfg

	cons, err := ordo.New(cfg)
	if err != nil {
		cluster.Close()
		t.Fatalf("ordotest: ordo.New: %v", err)
	}
	h.cons = cons
	cl, err := kgo.NewClient(kgo.SeedBrokers(cfg.Brokers...), kgo.ConsumeTopics(outs...),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()), kgo.FetchMaxWait(50*time.Millisecond))
	if err != nil {
		cluster.Close()
		t.Fatalf("ordotest: kgo: %v", err)
	}
	h.cl = cl
	readCtx, stopReading := context.WithCancel(context.Background())
	read := make(chan struct{})
	go func() {
		defer close(read)
		h.read(readCtx)
	}()
	t.Cleanup(func() {
		sctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
		defer cancel()
		if err := cons.Stop(sctx); err != nil {
			t.Errorf("ordotest: stopping the consumer: %v", err)
		}
		stopReading()
		<-read
		cl.Close()
		cluster.Close()
		h.clock.wait()
		logs.close()
	})
	if err := cons.Start(context.Background()); err != nil {
		t.Fatalf("ordotest: start: %v", err)
	}
	return h
}

// observe is the harness's middleware, outermost of the processor's: it
// records each call and its result. It recovers a panic into
// *ordo.PanicError itself, as the engine's own Recover would.
func (h *Harness) observe(next ordo.Processor) ordo.Processor {
	next = ordo.Recover(next)
	return ordo.ProcessorFunc(func(ctx context.Context, r *kgo.Record) error {
		o := ordo.OriginOf(ctx, r)
		info, _ := ordo.InfoFromContext(ctx)
		h.mu.Lock()
		h.inflight++
		h.mu.Unlock()
		err := next.Process(ctx, r)
		c := Call{Topic: r.Topic, Partition: r.Partition, Offset: r.Offset, Tier: info.Tier, Attempt: info.Attempt,
			Err: err, At: h.clock.Now(), Canceled: err != nil && errors.Is(ctx.Err(), context.Canceled)}
		h.mu.Lock()
		h.inflight--
		if err != nil && !c.Canceled {
			h.failed++
		}
		tr := h.trackLocked(o)
		tr.calls = append(tr.calls, c)
		h.mu.Unlock()
		return err
	})
}

func (h *Harness) trackLocked(o ordo.Origin) *track {
	tr, ok := h.byOrigin[o]
	if !ok {
		tr = &track{}
		h.byOrigin[o] = tr
	}
	return tr
}

// read files the records of the tiers and the dead-letter topic under
// their origin until ctx ends.
func (h *Harness) read(ctx context.Context) {
	for {
		fs := h.cl.PollFetches(ctx)
		if ctx.Err() != nil {
			return
		}
		fs.EachRecord(func(r *kgo.Record) {
			o, ok := originOf(r)
			if !ok {
				return
			}
			h.mu.Lock()
			tr := h.trackLocked(o)
			if HeaderValue(r, ordo.HeaderTier) != "" {
				tr.tiers = append(tr.tiers, r)
			} else {
				tr.deadLetter = r
			}
			h.copies++
			h.mu.Unlock()
		})
	}
}

// originOf reads the origin of a tier or dead-letter record.
func originOf(r *kgo.Record) (ordo.Origin, bool) {
	p, err1 := strconv.ParseInt(HeaderValue(r, ordo.HeaderOriginalPartition), 10, 32)
	off, err2 := strconv.ParseInt(HeaderValue(r, ordo.HeaderOriginalOffset), 10, 64)
	topic := HeaderValue(r, ordo.HeaderOriginalTopic)
	if err1 != nil || err2 != nil || topic == "" {
		return ordo.Origin{}, false
	}
	return ordo.Origin{Topic: topic, Partition: int32(p), Offset: off}, true
}

// HeaderValue returns the value of r's last header named key, or "".
func HeaderValue(r *kgo.Record, key string) string {
	for i := len(r.Headers) - 1; i >= 0; i-- {
		if r.Headers[i].Key == key {
			return string(r.Headers[i].Value)
		}
	}
	return ""
}

// Clock returns the consumer's clock.
func (h *Harness) Clock() *Clock { return h.clock }

// Consumer returns the consumer, for its Stats, Lanes and metrics
// (Consumer.Registry).
func (h *Harness) Consumer() *ordo.Consumer { return h.cons }

// Config returns the ordo.Config the consumer was built with.
func (h *Harness) Config() ordo.Config { return h.cfg }

// Client returns the harness's kgo client, to produce records of your own
// or read other topics. Do not poll with it: the harness does.
func (h *Harness) Client() *kgo.Client { return h.cl }

// Cluster returns the kfake cluster, for fault injection (ControlKey).
func (h *Harness) Cluster() *kfake.Cluster { return h.cluster }

// Topic returns the source topic.
func (h *Harness) Topic() string { return h.cfg.Topics[0] }

// TierTopic returns the topic of retry tier n (from 1).
func (h *Harness) TierTopic(n int) string {
	return namingOf(h.cfg).RetryTopic(h.Topic(), h.cfg.Group, n)
}

// DLQTopic returns the dead-letter topic.
func (h *Harness) DLQTopic() string { return namingOf(h.cfg).DLQTopic(h.Topic(), h.cfg.Group) }

func namingOf(cfg ordo.Config) ordo.Naming {
	n := cfg.Naming
	if n.RetryTemplate == "" {
		n.RetryTemplate = ordo.DefaultRetryTopicTemplate
	}
	if n.DLQTemplate == "" {
		n.DLQTemplate = ordo.DefaultDLQTopicTemplate
	}
	return n
}

// Commits returns the commits made so far (ordo.Config.OnCommit). The
// periodic commit follows the clock: Advance by CommitInterval (1s by
// default) to have one.
func (h *Harness) Commits() []ordo.CommitEvent {
	h.mu.Lock()
	defer h.mu.Unlock()
	return slices.Clone(h.commits)
}

// Counter returns the value of one of the consumer's counters, such as
// ordo_records_total or ordo_routed_total, summed over the series whose
// labels match labelPairs ("outcome", "dlq", ...).
func (h *Harness) Counter(name string, labelPairs ...string) float64 {
	h.t.Helper()
	if len(labelPairs)%2 != 0 {
		h.t.Fatalf("ordotest: Counter(%s): labels come in name, value pairs", name)
	}
	mfs, err := h.cons.Registry().Gather()
	if err != nil {
		h.t.Fatalf("ordotest: gathering metrics: %v", err)
	}
	var sum float64
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
	metric:
		for _, m := range mf.GetMetric() {
			for i := 0; i < len(labelPairs); i += 2 {
				found := false
				for _, l := range m.GetLabel() {
					if l.GetName() == labelPairs[i] && l.GetValue() == labelPairs[i+1] {
						found = true
					}
				}
				if !found {
					continue metric
				}
			}
			sum += m.GetCounter().GetValue() + m.GetGauge().GetValue()
		}
	}
	return sum
}

// Produce produces a record with key and value (and headers) to the source
// topic, waits for the broker's acknowledgement, and returns it with its
// partition and offset, to pass to Outcome and the Wait methods. An empty
// key produces a record without one.
func (h *Harness) Produce(key, value string, headers ...kgo.RecordHeader) *kgo.Record {
	h.t.Helper()
	r := &kgo.Record{Value: []byte(value), Headers: headers}
	if key != "" {
		r.Key = []byte(key)
	}
	return h.ProduceRecord(r)
}

// ProduceRecord produces r to the source topic (whatever r.Topic says)
// and returns it once acknowledged.
func (h *Harness) ProduceRecord(r *kgo.Record) *kgo.Record {
	h.t.Helper()
	r.Topic = h.Topic()
	ctx, cancel := context.WithTimeout(context.Background(), h.timeout)
	defer cancel()
	if err := h.cl.ProduceSync(ctx, r).FirstErr(); err != nil {
		h.t.Fatalf("ordotest: producing to %s: %v", r.Topic, err)
	}
	h.mu.Lock()
	h.trackLocked(ordo.Origin{Topic: r.Topic, Partition: r.Partition, Offset: r.Offset}).rec = r
	h.mu.Unlock()
	return r
}

// testWriter writes log lines to t.Log until the harness has stopped.
type testWriter struct {
	mu     sync.Mutex
	t      TB
	closed bool
}

func (w *testWriter) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if !w.closed {
		w.t.Log(strings.TrimRight(string(p), "\n"))
	}
	return len(p), nil
}

func (w *testWriter) close() {
	w.mu.Lock()
	w.closed = true
	w.mu.Unlock()
}

var _ io.Writer = (*testWriter)(nil)

// holdTypes are the types of the errors ordo.Hold, HoldFor and
// HoldPartition return. Ordo keeps them unexported; a failed call whose
// error chain holds one of them is held (the engine's rule: a hold wins
// over any other wrapping). See isHold.
var holdTypes = []reflect.Type{
	reflect.TypeOf(ordo.Hold(errors.New("x"))),
	reflect.TypeOf(ordo.HoldPartition(errors.New("x"))),
}

// isHold reports whether err is, or wraps, a hold: what errors.As would
// say for ordo's unexported hold types.
func isHold(err error) bool {
	if err == nil {
		return false
	}
	if slices.Contains(holdTypes, reflect.TypeOf(err)) {
		return true
	}
	switch u := err.(type) { //nolint:errorlint // walking the chain by hand, as errors.As does, for a type ordo does not export
	case interface{ Unwrap() error }:
		return isHold(u.Unwrap())
	case interface{ Unwrap() []error }:
		return slices.ContainsFunc(u.Unwrap(), isHold)
	}
	return false
}

// describe is a failure message's account of a record.
func describe(o Outcome) string {
	var b strings.Builder
	fmt.Fprintf(&b, "state %s", o.State)
	if o.Tier > 0 {
		fmt.Fprintf(&b, " (tier %d)", o.Tier)
	}
	if len(o.Calls) == 0 {
		b.WriteString(", no call")
	}
	for i, c := range o.Calls {
		fmt.Fprintf(&b, "\n  call %d: tier %d attempt %d at %s: ", i+1, c.Tier, c.Attempt, c.At.Format("15:04:05.000"))
		if c.Err == nil {
			b.WriteString("ok")
		} else {
			b.WriteString(c.Err.Error())
		}
	}
	return b.String()
}
