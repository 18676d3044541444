package bench_test

import (
	"context"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/ordokafka/ordo/internal/bench"
)

// The noop-throughput comparison end to end, small: the test binary plays
// the ordo binary (see TestMain) for the broker child and the two worker
// children.
func TestNoopThroughputChildren(t *testing.T) {
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	var progress strings.Builder
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	res, err := bench.NoopThroughput(ctx, bench.NoopConfig{
		Exe: exe, Env: []string{childEnv},
		Records: 20000, Partitions: 12, Keys: 1000, Rounds: 2, Seed: 1,
		Progress: &progress,
	})
	t.Log(progress.String())
	if err != nil {
		t.Fatal(err)
	}
	if len(res.Raw) != 2 || len(res.Ordo) != 2 {
		t.Fatalf("runs: %d raw, %d ordo; want 2 each", len(res.Raw), len(res.Ordo))
	}
	for _, r := range append(res.Raw, res.Ordo...) {
		if r.Records < 20000 || r.ElapsedS <= 0 {
			t.Fatalf("%s run: %d records in %gs", r.Side, r.Records, r.ElapsedS)
		}
	}
	if res.RawRate <= 0 || res.OrdoRate <= 0 || res.ProduceRate <= 0 {
		t.Fatalf("rates: raw %g, ordo %g, produce %g", res.RawRate, res.OrdoRate, res.ProduceRate)
	}
	if res.RawRSS <= 0 || res.OrdoRSS <= 0 {
		t.Fatalf("peak RSS: raw %d, ordo %d", res.RawRSS, res.OrdoRSS)
	}
	if res.RawCPU <= 0 || res.OrdoCPU <= 0 {
		t.Fatalf("CPU per record: raw %v, ordo %v", res.RawCPU, res.OrdoCPU)
	}
	if !strings.Contains(progress.String(), "broker child") {
		t.Fatalf("progress lacks the broker line:\n%s", progress.String())
	}
}

func TestWorkerArgsRoundTrip(t *testing.T) {
	args := bench.WorkerArgs(bench.WorkerConfig{Side: "ordo", Brokers: []string{"a:1", "b:2"}, Topic: "t", Group: "g", Records: 7, CPUProfile: "/tmp/p"})
	want := "bench worker --side ordo --brokers a:1,b:2 --topic t --group g --records 7 --cpuprofile /tmp/p"
	if got := strings.Join(args, " "); got != want {
		t.Fatalf("WorkerArgs = %q, want %q", got, want)
	}
}

// The one-process comparison end to end, small: both sides see every
// record, and rates and CPU per record come out.
func TestInProcThroughput(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	var progress strings.Builder
	res, err := bench.InProcThroughput(ctx, bench.InProcConfig{Records: 20000, Partitions: 6, Keys: 500, Rounds: 2, Progress: &progress})
	t.Log(progress.String())
	if err != nil {
		t.Fatal(err)
	}
	if len(res.Raw) != 2 || len(res.Ordo) != 2 {
		t.Fatalf("runs: %d raw, %d ordo; want 2 each", len(res.Raw), len(res.Ordo))
	}
	for _, r := range res.Ordo {
		if r.Reached <= 0 || r.Done < r.Reached || r.CPU <= 0 {
			t.Fatalf("ordo run: reached %v, done %v, CPU %v", r.Reached, r.Done, r.CPU)
		}
	}
	if res.RawRate <= 0 || res.OrdoRate <= 0 || res.RateRatio <= 0 || res.CPURatio <= 0 {
		t.Fatalf("rates raw %g ordo %g, ratios %g %g", res.RawRate, res.OrdoRate, res.RateRatio, res.CPURatio)
	}
}
