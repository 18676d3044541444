package cli

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/ordokafka/ordo/internal/bench"
)

// BenchCmd is `ordo bench`: Ordo measured side by side with raw franz-go
// and with Confluent Parallel Consumer's published volume test.
type BenchCmd struct {
	Quick       bool
	Scenarios   string
	Seed        uint64
	OutFile     string
	Rounds      int
	NoopRecords int
	PCRecords   int
	// StoreRecords sizes redis-ledger and postgres-inbox (0: their
	// defaults).
	StoreRecords int
	CPUProfile   string

	Out io.Writer

	selected []string
}

func newBenchCmd(out io.Writer) *cobra.Command {
	b := &BenchCmd{Out: out}
	cmd := &cobra.Command{
		Use:   "bench",
		Short: "Measure Ordo against raw franz-go and Parallel Consumer's published test",
		Long: `Measure Ordo, each scenario side by side with its baseline in the same run:

  noop-throughput      Ordo (key order, no-op processor) against a raw franz-go
                       poll loop: 1,000,000 100-byte records, 12 partitions,
                       10,000 keys, on a broker in a separate process (this
                       binary's "dev --broker-only"), each side in its own
                       process, alternated --rounds times (default 5, 1 with
                       --quick), median of each.
                       value = Ordo records/s, baseline = raw franz-go records/s.
  inproc-throughput    the same comparison in one process with the broker
                       (kfake), as a user's own harness would run it.
  pc-volume-key-N      Confluent Parallel Consumer's published volume test:
  pc-volume-partition  10,000 records on one partition, 0-5 ms each (seeded),
  pc-volume-unordered  concurrency 100, in key order with N keys, partition
                       order, or no order. value = seconds from the first
                       record handed to a processor to the last one marked;
                       baseline = the limit no scheduler can beat, from the
                       durations drawn: max(sum/100, longest serial chain).
  poison-1pct          the records/s of the keys that do not fail, with every
  poison-1pct-noop     record of 1% of the keys failing through the whole
                       retry chain to the dead-letter topic, against the same
                       topic read clean: calls of 1 ms (200,000 records), or
                       a no-op processor (1,000,000 records); alternated
                       --rounds times (default 9, 1 with --quick), medians.
  poison-1pct-apart    poison-1pct with the broker in a process of its own.
  tier-idle            CPU of a process holding 100,000 records in a 5-minute
                       retry tier, against the same consumer idle.
  redis-ledger         the redis-ledger processor and the PostgreSQL inbox
  postgres-inbox       against a hand-written loop doing the same writes
                       (need ORDO_TEST_REDIS_ADDR / ORDO_TEST_POSTGRES_DSN;
                       skipped with a note without them).

--quick runs a small version of each (a CI smoke test, under 30 s).`,
		Example: `  ordo bench --quick                           # the smoke run, under 30 s
  ordo bench --out .bench/results.json         # the full run, results as JSON too
  ordo bench --scenarios noop --rounds 3       # only noop-throughput, 3 alternations
  ordo bench --scenarios pc-volume-key --seed 7
  ordo bench --scenarios poison,tier-idle      # the retry chain's two targets`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if err := validated(b.Validate()); err != nil {
				return err
			}
			return b.Run(cmd.Context())
		},
	}
	f := cmd.Flags()
	f.BoolVar(&b.Quick, "quick", false, "run a small version of each scenario (CI smoke test)")
	f.StringVar(&b.Scenarios, "scenarios", "", "comma-separated scenario name prefixes to run (default: all; e.g. noop,pc-volume-key)")
	f.Uint64Var(&b.Seed, "seed", 1, "seed of the random durations, keys and values")
	f.StringVar(&b.OutFile, "out", "", "also write the results as JSON to this file")
	f.IntVar(&b.Rounds, "rounds", 0, "alternations of each side: noop-throughput and inproc-throughput (default 5), the poison scenarios (default 9); 1 with --quick")
	f.IntVar(&b.NoopRecords, "noop-records", 0, "noop-throughput records (default 1000000, 100000 with --quick)")
	f.IntVar(&b.PCRecords, "pc-records", 0, "pc-volume records (default 10000, 1000 with --quick)")
	f.IntVar(&b.StoreRecords, "store-records", 0, "redis-ledger and postgres-inbox records (default 200000 and 100000, 20000 and 10000 with --quick); they need ORDO_TEST_REDIS_ADDR and ORDO_TEST_POSTGRES_DSN, and are skipped without")
	f.StringVar(&b.CPUProfile, "cpuprofile", "", "path prefix of CPU profiles of the noop-throughput children (PREFIX.<side>.<round>.pprof)")
	_ = f.MarkHidden("cpuprofile")
	cmd.AddCommand(newBenchWorkerCmd(out))
	return cmd
}

// Validate checks the flags before anything starts. Every error names its
// flag.
func (b *BenchCmd) Validate() error {
	var errs []error
	sel, err := bench.Select(b.Scenarios)
	if err != nil {
		errs = append(errs, fmt.Errorf("--scenarios %q: %w", b.Scenarios, err))
	}
	b.selected = sel
	if b.Rounds < 0 {
		errs = append(errs, fmt.Errorf("--rounds must be >= 1 (0: the default), got %d", b.Rounds))
	}
	if b.NoopRecords < 0 {
		errs = append(errs, fmt.Errorf("--noop-records must be >= 1 (0: the default), got %d", b.NoopRecords))
	}
	if b.StoreRecords < 0 {
		errs = append(errs, fmt.Errorf("--store-records must be >= 1 (0: the default), got %d", b.StoreRecords))
	}
	if b.PCRecords < 0 {
		errs = append(errs, fmt.Errorf("--pc-records must be >= 1 (0: the default), got %d", b.PCRecords))
	}
	if err := checkOutputPath(b.OutFile); err != nil {
		errs = append(errs, fmt.Errorf("--out: %w", err))
	}
	if err := checkOutputPath(b.CPUProfile); err != nil {
		errs = append(errs, fmt.Errorf("--cpuprofile: %w", err))
	}
	return errors.Join(errs...)
}

// checkOutputPath accepts "" (no output) or a file path whose directory
// exists and that is not itself a directory.
func checkOutputPath(p string) error {
	if p == "" {
		return nil
	}
	if st, err := os.Stat(p); err == nil && st.IsDir() {
		return fmt.Errorf("%q is a directory", p)
	}
	dir := filepath.Dir(p)
	if st, err := os.Stat(dir); err != nil || !st.IsDir() {
		return fmt.Errorf("directory %q of %q does not exist", dir, p)
	}
	return nil
}

// Run runs the selected scenarios, prints the table and writes --out. The
// table and the file hold the scenarios that completed even when others
// failed; the error reports those.
func (b *BenchCmd) Run(ctx context.Context) error {
	if b.selected == nil {
		if err := b.Validate(); err != nil {
			return usageError{err}
		}
	}
	mode := "full"
	if b.Quick {
		mode = "quick"
	}
	fmt.Fprintf(b.Out, "ordo bench (%s, seed %d): %s\n", mode, b.Seed, strings.Join(b.selected, ", "))
	start := time.Now()
	rep, runErr := bench.Run(ctx, bench.Options{
		Scenarios:    b.selected,
		Quick:        b.Quick,
		Seed:         b.Seed,
		NoopRecords:  b.NoopRecords,
		Rounds:       b.Rounds,
		PCRecords:    b.PCRecords,
		StoreRecords: b.StoreRecords,
		CPUProfile:   b.CPUProfile,
		Progress:     b.Out,
	})
	fmt.Fprintln(b.Out)
	if err := bench.WriteTable(b.Out, rep); err != nil {
		return err
	}
	fmt.Fprintf(b.Out, "\nordo bench: %d of %d scenarios in %.1f s\n", len(rep.Scenarios), len(b.selected), time.Since(start).Seconds())
	if b.OutFile != "" {
		var buf bytes.Buffer
		if err := bench.WriteJSON(&buf, rep); err != nil {
			return err
		}
		if err := os.WriteFile(b.OutFile, buf.Bytes(), 0o644); err != nil { //nolint:gosec // a results file for CI artifacts and people to read
			return errors.Join(runErr, fmt.Errorf("--out: %w", err))
		}
		fmt.Fprintf(b.Out, "ordo bench: wrote %s\n", b.OutFile)
	}
	return runErr
}

// BenchWorkerCmd is the hidden `ordo bench worker`: one side of
// noop-throughput in its own process. It prints one JSON line.
type BenchWorkerCmd struct {
	Side       string
	Brokers    string
	Topic      string
	Group      string
	Records    int64
	CPUProfile string
	Timeout    time.Duration

	Out io.Writer
}

func newBenchWorkerCmd(out io.Writer) *cobra.Command {
	w := &BenchWorkerCmd{Out: out}
	cmd := &cobra.Command{
		Use:    "worker",
		Short:  "Run one side of noop-throughput (used by ordo bench)",
		Hidden: true,
		Args:   cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if err := validated(w.Validate()); err != nil {
				return err
			}
			return w.Run(cmd.Context())
		},
	}
	f := cmd.Flags()
	f.StringVar(&w.Side, "side", "", "raw (franz-go poll loop) or ordo (Ordo, no-op processor)")
	f.StringVar(&w.Brokers, "brokers", "", "comma-separated seed brokers")
	f.StringVar(&w.Topic, "topic", "", "topic to consume")
	f.StringVar(&w.Group, "group", "", "consumer group (a new one)")
	f.Int64Var(&w.Records, "records", 0, "records to consume")
	f.StringVar(&w.CPUProfile, "cpuprofile", "", "write a CPU profile of the measured part to this file")
	f.DurationVar(&w.Timeout, "timeout", 5*time.Minute, "give up after this long")
	return cmd
}

func (w *BenchWorkerCmd) config() bench.WorkerConfig {
	return bench.WorkerConfig{
		Side:       w.Side,
		Brokers:    splitList(w.Brokers),
		Topic:      w.Topic,
		Group:      w.Group,
		Records:    w.Records,
		CPUProfile: w.CPUProfile,
	}
}

// Validate checks the flags. Every error names its flag.
func (w *BenchWorkerCmd) Validate() error {
	var errs []error
	// The worker's own checks, each naming its field; the flags have the
	// same names.
	if err := w.config().Validate(); err != nil {
		if joined, ok := err.(interface{ Unwrap() []error }); ok {
			for _, e := range joined.Unwrap() {
				errs = append(errs, fmt.Errorf("--%w", e))
			}
		} else {
			errs = append(errs, fmt.Errorf("--%w", err))
		}
	}
	if w.Timeout <= 0 {
		errs = append(errs, fmt.Errorf("--timeout must be > 0, got %s", w.Timeout))
	}
	if err := checkOutputPath(w.CPUProfile); err != nil {
		errs = append(errs, fmt.Errorf("--cpuprofile: %w", err))
	}
	return errors.Join(errs...)
}

// Run consumes the records and prints the result line.
func (w *BenchWorkerCmd) Run(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(ctx, w.Timeout)
	defer cancel()
	res, err := bench.RunWorker(ctx, w.config())
	if err != nil {
		return err
	}
	line, err := json.Marshal(res)
	if err != nil {
		return err
	}
	_, err = fmt.Fprintf(w.Out, "%s\n", line)
	return err
}

func splitList(s string) []string {
	var out []string
	for _, p := range strings.Split(s, ",") {
		if p = strings.TrimSpace(p); p != "" {
			out = append(out, p)
		}
	}
	return out
}
