package bench

import (
	"context"
	"errors"
	"fmt"
	"io"
	"runtime"
	"strconv"
	"sync/atomic"
	"time"

	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/ordokafka/ordo/pkg/ordo"
)

// InProcConfig is the one-process comparison: the broker (kfake), a raw
// franz-go poll loop and Ordo all run in this process, one side at a time.
// Each side joins a new group (the join is timed) and is timed until the
// n-th record reaches its processor, as a user's harness would time it;
// Ordo is also timed until every record is finished and marked. CPU is read
// with getrusage for the whole process around each side, so the broker's
// share is billed to both sides alike.
type InProcConfig struct {
	// Records, Partitions, Keys and ValueBytes shape the topic. Defaults
	// 1,000,000, 12, 10,000 and 100.
	Records, Partitions, Keys, ValueBytes int
	// Rounds is the number of raw/ordo alternations. Default 5.
	Rounds int
	// Seed seeds the values.
	Seed uint64
	// Ordering is Ordo's ordering mode. Default OrderKey.
	Ordering ordo.Ordering
	// Progress receives a line per step. Default: discard.
	Progress io.Writer
}

func (c InProcConfig) withDefaults() InProcConfig {
	if c.Records == 0 {
		c.Records = 1_000_000
	}
	if c.Partitions == 0 {
		c.Partitions = 12
	}
	if c.Keys == 0 {
		c.Keys = 10_000
	}
	if c.ValueBytes == 0 {
		c.ValueBytes = 100
	}
	if c.Rounds == 0 {
		c.Rounds = 5
	}
	if c.Progress == nil {
		c.Progress = io.Discard
	}
	return c
}

// InProcRun is one side's run.
type InProcRun struct {
	Side string
	// Reached is the time from the client's creation to the n-th record
	// reaching the processor; Done, for Ordo, until every record is
	// finished and marked (the raw loop has no such step: Done = Reached).
	Reached, Done time.Duration
	// CPU is user+system CPU of the process (broker included) from the
	// client's creation to Reached.
	CPU time.Duration
}

// InProcResult is what an in-process run measured: medians of each side.
type InProcResult struct {
	Records             int
	Raw, Ordo           []InProcRun
	RawRate, OrdoRate   float64 // records/s to the n-th record reached
	OrdoDoneRate        float64 // records/s to every record marked
	RawCPUPerRecord     time.Duration
	OrdoCPUPerRecord    time.Duration
	RateRatio, CPURatio float64
}

// InProcThroughput runs the one-process comparison.
func InProcThroughput(ctx context.Context, cfg InProcConfig) (InProcResult, error) {
	cfg = cfg.withDefaults()
	res := InProcResult{Records: cfg.Records}
	if cfg.Records < 1 || cfg.Partitions < 1 || cfg.Keys < 1 || cfg.Rounds < 1 {
		return res, errors.New("bench: inproc-throughput: Records, Partitions, Keys and Rounds must be >= 1")
	}
	cluster, err := kfake.NewCluster(kfake.NumBrokers(1))
	if err != nil {
		return res, err
	}
	defer cluster.Close()
	addr := cluster.ListenAddrs()[0]
	id := strconv.FormatInt(time.Now().UnixNano(), 36)
	topic := "bench-inproc-" + id
	took, err := produceNoop(ctx, addr, topic, NoopConfig{Records: cfg.Records, Partitions: cfg.Partitions, Keys: cfg.Keys, ValueBytes: cfg.ValueBytes, Seed: cfg.Seed})
	if err != nil {
		return res, err
	}
	fmt.Fprintf(cfg.Progress, "inproc-throughput: produced %s records in %.2fs\n", groupDigits(float64(cfg.Records)), took.Seconds())
	for round := range cfg.Rounds {
		sides := []string{SideRaw, SideOrdo}
		if round%2 == 1 {
			sides = []string{SideOrdo, SideRaw}
		}
		for _, side := range sides {
			group := fmt.Sprintf("bench-inproc-%s-%d-%s", side, round+1, id)
			runtime.GC()
			var run InProcRun
			if side == SideRaw {
				run, err = inprocRaw(ctx, addr, topic, group, int64(cfg.Records))
			} else {
				run, err = inprocOrdo(ctx, addr, topic, group, int64(cfg.Records), cfg.Ordering)
			}
			if err != nil {
				return res, err
			}
			fmt.Fprintf(cfg.Progress, "inproc-throughput: round %d %-4s %s records/s to the last record reached (%.3fs), done %.3fs, CPU %.0f ns/record\n",
				round+1, side, groupDigits(float64(cfg.Records)/run.Reached.Seconds()), run.Reached.Seconds(), run.Done.Seconds(),
				float64(run.CPU.Nanoseconds())/float64(cfg.Records))
			if side == SideRaw {
				res.Raw = append(res.Raw, run)
			} else {
				res.Ordo = append(res.Ordo, run)
			}
		}
	}
	rate := func(runs []InProcRun, done bool) float64 {
		v := make([]float64, len(runs))
		for i, r := range runs {
			d := r.Reached
			if done {
				d = r.Done
			}
			v[i] = float64(cfg.Records) / d.Seconds()
		}
		return median(v)
	}
	cpu := func(runs []InProcRun) time.Duration {
		v := make([]float64, len(runs))
		for i, r := range runs {
			v[i] = float64(r.CPU) / float64(cfg.Records)
		}
		return time.Duration(median(v))
	}
	res.RawRate, res.OrdoRate, res.OrdoDoneRate = rate(res.Raw, false), rate(res.Ordo, false), rate(res.Ordo, true)
	res.RawCPUPerRecord, res.OrdoCPUPerRecord = cpu(res.Raw), cpu(res.Ordo)
	res.RateRatio = ratio(res.OrdoRate, res.RawRate)
	res.CPURatio = ratio(float64(res.OrdoCPUPerRecord), float64(res.RawCPUPerRecord))
	return res, nil
}

func inprocRaw(ctx context.Context, addr, topic, group string, n int64) (InProcRun, error) {
	cpu0 := processCPU()
	start := time.Now()
	cl, err := kgo.NewClient(kgo.SeedBrokers(addr), kgo.ConsumerGroup(group), kgo.ConsumeTopics(topic))
	if err != nil {
		return InProcRun{}, err
	}
	defer cl.Close()
	var seen int64
	noop := func(*kgo.Record) { seen++ }
	for seen < n {
		fetches := cl.PollRecords(ctx, 10000)
		if ctx.Err() != nil {
			return InProcRun{}, fmt.Errorf("bench: raw side saw %d of %d records: %w", seen, n, ctx.Err())
		}
		fetches.EachRecord(noop)
	}
	reached := time.Since(start)
	return InProcRun{Side: SideRaw, Reached: reached, Done: reached, CPU: processCPU() - cpu0}, nil
}

func inprocOrdo(ctx context.Context, addr, topic, group string, n int64, ordering ordo.Ordering) (InProcRun, error) {
	var seen atomic.Int64
	reachedCh := make(chan time.Duration, 1)
	var cpuAtReach atomic.Int64
	var start time.Time
	cpu0 := processCPU()
	proc := ordo.ProcessorFunc(func(context.Context, *kgo.Record) error {
		if seen.Add(1) == n {
			cpuAtReach.Store(int64(processCPU() - cpu0))
			reachedCh <- time.Since(start)
		}
		return nil
	})
	cons, err := ordo.New(ordo.Config{
		Brokers:       []string{addr},
		Group:         group,
		Topics:        []string{topic},
		Processor:     proc,
		ProcessorName: "noop",
		Ordering:      ordering,
	})
	if err != nil {
		return InProcRun{}, err
	}
	start = time.Now()
	if err := cons.Start(context.WithoutCancel(ctx)); err != nil {
		return InProcRun{}, err
	}
	defer func() {
		sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 30*time.Second)
		defer cancel()
		_ = cons.Stop(sctx)
	}()
	var run InProcRun
	select {
	case run.Reached = <-reachedCh:
	case <-ctx.Done():
		return InProcRun{}, fmt.Errorf("bench: ordo side saw %d of %d records: %w", seen.Load(), n, ctx.Err())
	}
	run.Side = SideOrdo
	run.CPU = time.Duration(cpuAtReach.Load())
	tick := time.NewTicker(time.Millisecond)
	defer tick.Stop()
	for {
		var marked int64
		for _, l := range cons.Lanes() {
			if l.Watermark > 0 {
				marked += l.Watermark
			}
		}
		if marked >= n {
			run.Done = time.Since(start)
			return run, nil
		}
		select {
		case <-tick.C:
		case <-ctx.Done():
			return InProcRun{}, fmt.Errorf("bench: ordo side marked %d of %d records: %w", marked, n, ctx.Err())
		}
	}
}
