package bench

import (
	"context"
	"errors"
	"fmt"
	"runtime"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/ordokafka/ordo/pkg/devbroker"
	"github.com/ordokafka/ordo/pkg/ordo"
)

// PCVolumeConfig is one run of Confluent Parallel Consumer's published
// volume test: records on one partition, each taking a random time in
// [0, MaxWork), processed with a concurrency of Concurrency.
type PCVolumeConfig struct {
	// Brokers to use. Empty: an in-process broker is started for the run.
	Brokers []string
	// Topic to create (one partition). Default "bench-pc-<ordering>-<nanos>".
	Topic string
	// Records is the number of records. Default 10000.
	Records int
	// Ordering is the ordering mode.
	Ordering ordo.Ordering
	// Keys is the number of distinct keys in OrderKey. Default 1000.
	// Records have no key in the other modes.
	Keys int
	// Concurrency is WorkersPerPartition and MaxWorkers. Default 100.
	Concurrency int
	// MaxWork bounds each record's processing time. Default 5ms.
	MaxWork time.Duration
	// Seed seeds the durations and keys.
	Seed uint64
	// Timeout bounds the run. Default 30s plus 20 times the limit.
	Timeout time.Duration
}

// PCVolumeResult is what a PCVolume run measured.
type PCVolumeResult struct {
	Records int
	// Elapsed runs from the first record handed to a processor to the
	// moment the partition's watermark (lowest unfinished offset) passed
	// the last record: every record processed and marked.
	Elapsed time.Duration
	// Processed runs from the same start to the last processor return.
	Processed time.Duration
	// Limit is the workload's limit, from the durations actually drawn.
	Limit Limit
	// Slept is the limit from the times the processors' timers actually
	// took. Go's timers fire late (by up to about a millisecond when the
	// process is otherwise idle), which no scheduler can win back:
	// Elapsed/Slept.Value is Ordo's own overhead.
	Slept Limit
	// Violations counts records that started while an earlier record of the
	// same key (OrderKey) or partition (OrderPartition) had not finished.
	// It must be 0.
	Violations int64
}

func (c PCVolumeConfig) withDefaults() PCVolumeConfig {
	if c.Records == 0 {
		c.Records = 10000
	}
	if c.Keys == 0 {
		c.Keys = 1000
	}
	if c.Concurrency == 0 {
		c.Concurrency = 100
	}
	if c.MaxWork == 0 {
		c.MaxWork = 5 * time.Millisecond
	}
	if c.Topic == "" {
		c.Topic = fmt.Sprintf("bench-pc-%s-%d", c.Ordering, time.Now().UnixNano())
	}
	return c
}

// PCVolume produces the workload to a fresh topic and measures how long Ordo
// takes to process it with a fresh group.
func PCVolume(ctx context.Context, cfg PCVolumeConfig) (PCVolumeResult, error) {
	cfg = cfg.withDefaults()
	if cfg.Records < 1 || cfg.Keys < 1 || cfg.Concurrency < 1 || cfg.MaxWork < 0 {
		return PCVolumeResult{}, fmt.Errorf("bench: pc-volume: Records, Keys and Concurrency must be >= 1 and MaxWork >= 0")
	}
	keys := 0
	if cfg.Ordering == ordo.OrderKey {
		keys = cfg.Keys
	}
	plan := NewPlan(cfg.Records, keys, cfg.MaxWork, cfg.Seed)
	limit := ComputeLimit(plan.Durations, plan.Keys, cfg.Ordering, cfg.Concurrency)
	res := PCVolumeResult{Records: cfg.Records, Limit: limit}
	timeout := cfg.Timeout
	if timeout == 0 {
		timeout = 30*time.Second + 20*limit.Value
	}
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()

	brokers := cfg.Brokers
	if len(brokers) == 0 {
		b, err := devbroker.Start(devbroker.Options{Addr: "127.0.0.1:0"})
		if err != nil {
			return res, err
		}
		defer b.Close()
		brokers = []string{b.Addr()}
	}
	end, err := producePlan(ctx, brokers, cfg.Topic, plan)
	if err != nil {
		return res, err
	}

	m := newPCMeter(plan, cfg.Ordering)
	cons, err := ordo.New(ordo.Config{
		Brokers:             brokers,
		Group:               cfg.Topic + "-group",
		Topics:              []string{cfg.Topic},
		Processor:           ordo.ProcessorFunc(m.process),
		ProcessorName:       "pc-volume",
		Ordering:            cfg.Ordering,
		WorkersPerPartition: cfg.Concurrency,
		MaxWorkers:          cfg.Concurrency,
		SessionTimeout:      6 * time.Second,
		RebalanceTimeout:    20 * time.Second,
	})
	if err != nil {
		return res, err
	}
	if err := cons.Start(context.WithoutCancel(ctx)); err != nil { // stopped below, with a drain
		return res, err
	}
	markedAt, waitErr := m.waitMarked(ctx, cons, end)
	sctx, scancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second) // drain even if ctx ended
	stopErr := cons.Stop(sctx)
	scancel()
	if waitErr != nil {
		return res, errors.Join(waitErr, stopErr)
	}
	if stopErr != nil {
		return res, fmt.Errorf("bench: stopping the consumer: %w", stopErr)
	}
	st := cons.Stats()
	if st.Errors != 0 || st.Processed < int64(cfg.Records) {
		return res, fmt.Errorf("bench: pc-volume: %d processed, %d errors; want %d processed, 0 errors", st.Processed, st.Errors, cfg.Records)
	}
	res.Elapsed = markedAt - m.first()
	res.Processed = m.lastReturn - m.first()
	res.Violations = m.violations.Load()
	res.Slept = ComputeLimit(m.slept, plan.Keys, cfg.Ordering, cfg.Concurrency)
	return res, nil
}

// producePlan writes one record per plan entry to a new one-partition topic.
// A record's value is its plan index. It returns the offset after the last
// record: the watermark once all are finished.
func producePlan(ctx context.Context, brokers []string, topic string, plan Plan) (int64, error) {
	cl, err := kgo.NewClient(kgo.SeedBrokers(brokers...), kgo.DefaultProduceTopic(topic))
	if err != nil {
		return 0, err
	}
	defer cl.Close()
	if _, err := kadm.NewClient(cl).CreateTopic(ctx, 1, 1, nil, topic); err != nil {
		return 0, fmt.Errorf("bench: creating topic %s: %w", topic, err)
	}
	recs := make([]*kgo.Record, len(plan.Durations))
	for i := range recs {
		recs[i] = &kgo.Record{Key: plan.Keys[i], Value: strconv.AppendInt(nil, int64(i), 10)}
	}
	var end int64
	for _, r := range cl.ProduceSync(ctx, recs...) {
		if r.Err != nil {
			return 0, fmt.Errorf("bench: producing to %s: %w", topic, r.Err)
		}
		end = max(end, r.Record.Offset+1)
	}
	return end, nil
}

// pcMeter is the simulated processor of the volume test and its clock.
// Times are nanoseconds since base on the monotonic clock.
type pcMeter struct {
	plan     Plan
	ordering ordo.Ordering
	base     time.Time
	slept    []time.Duration // by plan index: how long the timer took

	firstNs  atomic.Int64 // start of the first call, +1 so that 0 means none
	returned atomic.Int64
	allDone  chan struct{}

	lastReturn time.Duration // set once returned reaches the record count

	// Order check: the key (or partition) a record belongs to must have
	// no other record running when it starts.
	mu         sync.Mutex
	running    map[string]bool
	violations atomic.Int64
}

func newPCMeter(plan Plan, ordering ordo.Ordering) *pcMeter {
	return &pcMeter{
		plan: plan, ordering: ordering, base: time.Now(),
		slept:   make([]time.Duration, len(plan.Durations)),
		allDone: make(chan struct{}), running: map[string]bool{},
	}
}

func (m *pcMeter) first() time.Duration { return time.Duration(m.firstNs.Load() - 1) }

func (m *pcMeter) process(ctx context.Context, r *kgo.Record) error {
	m.firstNs.CompareAndSwap(0, int64(time.Since(m.base))+1)
	i, err := strconv.Atoi(string(r.Value))
	if err != nil || i < 0 || i >= len(m.plan.Durations) {
		return ordo.Permanent(fmt.Errorf("bench: record at offset %d has value %q, not a plan index", r.Offset, r.Value))
	}
	group, ordered := m.group(r)
	if ordered {
		m.mu.Lock()
		if m.running[group] {
			m.violations.Add(1)
		}
		m.running[group] = true
		m.mu.Unlock()
	}
	began := time.Now()
	t := time.NewTimer(m.plan.Durations[i])
	select {
	case <-t.C:
	case <-ctx.Done():
		t.Stop()
		return ctx.Err()
	}
	m.slept[i] = time.Since(began) // each index is processed once
	if ordered {
		m.mu.Lock()
		m.running[group] = false
		m.mu.Unlock()
	}
	if m.returned.Add(1) == int64(len(m.plan.Durations)) {
		m.lastReturn = time.Since(m.base)
		close(m.allDone)
	}
	return nil
}

// group returns what the record must not overlap with.
func (m *pcMeter) group(r *kgo.Record) (string, bool) {
	switch m.ordering {
	case ordo.OrderPartition:
		return "", true
	case ordo.OrderKey:
		if r.Key != nil {
			return string(r.Key), true
		}
	}
	return "", false
}

// waitMarked waits for the last processor return, then watches the lanes
// until the partition's watermark reaches end, and returns when it did.
// A lane marks a record microseconds after its processor returns, so the
// watch spins (yielding the processor) rather than poll on a period that
// would add its own granularity to the measurement.
func (m *pcMeter) waitMarked(ctx context.Context, cons *ordo.Consumer, end int64) (time.Duration, error) {
	select {
	case <-m.allDone:
	case <-ctx.Done():
		return 0, fmt.Errorf("bench: pc-volume: %d of %d records processed: %w", m.returned.Load(), len(m.plan.Durations), ctx.Err())
	}
	for {
		for _, l := range cons.Lanes() {
			if l.Watermark >= end {
				return time.Since(m.base), nil
			}
		}
		if ctx.Err() != nil {
			return 0, fmt.Errorf("bench: pc-volume: watermark did not reach %d: %w", end, ctx.Err())
		}
		runtime.Gosched()
	}
}
