package bench

import (
	"context"
	"errors"
	"fmt"
	"io"
	"runtime"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/ordokafka/ordo/pkg/ordo"
)

// PoisonConfig is the poison-1pct scenario: one topic, read twice per
// round by new groups with the same processor, once clean and once with
// the records of 1% of the keys failing every call through the whole chain
// (in-place attempts, two retry tiers, the dead-letter topic). What is
// compared is the rate of the other keys' records: their count over the
// time until the last of them was applied.
type PoisonConfig struct {
	// Records, Partitions, Keys and ValueBytes shape the topic. Defaults
	// 200,000, 12, 1,000 and 100.
	Records, Partitions, Keys, ValueBytes int
	// PoisonEvery makes every PoisonEvery-th key poisoned. Default 100 (1%).
	PoisonEvery int
	// Work is the processor's work per record, spent sleeping (a call to a
	// sink). Default 0: a no-op processor, where the engine's cost is all
	// there is.
	Work time.Duration
	// Rounds is the number of clean/poison alternations. Default 3.
	Rounds int
	// Seed seeds the values.
	Seed uint64
	// Progress receives a line per step. Default: discard.
	Progress io.Writer
}

func (c PoisonConfig) withDefaults() PoisonConfig {
	if c.Records == 0 {
		c.Records = 200_000
	}
	if c.Partitions == 0 {
		c.Partitions = 12
	}
	if c.Keys == 0 {
		c.Keys = 1000
	}
	if c.ValueBytes == 0 {
		c.ValueBytes = 100
	}
	if c.PoisonEvery == 0 {
		c.PoisonEvery = 100
	}
	if c.Rounds == 0 {
		c.Rounds = 3
	}
	if c.Progress == nil {
		c.Progress = io.Discard
	}
	return c
}

// PoisonResult is what poison-1pct measured: medians over the rounds.
type PoisonResult struct {
	Records, Poisoned int
	// CleanRate and PoisonRate are the other keys' records per second.
	CleanRate, PoisonRate float64
	CleanRuns, PoisonRuns []float64
	// DeadLettered is the poisoned records each poison run dead-lettered
	// (all of them, or the run fails).
	DeadLettered int
}

// The poison runs' retry policy: short enough for the bench, the whole
// chain all the same.
var poisonRetry = ordo.RetryPolicy{
	MaxAttempts:    3,
	InitialBackoff: 5 * time.Millisecond,
	MaxBackoff:     50 * time.Millisecond,
	Tiers:          []time.Duration{100 * time.Millisecond, 300 * time.Millisecond},
}

// PoisonThroughput runs poison-1pct.
func PoisonThroughput(ctx context.Context, cfg PoisonConfig) (PoisonResult, error) {
	cfg = cfg.withDefaults()
	res := PoisonResult{Records: cfg.Records}
	if cfg.Records < 1 || cfg.Partitions < 1 || cfg.Keys < cfg.PoisonEvery || cfg.Rounds < 1 {
		return res, errors.New("bench: poison-1pct: Records, Partitions and Rounds must be >= 1, Keys >= PoisonEvery")
	}
	cluster, err := kfake.NewCluster(kfake.NumBrokers(1))
	if err != nil {
		return res, err
	}
	defer cluster.Close()
	addr := cluster.ListenAddrs()[0]
	id := strconv.FormatInt(time.Now().UnixNano(), 36)
	topic := "bench-poison-" + id
	if _, err := produceNoop(ctx, addr, topic, NoopConfig{Records: cfg.Records, Partitions: cfg.Partitions, Keys: cfg.Keys, ValueBytes: cfg.ValueBytes, Seed: cfg.Seed}); err != nil {
		return res, err
	}
	// produceNoop writes key k<i%Keys> for record i.
	poisoned := func(key []byte) bool {
		n, err := strconv.Atoi(string(key[1:]))
		return err == nil && n%cfg.PoisonEvery == 0
	}
	for i := range cfg.Records {
		if (i%cfg.Keys)%cfg.PoisonEvery == 0 {
			res.Poisoned++
		}
	}
	others := int64(cfg.Records - res.Poisoned)
	for round := range cfg.Rounds {
		order := []bool{false, true}
		if round%2 == 1 {
			order = []bool{true, false}
		}
		for _, poison := range order {
			group := fmt.Sprintf("bench-poison-%d-%v-%s", round+1, poison, id)
			runtime.GC()
			took, dead, err := poisonRun(ctx, addr, topic, group, cfg, poison, poisoned, others, res.Poisoned)
			if err != nil {
				return res, err
			}
			rate := float64(others) / took.Seconds()
			what := "clean "
			if poison {
				what = "poison"
				res.PoisonRuns = append(res.PoisonRuns, rate)
				res.DeadLettered = dead
			} else {
				res.CleanRuns = append(res.CleanRuns, rate)
			}
			fmt.Fprintf(cfg.Progress, "poison-1pct: round %d %s %s records/s of the other keys (%.3fs)\n",
				round+1, what, groupDigits(rate), took.Seconds())
		}
	}
	res.CleanRate, res.PoisonRate = median(res.CleanRuns), median(res.PoisonRuns)
	return res, nil
}

// poisonRun reads topic in a new group until the other keys' records are
// all applied (the time returned) and, with poison, until every poisoned
// record is dead-lettered.
func poisonRun(ctx context.Context, addr, topic, group string, cfg PoisonConfig, poison bool, poisoned func([]byte) bool, others int64, nPoisoned int) (time.Duration, int, error) {
	var applied atomic.Int64
	reached := make(chan time.Duration, 1)
	var start time.Time
	errPoison := errors.New("poisoned record")
	proc := ordo.ProcessorFunc(func(_ context.Context, r *kgo.Record) error {
		if cfg.Work > 0 {
			time.Sleep(cfg.Work)
		}
		if poisoned(r.Key) {
			if poison {
				return errPoison
			}
			return nil
		}
		if applied.Add(1) == others {
			reached <- time.Since(start)
		}
		return nil
	})
	occ := ordo.Config{
		Brokers:       []string{addr},
		Group:         group,
		Topics:        []string{topic},
		Processor:     proc,
		ProcessorName: "poison-bench",
	}
	if poison {
		occ.Retry = poisonRetry
		if err := createChain(ctx, addr, topic, group, cfg.Partitions, len(poisonRetry.Tiers)); err != nil {
			return 0, 0, err
		}
	}
	if cfg.Work > 0 {
		occ.WorkersPerPartition = poisonWorkers
	}
	cons, err := ordo.New(occ)
	if err != nil {
		return 0, 0, err
	}
	start = time.Now()
	if err := cons.Start(context.WithoutCancel(ctx)); err != nil {
		return 0, 0, err
	}
	defer func() {
		sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 30*time.Second)
		defer cancel()
		_ = cons.Stop(sctx)
	}()
	var took time.Duration
	// No progress for a minute is a failure, with the lanes' state: the
	// bench must not hang.
	tick := time.NewTicker(time.Second)
	defer tick.Stop()
	last, lastAt := int64(-1), time.Now()
	for took == 0 {
		select {
		case took = <-reached:
		case <-ctx.Done():
			return 0, 0, fmt.Errorf("bench: %s applied %d of %d records: %w", group, applied.Load(), others, ctx.Err())
		case <-tick.C:
			if a := applied.Load(); a != last {
				last, lastAt = a, time.Now()
			} else if time.Since(lastAt) > time.Minute {
				return 0, 0, fmt.Errorf("bench: %s applied %d of %d records and made no progress for a minute; lanes: %s", group, a, others, lanesLine(cons))
			}
		}
	}
	if !poison {
		return took, 0, nil
	}
	// Every poisoned record must reach the dead-letter topic (not timed).
	deadline := time.After(2 * time.Minute)
	tick.Reset(10 * time.Millisecond)
	for {
		dead := int(cons.Stats().DeadLettered)
		if dead >= nPoisoned {
			return took, dead, nil
		}
		select {
		case <-tick.C:
		case <-deadline:
			return 0, 0, fmt.Errorf("bench: %s dead-lettered %d of %d poisoned records in 2 minutes; lanes: %s", group, dead, nPoisoned, lanesLine(cons))
		case <-ctx.Done():
			return 0, 0, ctx.Err()
		}
	}
}

// createChain creates the group's retry tiers and dead-letter topic, as
// `ordo topics apply` would.
func createChain(ctx context.Context, addr, topic, group string, partitions, tiers int) error {
	cl, err := kgo.NewClient(kgo.SeedBrokers(addr))
	if err != nil {
		return err
	}
	defer cl.Close()
	names := []string{ordo.DefaultNaming.DLQTopic(topic, group)}
	for n := 1; n <= tiers; n++ {
		names = append(names, ordo.DefaultNaming.RetryTopic(topic, group, n))
	}
	resp, err := kadm.NewClient(cl).CreateTopics(ctx, int32(partitions), 1, nil, names...)
	if err == nil {
		err = resp.Error()
	}
	return err
}

// lanesLine describes the lanes with work left, for an error.
func lanesLine(cons *ordo.Consumer) string {
	var b strings.Builder
	for _, l := range cons.Lanes() {
		if l.InFlight > 0 || l.Paused || l.LagRecords() > 0 {
			fmt.Fprintf(&b, "[%s/%d in-flight %d running %d retrying %d keys %d paused %v %s slow %v span %d watermark %d hw %d blocked %q] ",
				l.Topic, l.Partition, l.InFlight, l.Running, l.WaitingRetry, l.Keys, l.Paused, l.PauseReason, l.Slow, l.Span, l.Watermark, l.HighWatermark, l.Blocked)
		}
	}
	return b.String()
}
