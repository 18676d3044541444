package bench

import (
	"context"
	"errors"
	"fmt"
	"os"
	"runtime/pprof"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/ordokafka/ordo/pkg/ordo"
)

// Sides of the noop-throughput comparison.
const (
	SideRaw  = "raw"  // a franz-go consumer-group poll loop
	SideOrdo = "ordo" // an Ordo consumer with key ordering and a no-op processor
)

// WorkerConfig is one side of the noop-throughput comparison, run in its own
// process by `ordo bench worker` so that its peak memory is its own.
type WorkerConfig struct {
	Side    string
	Brokers []string
	Topic   string
	// Group must be new: both sides start at the beginning of the topic.
	Group string
	// Records is the number of records to consume before stopping.
	Records int64
	// CPUProfile, if set, is a file to write a CPU profile of the measured
	// part to.
	CPUProfile string
}

// WorkerResult is the JSON line a worker prints.
type WorkerResult struct {
	Side string `json:"side"`
	// ElapsedS runs from the client's creation (kgo.NewClient, or Ordo's
	// Start) to the last record seen (raw) or processed (Ordo).
	ElapsedS float64 `json:"elapsed_s"`
	Records  int64   `json:"records"`
	// MaxRSSBytes is the peak resident set size of the worker process's own
	// memory image (VmHWM on Linux).
	MaxRSSBytes int64 `json:"max_rss_bytes"`
	// RusageMaxRSSBytes is getrusage's ru_maxrss. On Linux it includes the
	// peak of the parent that spawned the worker (see rusageMaxRSS), so it
	// is reported but not used.
	RusageMaxRSSBytes int64 `json:"rusage_maxrss_bytes"`
	// CPUS is the user and system CPU the worker process used over
	// ElapsedS (getrusage): the broker runs in another process.
	CPUS float64 `json:"cpu_s"`
}

// RecordsPerSecond is the side's throughput.
func (r WorkerResult) RecordsPerSecond() float64 {
	if r.ElapsedS <= 0 {
		return 0
	}
	return float64(r.Records) / r.ElapsedS
}

// Validate reports what is wrong with cfg.
func (cfg WorkerConfig) Validate() error {
	var errs []error
	if cfg.Side != SideRaw && cfg.Side != SideOrdo {
		errs = append(errs, fmt.Errorf("side must be %q or %q, got %q", SideRaw, SideOrdo, cfg.Side))
	}
	if len(cfg.Brokers) == 0 {
		errs = append(errs, errors.New("brokers are required"))
	}
	if cfg.Topic == "" {
		errs = append(errs, errors.New("topic is required"))
	}
	if cfg.Group == "" {
		errs = append(errs, errors.New("group is required"))
	}
	if cfg.Records < 1 {
		errs = append(errs, fmt.Errorf("records must be >= 1, got %d", cfg.Records))
	}
	return errors.Join(errs...)
}

// RunWorker consumes cfg.Records records on one side and reports how long it
// took. The peak RSS it reports is the whole process's.
func RunWorker(ctx context.Context, cfg WorkerConfig) (WorkerResult, error) {
	if err := cfg.Validate(); err != nil {
		return WorkerResult{}, fmt.Errorf("bench: worker: %w", err)
	}
	if cfg.CPUProfile != "" {
		f, err := os.Create(cfg.CPUProfile) //nolint:gosec // the profile path the user asked for
		if err != nil {
			return WorkerResult{}, err
		}
		defer f.Close()
		if err := pprof.StartCPUProfile(f); err != nil {
			return WorkerResult{}, err
		}
		defer pprof.StopCPUProfile()
	}
	var (
		res WorkerResult
		err error
	)
	cpu0 := processCPU()
	switch cfg.Side {
	case SideRaw:
		res, err = runRaw(ctx, cfg)
	case SideOrdo:
		res, err = runOrdo(ctx, cfg)
	}
	res.Side = cfg.Side
	if res.CPUS == 0 {
		res.CPUS = (processCPU() - cpu0).Seconds()
	}
	res.MaxRSSBytes = maxRSS()
	res.RusageMaxRSSBytes = rusageMaxRSS()
	return res, err
}

func runRaw(ctx context.Context, cfg WorkerConfig) (WorkerResult, error) {
	cpu0 := processCPU()
	start := time.Now()
	cl, err := kgo.NewClient(
		kgo.SeedBrokers(cfg.Brokers...),
		kgo.ConsumerGroup(cfg.Group),
		kgo.ConsumeTopics(cfg.Topic),
	)
	if err != nil {
		return WorkerResult{}, err
	}
	defer cl.Close()
	var seen int64
	noop := func(*kgo.Record) { seen++ }
	for seen < cfg.Records {
		fetches := cl.PollRecords(ctx, 10000)
		if ctx.Err() != nil {
			return WorkerResult{Records: seen}, fmt.Errorf("bench: raw side saw %d of %d records: %w", seen, cfg.Records, ctx.Err())
		}
		if fetches.IsClientClosed() {
			return WorkerResult{Records: seen}, fmt.Errorf("bench: raw side saw %d of %d records: client closed", seen, cfg.Records)
		}
		fetches.EachRecord(noop)
	}
	elapsed := time.Since(start)
	return WorkerResult{ElapsedS: elapsed.Seconds(), Records: seen, CPUS: (processCPU() - cpu0).Seconds()}, nil
}

func runOrdo(ctx context.Context, cfg WorkerConfig) (WorkerResult, error) {
	// A true no-op processor: completion is read from the lanes' watermarks
	// (records finished and marked), polled every millisecond, so the
	// measurement adds no shared counter to the data path and little else
	// (the end time is known to 1 ms in a run of about 0.7 s).
	proc := ordo.ProcessorFunc(func(context.Context, *kgo.Record) error { return nil })
	cons, err := ordo.New(ordo.Config{
		Brokers:       cfg.Brokers,
		Group:         cfg.Group,
		Topics:        []string{cfg.Topic},
		Processor:     proc,
		ProcessorName: "noop",
	})
	if err != nil {
		return WorkerResult{}, err
	}
	marked := func() int64 {
		var sum int64
		for _, l := range cons.Lanes() {
			if l.Watermark > 0 {
				sum += l.Watermark // the topic starts at offset 0
			}
		}
		return sum
	}
	cpu0 := processCPU()
	var cpu time.Duration
	start := time.Now()
	if err := cons.Start(context.WithoutCancel(ctx)); err != nil { // stopped below, with a drain
		return WorkerResult{}, err
	}
	var waitErr error
	var elapsed time.Duration
	tick := time.NewTicker(time.Millisecond)
	for elapsed == 0 && waitErr == nil {
		select {
		case <-tick.C:
			if marked() >= cfg.Records {
				elapsed = time.Since(start)
				cpu = processCPU() - cpu0
			}
		case <-ctx.Done():
			waitErr = fmt.Errorf("bench: ordo side marked %d of %d records: %w", marked(), cfg.Records, ctx.Err())
		}
	}
	tick.Stop()
	n := marked()
	sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 30*time.Second) // drain even if ctx ended
	defer cancel()
	stopErr := cons.Stop(sctx)
	if waitErr != nil {
		return WorkerResult{Records: n}, errors.Join(waitErr, stopErr)
	}
	return WorkerResult{ElapsedS: elapsed.Seconds(), Records: n, CPUS: cpu.Seconds()}, stopErr
}
