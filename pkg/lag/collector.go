package lag

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
)

// Defaults of Config.
const (
	DefaultWindow        = 2 * time.Minute
	DefaultScrapeTimeout = 10 * time.Second
)

// Clock is the collector's time source: the scrape's time, against which
// record ages and the status window are measured. Tests inject their own.
type Clock interface{ Now() time.Time }

type wallClock struct{}

func (wallClock) Now() time.Time { return time.Now() }

// Config configures a Collector. Zero values take the stated defaults.
type Config struct {
	// Brokers are the seed brokers, host:port. Required unless Client is
	// set.
	Brokers []string
	// Client, if set, is used instead of a client of the collector's own
	// (Brokers and KgoOpts are then ignored); Close does not close it.
	Client *kgo.Client
	// KgoOpts are more options for the collector's own client (TLS, SASL,
	// hooks).
	KgoOpts []kgo.Opt

	// Groups are the consumer groups to report. Required unless AllGroups.
	Groups []string
	// AllGroups reports every group the brokers list at each scrape, in
	// addition to Groups.
	AllGroups bool
	// Topics, if set, restricts the report to these topics. A group is
	// reported for every partition of each topic it committed to (as
	// kadm.Lag does); the groups named in Groups are also reported for
	// every partition of these topics, even without any commit: a new
	// group, or one scaled to zero before its first commit, still shows
	// the backlog to scale on. A partition never committed lags from its
	// log start offset.
	Topics []string

	// Window is the span over which a partition's status is judged (see
	// the package doc). Default DefaultWindow (2m).
	Window time.Duration
	// ScrapeTimeout bounds one scrape, all its requests included. Default
	// DefaultScrapeTimeout (10s).
	ScrapeTimeout time.Duration
	// Clock is the time source. Default the wall clock.
	Clock Clock
}

// Partition is one partition's lag for one group at a scrape.
type Partition struct {
	Group     string `json:"group"`
	Topic     string `json:"topic"`
	Partition int32  `json:"partition"`
	// Committed is the group's committed offset, -1 if it has none.
	Committed int64 `json:"committed"`
	// Start is the log start offset, known (>= 0) only for a partition
	// without a commit, -1 otherwise.
	Start int64 `json:"log_start"`
	// End is the end offset (the high watermark).
	End int64 `json:"end"`
	// Lag is End minus Committed (minus Start without a commit), >= 0.
	Lag int64 `json:"lag_records"`
	// LagSeconds is the age of the oldest unconsumed record at the scrape;
	// nil when its timestamp could not be read (the error is the
	// scrape's).
	LagSeconds *float64 `json:"lag_seconds"`
	// Status is the partition's status over the window.
	Status Status `json:"status"`
}

// Snapshot is the result of one scrape.
type Snapshot struct {
	// At is the scrape's time (Config.Clock).
	At time.Time `json:"at"`
	// Partitions are sorted by group, topic and partition.
	Partitions []Partition `json:"partitions"`
}

// Collector exports the lag of consumer groups, computed from the brokers
// at each scrape. Register it on a registry of yours; it never touches the
// default one. It is safe for concurrent use.
type Collector struct {
	cfg    Config
	cl     *kgo.Client
	ownCl  bool
	adm    *kadm.Client
	where  string // "brokers a:9092,b:9092", for errors
	errors *prometheus.CounterVec
	dur    prometheus.Gauge

	mu    sync.Mutex // held for a whole scrape; guards state
	state map[partKey]*partState
}

type partKey struct {
	group, topic string
	partition    int32
}

// partState is what the collector keeps of a partition between scrapes.
type partState struct {
	hist     history
	tsOffset int64 // the offset whose record timestamp is ts; -1 none
	ts       time.Time
}

// Scrape stages, the values of ordo_lag_scrape_errors_total's stage label.
const (
	StageListGroups   = "list_groups"
	StageOffsetFetch  = "offset_fetch"
	StageEndOffsets   = "end_offsets"
	StageStartOffsets = "start_offsets"
	StageTimestamp    = "timestamp"
	StageDescribe     = "describe_groups"
)

// Metric names.
const (
	MetricLagRecords     = "ordo_consumer_lag_records"
	MetricLagSeconds     = "ordo_consumer_lag_seconds"
	MetricStatus         = "ordo_consumer_status"
	MetricScrapeErrors   = "ordo_lag_scrape_errors_total"
	MetricScrapeDuration = "ordo_lag_scrape_duration_seconds"
)

var (
	descLagRecords = prometheus.NewDesc(MetricLagRecords,
		"The group's lag, from the brokers: end offset minus committed offset (minus log start offset for a partition never committed), whether or not a member runs. Scale on this or on ordo_consumer_lag_seconds.",
		[]string{"group", "topic", "partition"}, nil)
	descLagSeconds = prometheus.NewDesc(MetricLagSeconds,
		"The group's lag in time, from the brokers: age of the oldest unconsumed record (the one at the committed offset), from its timestamp; 0 when caught up.",
		[]string{"group", "topic", "partition"}, nil)
	descStatus = prometheus.NewDesc(MetricStatus,
		"1 for the partition's current status over the window: ok, warn (moving but the lag grows), stall (committed offset stuck with lag while a member owns it), stop (stuck with lag, no member consuming it); absent until watched for a whole window.",
		[]string{"group", "topic", "partition", "status"}, nil)
)

// New returns a collector for cfg. It checks cfg and creates its client
// (which connects lazily); it does not contact a broker.
func New(cfg Config) (*Collector, error) {
	var errs []error
	if cfg.Client == nil && len(cfg.Brokers) == 0 {
		errs = append(errs, errors.New("lag: Config.Brokers: at least one seed broker is required (or Config.Client)"))
	}
	for i, b := range cfg.Brokers {
		if strings.TrimSpace(b) == "" {
			errs = append(errs, fmt.Errorf("lag: Config.Brokers[%d]: empty", i))
		}
	}
	if len(cfg.Groups) == 0 && !cfg.AllGroups {
		errs = append(errs, errors.New("lag: Config.Groups: at least one group is required (or Config.AllGroups)"))
	}
	for i, g := range cfg.Groups {
		if strings.TrimSpace(g) == "" {
			errs = append(errs, fmt.Errorf("lag: Config.Groups[%d]: empty", i))
		}
	}
	for i, t := range cfg.Topics {
		if strings.TrimSpace(t) == "" {
			errs = append(errs, fmt.Errorf("lag: Config.Topics[%d]: empty", i))
		}
	}
	if cfg.Window < 0 {
		errs = append(errs, fmt.Errorf("lag: Config.Window: must not be negative, got %s", cfg.Window))
	}
	if cfg.ScrapeTimeout < 0 {
		errs = append(errs, fmt.Errorf("lag: Config.ScrapeTimeout: must not be negative, got %s", cfg.ScrapeTimeout))
	}
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	cfg.Window = cmp.Or(cfg.Window, DefaultWindow)
	cfg.ScrapeTimeout = cmp.Or(cfg.ScrapeTimeout, DefaultScrapeTimeout)
	if cfg.Clock == nil {
		cfg.Clock = wallClock{}
	}
	cfg.Groups = slices.Compact(slices.Sorted(slices.Values(cfg.Groups)))
	c := &Collector{
		cfg:   cfg,
		cl:    cfg.Client,
		state: map[partKey]*partState{},
		errors: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: MetricScrapeErrors,
			Help: "Failed steps of lag scrapes, by stage: list_groups, offset_fetch, end_offsets, start_offsets, timestamp, describe_groups. What a failed step could not measure is absent from that scrape.",
		}, []string{"stage"}),
		dur: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: MetricScrapeDuration,
			Help: "Duration of the last lag scrape; each is bounded by the scrape timeout.",
		}),
	}
	if c.cl == nil {
		cl, err := kgo.NewClient(append([]kgo.Opt{kgo.SeedBrokers(cfg.Brokers...)}, cfg.KgoOpts...)...)
		if err != nil {
			return nil, fmt.Errorf("lag: brokers %s: %w", strings.Join(cfg.Brokers, ","), err)
		}
		c.cl, c.ownCl = cl, true
		c.where = "brokers " + strings.Join(cfg.Brokers, ",")
	} else {
		seeds, _ := c.cl.OptValue(kgo.SeedBrokers).([]string)
		c.where = "brokers " + strings.Join(seeds, ",")
	}
	for _, s := range []string{StageListGroups, StageOffsetFetch, StageEndOffsets, StageStartOffsets, StageTimestamp, StageDescribe} {
		c.errors.WithLabelValues(s) // every stage present from the first scrape, at 0
	}
	c.adm = kadm.NewClient(c.cl)
	return c, nil
}

// Close closes the collector's own client (not Config.Client).
func (c *Collector) Close() {
	if c.ownCl {
		c.cl.Close()
	}
}

// Window is the status window in force.
func (c *Collector) Window() time.Duration { return c.cfg.Window }

// Describe implements prometheus.Collector.
func (c *Collector) Describe(ch chan<- *prometheus.Desc) {
	ch <- descLagRecords
	ch <- descLagSeconds
	ch <- descStatus
	c.errors.Describe(ch)
	c.dur.Describe(ch)
}

// Collect implements prometheus.Collector: one scrape, bounded by
// Config.ScrapeTimeout.
func (c *Collector) Collect(ch chan<- prometheus.Metric) {
	ctx, cancel := context.WithTimeout(context.Background(), c.cfg.ScrapeTimeout)
	defer cancel()
	snap, _ := c.Scrape(ctx) // errors are counted; what failed is absent
	for _, p := range snap.Partitions {
		part := strconv.Itoa(int(p.Partition))
		ch <- prometheus.MustNewConstMetric(descLagRecords, prometheus.GaugeValue, float64(p.Lag), p.Group, p.Topic, part)
		if p.LagSeconds != nil {
			ch <- prometheus.MustNewConstMetric(descLagSeconds, prometheus.GaugeValue, *p.LagSeconds, p.Group, p.Topic, part)
		}
		if p.Status != StatusUnknown {
			for _, s := range Statuses {
				v := 0.0
				if s == p.Status {
					v = 1
				}
				ch <- prometheus.MustNewConstMetric(descStatus, prometheus.GaugeValue, v, p.Group, p.Topic, part, s.Label())
			}
		}
	}
	c.errors.Collect(ch)
	c.dur.Collect(ch)
}

// fail counts a failed step of a scrape under its stage and keeps its
// error, naming the brokers.
func (c *Collector) fail(errs *[]error, stage string, err error) {
	c.errors.WithLabelValues(stage).Inc()
	*errs = append(*errs, fmt.Errorf("lag: %s: %w", c.where, err))
}

// Scrape measures the configured groups now. It returns what it could
// measure and, joined, the errors of the steps that failed (each counted in
// ordo_lag_scrape_errors_total); ctx bounds it. Scrapes run one at a time.
func (c *Collector) Scrape(ctx context.Context) (Snapshot, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	began := time.Now()
	defer func() { c.dur.Set(time.Since(began).Seconds()) }()
	now := c.cfg.Clock.Now()
	snap := Snapshot{At: now}
	var errs []error

	groups := c.cfg.Groups
	if c.cfg.AllGroups {
		listed, err := c.adm.ListGroups(ctx)
		if err != nil {
			c.fail(&errs, StageListGroups, fmt.Errorf("listing groups: %w", err))
		}
		groups = slices.Compact(slices.Sorted(slices.Values(append(slices.Clone(groups), listed.Groups()...))))
	}
	if len(groups) == 0 {
		return snap, errors.Join(errs...)
	}
	explicit := map[string]bool{}
	for _, g := range c.cfg.Groups {
		explicit[g] = true
	}
	wantTopic := func(string) bool { return true }
	if len(c.cfg.Topics) > 0 {
		wantTopic = func(t string) bool { return slices.Contains(c.cfg.Topics, t) }
	}

	// Committed offsets: one OffsetFetch per coordinator, groups batched.
	fetched := c.adm.FetchManyOffsets(ctx, groups...)
	committed := map[string]kadm.OffsetResponses{} // group -> offsets, for groups fetched
	topicSet := map[string]bool{}
	for _, g := range groups {
		r, ok := fetched[g]
		switch {
		case !ok:
			c.fail(&errs, StageOffsetFetch, fmt.Errorf("committed offsets of group %q: no answer", g))
			continue
		case errors.Is(r.Err, kerr.GroupIDNotFound):
			// No such group (yet): no commits. Kafka answers with none,
			// some brokers with this error.
		case r.Err != nil:
			c.fail(&errs, StageOffsetFetch, fmt.Errorf("committed offsets of group %q: %w", g, r.Err))
			continue
		}
		offs := kadm.OffsetResponses{} // At < 0: listed by the broker, not committed
		var perr error
		r.Fetched.Each(func(o kadm.OffsetResponse) {
			if !wantTopic(o.Topic) {
				return
			}
			if o.Err != nil {
				perr = errors.Join(perr, fmt.Errorf("%s/%d: %w", o.Topic, o.Partition, o.Err))
				return
			}
			offs.Add(o)
			topicSet[o.Topic] = true
		})
		if perr != nil {
			c.fail(&errs, StageOffsetFetch, fmt.Errorf("committed offsets of group %q: %w", g, perr))
		}
		committed[g] = offs
		if explicit[g] {
			for _, t := range c.cfg.Topics {
				topicSet[t] = true
			}
		}
	}
	if len(topicSet) == 0 {
		c.prune(committed, nil, nil)
		return snap, errors.Join(errs...)
	}

	// End offsets: one ListOffsets per leader.
	topics := slices.Sorted(func(yield func(string) bool) {
		for t := range topicSet {
			if !yield(t) {
				return
			}
		}
	})
	ends, err := c.adm.ListEndOffsets(ctx, topics...)
	if err != nil {
		c.fail(&errs, StageEndOffsets, fmt.Errorf("end offsets of %s: %w", strings.Join(topics, ","), err))
		if ends == nil {
			return snap, errors.Join(errs...)
		}
	}
	endOf := map[string]map[int32]int64{}
	var endErr error
	ends.Each(func(o kadm.ListedOffset) {
		if o.Err != nil {
			if o.Partition < 0 {
				endErr = errors.Join(endErr, fmt.Errorf("topic %s: %w", o.Topic, o.Err))
			} else {
				endErr = errors.Join(endErr, fmt.Errorf("%s/%d: %w", o.Topic, o.Partition, o.Err))
			}
			return
		}
		if endOf[o.Topic] == nil {
			endOf[o.Topic] = map[int32]int64{}
		}
		endOf[o.Topic][o.Partition] = o.Offset
	})
	if endErr != nil {
		c.fail(&errs, StageEndOffsets, fmt.Errorf("end offsets: %w", endErr))
	}

	// Rows: every partition of the topics each group committed to, and of
	// the configured topics for the groups named in Config.Groups.
	var rows []Partition
	var needStart []string
	for g, offs := range committed {
		for t, ps := range endOf {
			_, configured := offs[t]
			configured = configured || explicit[g] && slices.Contains(c.cfg.Topics, t)
			if !configured {
				continue
			}
			for p, end := range ps {
				row := Partition{Group: g, Topic: t, Partition: p, Committed: -1, Start: -1, End: end}
				// As kadm.Lag: every partition of a topic the group
				// consumes, those never committed lagging from the log start.
				if o, ok := offs.Lookup(t, p); ok && o.At >= 0 {
					row.Committed = o.At
				} else if !slices.Contains(needStart, t) {
					needStart = append(needStart, t)
				}
				rows = append(rows, row)
			}
		}
	}
	if len(needStart) > 0 {
		slices.Sort(needStart)
		starts, err := c.adm.ListStartOffsets(ctx, needStart...)
		if err != nil {
			c.fail(&errs, StageStartOffsets, fmt.Errorf("start offsets of %s: %w", strings.Join(needStart, ","), err))
		}
		kept := rows[:0]
		for _, r := range rows {
			if r.Committed < 0 {
				s, ok := starts.Lookup(r.Topic, r.Partition)
				if !ok || s.Err != nil {
					continue // counted above, or the topic's error is
				}
				r.Start = s.Offset
			}
			kept = append(kept, r)
		}
		rows = kept
	}
	for i := range rows {
		r := &rows[i]
		from := r.Committed
		if from < 0 {
			from = r.Start
		}
		r.Lag = max(0, r.End-from)
	}

	// Timestamps of the oldest unconsumed records not in the cache.
	need := map[tsKey]struct{}{}
	for _, r := range rows {
		if r.Lag == 0 {
			continue
		}
		st := c.state[partKey{r.Group, r.Topic, r.Partition}]
		if st == nil || st.tsOffset != r.next() {
			need[tsKey{r.Topic, r.Partition, r.next()}] = struct{}{}
		}
	}
	var got map[tsKey]time.Time
	if len(need) > 0 {
		var err error
		got, err = c.timestamps(ctx, need)
		if err != nil {
			c.fail(&errs, StageTimestamp, err)
		}
	}

	// Seconds and status.
	var stuck []int
	for i := range rows {
		r := &rows[i]
		k := partKey{r.Group, r.Topic, r.Partition}
		st := c.state[k]
		if st == nil {
			st = &partState{tsOffset: -1}
			c.state[k] = st
		}
		zero := 0.0
		if r.Lag == 0 {
			r.LagSeconds = &zero
		} else {
			off := r.next()
			if ts, ok := got[tsKey{r.Topic, r.Partition, off}]; ok {
				st.tsOffset, st.ts = off, ts
			}
			if st.tsOffset == off {
				s := 0.0 // zero ts: only control records up to the end
				if !st.ts.IsZero() {
					s = max(0, now.Sub(st.ts).Seconds())
				}
				r.LagSeconds = &s
			}
		}
		st.hist.observe(now, r.Committed, r.Lag, c.cfg.Window)
		var isStuck bool
		r.Status, isStuck = st.hist.evaluate(now, r.Lag, c.cfg.Window)
		if isStuck {
			stuck = append(stuck, i)
		}
	}
	if len(stuck) > 0 {
		c.decideStuck(ctx, rows, stuck, &errs)
	}
	c.prune(committed, endOf, rows)

	slices.SortFunc(rows, func(a, b Partition) int {
		return cmp.Or(cmp.Compare(a.Group, b.Group), cmp.Compare(a.Topic, b.Topic), cmp.Compare(a.Partition, b.Partition))
	})
	snap.Partitions = rows
	return snap, errors.Join(errs...)
}

// next is the offset of the oldest unconsumed record.
func (p *Partition) next() int64 {
	if p.Committed >= 0 {
		return p.Committed
	}
	return p.Start
}

// decideStuck turns the stuck rows into STOP or STALL by the groups'
// members (one DescribeGroups for the groups concerned).
func (c *Collector) decideStuck(ctx context.Context, rows []Partition, stuck []int, errs *[]error) {
	var groups []string
	for _, i := range stuck {
		if !slices.Contains(groups, rows[i].Group) {
			groups = append(groups, rows[i].Group)
		}
	}
	described, err := c.adm.DescribeGroups(ctx, groups...)
	if err != nil {
		c.fail(errs, StageDescribe, fmt.Errorf("describing groups %s: %w", strings.Join(groups, ","), err))
	}
	for _, i := range stuck {
		r := &rows[i]
		d, ok := described[r.Group]
		if !ok || d.Err != nil {
			if ok && d.Err != nil {
				c.fail(errs, StageDescribe, fmt.Errorf("describing group %q: %w", r.Group, d.Err))
			}
			r.Status = StatusStall // ownership unknown
			continue
		}
		if owned(d, r.Topic, r.Partition) {
			r.Status = StatusStall
		} else {
			r.Status = StatusStop
		}
	}
}

// owned reports whether a member of d may consume t/p: false only when the
// group has no members, or is Stable and no member's consumer assignment
// holds the partition.
func owned(d kadm.DescribedGroup, t string, p int32) bool {
	if len(d.Members) == 0 || d.State == "Empty" || d.State == "Dead" {
		return false
	}
	if d.State != "Stable" {
		return true // rebalancing: assignments are in flux
	}
	decoded := false
	for _, m := range d.Members {
		a, ok := m.Assigned.AsConsumer()
		if !ok {
			continue
		}
		decoded = true
		for _, at := range a.Topics {
			if at.Topic == t && slices.Contains(at.Partitions, p) {
				return true
			}
		}
	}
	return !decoded // an assignment we cannot read: assume owned
}

// prune drops the state of partitions that a scrape no longer reports
// although it fetched their group's offsets and listed their topic's end
// offsets (a topic with no end offsets listed, nil: none listed). A failed
// step keeps the state of what it could not measure.
func (c *Collector) prune(fetched map[string]kadm.OffsetResponses, listed map[string]map[int32]int64, rows []Partition) {
	seen := make(map[partKey]bool, len(rows))
	for _, r := range rows {
		seen[partKey{r.Group, r.Topic, r.Partition}] = true
	}
	for k := range c.state {
		_, groupOK := fetched[k.group]
		_, topicOK := listed[k.topic]
		stillCommitted := false
		if offs, ok := fetched[k.group]; ok {
			_, stillCommitted = offs.Lookup(k.topic, k.partition)
		}
		if groupOK && !seen[k] && (topicOK || !stillCommitted) {
			delete(c.state, k)
		}
	}
}
