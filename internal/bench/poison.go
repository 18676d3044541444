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
// time from the first record handed to the processor until the last of
// them was applied. The rate over the time from Start (the group join
// included) is reported beside it.
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
	// Exe, if set, is the ordo binary (or one that plays it, as the
	// tests' binary does with Env) that runs the broker in a process of
	// its own (`dev --broker-only`), as a broker is in production: its
	// work and garbage are then not the measured process's. Default: the
	// broker (kfake) runs in the process.
	Exe string
	Env []string
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
	// CleanRate and PoisonRate are the other keys' records per second,
	// from the first record handed to the processor.
	CleanRate, PoisonRate float64
	CleanRuns, PoisonRuns []float64
	// CleanFromStart and PoisonFromStart are the same rates timed from
	// Start: the group join (with the retry tiers' partitions in the
	// poison runs) included.
	CleanFromStart, PoisonFromStart float64
	// CleanSleepMs and PoisonSleepMs are the mean time a call of the
	// source topic's records actually slept (Work; 0 without), medians
	// over the runs: Go's timers wake late, and later the busier the
	// process, so the same processor is slower in the poison runs.
	// AsSleptRatio is PoisonRate/CleanRate scaled by PoisonSleepMs /
	// CleanSleepMs: the calls Ordo fit in the time, what its own
	// scheduling costs.
	CleanSleepMs, PoisonSleepMs, AsSleptRatio float64
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
	var addr string
	if cfg.Exe != "" {
		broker, err := startBrokerChild(ctx, cfg.Exe, cfg.Env)
		if err != nil {
			return res, err
		}
		defer broker.kill()
		addr = broker.addr
		fmt.Fprintf(cfg.Progress, "poison-1pct: broker child (pid %d) on %s\n", broker.cmd.Process.Pid, addr)
	} else {
		cluster, err := kfake.NewCluster(kfake.NumBrokers(1))
		if err != nil {
			return res, err
		}
		defer cluster.Close()
		addr = cluster.ListenAddrs()[0]
	}
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
	var fromStart, sleptMs [2][]float64 // clean, poison
	for round := range cfg.Rounds {
		order := []bool{false, true}
		if round%2 == 1 {
			order = []bool{true, false}
		}
		for _, poison := range order {
			group := fmt.Sprintf("bench-poison-%d-%v-%s", round+1, poison, id)
			runtime.GC()
			run, err := poisonRun(ctx, addr, topic, group, cfg, poison, poisoned, others, res.Poisoned)
			if err != nil {
				return res, err
			}
			rate := float64(others) / run.fromFirst.Seconds()
			sleptMs[b2i(poison)] = append(sleptMs[b2i(poison)], float64(run.meanSleep)/float64(time.Millisecond))
			rateStart := float64(others) / run.fromStart.Seconds()
			what := "clean "
			if poison {
				what = "poison"
				res.PoisonRuns = append(res.PoisonRuns, rate)
				fromStart[1] = append(fromStart[1], rateStart)
				res.DeadLettered = run.dead
			} else {
				res.CleanRuns = append(res.CleanRuns, rate)
				fromStart[0] = append(fromStart[0], rateStart)
			}
			fmt.Fprintf(cfg.Progress, "poison-1pct: round %d %s %s records/s of the other keys (%.3f s from the first record; %.3f s from Start)\n",
				round+1, what, groupDigits(rate), run.fromFirst.Seconds(), run.fromStart.Seconds())
		}
	}
	res.CleanRate, res.PoisonRate = median(res.CleanRuns), median(res.PoisonRuns)
	res.CleanFromStart, res.PoisonFromStart = median(fromStart[0]), median(fromStart[1])
	res.CleanSleepMs, res.PoisonSleepMs = median(sleptMs[0]), median(sleptMs[1])
	if res.CleanSleepMs > 0 && res.CleanRate > 0 {
		res.AsSleptRatio = res.PoisonRate / res.CleanRate * res.PoisonSleepMs / res.CleanSleepMs
	}
	return res, nil
}

// poisonResult is one run: the time until the other keys' records were
// all applied, from Start and from the first record handed to the
// processor, and the records dead-lettered.
type poisonResult struct {
	fromStart, fromFirst time.Duration
	meanSleep            time.Duration // of the source topic's calls
	dead                 int
}

func b2i(b bool) int {
	if b {
		return 1
	}
	return 0
}

// poisonRun reads topic in a new group until the other keys' records are
// all applied and, with poison, until every poisoned record is
// dead-lettered.
func poisonRun(ctx context.Context, addr, topic, group string, cfg PoisonConfig, poison bool, poisoned func([]byte) bool, others int64, nPoisoned int) (poisonResult, error) {
	var applied atomic.Int64
	var first atomic.Int64 // unix ns of the first call
	var slept, calls atomic.Int64
	reached := make(chan time.Time, 1)
	errPoison := errors.New("poisoned record")
	proc := ordo.ProcessorFunc(func(_ context.Context, r *kgo.Record) error {
		if first.Load() == 0 {
			first.CompareAndSwap(0, time.Now().UnixNano())
		}
		if cfg.Work > 0 {
			t0 := time.Now()
			time.Sleep(cfg.Work)
			if r.Topic == topic {
				slept.Add(int64(time.Since(t0)))
				calls.Add(1)
			}
		}
		if poisoned(r.Key) {
			if poison {
				return errPoison
			}
			return nil
		}
		if applied.Add(1) == others {
			reached <- time.Now()
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
			return poisonResult{}, err
		}
	}
	if cfg.Work > 0 {
		occ.WorkersPerPartition = poisonWorkers
	}
	cons, err := ordo.New(occ)
	if err != nil {
		return poisonResult{}, err
	}
	start := time.Now()
	if err := cons.Start(context.WithoutCancel(ctx)); err != nil {
		return poisonResult{}, err
	}
	defer func() {
		sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 30*time.Second)
		defer cancel()
		_ = cons.Stop(sctx)
	}()
	var end time.Time
	// No progress for a minute is a failure, with the lanes' state: the
	// bench must not hang.
	tick := time.NewTicker(time.Second)
	defer tick.Stop()
	last, lastAt := int64(-1), time.Now()
	for end.IsZero() {
		select {
		case end = <-reached:
		case <-ctx.Done():
			return poisonResult{}, fmt.Errorf("bench: %s applied %d of %d records: %w", group, applied.Load(), others, ctx.Err())
		case <-tick.C:
			if a := applied.Load(); a != last {
				last, lastAt = a, time.Now()
			} else if time.Since(lastAt) > time.Minute {
				return poisonResult{}, fmt.Errorf("bench: %s applied %d of %d records and made no progress for a minute; lanes: %s", group, a, others, lanesLine(cons))
			}
		}
	}
	res := poisonResult{fromStart: end.Sub(start), fromFirst: end.Sub(time.Unix(0, first.Load()))}
	if n := calls.Load(); n > 0 {
		res.meanSleep = time.Duration(slept.Load() / n)
	}
	if !poison {
		return res, nil
	}
	// Every poisoned record must reach the dead-letter topic (not timed).
	deadline := time.After(2 * time.Minute)
	tick.Reset(10 * time.Millisecond)
	for {
		dead := int(cons.Stats().DeadLettered)
		if dead >= nPoisoned {
			res.dead = dead
			return res, nil
		}
		select {
		case <-tick.C:
		case <-deadline:
			return poisonResult{}, fmt.Errorf("bench: %s dead-lettered %d of %d poisoned records in 2 minutes; lanes: %s", group, dead, nPoisoned, lanesLine(cons))
		case <-ctx.Done():
			return poisonResult{}, ctx.Err()
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
			fmt.Fprintf(&b, "[%s/%d in-flight %d in the stream %d running %d retrying %d keys %d paused %v %s slow %v span %d watermark %d hw %d blocked %q] ",
				l.Topic, l.Partition, l.InFlight, l.Waiting, l.Running, l.WaitingRetry, l.Keys, l.Paused, l.PauseReason, l.Slow, l.Span, l.Watermark, l.HighWatermark, l.Blocked)
		}
	}
	return b.String()
}
