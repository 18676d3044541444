package bench_test

import (
	"context"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/ordokafka/ordo/internal/bench"
)

// poison-1pct end to end, small, with the broker in the process and in a
// process of its own (the test binary plays the ordo binary): every
// poisoned record reaches the dead-letter topic through both tiers, and
// the other keys' rates are measured on both sides.
func TestPoisonThroughputBothBrokers(t *testing.T) {
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	for _, apart := range []bool{false, true} {
		var progress strings.Builder
		cfg := bench.PoisonConfig{Records: 20000, Partitions: 4, Keys: 200, Rounds: 1, Seed: 1, Progress: &progress}
		if apart {
			cfg.Exe, cfg.Env = exe, []string{childEnv}
		}
		ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
		res, err := bench.PoisonThroughput(ctx, cfg)
		cancel()
		t.Log(progress.String())
		if err != nil {
			t.Fatalf("apart=%v: %v", apart, err)
		}
		if res.Poisoned != 200 || res.DeadLettered < res.Poisoned {
			t.Errorf("apart=%v: %d poisoned, %d dead-lettered", apart, res.Poisoned, res.DeadLettered)
		}
		if res.CleanRate <= 0 || res.PoisonRate <= 0 || res.CleanFromStart <= 0 || res.PoisonFromStart <= 0 {
			t.Errorf("apart=%v: rates clean %v poison %v (from Start %v, %v)", apart, res.CleanRate, res.PoisonRate, res.CleanFromStart, res.PoisonFromStart)
		}
		if apart != strings.Contains(progress.String(), "broker child") {
			t.Errorf("apart=%v but the progress says: %s", apart, progress.String())
		}
	}
}
