package ordo

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
	"github.com/twmb/franz-go/plugin/kslog"
)

// ErrStopped is returned by Start on a consumer that was already started
// or stopped: a Consumer runs once.
var ErrStopped = errors.New("ordo: consumer already started or stopped")

type tp struct {
	topic     string
	partition int32
}

// Consumer runs a Processor over a consumer group. Create it with New,
// run it with Start and end it with Stop or StopAndCancel.
//
// The stop order, in Stop and StopAndCancel:
//
//  1. stop polling: no new record enters a lane;
//  2. stop the periodic committer;
//  3. every lane stops starting records and waits for its running ones
//     (StopAndCancel cancels their contexts first), within the context;
//  4. commit each lane's watermark, its lowest unfinished offset;
//  5. leave the group and close the client;
//  6. wait for every worker goroutine to return.
type Consumer struct {
	cfg     Config
	proc    Processor
	metrics *metrics
	reg     *prometheus.Registry // non-nil if the consumer owns its registry
	sem     chan struct{}

	cl      *kgo.Client
	workCtx context.Context // parent of every lane context
	cancelW context.CancelFunc

	inflightRecs  atomic.Int64
	inflightBytes atomic.Int64
	globalPaused  atomic.Bool
	epochs        atomic.Uint64

	mu       sync.RWMutex // guards lanes and retiring
	lanes    map[tp]*lane
	retiring map[tp]*lane   // closed lanes whose workers may still run
	retired  sync.WaitGroup // workers of lanes already closed

	commitMu sync.Mutex // one commit at a time; held across snapshot and commit

	lifeMu    sync.Mutex
	started   bool
	stopOnce  sync.Once
	stopErr   error
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
	stopLanes     []*lane        // lanes Stop is closing; guarded by mu
	final         []LaneSnapshot // the lanes as Stop left them; guarded by mu
	stopCommitted chan struct{}  // closed once Stop committed
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
		proc:          Recover(Chain(cfg.Processor, cfg.Middleware...)),
		sem:           make(chan struct{}, cfg.MaxWorkers),
		lanes:         make(map[tp]*lane),
		retiring:      make(map[tp]*lane),
		stopped:       make(chan struct{}),
		stopCommitted: make(chan struct{}),
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

// Start joins the group and starts processing in the background. It
// returns once the client is created; assignment happens asynchronously.
// Canceling ctx is like calling StopAndCancel with RevokeTimeout.
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
	if err := c.ping(ctx); err != nil {
		return err
	}
	opts := []kgo.Opt{
		kgo.SeedBrokers(cfg.Brokers...),
		kgo.ConsumerGroup(cfg.Group),
		kgo.ConsumeTopics(cfg.Topics...),
		kgo.Balancers(kgo.CooperativeStickyBalancer()),
		kgo.DisableAutoCommit(),
		kgo.BlockRebalanceOnPoll(),
		kgo.SessionTimeout(cfg.SessionTimeout),
		kgo.RebalanceTimeout(cfg.RebalanceTimeout),
		kgo.OnPartitionsAssigned(c.onAssigned),
		kgo.OnPartitionsRevoked(c.onRevoked),
		kgo.OnPartitionsLost(c.onLost),
		// franz-go's own logs go to the same logger. Its client metrics
		// (kprom) cost about 3% of no-op throughput, so they are opt-in:
		// see docs/metrics.md.
		kgo.WithLogger(kslog.New(cfg.Logger)),
	}
	opts = append(opts, cfg.KgoOpts...)
	// The group may assign partitions as soon as the client exists: the
	// lanes' parent context must be ready before.
	c.workCtx, c.cancelW = context.WithCancel(context.WithoutCancel(ctx))
	cl, err := kgo.NewClient(opts...)
	if err != nil {
		c.cancelW()
		return fmt.Errorf("ordo: creating kafka client: %w", err)
	}
	c.cl = cl
	c.started = true

	pollCtx, pollStop := context.WithCancel(context.WithoutCancel(ctx))
	c.pollStop = pollStop
	c.pollDone = make(chan struct{})
	c.tickStop = make(chan struct{})
	c.tickCtx, c.tickEnd = context.WithCancel(context.Background())
	c.tickDone = make(chan struct{})
	c.watchDone = make(chan struct{})
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

// ping waits, up to ConnectTimeout, until a seed broker answers, with a
// client of its own that joins no group: a consumer whose brokers are all
// unreachable fails at Start, naming them, instead of retrying in silence.
func (c *Consumer) ping(ctx context.Context) error {
	cl, err := kgo.NewClient(append([]kgo.Opt{kgo.SeedBrokers(c.cfg.Brokers...)}, c.cfg.KgoOpts...)...)
	if err != nil {
		return fmt.Errorf("ordo: creating kafka client: %w", err)
	}
	defer cl.Close()
	ctx, cancel := context.WithTimeout(ctx, c.cfg.ConnectTimeout)
	defer cancel()
	var lastErr error
	for {
		pctx, pcancel := context.WithTimeout(ctx, min(c.cfg.ConnectTimeout, 5*time.Second))
		lastErr = cl.Ping(pctx)
		pcancel()
		if lastErr == nil {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("ordo: no seed broker of %s answered within %s (Config.ConnectTimeout): %w",
				strings.Join(c.cfg.Brokers, ","), c.cfg.ConnectTimeout, lastErr)
		case <-time.After(250 * time.Millisecond):
		}
	}
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

// Stop stops fetching, lets running records finish, commits every
// partition's lowest unfinished offset, leaves the group and waits for the
// workers. If ctx ends first, running records are canceled and Stop returns
// ctx's error after committing what finished. Stop is safe to call more than
// once and concurrently; later calls wait for the first.
func (c *Consumer) Stop(ctx context.Context) error { return c.stop(ctx, false, true) }

// StopAndCancel is Stop, but it cancels the contexts of running records at
// once instead of letting them finish.
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
		c.stopErr = c.doStop(ctx, cancelWork)
		close(c.stopped)
	})
	select {
	case <-c.stopped:
	case <-ctx.Done():
		return ctx.Err()
	}
	if waitWatcher {
		<-c.watchDone
	}
	return c.stopErr
}

func (c *Consumer) doStop(ctx context.Context, cancelWork bool) error {
	// 1. Stop polling.
	c.pollStop()
	<-c.pollDone
	// 2. Stop the periodic committer (and a commit of it in flight).
	c.tickEnd()
	close(c.tickStop)
	<-c.tickDone
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
	err := c.closeLanes(ctx, c.cl, all, "stop")
	final := make([]LaneSnapshot, 0, len(all))
	for _, l := range all {
		final = append(final, l.snapshot())
	}
	sortSnapshots(final)
	c.mu.Lock()
	c.final = final
	c.mu.Unlock()
	close(c.stopCommitted)
	// 5. Leave the group. The revoke callback finds no lanes left.
	c.cl.CloseAllowingRebalance()
	// 6. Wait for the workers.
	c.cancelW()
	done := make(chan struct{})
	go func() { c.retired.Wait(); close(done) }()
	select {
	case <-done:
	case <-ctx.Done():
		err = errors.Join(err, fmt.Errorf("ordo: workers still running at stop deadline: %w", ctx.Err()))
	}
	return err
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
			c.cfg.Logger.Warn("fetch error", "topic", topic, "partition", partition, "err", err)
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
			l.add(p.Records, p.HighWatermark)
		})
		c.cl.AllowRebalance()
	}
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
			l := newLane(c, cl, topic, p, c.epochs.Add(1), c.retiring[k])
			l.done = done[k]
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
func (c *Consumer) fetchOffsetMaps(ctx context.Context, cl *kgo.Client, assigned map[string][]int32) map[tp]map[int64]struct{} {
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	resps, err := kadm.NewClient(cl).FetchOffsets(ctx, c.cfg.Group)
	if err != nil {
		c.cfg.Logger.Warn("reading committed offset maps; finished records may be redelivered", "err", err)
		return nil
	}
	out := map[tp]map[int64]struct{}{}
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

// onRevoked drains the revoked partitions' running records within
// RevokeTimeout, commits their watermarks and releases them.
func (c *Consumer) onRevoked(ctx context.Context, cl *kgo.Client, revoked map[string][]int32) {
	lanes := c.detach(revoked)
	if c.stopping.Load() {
		// Stop owns the lanes now: release nothing before it committed.
		select {
		case <-c.stopCommitted:
		case <-ctx.Done():
		}
	}
	if len(lanes) == 0 {
		return
	}
	dctx, cancel := context.WithTimeout(ctx, c.cfg.RevokeTimeout)
	defer cancel()
	if err := c.closeLanes(dctx, cl, lanes, "revoke"); err != nil {
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
		l.beginClose()
		l.freeze()
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
	c.cfg.Logger.Warn("partitions lost", "partitions", lost)
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

// closeLanes drains lanes (their records stop starting; running ones get
// until ctx ends, then are canceled), freezes their trackers and commits
// their watermarks.
func (c *Consumer) closeLanes(ctx context.Context, cl *kgo.Client, lanes []*lane, reason string) error {
	drained := make([]<-chan struct{}, len(lanes))
	for i, l := range lanes {
		drained[i] = l.beginClose()
	}
	var err error
	for i, l := range lanes {
		select {
		case <-drained[i]:
		case <-ctx.Done():
			// Out of time: cancel what still runs. Its completions will be
			// stale; its offsets stay uncommitted for the next owner.
			l.cancel()
			if err == nil {
				err = fmt.Errorf("ordo: %s drain of %s: %w", reason, l, ctx.Err())
			}
		}
	}
	c.commitMu.Lock()
	offsets := map[tp]mark{}
	for _, l := range lanes {
		if m, ok := l.freeze(); ok {
			offsets[tp{l.topic, l.partition}] = m
		}
	}
	// A commit on revoke must not be canceled by the drain deadline.
	cerr := c.commitLocked(context.WithoutCancel(ctx), cl, offsets, lanes, reason)
	c.commitMu.Unlock()
	for _, l := range lanes {
		l.cancel()
		c.startRetiring(l)
	}
	c.resumeGlobal() // freeze gave the lanes' budget back
	return errors.Join(err, cerr)
}

// committer commits every lane's watermark each CommitInterval.
func (c *Consumer) committer() {
	defer close(c.tickDone)
	tick := make(chan struct{}, 1)
	for {
		t := c.cfg.Clock.AfterFunc(c.cfg.CommitInterval, func() {
			select {
			case tick <- struct{}{}:
			default:
			}
		})
		select {
		case <-c.tickStop:
			t.Stop()
			return
		case <-tick:
			if err := c.commitOwned(c.tickCtx); err != nil {
				c.cfg.Logger.Warn("periodic commit", "err", err)
			}
		}
	}
}

// commitOwned commits the watermarks of the lanes this member owns now.
// commitMu keeps it from interleaving with a revoke's final commit, so it
// never commits a partition that was already handed on.
func (c *Consumer) commitOwned(ctx context.Context) error {
	c.commitMu.Lock()
	defer c.commitMu.Unlock()
	c.mu.RLock()
	lanes := make([]*lane, 0, len(c.lanes))
	for _, l := range c.lanes {
		lanes = append(lanes, l)
	}
	c.mu.RUnlock()
	offsets := map[tp]mark{}
	for _, l := range lanes {
		if m, ok := l.watermark(); ok {
			offsets[tp{l.topic, l.partition}] = m
		}
	}
	return c.commitLocked(ctx, c.cl, offsets, lanes, "periodic")
}

func (c *Consumer) commitLocked(ctx context.Context, cl *kgo.Client, marks map[tp]mark, lanes []*lane, reason string) error {
	if len(marks) == 0 {
		return nil
	}
	offsets := map[string]map[int32]kgo.EpochOffset{}
	for k, m := range marks {
		if offsets[k.topic] == nil {
			offsets[k.topic] = map[int32]kgo.EpochOffset{}
		}
		offsets[k.topic][k.partition] = kgo.EpochOffset{Epoch: m.epoch, Offset: m.offset}
	}
	byTP := make(map[tp]*lane, len(lanes))
	for _, l := range lanes {
		byTP[tp{l.topic, l.partition}] = l
	}
	// Just before the request is sent: attach each partition's offset map
	// as its commit metadata, and drop any partition lost since the marks
	// were taken (a loss does not wait for commitMu: it must not block on
	// a commit that waits for the group).
	ctx = kgo.PreCommitFnContext(ctx, func(req *kmsg.OffsetCommitRequest) error {
		for i := range req.Topics {
			t := &req.Topics[i]
			kept := t.Partitions[:0]
			for _, p := range t.Partitions {
				k := tp{t.Topic, p.Partition}
				if l := byTP[k]; l != nil && l.isLost() {
					continue
				}
				if m := marks[k]; m.meta != "" {
					p.Metadata = kmsg.StringPtr(m.meta)
				}
				kept = append(kept, p)
			}
			t.Partitions = kept
		}
		return nil
	})
	var cerr error
	committed := map[string]map[int32]int64{}
	cl.CommitOffsetsSync(ctx, offsets, func(_ *kgo.Client, _ *kmsg.OffsetCommitRequest, resp *kmsg.OffsetCommitResponse, err error) {
		if err != nil {
			cerr = err
			return
		}
		for _, t := range resp.Topics {
			for _, p := range t.Partitions {
				if perr := kerr.ErrorForCode(p.ErrorCode); perr != nil {
					cerr = errors.Join(cerr, fmt.Errorf("%s/%d: %w", t.Topic, p.Partition, perr))
					continue
				}
				if committed[t.Topic] == nil {
					committed[t.Topic] = map[int32]int64{}
				}
				committed[t.Topic][p.Partition] = offsets[t.Topic][p.Partition].Offset
			}
		}
	})
	for _, l := range lanes {
		if off, ok := committed[l.topic][l.partition]; ok {
			l.committed(off)
		}
	}
	if cerr != nil {
		c.metrics.commits.WithLabelValues("error").Inc()
		return fmt.Errorf("ordo: %s commit: %w", reason, cerr)
	}
	c.metrics.commits.WithLabelValues("ok").Inc()
	if c.cfg.OnCommit != nil && len(committed) > 0 {
		c.cfg.OnCommit(CommitEvent{Reason: reason, Offsets: committed})
	}
	return nil
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

// globalOver reports whether the consumer-wide in-flight usage is at its
// bound, or, with resume, above half of it.
func (c *Consumer) globalOver(resume bool) bool {
	recs, bytes := c.inflightRecs.Load(), c.inflightBytes.Load()
	maxR, maxB := int64(c.cfg.MaxInFlight), c.cfg.MaxInFlightBytes
	if resume {
		return recs > maxR/2 || bytes > maxB/2
	}
	return recs >= maxR || bytes >= maxB
}

// resumeGlobal resumes the lanes that were paused for the global bound
// once usage fell under half of it.
func (c *Consumer) resumeGlobal() {
	if !c.globalPaused.CompareAndSwap(true, false) {
		return
	}
	c.mu.RLock()
	lanes := make([]*lane, 0, len(c.lanes))
	for _, l := range c.lanes {
		lanes = append(lanes, l)
	}
	c.mu.RUnlock()
	for _, l := range lanes {
		l.mu.Lock()
		if l.paused && !l.closed {
			if l.underResume() {
				l.resumeLocked()
			} else if c.globalOver(true) {
				c.globalPaused.Store(true)
			}
		}
		l.mu.Unlock()
	}
}

// jitter spreads a backoff over [d/2, d).
func (c *Consumer) jitter(d time.Duration) time.Duration {
	if d <= 1 {
		return d
	}
	half := d / 2
	return half + rand.N(d-half)
}

// Header names Ordo writes on retry and dead-letter records.
const (
	HeaderOriginalTopic     = "ordo-original-topic"
	HeaderOriginalPartition = "ordo-original-partition"
	HeaderOriginalOffset    = "ordo-original-offset"
	HeaderOriginalTimestamp = "ordo-original-timestamp"
	HeaderAttempt           = "ordo-attempt"
	HeaderNotBefore         = "ordo-not-before"
	HeaderError             = "ordo-error"
	HeaderErrorClass        = "ordo-error-class"
	HeaderGroup             = "ordo-group"
	HeaderProcessor         = "ordo-processor"
	headerPrefix            = "ordo-"
	maxErrorHeader          = 4096
)

// dlqRecord builds the dead-letter copy of w: same key, value and foreign
// headers; headers with the ordo- prefix that came from outside are
// dropped, and Ordo's own are added.
func (c *Consumer) dlqRecord(w *work, class ErrorClass) *kgo.Record {
	src := w.rec
	errText := "unknown error"
	if w.lastErr != nil {
		errText = w.lastErr.Error()
	}
	if len(errText) > maxErrorHeader {
		// Cut, then drop a rune the cut split: the header stays UTF-8.
		errText = strings.ToValidUTF8(errText[:maxErrorHeader], "")
	}
	hs := make([]kgo.RecordHeader, 0, len(src.Headers)+9)
	for _, h := range src.Headers {
		if len(h.Key) >= len(headerPrefix) && h.Key[:len(headerPrefix)] == headerPrefix {
			continue
		}
		hs = append(hs, h)
	}
	add := func(k, v string) { hs = append(hs, kgo.RecordHeader{Key: k, Value: []byte(v)}) }
	add(HeaderOriginalTopic, src.Topic)
	add(HeaderOriginalPartition, strconv.FormatInt(int64(src.Partition), 10))
	add(HeaderOriginalOffset, strconv.FormatInt(src.Offset, 10))
	add(HeaderOriginalTimestamp, strconv.FormatInt(src.Timestamp.UnixMilli(), 10))
	add(HeaderAttempt, strconv.Itoa(w.attempt))
	add(HeaderError, errText)
	add(HeaderErrorClass, string(class))
	add(HeaderGroup, c.cfg.Group)
	add(HeaderProcessor, c.cfg.ProcessorName)
	return &kgo.Record{
		Topic:     c.cfg.DLQTopic(src.Topic),
		Key:       src.Key,
		Value:     src.Value,
		Headers:   hs,
		Timestamp: c.cfg.Clock.Now(),
	}
}
