package ordo

import (
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// metrics holds Ordo's Prometheus metrics, registered on the consumer's
// registry. The per-record counts (ok, error, already_done and processing
// durations) are plain integers in each lane, updated under the lane's lock
// that the worker holds anyway, and summed at scrape time: no shared atomic
// on the data path. When a lane retires, its counts are folded into its
// topic's totals, in one step under mu, so a counter never goes back.
// Rare outcomes (retry, hold, dlq, stale) are atomics per topic.
type metrics struct {
	group         string
	tiers         int // Retry.Tiers: the targets topicMetrics.routedTo caches
	dlqErrors     *prometheus.CounterVec
	pauses        *prometheus.CounterVec
	routed        *prometheus.CounterVec
	outErrors     *prometheus.CounterVec
	mapDropped    *prometheus.CounterVec
	offsetsLost   *prometheus.CounterVec
	refences      *prometheus.CounterVec
	rewound       *prometheus.CounterVec
	commits       *prometheus.CounterVec
	fetchErrors   prometheus.Counter
	brokerErrors  *prometheus.CounterVec
	orphanRecords prometheus.Counter
	lost          prometheus.Counter

	mu     sync.Mutex
	topics map[string]*topicMetrics
	live   map[*lane]struct{} // lanes whose counts are not folded yet
}

type topicMetrics struct {
	name                                      string
	retried, held, dlq, stale, stalls, tiered atomic.Uint64
	dlqErrors, rewound, mapDropped            prometheus.Counter
	offsetsLost                               prometheus.Counter
	refences                                  prometheus.Counter
	pauses                                    *prometheus.CounterVec // by reason, curried with the topic
	routedVec                                 *prometheus.CounterVec // by target, curried with the topic
	// routedTo caches routedVec's counter per target (index 0: the
	// dead-letter topic, n: tier n), made on first use so that a topic
	// never routed to a target shows no series for it.
	routedTo  []atomic.Pointer[prometheus.Counter]
	outErrVec *prometheus.CounterVec // by reason, curried with the topic
	retired   laneCounts             // folded lanes; guarded by metrics.mu
}

// pause counts a pause of one of the topic's partitions.
func (tm *topicMetrics) pause(reason string) { tm.pauses.WithLabelValues(reason).Inc() }

// routed counts a record produced (and acknowledged) to retry tier n, or
// to the dead-letter topic for n = 0.
func (tm *topicMetrics) routed(n int) {
	if n > 0 {
		tm.tiered.Add(1)
	}
	if n < len(tm.routedTo) {
		if c := tm.routedTo[n].Load(); c != nil {
			(*c).Inc()
			return
		}
	}
	c := tm.routedVec.WithLabelValues(routeTarget(n))
	if n < len(tm.routedTo) {
		tm.routedTo[n].Store(&c)
	}
	c.Inc()
}

// routeTarget is ordo_routed_total's target label for tier n, or for the
// dead-letter topic if n is 0.
func routeTarget(n int) string {
	if n > 0 {
		return "tier-" + strconv.Itoa(n)
	}
	return "dlq"
}

// outErrors counts a failed produce to a tier or dead-letter topic.
func (tm *topicMetrics) outErrors(reason string) {
	tm.outErrVec.WithLabelValues(reason).Inc()
	tm.dlqErrors.Inc()
}

// durationBuckets are the upper bounds of ordo_processing_duration_seconds.
var durationBuckets = [...]float64{.0001, .0005, .001, .005, .01, .05, .1, .5, 1, 5, 30}

// laneCounts are a lane's per-record counts; the lane's mutex guards them.
type laneCounts struct {
	ok, failed, canceled, alreadyDone uint64
	durCount                          uint64
	durSum                            float64
	durBuckets                        [len(durationBuckets)]uint64 // not cumulative
}

// observeN counts n calls of the given duration.
func (lc *laneCounts) observeN(seconds float64, n uint64) {
	lc.durCount += n
	lc.durSum += seconds * float64(n)
	for i, b := range durationBuckets {
		if seconds <= b {
			lc.durBuckets[i] += n
			return
		}
	}
}

func (lc *laneCounts) add(o *laneCounts) {
	lc.ok += o.ok
	lc.failed += o.failed
	lc.canceled += o.canceled
	lc.alreadyDone += o.alreadyDone
	lc.durCount += o.durCount
	lc.durSum += o.durSum
	for i := range lc.durBuckets {
		lc.durBuckets[i] += o.durBuckets[i]
	}
}

// Outcome label values of ordo_records_total.
const (
	OutcomeOK    = "ok"    // the processor returned nil
	OutcomeError = "error" // a processor call failed (each failed attempt)
	OutcomeRetry = "retry" // a retry was scheduled
	OutcomeHold  = "hold"  // a Hold error kept the record
	OutcomeDLQ   = "dlq"   // the record was dead-lettered and the produce acked
	OutcomeStale = "stale" // a completion for a partition no longer owned, dropped
	// OutcomeCanceled counts calls that ended because Ordo canceled their
	// context (the partition was lost, StopAndCancel, a drain deadline):
	// the record is left for the next owner, not failed.
	OutcomeCanceled = "canceled"
	// OutcomeAlreadyDone counts records the partition's previous owner
	// finished above its committed offset (listed in the commit's offset
	// map): marked done without running them again.
	OutcomeAlreadyDone = "already_done"
)

var (
	descRecords = prometheus.NewDesc("ordo_records_total",
		"Records by outcome: ok, error (failed attempts), retry, hold, dlq, stale (completions dropped for partitions no longer owned), canceled (calls ended by Ordo's cancel: a loss, a stop, a drain deadline; left for the next owner), already_done (finished by the previous owner, per its offset map).",
		[]string{"group", "topic", "outcome"}, nil)
	descStalls = prometheus.NewDesc("ordo_stream_stalls_total",
		"Times a partition's in-order runner stayed in one call past the stall threshold and its other records were handed to the partition's other workers.",
		[]string{"group", "topic"}, nil)
	descDuration = prometheus.NewDesc("ordo_processing_duration_seconds",
		"Duration of processor calls.", []string{"group", "topic"}, nil)
)

func newMetrics(reg prometheus.Registerer, c *Consumer) (*metrics, error) {
	group := c.cfg.Group
	cl := prometheus.Labels{"group": group}
	m := &metrics{
		group: group,
		tiers: len(c.cfg.Retry.Tiers),
		dlqErrors: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "ordo_dlq_produce_errors_total", ConstLabels: cl,
			Help: "Failed produces to a dead-letter topic (each is retried; the source offset waits).",
		}, []string{"topic"}),
		pauses: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "ordo_partition_pauses_total", ConstLabels: cl,
			Help: "Times a partition's fetching was paused, by reason: records or bytes (its in-flight budget), span (Config.MaxTrackedSpan), offset_map (its done set would outgrow a commit's offset map), global (the consumer's budget).",
		}, []string{"topic", "reason"}),
		routed: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "ordo_routed_total", ConstLabels: cl,
			Help: "Failed records produced to a retry tier (target tier-<n>) or to the dead-letter topic (target dlq), counted once the produce is acknowledged. topic is the source topic.",
		}, []string{"topic", "target"}),
		outErrors: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "ordo_out_produce_errors_total", ConstLabels: cl,
			Help: "Failed produces of a failed record to a retry tier or the dead-letter topic, by reason: too_large, authorization, unknown_topic, invalid, timeout, other. Each is tried again; the partition waits.",
		}, []string{"topic", "reason"}),
		mapDropped: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "ordo_offset_map_dropped_offsets_total", ConstLabels: cl,
			Help: "Finished offsets a commit's offset map could not hold (their records will run again after a handoff). Stays 0 unless the broker's offset.metadata.max.bytes is below Config.MaxOffsetMapBytes.",
		}, []string{"topic"}),
		offsetsLost: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "ordo_offsets_lost_total", ConstLabels: cl,
			Help: "Offsets deleted by retention before the group read them: a commit below the log start at assignment, or a fetch that resumed above where it stood. Each is also logged; Config.OffsetsLost says what the partition does.",
		}, []string{"topic"}),
		refences: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "ordo_fence_retaken_total", ConstLabels: cl,
			Help: "Fencing tokens taken again by a partition whose write was fenced while the group coordinator said this member owns it (a previous owner's fence landed late).",
		}, []string{"topic"}),
		rewound: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "ordo_rewound_records_total", ConstLabels: cl,
			Help: "Fetched records at or below an offset the lane already received (a log rewind); ignored and logged.",
		}, []string{"topic"}),
		commits: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "ordo_commits_total", ConstLabels: cl,
			Help: "Offset commits by result.",
		}, []string{"result"}),
		fetchErrors: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "ordo_fetch_errors_total", ConstLabels: cl, Help: "Fetch errors returned by polls.",
		}),
		brokerErrors: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "ordo_broker_errors_total", ConstLabels: cl,
			Help: "Failed broker connections (kind connect) and requests (kind request), by broker address.",
		}, []string{"broker", "kind"}),
		orphanRecords: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "ordo_orphan_records_total", ConstLabels: cl,
			Help: "Fetched records for a partition with no lane, left for the partition's owner.",
		}),
		lost: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "ordo_partitions_lost_total", ConstLabels: cl,
			Help: "Partitions lost (not revoked): their work was canceled and nothing committed.",
		}),
		topics: map[string]*topicMetrics{},
		live:   map[*lane]struct{}{},
	}
	for _, col := range []prometheus.Collector{
		m.dlqErrors, m.pauses, m.routed, m.outErrors, m.mapDropped, m.offsetsLost, m.refences, m.rewound, m.commits, m.fetchErrors, m.brokerErrors, m.orphanRecords, m.lost,
		&laneCollector{c: c},
	} {
		if err := reg.Register(col); err != nil {
			return nil, err
		}
	}
	return m, nil
}

// topic returns the topic's metrics, creating them on first use.
func (m *metrics) topic(t string) *topicMetrics {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.topicLocked(t)
}

func (m *metrics) topicLocked(t string) *topicMetrics {
	if tm := m.topics[t]; tm != nil {
		return tm
	}
	tm := &topicMetrics{
		name:        t,
		dlqErrors:   m.dlqErrors.WithLabelValues(t),
		pauses:      m.pauses.MustCurryWith(prometheus.Labels{"topic": t}),
		routedVec:   m.routed.MustCurryWith(prometheus.Labels{"topic": t}),
		routedTo:    make([]atomic.Pointer[prometheus.Counter], m.tiers+1),
		outErrVec:   m.outErrors.MustCurryWith(prometheus.Labels{"topic": t}),
		rewound:     m.rewound.WithLabelValues(t),
		mapDropped:  m.mapDropped.WithLabelValues(t),
		offsetsLost: m.offsetsLost.WithLabelValues(t),
		refences:    m.refences.WithLabelValues(t),
	}
	m.topics[t] = tm
	return tm
}

// register makes a new lane's counts visible to scrapes.
func (m *metrics) register(l *lane) {
	m.mu.Lock()
	m.live[l] = struct{}{}
	m.mu.Unlock()
}

// liveLanes returns every lane that exists and is not retired: owned,
// closing or draining.
func (m *metrics) liveLanes() []*lane {
	m.mu.Lock()
	defer m.mu.Unlock()
	out := make([]*lane, 0, len(m.live))
	for l := range m.live {
		out = append(out, l)
	}
	return out
}

// fold moves a retired lane's counts into its topic's totals.
func (m *metrics) fold(l *lane) {
	m.mu.Lock()
	defer m.mu.Unlock()
	l.mu.Lock()
	l.deps.metrics.retired.add(&l.cnt)
	l.cnt = laneCounts{}
	l.mu.Unlock()
	delete(m.live, l)
}

// totals returns each topic's counts: folded lanes plus live ones.
func (m *metrics) totals() map[*topicMetrics]laneCounts {
	m.mu.Lock()
	defer m.mu.Unlock()
	out := make(map[*topicMetrics]laneCounts, len(m.topics))
	for _, tm := range m.topics {
		out[tm] = tm.retired
	}
	for l := range m.live {
		tm := l.deps.metrics
		t := out[tm]
		l.mu.Lock()
		t.add(&l.cnt)
		l.mu.Unlock()
		out[tm] = t
	}
	return out
}

// laneCollector computes the per-partition gauges at scrape time from the
// lanes' state: no broker round trip, no cost on the data path.
type laneCollector struct{ c *Consumer }

var (
	descLagRecords = prometheus.NewDesc("ordo_member_lag_records",
		"This member's view of a partition it owns: records between its lowest unfinished offset and the high watermark of its last fetch. The group's lag, for autoscaling, is ordo_consumer_lag_records.",
		[]string{"group", "topic", "partition"}, nil)
	descLagSeconds = prometheus.NewDesc("ordo_member_lag_seconds",
		"This member's view of a partition it owns: age of its oldest unfinished record (0 when none is unfinished). The group's lag, for autoscaling, is ordo_consumer_lag_seconds.",
		[]string{"group", "topic", "partition"}, nil)
	descInflight = prometheus.NewDesc("ordo_inflight_records",
		"Records received and not finished.",
		[]string{"group", "topic", "partition"}, nil)
	descInflightBytes = prometheus.NewDesc("ordo_inflight_bytes",
		"Key and value bytes of records received and not finished.",
		[]string{"group", "topic", "partition"}, nil)
	descPaused = prometheus.NewDesc("ordo_partition_paused",
		"1 if the partition's fetching is paused for backpressure.",
		[]string{"group", "topic", "partition"}, nil)
	descCommitted = prometheus.NewDesc("ordo_committed_offset",
		"Last offset committed for the partition by this member; absent until its first commit.",
		[]string{"group", "topic", "partition"}, nil)
	descTierWaiting = prometheus.NewDesc("ordo_tier_waiting_records",
		"Records of a retry tier's partition received and not started (most wait to be due). topic is the tier's topic.",
		[]string{"group", "topic", "partition"}, nil)
	descOutBlocked = prometheus.NewDesc("ordo_out_blocked",
		"1 while a failed record of the partition keeps failing to be produced to its retry tier or dead-letter topic (the partition's commits wait for it).",
		[]string{"group", "topic", "partition"}, nil)
	descSpan = prometheus.NewDesc("ordo_partition_span_offsets",
		"Offsets from the partition's lowest unfinished record to its newest received one; the partition pauses at Config.MaxTrackedSpan.",
		[]string{"group", "topic", "partition"}, nil)
)

func (lc *laneCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{descRecords, descDuration, descLagRecords, descLagSeconds, descInflight, descInflightBytes, descPaused, descCommitted, descSpan, descStalls, descTierWaiting, descOutBlocked} {
		ch <- d
	}
}

func (lc *laneCollector) Collect(ch chan<- prometheus.Metric) {
	group := lc.c.cfg.Group
	for tm, t := range lc.c.metrics.totals() {
		counter := func(outcome string, v uint64) {
			ch <- prometheus.MustNewConstMetric(descRecords, prometheus.CounterValue, float64(v), group, tm.name, outcome)
		}
		counter(OutcomeOK, t.ok)
		counter(OutcomeError, t.failed)
		counter(OutcomeCanceled, t.canceled)
		counter(OutcomeAlreadyDone, t.alreadyDone)
		counter(OutcomeRetry, tm.retried.Load())
		counter(OutcomeHold, tm.held.Load())
		counter(OutcomeDLQ, tm.dlq.Load())
		counter(OutcomeStale, tm.stale.Load())
		buckets := make(map[float64]uint64, len(durationBuckets))
		var cum uint64
		for i, b := range durationBuckets {
			cum += t.durBuckets[i]
			buckets[b] = cum
		}
		ch <- prometheus.MustNewConstHistogram(descDuration, t.durCount, t.durSum, buckets, group, tm.name)
		ch <- prometheus.MustNewConstMetric(descStalls, prometheus.CounterValue, float64(tm.stalls.Load()), group, tm.name)
	}
	now := lc.c.cfg.Clock.Now()
	for _, s := range lc.c.Lanes() {
		p := strconv.Itoa(int(s.Partition))
		g := func(d *prometheus.Desc, v float64) {
			ch <- prometheus.MustNewConstMetric(d, prometheus.GaugeValue, v, group, s.Topic, p)
		}
		g(descLagRecords, float64(s.LagRecords()))
		g(descLagSeconds, s.LagSeconds(now))
		g(descInflight, float64(s.InFlight))
		g(descInflightBytes, float64(s.InFlightBytes))
		paused := 0.0
		if s.Paused {
			paused = 1
		}
		g(descPaused, paused)
		g(descSpan, float64(s.Span))
		if s.Tier > 0 {
			g(descTierWaiting, float64(s.Waiting))
		}
		blocked := 0.0
		if s.Blocked != "" {
			blocked = 1
		}
		g(descOutBlocked, blocked)
		if s.Committed >= 0 {
			g(descCommitted, float64(s.Committed))
		}
	}
}

// LagRecords is the number of records between the lowest unfinished offset
// and the high watermark; 0 when unknown.
func (s LaneSnapshot) LagRecords() int64 {
	pos := max(s.Watermark, s.Committed)
	if s.HighWatermark < 0 || pos < 0 || s.HighWatermark < pos {
		return 0
	}
	return s.HighWatermark - pos
}

// LagSeconds is the age at now of the oldest unfinished record; 0 when
// nothing is unfinished.
func (s LaneSnapshot) LagSeconds(now time.Time) float64 {
	if s.Oldest.IsZero() {
		return 0
	}
	return max(0, now.Sub(s.Oldest).Seconds())
}

// Stats are the consumer's totals since it was created, for progress lines
// and health checks. Prometheus has the same numbers per topic.
type Stats struct {
	Processed    int64 // records the processor applied (outcome ok)
	Errors       int64 // failed processor calls
	Canceled     int64 // calls ended by Ordo's cancel (loss, stop, drain deadline)
	Retries      int64 // retries scheduled
	Holds        int64 // holds
	DeadLettered int64 // records dead-lettered (produce acked)
	Tiered       int64 // records sent to a retry tier (produce acked)
	Stale        int64 // completions dropped for partitions no longer owned
	Partitions   int   // partitions owned now
	Paused       int   // partitions paused now, but for a retry tier waiting for its next record to be due
	Waiting      int   // records received on retry tiers and not finished now (most wait to be due)
	InFlight     int   // records received and not finished now
	LagRecords   int64 // sum of per-partition lag in records now
}

// Stats returns the consumer's totals.
func (c *Consumer) Stats() Stats {
	var s Stats
	for tm, t := range c.metrics.totals() {
		s.Processed += int64(t.ok)
		s.Errors += int64(t.failed)
		s.Canceled += int64(t.canceled)
		s.Retries += int64(tm.retried.Load())
		s.Holds += int64(tm.held.Load())
		s.DeadLettered += int64(tm.dlq.Load())
		s.Tiered += int64(tm.tiered.Load())
		s.Stale += int64(tm.stale.Load())
	}
	for _, l := range c.Lanes() {
		s.AddLane(l)
	}
	return s
}

// AddLane adds a lane's current figures (partitions, paused, in flight,
// waiting, lag) to s: Stats sums them over Lanes.
func (s *Stats) AddLane(l LaneSnapshot) {
	s.Partitions++
	if l.Paused && l.PauseReason != pauseNotDue {
		s.Paused++
	}
	s.InFlight += l.InFlight
	if l.Tier > 0 {
		s.Waiting += l.InFlight
	}
	s.LagRecords += l.LagRecords()
}
