package ordo

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"slices"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
)

// ErrStopped is returned by Start on a consumer that was already started
// or stopped: a Consumer runs once.
var ErrStopped = errors.New("ordo: consumer already started or stopped")

// ConnectError is Start's error when no seed broker answered within
// Config.ConnectTimeout.
type ConnectError struct {
	Brokers []string      // the seed brokers tried
	Timeout time.Duration // Config.ConnectTimeout
	Err     error         // the last broker's error
}

func (e *ConnectError) Error() string {
	return fmt.Sprintf("ordo: no seed broker of %s answered within %s (Config.ConnectTimeout): %v",
		strings.Join(e.Brokers, ","), e.Timeout, e.Err)
}

func (e *ConnectError) Unwrap() error { return e.Err }

type tp struct {
	topic     string
	partition int32
}

func (k tp) String() string { return fmt.Sprintf("%s/%d", k.topic, k.partition) }

// Consumer runs a Processor over a consumer group. Create it with New,
// run it with Start and end it with Stop or StopAndCancel.
//
// Its parts: the poll loop (below) hands fetched records to one lane per
// assigned partition (lane.go); lanes meet the rest of the consumer only
// through narrow interfaces: a budget (budget.go), a router that decides
// outcomes and produces dead letters (router.go), the fetch pauser (the
// client), and the watchdog (watchdog.go). Commits are in commit.go.
//
// The stop order, in Stop and StopAndCancel, every step bounded by the
// context given to Stop:
//
//  1. stop polling: no new record enters a lane;
//  2. stop the periodic committer;
//  3. every lane stops starting records, but, in Stop, for those below its
//     highest finished offset, and waits for its running ones
//     (StopAndCancel cancels their contexts first), until the drain
//     deadline: the context's deadline less a reserve for the commit;
//  4. commit each lane's watermark, its lowest unfinished offset, with its
//     offset map; what could not be committed is logged;
//  5. leave the group and close the client;
//  6. wait for every worker goroutine to return.
//
// Lock order: lifeMu, then commitSem, then mu, then metrics.mu, then each
// lane's mu.
type Consumer struct {
	cfg     Config
	chain   Processor // the user's processor inside Config.Middleware
	proc    Processor // chain inside Recover
	metrics *metrics
	reg     *prometheus.Registry // non-nil if the consumer owns its registry
	sem     chan struct{}
	budget  *budget
	router  *router
	watch   *watchdog
	lcfg    laneConfig
	roles   map[string]laneRole // every consumed topic: a source topic or a group's retry tier
	epochs  atomic.Uint64
	mapMax  atomic.Int64 // the largest offset map to commit (lowered if the broker refuses one)

	cl           *kgo.Client
	admCl        atomic.Pointer[kgo.Client] // cl, for callbacks that may run before Start sets cl
	clReady      chan struct{}              // closed once admCl is set
	clientCancel context.CancelFunc         // cancels the client's own context
	workCtx      context.Context            // parent of every lane context
	cancelW      context.CancelFunc

	mu       sync.RWMutex // guards lanes, retiring, stopLanes and final
	lanes    map[tp]*lane
	retiring map[tp]*lane   // closed lanes whose workers may still run
	retired  sync.WaitGroup // workers of lanes already closed

	commitSem chan struct{} // one commit at a time; held across snapshot and commit

	lifeMu    sync.Mutex
	started   bool
	stopOnce  sync.Once
	stopErr   error
	failOnce  sync.Once
	failMu    sync.Mutex
	failErr   error // why the consumer stopped itself (see fail)
	pollStop  context.CancelFunc
	pollDone  chan struct{}
	tickStop  chan struct{}
	tickCtx   context.Context // periodic commits; canceled by Stop so one cannot hold it up
	tickEnd   context.CancelFunc
	tickDone  chan struct{}
	watchDone chan struct{}
	stopped   chan struct{}

	// While Stop drains, a rebalance may run (polling has stopped, so
	// nothing blocks it). Revoke then waits for Stop's commit, so the
	// partitions are released only once committed, and a loss marks the
	// draining lanes so that Stop commits nothing for them.
	stopping      atomic.Bool
	stopLanes     []*lane        // lanes Stop is closing
	final         []LaneSnapshot // the lanes as Stop left them
	stopCommitted chan struct{}  // closed once Stop committed

	logs     *edgeLog     // broker and fetch errors, logged at a bounded rate
	callGate sync.RWMutex // with Config.Attempts: calls share it, a suspect's call takes it alone
	brokerOK atomic.Int64 // unix ns of the last broker response without error
}

// New validates cfg, applies its defaults and returns a Consumer that has
// not connected to anything yet. Every error names the Config field at
// fault.
func New(cfg Config) (*Consumer, error) {
	cfg = cfg.withDefaults()
	if err := cfg.validate(); err != nil {
		return nil, err
	}
	c := &Consumer{
		cfg:           cfg,
		chain:         Chain(cfg.Processor, cfg.Middleware...),
		sem:           make(chan struct{}, cfg.MaxWorkers),
		budget:        newBudget(cfg.MaxInFlight, cfg.MaxInFlightBytes),
		router:        newRouter(&cfg),
		lanes:         make(map[tp]*lane),
		retiring:      make(map[tp]*lane),
		clReady:       make(chan struct{}),
		commitSem:     make(chan struct{}, 1),
		stopped:       make(chan struct{}),
		stopCommitted: make(chan struct{}),
		logs:          newEdgeLog(cfg.Logger),
	}
	c.proc = Recover(c.chain)
	c.mapMax.Store(int64(cfg.MaxOffsetMapBytes))
	c.budget.resume = c.resumeGlobal
	c.lcfg = laneConfig{
		group:          cfg.Group,
		ordering:       cfg.Ordering,
		workers:        cfg.WorkersPerPartition,
		maxRecs:        cfg.MaxInFlightPerPartition,
		maxBytes:       cfg.MaxInFlightBytesPerPartition,
		maxSpan:        int64(cfg.MaxTrackedSpan),
		mapCap:         capacityFor(cfg.MaxOffsetMapBytes),
		processTimeout: cfg.ProcessTimeout,
		produceRetry:   cfg.Retry.MaxBackoff,
		clock:          cfg.Clock,
		log:            cfg.Logger,
		chunk:          streamChunk,
		maxOutBytes:    producerBatchMax(cfg.KgoOpts),
		maxAttempts:    cfg.Retry.MaxAttempts,
		tierAttempts:   cfg.Retry.TierAttempts,
		edge:           c.logs,
	}
	if len(cfg.Retry.Tiers) > 0 {
		c.lcfg.failingFor = cfg.Retry.Tiers[0]
	}
	c.roles = map[string]laneRole{}
	for _, t := range cfg.Topics {
		c.roles[t] = laneRole{source: t}
		for n := 1; n <= len(cfg.Retry.Tiers); n++ {
			c.roles[cfg.Naming.RetryTopic(t, cfg.Group, n)] = laneRole{tier: n, source: t}
		}
	}
	reg := cfg.Registerer
	if reg == nil {
		c.reg = prometheus.NewRegistry()
		reg = c.reg
	}
	m, err := newMetrics(reg, c)
	if err != nil {
		return nil, fmt.Errorf("ordo: registering metrics: %w", err)
	}
	c.metrics = m
	c.watch = newWatchdog(stallAfter, m.liveLanes)
	return c, nil
}

// Registry returns the Prometheus registry that holds Ordo's metrics when
// Config.Registerer was nil, and nil otherwise.
func (c *Consumer) Registry() *prometheus.Registry { return c.reg }

// Client returns the franz-go client once Start has run, nil before. Use it
// to produce; do not poll or commit with it.
func (c *Consumer) Client() *kgo.Client {
	c.lifeMu.Lock()
	defer c.lifeMu.Unlock()
	return c.cl
}

// Start waits, up to Config.ConnectTimeout, for a seed broker to answer,
// then joins the group and starts processing in the background. It returns
// once the client is created; assignment happens asynchronously. Canceling
// ctx is like calling StopAndCancel with RevokeTimeout.
func (c *Consumer) Start(ctx context.Context) error {
	c.lifeMu.Lock()
	defer c.lifeMu.Unlock()
	if c.started {
		return ErrStopped
	}
	select {
	case <-c.stopped:
		return ErrStopped
	default:
	}
	cfg := c.cfg
	opts := []kgo.Opt{
		kgo.SeedBrokers(cfg.Brokers...),
		// franz-go's own logs go to the same logger, its warnings and
		// errors at a bounded rate (an unreachable broker would log every
		// few seconds forever). Its client metrics (kprom) cost about 3%
		// of no-op throughput, so they are opt-in: see docs/metrics.md.
		kgo.WithLogger(c.logs.kgoLogger()),
		kgo.WithHooks(&brokerHooks{c: c}),
		// A partition resumed after a pause (a budget, a tier's due time)
		// is fetched with the next fetch request; the one in flight may
		// wait this long for data first. franz-go's default is 5s: a
		// resumed partition could sit idle that long. With retry tiers,
		// most fetches carry only idle tier partitions while the source
		// partitions are paused: poison-1pct measured 0.93x at 500ms,
		// 0.97x at 100ms with tiers consumed but never written to. KgoOpts
		// may change it.
		kgo.FetchMaxWait(DefaultFetchMaxWait),
		// The client produces only the retry and dead-letter copies.
		// Failures come a few at a time, and at franz-go's 10ms linger
		// nearly each copy was a produce request of its own, and each
		// copy to a tier woke the fetch in flight to return it: work
		// and wake-ups that slowed the other keys' calls. A copy's key
		// is free once it is handed over (resolve), so lingering holds
		// only its offset's commit, and it is due by its ordo-not-before
		// (stamped when sent), not when it lands. poison-1pct, 12
		// alternated rounds in one process: 0.914x at 10ms, 0.953x at
		// 50ms, 0.12 s less CPU per run. KgoOpts may change it.
		kgo.ProducerLinger(DefaultCopyLinger),
	}
	opts = append(opts, cfg.KgoOpts...)
	// What Ordo's guarantees rest on comes last, so that no KgoOpt can
	// replace it (New refuses those that try, with a reason).
	clientCtx, clientCancel := context.WithCancel(context.Background())
	opts = append(opts,
		kgo.WithContext(clientCtx),
		kgo.ConsumerGroup(cfg.Group),
		kgo.ConsumeTopics(c.consumed()...),
		kgo.Balancers(kgo.CooperativeStickyBalancer()),
		kgo.DisableAutoCommit(),
		kgo.BlockRebalanceOnPoll(),
		kgo.SessionTimeout(cfg.SessionTimeout),
		kgo.RebalanceTimeout(cfg.RebalanceTimeout),
		kgo.OnPartitionsAssigned(c.onAssigned),
		kgo.OnPartitionsRevoked(c.onRevoked),
		kgo.OnPartitionsLost(c.onLost),
		kgo.AdjustFetchOffsetsFn(c.adjustOffsets),
		kgo.RecordPartitioner(originPartitioner{kgo.StickyKeyPartitioner(nil)}),
	)
	if cfg.OffsetsLost == LostFail {
		// An out-of-range offset found while consuming is returned to the
		// poll (and stops the consumer) rather than reset.
		opts = append(opts, kgo.ConsumeResetOffset(kgo.NoResetOffset()))
	}
	// The group may assign partitions as soon as the client exists: the
	// lanes' parent context must be ready before.
	c.workCtx, c.cancelW = context.WithCancel(context.WithoutCancel(ctx))
	cl, err := kgo.NewClient(opts...)
	if err != nil {
		c.cancelW()
		clientCancel()
		return fmt.Errorf("ordo: creating kafka client: %w", err)
	}
	c.admCl.Store(cl)
	close(c.clReady)
	// The group starts joining at once; meanwhile, wait for a seed broker
	// to answer, or fail naming them.
	if err := c.ping(ctx, cl); err != nil {
		clientCancel() // no leave to wait for: nothing answered
		cl.Close()
		c.cancelW()
		return err
	}
	c.cl = cl
	c.clientCancel = clientCancel
	c.router.producer = cl
	c.started = true

	pollCtx, pollStop := context.WithCancel(context.WithoutCancel(ctx))
	c.pollStop = pollStop
	c.pollDone = make(chan struct{})
	c.tickStop = make(chan struct{})
	c.tickCtx, c.tickEnd = context.WithCancel(context.Background())
	c.tickDone = make(chan struct{})
	c.watchDone = make(chan struct{})
	go c.watch.run()
	go c.poll(pollCtx)
	go c.committer() //nolint:gosec // G118: owned by the consumer, stopped by Stop; not request-scoped
	go func() {      //nolint:gosec // G118: the Start watcher; its stop must outlive ctx
		defer close(c.watchDone)
		select {
		case <-ctx.Done():
			sctx, cancel := context.WithTimeout(context.Background(), cfg.RevokeTimeout)
			defer cancel()
			_ = c.stop(sctx, true, false)
		case <-c.stopped:
		}
	}()
	return nil
}

// consumed returns the topics the consumer reads: its source topics and,
// with retry tiers, the group's tier topics.
func (c *Consumer) consumed() []string {
	out := make([]string, 0, len(c.roles))
	for t := range c.roles {
		out = append(out, t)
	}
	sort.Strings(out)
	return out
}

// ping waits, up to ConnectTimeout, until a broker answers cl: a consumer
// whose brokers are all unreachable fails at Start, naming them, instead of
// retrying in silence.
func (c *Consumer) ping(ctx context.Context, cl *kgo.Client) error {
	ctx, cancel := context.WithTimeout(ctx, c.cfg.ConnectTimeout)
	defer cancel()
	retry := time.NewTimer(0)
	defer retry.Stop()
	var lastErr error
	for {
		select {
		case <-ctx.Done():
			if lastErr == nil {
				lastErr = ctx.Err()
			}
			return &ConnectError{Brokers: c.cfg.Brokers, Timeout: c.cfg.ConnectTimeout, Err: lastErr}
		case <-retry.C:
		}
		pctx, pcancel := context.WithTimeout(ctx, min(c.cfg.ConnectTimeout, 5*time.Second))
		lastErr = cl.Ping(pctx)
		pcancel()
		if lastErr == nil {
			return nil
		}
		retry.Reset(250 * time.Millisecond)
	}
}

// Ready reports whether the consumer is fit to work, for a readiness
// probe: it is started and not stopped, it is in its group, a broker has
// answered within the last max(ConnectTimeout, 30s), and no partition is
// stalled: one with unfinished records whose lowest unfinished offset has
// not moved for Config.StallAfter (a poisoned or held record, a dead letter
// that cannot be produced). The error says which of these failed, naming
// the partitions.
func (c *Consumer) Ready() error {
	c.lifeMu.Lock()
	started, cl := c.started, c.cl
	c.lifeMu.Unlock()
	switch {
	case !started:
		return errors.New("ordo: not started")
	case isClosed(c.stopped) || c.stopping.Load():
		return ErrStopped
	}
	if _, gen := cl.GroupMetadata(); gen < 0 {
		return fmt.Errorf("ordo: not in group %q yet", c.cfg.Group)
	}
	quiet := max(c.cfg.ConnectTimeout, 30*time.Second)
	if last := c.brokerOK.Load(); last == 0 || time.Since(time.Unix(0, last)) > quiet {
		return fmt.Errorf("ordo: no broker of %s has answered for %s", strings.Join(c.cfg.Brokers, ","), quiet)
	}
	now := c.cfg.Clock.Now()
	var stalled []string
	for _, l := range c.Lanes() {
		if l.Blocked != "" {
			stalled = append(stalled, fmt.Sprintf("%s/%d: a failed record cannot be produced to its retry tier or dead-letter topic (%s) since %s",
				l.Topic, l.Partition, l.Blocked, l.BlockedSince.Format(time.RFC3339)))
			continue
		}
		if l.InFlight > 0 && !l.MovedAt.IsZero() && now.Sub(l.MovedAt) > c.cfg.StallAfter {
			stalled = append(stalled, fmt.Sprintf("%s/%d at offset %d for %s", l.Topic, l.Partition, l.Watermark, now.Sub(l.MovedAt).Round(time.Second)))
		}
	}
	if len(stalled) > 0 {
		return fmt.Errorf("ordo: stalled (Config.StallAfter %s): %s", c.cfg.StallAfter, strings.Join(stalled, ", "))
	}
	return nil
}

// Run starts the consumer, blocks until ctx is done (a signal, say), then
// stops gracefully like Stop, allowing Config.ShutdownTimeout. It is the
// whole lifecycle in one call:
//
//	ctx, cancel := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
//	defer cancel()
//	return cons.Run(ctx)
func (c *Consumer) Run(ctx context.Context) error {
	if err := c.Start(context.WithoutCancel(ctx)); err != nil {
		return err
	}
	select {
	case <-ctx.Done():
	case <-c.stopped:
		return c.stopErr
	}
	sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), c.cfg.ShutdownTimeout)
	defer cancel()
	return c.Stop(sctx)
}

// Stop stops fetching, lets running records finish (and runs the fetched
// records below each partition's highest finished offset, so that no gap
// is left for the next owner to redo), commits every partition's lowest
// unfinished offset with its offset map, leaves the group and waits for
// the workers. It returns within ctx's deadline plus a small constant: if
// ctx ends first, running records are canceled, what finished is committed
// within the deadline, what could not be is logged, and Stop returns ctx's
// error. Stop is safe to call more than once and concurrently; later calls
// wait for the first.
func (c *Consumer) Stop(ctx context.Context) error { return c.stop(ctx, false, true) }

// StopAndCancel is Stop, but it cancels the contexts of running records at
// once instead of letting them finish, and starts no record.
func (c *Consumer) StopAndCancel(ctx context.Context) error { return c.stop(ctx, true, true) }

// Stopped returns a channel closed once the consumer has stopped.
func (c *Consumer) Stopped() <-chan struct{} { return c.stopped }

func (c *Consumer) stop(ctx context.Context, cancelWork, waitWatcher bool) error {
	c.lifeMu.Lock()
	started := c.started
	c.lifeMu.Unlock()
	if !started {
		c.stopOnce.Do(func() { close(c.stopped) })
		return nil
	}
	c.stopOnce.Do(func() {
		err := c.doStop(ctx, cancelWork)
		c.stopErr = errors.Join(c.failure(), err)
		close(c.stopped)
	})
	// A concurrent call waits for the first, until its own ctx ends.
	if !waitOr(ctx, c.stopped) && !isClosed(c.stopped) {
		return ctx.Err()
	}
	if waitWatcher {
		<-c.watchDone
	}
	return c.stopErr
}

func isClosed(ch <-chan struct{}) bool {
	select {
	case <-ch:
		return true
	default:
		return false
	}
}

// waitOr waits for ch until ctx ends; it reports whether ch closed.
func waitOr(ctx context.Context, ch <-chan struct{}) bool {
	select {
	case <-ch:
		return true
	case <-ctx.Done():
		return false
	}
}

func (c *Consumer) doStop(ctx context.Context, cancelWork bool) error {
	var errs []error
	// 1. Stop polling. A poll blocked in a rebalance callback ends when
	// that callback does; its own deadlines bound it.
	c.pollStop()
	if !waitOr(ctx, c.pollDone) {
		errs = append(errs, errors.New("ordo: the poll loop did not stop by the stop deadline"))
	}
	// 2. Stop the periodic committer (and a commit of it in flight).
	c.tickEnd()
	close(c.tickStop)
	waitOr(ctx, c.tickDone)
	// 3 and 4. Drain and commit every lane.
	c.mu.Lock()
	c.stopping.Store(true)
	all := make([]*lane, 0, len(c.lanes))
	for k, l := range c.lanes {
		all = append(all, l)
		delete(c.lanes, k)
	}
	c.stopLanes = all
	c.mu.Unlock()
	if cancelWork {
		for _, l := range all {
			l.cancel()
		}
	}
	if err := c.closeLanes(ctx, c.cl, all, "stop", !cancelWork); err != nil {
		errs = append(errs, err)
	}
	final := make([]LaneSnapshot, 0, len(all))
	for _, l := range all {
		final = append(final, l.snapshot())
	}
	sortSnapshots(final)
	c.mu.Lock()
	c.final = final
	c.mu.Unlock()
	close(c.stopCommitted)
	// 5. Leave the group, within the deadline, and close the client. The
	// revoke callback finds no lanes left.
	c.cl.AllowRebalance()
	if err := c.cl.LeaveGroupContext(ctx); err != nil && ctx.Err() != nil {
		errs = append(errs, fmt.Errorf("ordo: leaving the group: %w", err))
		// Out of time: cancel the client's own context, which Close would
		// otherwise use for a leave of its own that an unanswering
		// coordinator holds forever.
		c.clientCancel()
	}
	c.cl.Close()
	c.clientCancel()
	c.watch.close()
	// 6. Wait for the workers.
	c.cancelW()
	done := make(chan struct{})
	go func() { c.retired.Wait(); close(done) }()
	if !waitOr(ctx, done) {
		errs = append(errs, fmt.Errorf("ordo: workers still running at the stop deadline: %w", ctx.Err()))
	}
	return errors.Join(errs...)
}

// poll is the only goroutine that polls. Between a poll and AllowRebalance
// no rebalance callback runs, so every record handed to a lane belongs to a
// partition this member owns.
func (c *Consumer) poll(ctx context.Context) {
	defer close(c.pollDone)
	for {
		fetches := c.cl.PollRecords(ctx, c.cfg.MaxPollRecords)
		if ctx.Err() != nil || fetches.IsClientClosed() {
			c.cl.AllowRebalance()
			return
		}
		fetches.EachError(func(topic string, partition int32, err error) {
			if errors.Is(err, context.Canceled) {
				return
			}
			c.metrics.fetchErrors.Inc()
			if c.fetchLost(topic, partition, err) {
				return
			}
			c.logs.warn("fetch", "fetch error", "topic", topic, "partition", partition, "err", err)
		})
		fetches.EachPartition(func(p kgo.FetchTopicPartition) {
			if len(p.Records) == 0 {
				return
			}
			c.mu.RLock()
			l := c.lanes[tp{p.Topic, p.Partition}]
			c.mu.RUnlock()
			if l == nil {
				// Not ours (any more): the next owner fetches them.
				c.metrics.orphanRecords.Add(float64(len(p.Records)))
				return
			}
			c.checkFetchGap(l, &p)
			l.add(p.Records, p.HighWatermark)
		})
		if c.budget.full() {
			// A lane pauses for the consumer-wide budget when it receives
			// records; one that received none in this poll would take a
			// buffered fetch in the next. Pausing them all now strips
			// those (the client drops buffered data of paused partitions),
			// so usage stays within the budget plus one poll.
			c.pauseGlobal()
		}
		c.cl.AllowRebalance()
	}
}

func (c *Consumer) laneDeps(cl *kgo.Client, topic string) laneDeps {
	return laneDeps{
		proc:          c.proc,
		streamProc:    c.chain,
		budget:        c.budget,
		router:        c.router,
		fetch:         cl,
		sem:           c.sem,
		metrics:       c.metrics.topic(topic),
		sourceMetrics: c.metrics.topic(cmp.Or(c.roles[topic].source, topic)),
		watch:         c.watch,
		fencer:        c.cfg.Fencer,
		attempts:      c.cfg.Attempts,
		gate:          &c.callGate,
		workCtx:       c.workCtx,
		owns: func(ctx context.Context, topic string, partition int32) (bool, error) {
			return c.owns(ctx, cl, topic, partition)
		},
	}
}

// owns asks the group coordinator whether this member owns topic's
// partition now: the group is Stable and the partition is in this
// member's assignment. Then no other member owns it (see lane.refence).
func (c *Consumer) owns(ctx context.Context, cl *kgo.Client, topic string, partition int32) (bool, error) {
	member, _ := cl.GroupMetadata()
	if member == "" {
		return false, nil // not in the group
	}
	groups, err := kadm.NewClient(cl).DescribeGroups(ctx, c.cfg.Group)
	if err != nil {
		return false, err
	}
	g, ok := groups[c.cfg.Group]
	switch {
	case !ok:
		return false, fmt.Errorf("ordo: group %q not described", c.cfg.Group)
	case g.Err != nil:
		return false, g.Err
	case g.State != "Stable":
		return false, nil // a rebalance is under way: ask again later
	}
	for _, m := range g.Members {
		if m.MemberID != member {
			continue
		}
		a, ok := m.Assigned.AsConsumer()
		if !ok {
			return false, nil
		}
		for _, t := range a.Topics {
			if t.Topic == topic && slices.Contains(t.Partitions, partition) {
				return true, nil
			}
		}
	}
	return false, nil
}

func (c *Consumer) onAssigned(ctx context.Context, cl *kgo.Client, assigned map[string][]int32) {
	done := c.fetchOffsetMaps(ctx, cl, assigned)
	c.mu.Lock()
	defer c.mu.Unlock()
	for topic, parts := range assigned {
		for _, p := range parts {
			k := tp{topic, p}
			if c.lanes[k] != nil {
				continue
			}
			l := newLane(&c.lcfg, c.laneDeps(cl, topic), c.roles[topic], topic, p, c.epochs.Add(1), c.retiring[k], done[k])
			c.metrics.register(l)
			c.lanes[k] = l
			c.retired.Add(1)
		}
	}
	// A partition paused by an earlier owner-lane of this member must fetch.
	cl.ResumeFetchPartitions(assigned)
	c.cfg.Logger.Info("partitions assigned", "partitions", assigned)
}

// fetchOffsetMaps reads the committed offsets of the assigned partitions
// and decodes the offset maps their commits carry: the records a previous
// owner finished above the committed offset. Without them (an error, an
// old commit) those records are simply processed again.
func (c *Consumer) fetchOffsetMaps(ctx context.Context, cl *kgo.Client, assigned map[string][]int32) map[tp][]offRun {
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	resps, err := kadm.NewClient(cl).FetchOffsets(ctx, c.cfg.Group)
	if err != nil {
		c.cfg.Logger.Warn("reading committed offset maps; finished records may be redelivered", "err", err)
		return nil
	}
	out := map[tp][]offRun{}
	for topic, parts := range assigned {
		for _, p := range parts {
			r, ok := resps.Lookup(topic, p)
			if !ok || r.Err != nil || r.At < 0 {
				continue
			}
			done, err := decodeOffsetMap(r.Metadata, r.At)
			if err != nil {
				c.cfg.Logger.Warn("ignoring a corrupt offset map", "topic", topic, "partition", p, "err", err)
				continue
			}
			if len(done) > 0 {
				out[tp{topic, p}] = done
			}
		}
	}
	return out
}

// onRevoked drains the revoked partitions' running records and commits
// their watermarks, all within RevokeTimeout (below the group's rebalance
// timeout), and releases them.
func (c *Consumer) onRevoked(ctx context.Context, cl *kgo.Client, revoked map[string][]int32) {
	lanes := c.detach(revoked)
	dctx, cancel := context.WithTimeout(ctx, c.cfg.RevokeTimeout)
	defer cancel()
	if c.stopping.Load() {
		// Stop owns the lanes now: release nothing before it committed.
		waitOr(dctx, c.stopCommitted)
	}
	if len(lanes) == 0 {
		return
	}
	if err := c.closeLanes(dctx, cl, lanes, "revoke", true); err != nil {
		c.cfg.Logger.Warn("revoke", "err", err)
	}
	c.cfg.Logger.Info("partitions revoked", "partitions", revoked)
}

// onLost abandons lost partitions: their work is canceled and nothing is
// committed for them (another member may own them already).
func (c *Consumer) onLost(_ context.Context, _ *kgo.Client, lost map[string][]int32) {
	for _, l := range c.detach(lost) {
		// Freeze before canceling: a call that returns on the cancel must
		// find the lane closed (its completion is stale, never marked).
		l.setLost()
		l.beginClose(false)
		l.freeze(0)
		l.cancel()
		c.metrics.lost.Inc()
		c.startRetiring(l)
	}
	// Lanes that Stop is draining: Stop must not commit them.
	c.mu.RLock()
	for _, l := range c.stopLanes {
		for _, p := range lost[l.topic] {
			if p == l.partition {
				l.markLost()
				c.metrics.lost.Inc()
			}
		}
	}
	c.mu.RUnlock()
	// franz-go calls this again, with nothing, after each failed attempt
	// to rejoin: only a loss is worth a warning.
	if len(lost) > 0 {
		c.cfg.Logger.Warn("partitions lost", "partitions", lost)
	}
}

func (c *Consumer) detach(parts map[string][]int32) []*lane {
	c.mu.Lock()
	defer c.mu.Unlock()
	var out []*lane
	for topic, ps := range parts {
		for _, p := range ps {
			k := tp{topic, p}
			if l := c.lanes[k]; l != nil {
				out = append(out, l)
				delete(c.lanes, k)
			}
		}
	}
	return out
}

// startRetiring records a closed lane until its workers have returned; a
// new lane of the same partition waits for them.
func (c *Consumer) startRetiring(l *lane) {
	c.mu.Lock()
	c.retiring[tp{l.topic, l.partition}] = l
	c.mu.Unlock()
	go c.retire(l)
}

// retire waits for a closed lane's workers.
func (c *Consumer) retire(l *lane) {
	l.wg.Wait()
	c.mu.Lock()
	if k := (tp{l.topic, l.partition}); c.retiring[k] == l {
		delete(c.retiring, k)
	}
	c.mu.Unlock()
	c.metrics.fold(l)
	c.retired.Done()
}

// commitReserve is the part of a close's time kept for its commit.
func commitReserve(ctx context.Context) time.Duration {
	dl, ok := ctx.Deadline()
	if !ok {
		return 0
	}
	return min(2*time.Second, time.Until(dl)/4)
}

// closeLanes drains lanes (their records stop starting, but, when
// graceful, for those below the lane's highest finished offset; running
// ones get until the drain deadline, then are canceled), freezes their
// trackers and commits their watermarks, all by ctx's deadline.
func (c *Consumer) closeLanes(ctx context.Context, cl *kgo.Client, lanes []*lane, reason string, graceful bool) error {
	drained := make([]<-chan struct{}, len(lanes))
	for i, l := range lanes {
		drained[i] = l.beginClose(graceful)
	}
	dctx := ctx
	if r := commitReserve(ctx); r > 0 {
		dl, _ := ctx.Deadline()
		var cancel context.CancelFunc
		dctx, cancel = context.WithDeadline(ctx, dl.Add(-r))
		defer cancel()
	}
	var errs []error
	for i, l := range lanes {
		if !waitOr(dctx, drained[i]) {
			// Out of time: start nothing more and cancel what still runs.
			// Its completions will be stale; its offsets stay uncommitted
			// for the next owner.
			l.stopStarting()
			l.cancel()
			s := l.snapshot()
			errs = append(errs, fmt.Errorf("ordo: %s drain of %s: %w (%d records unfinished, %d running, abandoned)",
				reason, l, dctx.Err(), s.InFlight, s.Running))
		}
	}
	if err := c.commitFinal(ctx, cl, lanes, reason); err != nil {
		errs = append(errs, err)
	}
	for _, l := range lanes {
		l.cancel()
		c.startRetiring(l)
	}
	c.resumeGlobal() // freeze gave the lanes' budget back
	return errors.Join(errs...)
}

// Lanes returns a snapshot of every partition lane, sorted by topic and
// partition. Once Stop has committed, it returns the lanes as Stop left
// them (what was still in flight, the lag and the committed offsets at
// that moment), so that a final report shows what the stop abandoned.
func (c *Consumer) Lanes() []LaneSnapshot {
	c.mu.RLock()
	if c.final != nil {
		defer c.mu.RUnlock()
		return append([]LaneSnapshot(nil), c.final...)
	}
	lanes := make([]*lane, 0, len(c.lanes))
	for _, l := range c.lanes {
		lanes = append(lanes, l)
	}
	c.mu.RUnlock()
	out := make([]LaneSnapshot, 0, len(lanes))
	for _, l := range lanes {
		out = append(out, l.snapshot())
	}
	sortSnapshots(out)
	return out
}

func sortSnapshots(s []LaneSnapshot) {
	sort.Slice(s, func(i, j int) bool {
		if s[i].Topic != s[j].Topic {
			return s[i].Topic < s[j].Topic
		}
		return s[i].Partition < s[j].Partition
	})
}

// ownedLanes returns the lanes of the partitions owned now. It takes
// Consumer.mu (read); the caller holds no lane's lock.
func (c *Consumer) ownedLanes() []*lane {
	c.mu.RLock()
	defer c.mu.RUnlock()
	lanes := make([]*lane, 0, len(c.lanes))
	for _, l := range c.lanes {
		lanes = append(lanes, l)
	}
	return lanes
}

// pauseGlobal pauses every lane not paused yet, for the consumer-wide
// budget: it is full.
func (c *Consumer) pauseGlobal() {
	lanes := c.ownedLanes()
	for _, l := range lanes {
		l.mu.Lock()
		// Checked again under the lane's lock: finishes may have brought
		// usage down meanwhile, and resumed the lanes paused before.
		if !l.paused && !l.closing && c.budget.full() {
			l.pauseLocked(pauseGlobal)
			// Noted whatever the budget reads now: a lane paused here with
			// nothing in flight has no finish of its own to resume it.
			l.notePausedGlobal()
		}
		l.mu.Unlock()
	}
	// Usage may have fallen under half while the lanes were paused, after
	// the last finish that would have resumed them.
	if c.budget.shouldResume() {
		c.budget.resumePaused()
	}
}

// resumeGlobal resumes the lanes that were paused while the consumer-wide
// budget was full, once usage fell under half of it (or, for a lane that
// ran dry, under the bound).
func (c *Consumer) resumeGlobal() {
	lanes := c.ownedLanes()
	for _, l := range lanes {
		l.mu.Lock()
		if l.paused && !l.closed {
			if l.mayResume() {
				l.resumeLocked()
			} else if c.budget.overHalf() {
				l.notePausedGlobal()
			}
		}
		l.mu.Unlock()
	}
}
