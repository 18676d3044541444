package bench_test

import (
	"context"
	"testing"
	"time"

	"github.com/ordokafka/ordo/internal/bench"
	"github.com/ordokafka/ordo/pkg/ordo"
)

// The quick volume test: the limit is the one computed from the plan, and no
// run beats it. No absolute timing is asserted.
func TestPCVolume(t *testing.T) {
	tests := []struct {
		name     string
		ordering ordo.Ordering
		keys     int
		records  int
	}{
		{"key-1000", ordo.OrderKey, 1000, 500},
		{"key-10", ordo.OrderKey, 10, 300},
		{"partition", ordo.OrderPartition, 0, 100},
		{"unordered", ordo.OrderUnordered, 0, 500},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			const seed = 42
			cfg := bench.PCVolumeConfig{
				Records: tt.records, Ordering: tt.ordering, Keys: tt.keys,
				Concurrency: 100, MaxWork: 5 * time.Millisecond, Seed: seed,
			}
			res, err := bench.PCVolume(context.Background(), cfg)
			if err != nil {
				t.Fatal(err)
			}
			planKeys := 0
			if tt.ordering == ordo.OrderKey {
				planKeys = tt.keys
			}
			plan := bench.NewPlan(tt.records, planKeys, 5*time.Millisecond, seed)
			if want := bench.ComputeLimit(plan.Durations, plan.Keys, tt.ordering, 100); res.Limit != want {
				t.Fatalf("limit = %+v, want %+v (from the plan)", res.Limit, want)
			}
			if res.Limit.Value <= 0 {
				t.Fatalf("limit %s is not positive", res.Limit.Value)
			}
			if res.Elapsed < res.Limit.Value {
				t.Fatalf("measured %s beats the limit %s: the measurement is wrong", res.Elapsed, res.Limit.Value)
			}
			if res.Processed < res.Limit.Value || res.Processed > res.Elapsed {
				t.Fatalf("last processor return at %s, want within [limit %s, marked %s]", res.Processed, res.Limit.Value, res.Elapsed)
			}
			if res.Violations != 0 {
				t.Fatalf("%d ordering violations", res.Violations)
			}
			if res.Records != tt.records {
				t.Fatalf("records = %d, want %d", res.Records, tt.records)
			}
			t.Logf("%s: %s, limit %s (%.2fx)", tt.name, res.Elapsed, res.Limit.Value, float64(res.Elapsed)/float64(res.Limit.Value))
		})
	}
}
