package ordo

import (
	"strconv"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
)

// metrics holds Ordo's Prometheus metrics, registered on the consumer's
// registry. Counters are resolved once per topic so that the hot path pays
// one atomic add per record; per-partition gauges are computed at scrape
// time from the lanes (see lagCollector).
type metrics struct {
	group         string
	records       *prometheus.CounterVec
	duration      *prometheus.HistogramVec
	dlqErrors     *prometheus.CounterVec
	pauses        *prometheus.CounterVec
	commits       *prometheus.CounterVec
	fetchErrors   prometheus.Counter
	orphanRecords prometheus.Counter
	lost          prometheus.Counter

	mu     sync.Mutex
	topics map[string]*topicMetrics
}

type topicMetrics struct {
	ok, failed, retried, held, dlq, stale prometheus.Counter
	alreadyDone                           prometheus.Counter
	dlqErrors, pauses                     prometheus.Counter
	duration                              prometheus.Observer
}

// Outcome label values of ordo_records_total.
const (
	OutcomeOK    = "ok"    // the processor returned nil
	OutcomeError = "error" // a processor call failed (each failed attempt)
	OutcomeRetry = "retry" // a retry was scheduled
	OutcomeHold  = "hold"  // a Hold error kept the record
	OutcomeDLQ   = "dlq"   // the record was dead-lettered and the produce acked
	OutcomeStale = "stale" // a completion for a partition no longer owned, dropped
	// OutcomeAlreadyDone counts records the partition's previous owner
	// finished above its committed offset (listed in the commit's offset
	// map): marked done without running them again.
	OutcomeAlreadyDone = "already_done"
)

func newMetrics(reg prometheus.Registerer, c *Consumer) (*metrics, error) {
	group := c.cfg.Group
	cl := prometheus.Labels{"group": group}
	m := &metrics{
		group: group,
		records: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "ordo_records_total", ConstLabels: cl,
			Help: "Records by outcome: ok, error (failed attempts), retry, hold, dlq, stale (completions dropped for partitions no longer owned), already_done (finished by the previous owner, per its offset map).",
		}, []string{"topic", "outcome"}),
		duration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name: "ordo_processing_duration_seconds", ConstLabels: cl,
			Help:    "Duration of processor calls.",
			Buckets: []float64{.0001, .0005, .001, .005, .01, .05, .1, .5, 1, 5, 30},
		}, []string{"topic"}),
		dlqErrors: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "ordo_dlq_produce_errors_total", ConstLabels: cl,
			Help: "Failed produces to a dead-letter topic (each is retried; the source offset waits).",
		}, []string{"topic"}),
		pauses: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "ordo_partition_pauses_total", ConstLabels: cl,
			Help: "Times a partition's fetching was paused because its in-flight budget was full.",
		}, []string{"topic"}),
		commits: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "ordo_commits_total", ConstLabels: cl,
			Help: "Offset commits by result.",
		}, []string{"result"}),
		fetchErrors: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "ordo_fetch_errors_total", ConstLabels: cl, Help: "Fetch errors returned by polls.",
		}),
		orphanRecords: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "ordo_orphan_records_total", ConstLabels: cl,
			Help: "Fetched records for a partition with no lane, left for the partition's owner.",
		}),
		lost: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "ordo_partitions_lost_total", ConstLabels: cl,
			Help: "Partitions lost (not revoked): their work was canceled and nothing committed.",
		}),
		topics: map[string]*topicMetrics{},
	}
	for _, col := range []prometheus.Collector{
		m.records, m.duration, m.dlqErrors, m.pauses, m.commits, m.fetchErrors, m.orphanRecords, m.lost,
		&laneCollector{c: c},
	} {
		if err := reg.Register(col); err != nil {
			return nil, err
		}
	}
	return m, nil
}

func (m *metrics) topic(t string) *topicMetrics {
	m.mu.Lock()
	defer m.mu.Unlock()
	if tm := m.topics[t]; tm != nil {
		return tm
	}
	tm := &topicMetrics{
		ok:          m.records.WithLabelValues(t, OutcomeOK),
		failed:      m.records.WithLabelValues(t, OutcomeError),
		retried:     m.records.WithLabelValues(t, OutcomeRetry),
		held:        m.records.WithLabelValues(t, OutcomeHold),
		dlq:         m.records.WithLabelValues(t, OutcomeDLQ),
		stale:       m.records.WithLabelValues(t, OutcomeStale),
		alreadyDone: m.records.WithLabelValues(t, OutcomeAlreadyDone),
		dlqErrors:   m.dlqErrors.WithLabelValues(t),
		pauses:      m.pauses.WithLabelValues(t),
		duration:    m.duration.WithLabelValues(t),
	}
	m.topics[t] = tm
	return tm
}

// laneCollector computes the per-partition gauges at scrape time from the
// lanes' state: no broker round trip, no cost on the data path.
type laneCollector struct{ c *Consumer }

var (
	descLagRecords = prometheus.NewDesc("ordo_consumer_lag_records",
		"Records between the partition's lowest unfinished offset and its high watermark.",
		[]string{"group", "topic", "partition"}, nil)
	descLagSeconds = prometheus.NewDesc("ordo_consumer_lag_seconds",
		"Age of the partition's oldest unfinished record (0 when none is unfinished).",
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
		"Last offset committed for the partition by this member.",
		[]string{"group", "topic", "partition"}, nil)
)

func (lc *laneCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{descLagRecords, descLagSeconds, descInflight, descInflightBytes, descPaused, descCommitted} {
		ch <- d
	}
}

func (lc *laneCollector) Collect(ch chan<- prometheus.Metric) {
	group := lc.c.cfg.Group
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
		g(descCommitted, float64(s.Committed))
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
	Retries      int64 // retries scheduled
	Holds        int64 // holds
	DeadLettered int64 // records dead-lettered (produce acked)
	Stale        int64 // completions dropped for partitions no longer owned
	Partitions   int   // partitions owned now
	Paused       int   // partitions paused for backpressure now
	InFlight     int   // records received and not finished now
	LagRecords   int64 // sum of per-partition lag in records now
}

// Stats returns the consumer's totals.
func (c *Consumer) Stats() Stats {
	var s Stats
	c.metrics.mu.Lock()
	for _, tm := range c.metrics.topics {
		s.Processed += counterValue(tm.ok)
		s.Errors += counterValue(tm.failed)
		s.Retries += counterValue(tm.retried)
		s.Holds += counterValue(tm.held)
		s.DeadLettered += counterValue(tm.dlq)
		s.Stale += counterValue(tm.stale)
	}
	c.metrics.mu.Unlock()
	for _, l := range c.Lanes() {
		s.Partitions++
		if l.Paused {
			s.Paused++
		}
		s.InFlight += l.InFlight
		s.LagRecords += l.LagRecords()
	}
	return s
}

func counterValue(c prometheus.Counter) int64 {
	var m dto.Metric
	if err := c.Write(&m); err != nil {
		return 0
	}
	return int64(m.GetCounter().GetValue())
}
