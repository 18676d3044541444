// Package bench measures Ordo side by side with what it should be compared
// to, in one run: `ordo bench` is its command line.
//
// Scenarios:
//
//   - noop-throughput: Ordo with key ordering and a no-op processor against a
//     raw franz-go consumer-group poll loop, on the same records of a broker
//     in another process, each side in its own process (so that its peak RSS
//     and its garbage collection are its own), alternated, median of each.
//     value is Ordo's records/s, baseline raw franz-go's.
//   - inproc-throughput: the same comparison in one process, as a user's
//     harness would run it: the broker (kfake), a raw franz-go poll loop and
//     Ordo in this process, one side at a time, each joining a new group
//     (the join is timed), timed until the last record reaches the
//     processor; CPU per record from getrusage around each side (the
//     broker's share is billed to both alike). value is Ordo's records/s,
//     baseline raw franz-go's.
//   - pc-volume-*: Confluent Parallel Consumer's published volume test:
//     records on one partition, each taking a random 0-5 ms, concurrency 100,
//     in key order (with 1 to 10,000 keys), partition order and no order.
//     value is the measured time in seconds, baseline the limit no scheduler
//     can beat, computed from the durations actually drawn.
package bench

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"os"
	"slices"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"golang.org/x/text/language"
	"golang.org/x/text/message"

	"github.com/ordokafka/ordo/pkg/devbroker"
	"github.com/ordokafka/ordo/pkg/ordo"
)

// Scenario names.
const (
	ScenarioNoop        = "noop-throughput"
	ScenarioInProc      = "inproc-throughput"
	ScenarioPCKey1      = "pc-volume-key-1"
	ScenarioPCKey10     = "pc-volume-key-10"
	ScenarioPCKey100    = "pc-volume-key-100"
	ScenarioPCKey1000   = "pc-volume-key-1000"
	ScenarioPCKey10000  = "pc-volume-key-10000"
	ScenarioPCPartition = "pc-volume-partition"
	ScenarioPCUnordered = "pc-volume-unordered"
	// ScenarioRedisLedger and ScenarioPostgresInbox need a service (see
	// RedisAddrVar, PostgresDSNVar); without it they are skipped, noted.
	ScenarioRedisLedger = "redis-ledger"
	// ScenarioPoison and ScenarioPoisonNoop: the other keys' rate with 1%
	// of the keys failing through the whole retry chain, against the same
	// run without poison; ScenarioTierIdle: the CPU of a consumer holding
	// 100,000 records in a 5-minute retry tier.
	ScenarioPoison        = "poison-1pct"
	ScenarioPoisonApart   = "poison-1pct-apart" // poison-1pct with the broker in its own process
	ScenarioPoisonNoop    = "poison-1pct-noop"
	ScenarioTierIdle      = "tier-idle"
	ScenarioPostgresInbox = "postgres-inbox"
)

// Sizes of the full and the quick (--quick) run, and the volume test's
// fixed parameters.
const (
	defaultNoopRecords = 1_000_000
	defaultNoopRounds  = 5
	defaultPCRecords   = 10_000
	quickNoopRecords   = 100_000
	quickNoopRounds    = 1
	quickPCRecords     = 1000

	defaultPoisonRecords = 1_000_000
	// The poison scenarios compare two runs of about two seconds whose
	// 1 ms calls wake late by a varying amount on a small machine: clean
	// against clean (16 rounds on a 2-core VM, resampled), a median of 5
	// rounds spread 0.975-1.018x (5th-95th percentile), as wide as the
	// margin it checks, and a median of 9 spread 0.987-1.011x.
	defaultPoisonRounds    = 9
	quickPoisonRecords     = 50_000
	defaultTierIdleRecords = 100_000
	quickTierIdleRecords   = 10_000
	poisonWork             = time.Millisecond
	poisonWorkers          = 16
	quickStoreRecords      = 20_000

	pcConcurrency      = 100
	pcMaxWork          = 5 * time.Millisecond
	pcPublishedRecords = 10_000 // the size of Parallel Consumer's published runs
	pcDescription      = "concurrency 100, 0-5 ms per record, 1 partition"

	unitRecordsPerSecond = "records/s"
	unitSeconds          = "s"
)

type pcScenario struct {
	ordering ordo.Ordering
	keys     int
	// published is Parallel Consumer's published time for 10,000 records,
	// in seconds; 0 where it published none.
	published float64
}

var pcScenarios = map[string]pcScenario{
	ScenarioPCKey1:      {ordering: ordo.OrderKey, keys: 1},
	ScenarioPCKey10:     {ordering: ordo.OrderKey, keys: 10},
	ScenarioPCKey100:    {ordering: ordo.OrderKey, keys: 100},
	ScenarioPCKey1000:   {ordering: ordo.OrderKey, keys: 1000, published: 2.056},
	ScenarioPCKey10000:  {ordering: ordo.OrderKey, keys: 10000},
	ScenarioPCPartition: {ordering: ordo.OrderPartition, published: 22.2},
	ScenarioPCUnordered: {ordering: ordo.OrderUnordered, published: 2.83},
}

// Names returns every scenario, in the order they run.
func Names() []string {
	return []string{ScenarioNoop, ScenarioInProc, ScenarioPCKey1, ScenarioPCKey10, ScenarioPCKey100, ScenarioPCKey1000,
		ScenarioPCKey10000, ScenarioPCPartition, ScenarioPCUnordered, ScenarioPoison, ScenarioPoisonApart, ScenarioPoisonNoop, ScenarioTierIdle,
		ScenarioRedisLedger, ScenarioPostgresInbox}
}

// Select returns the scenarios that a comma-separated list of name prefixes
// selects, in run order; an empty list selects all. An item that is a full
// name selects only that scenario (pc-volume-key-1 is not pc-volume-key-10).
// An item that selects nothing is an error.
func Select(spec string) ([]string, error) {
	all := Names()
	if strings.TrimSpace(spec) == "" {
		return all, nil
	}
	want := map[string]bool{}
	var unknown []string
	for _, p := range strings.Split(spec, ",") {
		p = strings.TrimSpace(p)
		if p == "" {
			continue
		}
		found := false
		for _, n := range all {
			if n == p { // a full name selects only itself: key-1 is not key-10
				want[n], found = true, true
				break
			}
		}
		for _, n := range all {
			if !found && strings.HasPrefix(n, p) {
				want[n] = true
			}
		}
		if !found {
			found = slices.ContainsFunc(all, func(n string) bool { return strings.HasPrefix(n, p) })
		}
		if !found {
			unknown = append(unknown, strconv.Quote(p))
		}
	}
	if len(unknown) > 0 {
		return nil, fmt.Errorf("no scenario starts with %s (have: %s)", strings.Join(unknown, ", "), strings.Join(all, ", "))
	}
	if len(want) == 0 {
		return nil, errors.New("no scenario selected")
	}
	var out []string
	for _, n := range all {
		if want[n] {
			out = append(out, n)
		}
	}
	return out, nil
}

// Options configure a Run.
type Options struct {
	// Scenarios to run, by full name, in any order. Empty: all.
	Scenarios []string
	// Quick makes every scenario small, for a CI smoke run: 100,000 records
	// and one alternation for noop-throughput, 1,000 records for pc-volume.
	Quick bool
	// Seed seeds every random choice (durations, keys, values).
	Seed uint64
	// NoopRecords, Rounds, PCRecords and StoreRecords override the sizes
	// (0: the default of the mode).
	NoopRecords, Rounds, PCRecords, StoreRecords int
	// PoisonRecords overrides the size of poison-1pct-noop (poison-1pct
	// reads a fifth of it) and of tier-idle.
	PoisonRecords int
	// Exe and Env are the ordo binary that runs the children of
	// noop-throughput and the environment added for them. Default: this
	// executable.
	Exe string
	Env []string
	// CPUProfile, if set, is a path prefix for CPU profiles of the
	// noop-throughput children: PREFIX.<side>.<round>.pprof.
	CPUProfile string
	// Progress receives a line per step. Default: discard.
	Progress io.Writer
}

// Result is one scenario's outcome. The first five fields are the contract
// of `ordo bench --out`; the others add detail.
type Result struct {
	Name     string  `json:"name"`
	Value    float64 `json:"value"`
	Baseline float64 `json:"baseline"`
	Ratio    float64 `json:"ratio"`
	Unit     string  `json:"unit"`

	Detail  string `json:"detail,omitempty"`
	Records int    `json:"records,omitempty"`

	// noop-throughput and inproc-throughput: CPU per record of each side
	// (medians) and their ratio, the other half of the target.
	OrdoCPUNs float64 `json:"ordo_cpu_ns_per_record,omitempty"`
	RawCPUNs  float64 `json:"raw_cpu_ns_per_record,omitempty"`
	CPURatio  float64 `json:"cpu_ratio,omitempty"`
	// inproc-throughput: Ordo's rate until every record is finished and
	// marked (value is until the last one reached the processor).
	OrdoDoneRate float64 `json:"ordo_done_records_per_s,omitempty"`

	// noop-throughput: the sides' peak RSS (the highest of their runs) and
	// each run's records/s.
	OrdoRSSMiB  float64   `json:"ordo_rss_mib,omitempty"`
	RawRSSMiB   float64   `json:"raw_rss_mib,omitempty"`
	OrdoRuns    []float64 `json:"ordo_runs,omitempty"`
	RawRuns     []float64 `json:"raw_runs,omitempty"`
	ProduceRate float64   `json:"produce_records_per_s,omitempty"`

	// pc-volume: the two terms of the limit, the time to the last
	// processor return, Parallel Consumer's published time (10,000 records
	// only) and the order check.
	LimitParallelS float64 `json:"limit_parallel_s,omitempty"`
	LimitSerialS   float64 `json:"limit_serial_s,omitempty"`
	ProcessedS     float64 `json:"processed_s,omitempty"`
	// The limit recomputed from the times the timers actually slept (Go's
	// timers fire late), the mean lateness per record, and value divided
	// by that limit: the overhead that is Ordo's own.
	SleptLimitS     float64  `json:"slept_limit_s,omitempty"`
	TimerLateMeanMs float64  `json:"timer_late_mean_ms,omitempty"`
	SleptRatio      float64  `json:"slept_ratio,omitempty"`
	PublishedS      *float64 `json:"published_s,omitempty"`
	// poison-1pct: the poisoned records (each dead-lettered), and the
	// ratio of the rates timed from Start (the group join included)
	// rather than from the first record.
	// With a processor that sleeps: the mean time its calls slept in each
	// side's runs, and the ratio scaled by them (as pc-volume's limit as
	// slept): Ordo's own share of the difference.
	Poisoned       int     `json:"poisoned_records,omitempty"`
	FromStartRatio float64 `json:"from_start_ratio,omitempty"`
	CleanSleepMs   float64 `json:"clean_mean_sleep_ms,omitempty"`
	PoisonSleepMs  float64 `json:"poison_mean_sleep_ms,omitempty"`
	AsSleptRatio   float64 `json:"as_slept_ratio,omitempty"`
	// tier-idle: goroutines with the records waiting and with none, and
	// the heap in use.
	Goroutines     int     `json:"goroutines,omitempty"`
	IdleGoroutines int     `json:"idle_goroutines,omitempty"`
	HeapMiB        float64 `json:"heap_mib,omitempty"`
	Held           int     `json:"held_records,omitempty"` // of Records, in memory
	Violations     *int64  `json:"order_violations,omitempty"`

	// redis-ledger and postgres-inbox: a write's latency during Ordo's
	// runs, and (redis) of one write alone, by hand and through the store.
	WriteP50Us   float64 `json:"write_p50_us,omitempty"`
	WriteP99Us   float64 `json:"write_p99_us,omitempty"`
	DirectRTTUs  float64 `json:"direct_rtt_us,omitempty"`
	WriteAloneUs float64 `json:"write_alone_us,omitempty"`
	// Skipped says why a scenario did not run (its service is not set).
	Skipped string `json:"skipped,omitempty"`
}

// Report is the output of a Run, shaped as `ordo bench --out` writes it.
type Report struct {
	Scenarios []Result `json:"scenarios"`
}

func ratio(value, baseline float64) float64 {
	if baseline == 0 || math.IsNaN(value) || math.IsInf(value, 0) {
		return 0
	}
	return value / baseline
}

// Run runs the selected scenarios one after the other. It returns the
// results of the scenarios that completed and the errors of those that did
// not; it stops early only when ctx ends.
func Run(ctx context.Context, opts Options) (Report, error) {
	if opts.Progress == nil {
		opts.Progress = io.Discard
	}
	names := opts.Scenarios
	if len(names) == 0 {
		names = Names()
	}
	want := map[string]bool{}
	for _, n := range names {
		if !slices.Contains(Names(), n) {
			return Report{}, fmt.Errorf("bench: unknown scenario %q", n)
		}
		want[n] = true
	}
	rep := Report{Scenarios: []Result{}}
	var errs []error
	var pcBroker *devbroker.Broker
	defer func() {
		if pcBroker != nil {
			pcBroker.Close()
		}
	}()
	for _, name := range Names() {
		if !want[name] {
			continue
		}
		if ctx.Err() != nil {
			errs = append(errs, ctx.Err())
			break
		}
		var (
			r   Result
			err error
		)
		switch name {
		case ScenarioNoop:
			r, err = runNoop(ctx, opts)
		case ScenarioInProc:
			r, err = runInProc(ctx, opts)
		case ScenarioPoison, ScenarioPoisonApart, ScenarioPoisonNoop:
			r, err = runPoison(ctx, opts, name)
		case ScenarioTierIdle:
			r, err = runTierIdle(ctx, opts)
		case ScenarioRedisLedger:
			r, err = runRedisLedger(ctx, opts)
		case ScenarioPostgresInbox:
			r, err = runPostgresInbox(ctx, opts)
		default:
			if pcBroker == nil {
				if pcBroker, err = devbroker.Start(devbroker.Options{Addr: "127.0.0.1:0"}); err != nil {
					errs = append(errs, err)
					break
				}
			}
			r, err = runPC(ctx, opts, name, pcBroker.Addr())
		}
		if err != nil {
			errs = append(errs, fmt.Errorf("%s: %w", name, err))
			fmt.Fprintf(opts.Progress, "%s: FAILED: %v\n", name, err)
			continue
		}
		rep.Scenarios = append(rep.Scenarios, r)
	}
	return rep, errors.Join(errs...)
}

func pick(override, quick, full int, isQuick bool) int {
	switch {
	case override > 0:
		return override
	case isQuick:
		return quick
	}
	return full
}

func runNoop(ctx context.Context, opts Options) (Result, error) {
	cfg := NoopConfig{
		Exe:        opts.Exe,
		Env:        opts.Env,
		Records:    pick(opts.NoopRecords, quickNoopRecords, defaultNoopRecords, opts.Quick),
		Rounds:     pick(opts.Rounds, quickNoopRounds, defaultNoopRounds, opts.Quick),
		Seed:       opts.Seed,
		CPUProfile: opts.CPUProfile,
		Progress:   opts.Progress,
	}
	nr, err := NoopThroughput(ctx, cfg)
	if err != nil {
		return Result{}, err
	}
	cfg = cfg.withDefaults()
	r := Result{
		Name:        ScenarioNoop,
		Value:       nr.OrdoRate,
		Baseline:    nr.RawRate,
		Ratio:       ratio(nr.OrdoRate, nr.RawRate),
		Unit:        unitRecordsPerSecond,
		Records:     nr.Records,
		OrdoRSSMiB:  math.Round(mib(nr.OrdoRSS)*10) / 10,
		RawRSSMiB:   math.Round(mib(nr.RawRSS)*10) / 10,
		ProduceRate: math.Round(nr.ProduceRate),
		Detail: fmt.Sprintf("ordo (key order, no-op processor) vs raw franz-go poll loop; median of %d runs per side, alternated; "+
			"%d partitions, %d keys, %d-byte values; broker and each side in its own process",
			cfg.Rounds, cfg.Partitions, cfg.Keys, cfg.ValueBytes),
	}
	r.OrdoCPUNs, r.RawCPUNs = float64(nr.OrdoCPU.Nanoseconds()), float64(nr.RawCPU.Nanoseconds())
	r.CPURatio = math.Round(ratio(r.OrdoCPUNs, r.RawCPUNs)*1000) / 1000
	for _, w := range nr.Ordo {
		r.OrdoRuns = append(r.OrdoRuns, math.Round(w.RecordsPerSecond()))
	}
	for _, w := range nr.Raw {
		r.RawRuns = append(r.RawRuns, math.Round(w.RecordsPerSecond()))
	}
	return r, nil
}

func runInProc(ctx context.Context, opts Options) (Result, error) {
	cfg := InProcConfig{
		Records:  pick(opts.NoopRecords, quickNoopRecords, defaultNoopRecords, opts.Quick),
		Rounds:   pick(opts.Rounds, quickNoopRounds, defaultNoopRounds, opts.Quick),
		Seed:     opts.Seed,
		Progress: opts.Progress,
	}
	ir, err := InProcThroughput(ctx, cfg)
	if err != nil {
		return Result{}, err
	}
	cfg = cfg.withDefaults()
	r := Result{
		Name:         ScenarioInProc,
		Value:        ir.OrdoRate,
		Baseline:     ir.RawRate,
		Ratio:        ratio(ir.OrdoRate, ir.RawRate),
		Unit:         unitRecordsPerSecond,
		Records:      ir.Records,
		OrdoCPUNs:    float64(ir.OrdoCPUPerRecord.Nanoseconds()),
		RawCPUNs:     float64(ir.RawCPUPerRecord.Nanoseconds()),
		CPURatio:     math.Round(ir.CPURatio*1000) / 1000,
		OrdoDoneRate: math.Round(ir.OrdoDoneRate),
		Detail: fmt.Sprintf("ordo (key order, no-op processor counting with an atomic) vs raw franz-go poll loop, in one process with the broker (kfake); "+
			"group join included, timed to the last record reaching the processor; median of %d runs per side, alternated; %d partitions, %d keys, %d-byte values",
			cfg.Rounds, cfg.Partitions, cfg.Keys, cfg.ValueBytes),
	}
	for _, run := range ir.Ordo {
		r.OrdoRuns = append(r.OrdoRuns, math.Round(float64(ir.Records)/run.Reached.Seconds()))
	}
	for _, run := range ir.Raw {
		r.RawRuns = append(r.RawRuns, math.Round(float64(ir.Records)/run.Reached.Seconds()))
	}
	return r, nil
}

func runPC(ctx context.Context, opts Options, name, broker string) (Result, error) {
	sc := pcScenarios[name]
	records := pick(opts.PCRecords, quickPCRecords, defaultPCRecords, opts.Quick)
	pr, err := PCVolume(ctx, PCVolumeConfig{
		Brokers:     []string{broker},
		Topic:       fmt.Sprintf("bench-%s-%d", name, time.Now().UnixNano()),
		Records:     records,
		Ordering:    sc.ordering,
		Keys:        sc.keys,
		Concurrency: pcConcurrency,
		MaxWork:     pcMaxWork,
		Seed:        opts.Seed,
	})
	if err != nil {
		return Result{}, err
	}
	if pr.Violations != 0 {
		return Result{}, fmt.Errorf("%d records started while an earlier record of their %s was running", pr.Violations, sc.ordering)
	}
	lim := pr.Limit
	r := Result{
		Name:           name,
		Value:          pr.Elapsed.Seconds(),
		Baseline:       lim.Value.Seconds(),
		Ratio:          ratio(pr.Elapsed.Seconds(), lim.Value.Seconds()),
		Unit:           unitSeconds,
		Records:        records,
		LimitParallelS: lim.Parallel.Seconds(),
		LimitSerialS:   lim.Serial.Seconds(),
		ProcessedS:     pr.Processed.Seconds(),
		Violations:     &pr.Violations,
		SleptLimitS:    pr.Slept.Value.Seconds(),
		SleptRatio:     ratio(pr.Elapsed.Seconds(), pr.Slept.Value.Seconds()),
	}
	if records > 0 {
		r.TimerLateMeanMs = float64(pr.Slept.Sum-lim.Sum) / float64(records) / float64(time.Millisecond)
	}
	var binding string
	switch {
	case lim.Parallel >= lim.Serial:
		binding = fmt.Sprintf("limit = sum/%d = %.3f s", pcConcurrency, lim.Parallel.Seconds())
	case sc.ordering == ordo.OrderKey:
		binding = fmt.Sprintf("limit = serial sum of key %s = %.3f s (sum/%d = %.3f s)", lim.SerialKey, lim.Serial.Seconds(), pcConcurrency, lim.Parallel.Seconds())
	case sc.ordering == ordo.OrderPartition:
		binding = fmt.Sprintf("limit = serial sum = %.3f s", lim.Serial.Seconds())
	default:
		binding = fmt.Sprintf("limit = longest record = %.3f s (sum/%d = %.3f s)", lim.Serial.Seconds(), pcConcurrency, lim.Parallel.Seconds())
	}
	order := sc.ordering.String() + " order"
	if sc.keys > 0 {
		order += fmt.Sprintf(" with %d keys", sc.keys)
	}
	r.Detail = fmt.Sprintf("%s, %d records, %s; %s; last processor return at %.3f s; "+
		"timers fired %.2f ms late on average, limit with the times slept %.3f s (%.2fx)",
		order, records, pcDescription, binding, pr.Processed.Seconds(),
		r.TimerLateMeanMs, r.SleptLimitS, r.SleptRatio)
	if sc.published > 0 && records == pcPublishedRecords {
		p := sc.published
		r.PublishedS = &p
		r.Detail += fmt.Sprintf("; Parallel Consumer published %g s (ordo/PC %.2fx)", p, r.Value/p)
	}
	fmt.Fprintf(opts.Progress, "%s: %.3f s (limit %.3f s, %.2fx; as slept %.3f s, %.2fx)\n",
		name, r.Value, r.Baseline, r.Ratio, r.SleptLimitS, r.SleptRatio)
	return r, nil
}

func runPoison(ctx context.Context, opts Options, name string) (Result, error) {
	cfg := PoisonConfig{
		Records:  pick(opts.PoisonRecords, quickPoisonRecords, defaultPoisonRecords, opts.Quick),
		Rounds:   pick(opts.Rounds, quickNoopRounds, defaultPoisonRounds, opts.Quick),
		Seed:     opts.Seed,
		Progress: opts.Progress,
	}
	what := "a no-op processor"
	if name == ScenarioPoison || name == ScenarioPoisonApart {
		cfg.Work = poisonWork
		cfg.Records /= 5 // the calls take time: a run of about two seconds
		what = fmt.Sprintf("a processor whose calls take %s (a sink's round trip), %d workers per partition", poisonWork, poisonWorkers)
	}
	where := "broker (kfake) in the process"
	if name == ScenarioPoisonApart {
		cfg.Exe, cfg.Env = opts.Exe, opts.Env
		if cfg.Exe == "" {
			exe, err := os.Executable()
			if err != nil {
				return Result{}, fmt.Errorf("bench: finding the ordo executable: %w", err)
			}
			cfg.Exe = exe
		}
		where = "broker (ordo dev --broker-only) in a process of its own"
	}
	pr, err := PoisonThroughput(ctx, cfg)
	if err != nil {
		return Result{}, err
	}
	cfg = cfg.withDefaults()
	r := Result{
		Name:           name,
		Value:          pr.PoisonRate,
		Baseline:       pr.CleanRate,
		Ratio:          ratio(pr.PoisonRate, pr.CleanRate),
		Unit:           unitRecordsPerSecond,
		Records:        pr.Records,
		Poisoned:       pr.Poisoned,
		FromStartRatio: ratio(pr.PoisonFromStart, pr.CleanFromStart),
		CleanSleepMs:   pr.CleanSleepMs,
		PoisonSleepMs:  pr.PoisonSleepMs,
		AsSleptRatio:   pr.AsSleptRatio,
		OrdoRuns:       roundAll(pr.PoisonRuns),
		RawRuns:        roundAll(pr.CleanRuns),
		Detail: fmt.Sprintf("records/s of the keys that do not fail (from the first record handed to the processor to the last of theirs applied), with every record of 1 key in %d failing every call through the whole chain "+
			"(%d calls in place, tiers %v, then the dead-letter topic), against the same topic read clean by a new group; %s; "+
			"%d partitions, %d keys; %s; median of %d runs each, alternated",
			cfg.PoisonEvery, poisonRetry.MaxAttempts, poisonRetry.Tiers, what, cfg.Partitions, cfg.Keys, where, cfg.Rounds),
	}
	fmt.Fprintf(opts.Progress, "%s: other keys %s records/s with poison, %s without (%.2fx; timed from Start, the group join included, %.2fx)\n",
		name, groupDigits(r.Value), groupDigits(r.Baseline), r.Ratio, r.FromStartRatio)
	if r.CleanSleepMs > 0 {
		fmt.Fprintf(opts.Progress, "%s: a %s call slept %.3f ms on average in the poison runs, %.3f ms in the clean ones: %.2fx as slept\n",
			name, poisonWork, r.PoisonSleepMs, r.CleanSleepMs, r.AsSleptRatio)
	}
	return r, nil
}

func roundAll(v []float64) []float64 {
	out := make([]float64, len(v))
	for i, x := range v {
		out[i] = math.Round(x)
	}
	return out
}

func runTierIdle(ctx context.Context, opts Options) (Result, error) {
	cfg := TierIdleConfig{Records: pick(opts.PoisonRecords, quickTierIdleRecords, defaultTierIdleRecords, opts.Quick), Progress: opts.Progress}
	if opts.Quick {
		cfg.Window = 3 * time.Second
	}
	tr, err := TierIdle(ctx, cfg)
	if err != nil {
		return Result{}, err
	}
	cfg = cfg.withDefaults()
	return Result{
		Name:           ScenarioTierIdle,
		Value:          tr.CPU,
		Baseline:       tr.IdleCPU,
		Ratio:          ratio(tr.CPU, tr.IdleCPU),
		Unit:           "cores",
		Records:        tr.Records,
		Goroutines:     tr.Goroutines,
		IdleGoroutines: tr.IdleGoroutines,
		HeapMiB:        math.Round(tr.HeapMiB*10) / 10,
		Held:           tr.Held,
		Detail: fmt.Sprintf("CPU (cores, from getrusage over %s) of a process whose consumer has %d records not due for 5 minutes in a retry tier (%d of them held in memory, the rest in the topic), "+
			"against the same consumer with nothing to do; broker (kfake) in the process, counted in both", cfg.Window, tr.Records, tr.Held),
	}, nil
}

// WriteJSON writes the report as `ordo bench --out` does.
func WriteJSON(w io.Writer, rep Report) error {
	if rep.Scenarios == nil {
		rep.Scenarios = []Result{}
	}
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(rep)
}

// WriteTable writes the report as a table.
func WriteTable(w io.Writer, rep Report) error {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "SCENARIO\tVALUE\tBASELINE\tRATIO\tNOTES")
	for _, r := range rep.Scenarios {
		var value, base, notes string
		switch {
		case r.Skipped != "":
			fmt.Fprintf(tw, "%s\t-\t-\t-\tskipped: %s\n", r.Name, r.Skipped)
			continue
		case r.Name == ScenarioPoison || r.Name == ScenarioPoisonApart || r.Name == ScenarioPoisonNoop:
			fmt.Fprintf(tw, "%s\t%s\t%s\t%.2fx\t%s\n", r.Name, "poison "+groupDigits(r.Value)+" rec/s", "clean "+groupDigits(r.Baseline)+" rec/s", r.Ratio,
				fmt.Sprintf("the other keys' records/s from the first record (from Start, join included: %.2fx)%s; %s records, %s poisoned, all dead-lettered; median of %d",
					r.FromStartRatio, asSlept(r), groupDigits(float64(r.Records)), groupDigits(float64(r.Poisoned)), len(r.OrdoRuns)))
			continue
		case r.Name == ScenarioTierIdle:
			fmt.Fprintf(tw, "%s\t%s\t%s\t%.2fx\t%s\n", r.Name, fmt.Sprintf("%.2f%% CPU", r.Value*100), fmt.Sprintf("idle %.2f%% CPU", r.Baseline*100), r.Ratio,
				fmt.Sprintf("%s records waiting in a 5-minute tier, %s held in memory; %d goroutines (%d idle); heap %.0f MiB", groupDigits(float64(r.Records)), groupDigits(float64(r.Held)), r.Goroutines, r.IdleGoroutines, r.HeapMiB))
			continue
		case r.Name == ScenarioRedisLedger || r.Name == ScenarioPostgresInbox:
			value = "ordo " + groupDigits(r.Value) + " rec/s"
			base = "by hand " + groupDigits(r.Baseline) + " rec/s"
			notes = fmt.Sprintf("write p50 %.0f µs, p99 %.0f µs during ordo's runs", r.WriteP50Us, r.WriteP99Us)
			if r.DirectRTTUs > 0 {
				notes += fmt.Sprintf("; a write alone %.0f µs by hand, %.0f µs through the store", r.DirectRTTUs, r.WriteAloneUs)
			}
			notes += fmt.Sprintf("; %s records, median of %d", groupDigits(float64(r.Records)), len(r.OrdoRuns))
			fmt.Fprintf(tw, "%s\t%s\t%s\t%.2fx\t%s\n", r.Name, value, base, r.Ratio, notes)
			continue
		}
		switch r.Unit {
		case unitRecordsPerSecond:
			value = "ordo " + groupDigits(r.Value) + " rec/s"
			base = "raw " + groupDigits(r.Baseline) + " rec/s"
			notes = fmt.Sprintf("CPU/record ordo %.0f ns, raw %.0f ns (%.2fx); ", r.OrdoCPUNs, r.RawCPUNs, r.CPURatio)
			if r.Name == ScenarioInProc {
				notes += "one process, broker included; "
			} else {
				notes += fmt.Sprintf("peak RSS ordo %.0f MiB, raw %.0f MiB; ", r.OrdoRSSMiB, r.RawRSSMiB)
			}
			notes += fmt.Sprintf("%s records, median of %d", groupDigits(float64(r.Records)), len(r.OrdoRuns))
		case unitSeconds:
			value = fmt.Sprintf("%.3f s", r.Value)
			base = fmt.Sprintf("limit %.3f s", r.Baseline)
			notes = fmt.Sprintf("%s records; timers %.2f ms late/record, limit as slept %.3f s (%.2fx)",
				groupDigits(float64(r.Records)), r.TimerLateMeanMs, r.SleptLimitS, r.SleptRatio)
			if sc, ok := pcScenarios[r.Name]; ok && sc.published > 0 {
				if r.PublishedS != nil {
					notes += fmt.Sprintf("; Parallel Consumer published %g s (ordo/PC %.2fx)", *r.PublishedS, r.Value / *r.PublishedS)
				} else {
					notes += fmt.Sprintf("; Parallel Consumer published %g s at 10,000 records", sc.published)
				}
			}
		default:
			value, base = strconv.FormatFloat(r.Value, 'g', 6, 64), strconv.FormatFloat(r.Baseline, 'g', 6, 64)
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%.2fx\t%s\n", r.Name, value, base, r.Ratio, notes)
	}
	return tw.Flush()
}

// groupDigits formats v rounded to an integer with thousands separators:
// 1234567.4 -> 1,234,567.
func groupDigits(v float64) string {
	return message.NewPrinter(language.English).Sprintf("%d", int64(math.Round(v)))
}

// asSlept is poison-1pct's note on the calls' actual sleep, if measured.
func asSlept(r Result) string {
	if r.CleanSleepMs == 0 {
		return ""
	}
	return fmt.Sprintf("; calls slept %.2f ms with poison, %.2f ms without: %.2fx as slept", r.PoisonSleepMs, r.CleanSleepMs, r.AsSleptRatio)
}
