package bench

import (
	"context"
	"fmt"
	"io"
	"runtime"
	"strconv"
	"sync/atomic"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/ordokafka/ordo/pkg/ordo"
)

// TierIdleConfig is the tier-idle scenario: a consumer whose retry tier
// has Records records not due for Delay, watched for Window once it has
// taken what it holds of them (each tier partition holds a bounded share
// and pauses; the rest wait in the topic), against the same consumer with
// nothing to do.
type TierIdleConfig struct {
	// Records is the records waiting in the tier. Default 100,000.
	Records int
	// Partitions of the source topic and the tier. Default 12.
	Partitions int
	// Delay is the tier's delay. Default 5 minutes.
	Delay time.Duration
	// Window is how long CPU is measured. Default 20 s.
	Window time.Duration
	// Progress receives a line per step. Default: discard.
	Progress io.Writer
}

func (c TierIdleConfig) withDefaults() TierIdleConfig {
	if c.Records == 0 {
		c.Records = 100_000
	}
	if c.Partitions == 0 {
		c.Partitions = 12
	}
	if c.Delay == 0 {
		c.Delay = 5 * time.Minute
	}
	if c.Window == 0 {
		c.Window = 20 * time.Second
	}
	if c.Progress == nil {
		c.Progress = io.Discard
	}
	return c
}

// TierIdleResult is what tier-idle measured.
type TierIdleResult struct {
	Records int
	// CPU and IdleCPU are the process's CPU over the window, in cores
	// (CPU seconds per second), with the records waiting and with none.
	CPU, IdleCPU float64
	// Goroutines with the records waiting and with none.
	Goroutines, IdleGoroutines int
	// HeapMiB is the heap in use with the records waiting.
	HeapMiB float64
	// Waiting is the tier's records not called by the end of the window
	// (all of them, or the run fails); Held is those the consumer holds
	// in memory (ordo_tier_waiting_records), the rest wait in the topic.
	Waiting, Held int
}

// TierIdle runs tier-idle: first the idle consumer, then the one with the
// tier full.
func TierIdle(ctx context.Context, cfg TierIdleConfig) (TierIdleResult, error) {
	cfg = cfg.withDefaults()
	res := TierIdleResult{Records: cfg.Records}
	cluster, err := kfake.NewCluster(kfake.NumBrokers(1))
	if err != nil {
		return res, err
	}
	defer cluster.Close()
	addr := cluster.ListenAddrs()[0]
	id := strconv.FormatInt(time.Now().UnixNano(), 36)
	for _, full := range []bool{false, true} {
		topic := "bench-tier-" + id
		group := "idle"
		if full {
			topic += "-full"
			group = "full"
		}
		tier := ordo.DefaultNaming.RetryTopic(topic, group, 1)
		cl, err := kgo.NewClient(kgo.SeedBrokers(addr), kgo.MaxBufferedRecords(1<<16), kgo.RecordPartitioner(kgo.ManualPartitioner()))
		if err != nil {
			return res, err
		}
		_, err = kadm.NewClient(cl).CreateTopics(ctx, int32(cfg.Partitions), 1, nil, topic, tier, ordo.DefaultNaming.DLQTopic(topic, group))
		if err == nil && full {
			err = produceWaiting(ctx, cl, topic, tier, cfg)
		}
		cl.Close()
		if err != nil {
			return res, err
		}
		var calls atomic.Int64
		cons, err := ordo.New(ordo.Config{
			Brokers: []string{addr},
			Group:   group,
			Topics:  []string{topic},
			Processor: ordo.ProcessorFunc(func(context.Context, *kgo.Record) error {
				calls.Add(1)
				return nil
			}),
			Retry: ordo.RetryPolicy{Tiers: []time.Duration{cfg.Delay}},
		})
		if err != nil {
			return res, err
		}
		if err := cons.Start(ctx); err != nil {
			return res, err
		}
		// Settle: the group joined and, when full, each tier partition
		// took all its records or paused, holding its share.
		settled := time.Now().Add(time.Minute)
		for len(cons.Lanes()) != 2*cfg.Partitions || full && !tierSettled(cons) {
			if time.Now().After(settled) {
				_ = cons.Stop(context.WithoutCancel(ctx))
				return res, fmt.Errorf("bench: tier-idle: %d lanes, %d of %d records held, not all paused or received after a minute", len(cons.Lanes()), tierWaiting(cons), cfg.Records)
			}
			time.Sleep(50 * time.Millisecond)
		}
		time.Sleep(time.Second)
		runtime.GC()
		cpu0, t0 := processCPU(), time.Now()
		select {
		case <-time.After(cfg.Window):
		case <-ctx.Done():
		}
		cores := float64(processCPU()-cpu0) / float64(time.Since(t0))
		var ms runtime.MemStats
		runtime.ReadMemStats(&ms)
		g := runtime.NumGoroutine()
		if full {
			res.CPU, res.Goroutines, res.HeapMiB = cores, g, mib(int64(ms.HeapInuse))
			res.Waiting, res.Held = cfg.Records-int(calls.Load()), tierWaiting(cons)
		} else {
			res.IdleCPU, res.IdleGoroutines = cores, g
		}
		fmt.Fprintf(cfg.Progress, "tier-idle: %s: %.2f%% of a core over %s, %d goroutines, heap %.0f MiB, %d records called, %d held\n",
			map[bool]string{false: "idle", true: "full"}[full], cores*100, cfg.Window, g, mib(int64(ms.HeapInuse)), calls.Load(), tierWaiting(cons))
		if err := cons.Stop(context.WithoutCancel(ctx)); err != nil {
			return res, err
		}
		if ctx.Err() != nil {
			return res, ctx.Err()
		}
	}
	if res.Waiting != cfg.Records {
		return res, fmt.Errorf("bench: tier-idle: %d of %d records still waiting at the end: some ran early", res.Waiting, cfg.Records)
	}
	return res, nil
}

// produceWaiting writes the records as the router writes a record sent to
// tier 1, due after cfg.Delay.
func produceWaiting(ctx context.Context, cl *kgo.Client, topic, tier string, cfg TierIdleConfig) error {
	due := strconv.FormatInt(time.Now().Add(cfg.Delay).UnixMilli(), 10)
	now := strconv.FormatInt(time.Now().UnixMilli(), 10)
	value := make([]byte, 100)
	for i := range cfg.Records {
		p := int32(i % cfg.Partitions)
		cl.Produce(ctx, &kgo.Record{Topic: tier, Partition: p, Key: []byte("k" + strconv.Itoa(i)), Value: value, Headers: []kgo.RecordHeader{
			{Key: ordo.HeaderOriginalTopic, Value: []byte(topic)},
			{Key: ordo.HeaderOriginalPartition, Value: []byte(strconv.Itoa(int(p)))},
			{Key: ordo.HeaderOriginalOffset, Value: []byte(strconv.Itoa(i / cfg.Partitions))},
			{Key: ordo.HeaderOriginalTimestamp, Value: []byte(now)},
			{Key: ordo.HeaderAttempt, Value: []byte("3")},
			{Key: ordo.HeaderTier, Value: []byte("1")},
			{Key: ordo.HeaderNotBefore, Value: []byte(due)},
		}}, nil)
	}
	return cl.Flush(ctx)
}

// tierSettled reports whether every tier partition took all its records
// (those produced to it: its high watermark) or paused.
func tierSettled(cons *ordo.Consumer) bool {
	for _, l := range cons.Lanes() {
		if l.Tier > 0 && !l.Paused && (l.HighWatermark < 0 || int64(l.InFlight) < l.HighWatermark) {
			return false
		}
	}
	return true
}

func tierWaiting(cons *ordo.Consumer) int {
	n := 0
	for _, l := range cons.Lanes() {
		if l.Tier > 0 {
			n += l.InFlight
		}
	}
	return n
}
