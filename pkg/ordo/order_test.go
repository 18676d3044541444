package ordo_test

import (
	"context"
	"fmt"
	"math/rand/v2"
	"sync"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/ordokafka/ordo/pkg/ordo"
)

// TestKeyOrderNoLossProperty runs many seeded scenarios: random key counts,
// partitions, worker counts and processing times. Each must apply every
// record exactly once (a single member, no failures), apply the records of
// each key in offset order, and never run two records of a key at once.
func TestKeyOrderNoLossProperty(t *testing.T) {
	seeds := 12
	if testing.Short() {
		seeds = 4
	}
	for seed := range uint64(seeds) {
		t.Run(fmt.Sprintf("seed=%d", seed), func(t *testing.T) {
			t.Parallel()
			rng := rand.New(rand.NewPCG(seed, 99))
			parts := int32(1 + rng.IntN(6))
			nkeys := 1 + rng.IntN(60)
			n := 500 + rng.IntN(1500)
			workers := 1 + rng.IntN(24)
			maxDelay := time.Duration(rng.IntN(300)) * time.Microsecond

			c := newCluster(t, parts, "t")
			produce(t, c.ListenAddrs(), "t", n, nkeys, seed)
			led := newLedger()
			proc := ordo.ProcessorFunc(func(ctx context.Context, r *kgo.Record) error {
				led.enter(r, true)
				if maxDelay > 0 {
					time.Sleep(time.Duration(rand.Int64N(int64(maxDelay))))
				}
				led.exit(r, true)
				return nil
			})
			cfg := baseConfig(c.ListenAddrs(), "g", proc, "t")
			cfg.WorkersPerPartition = workers
			cons := startConsumer(t, cfg)
			waitFor(t, 60*time.Second, "all records", func() bool { return led.count() == n })
			stop(t, cons)
			checkLedger(t, led, n, true)
		})
	}
}

// checkLedger asserts no loss, per-key order and (if exact) exactly-once.
func checkLedger(t *testing.T, led *ledger, n int, exact bool) {
	t.Helper()
	led.mu.Lock()
	defer led.mu.Unlock()
	for _, e := range led.errs {
		t.Error(e)
	}
	if len(led.values) != n {
		t.Errorf("applied %d distinct records, want %d", len(led.values), n)
	}
	if exact {
		for v, k := range led.values {
			if k != 1 {
				t.Errorf("record %s applied %d times", v, k)
			}
		}
	}
	for k, seq := range led.byKey {
		for i := 1; i < len(seq); i++ {
			if seq[i].offset <= seq[i-1].offset {
				t.Errorf("key %s: offset %d applied after %d", k, seq[i].offset, seq[i-1].offset)
				break
			}
		}
	}
}

// TestOrderingModes: OrderPartition runs a partition's records one at a
// time in offset order; OrderUnordered runs records of one key in parallel.
// Both apply every record exactly once and commit only finished offsets.
func TestOrderingModes(t *testing.T) {
	for _, mode := range []ordo.Ordering{ordo.OrderPartition, ordo.OrderUnordered} {
		t.Run(mode.String(), func(t *testing.T) {
			const n = 600
			c := newCluster(t, 2, "t")
			produce(t, c.ListenAddrs(), "t", n, 3, 21) // 3 keys: many records per key
			var mu sync.Mutex
			running := map[int32]int{} // calls in progress per partition
			maxRunning := map[int32]int{}
			last := map[int32]int64{0: -1, 1: -1}
			applied := map[pk]int{}
			var violations []string
			proc := ordo.ProcessorFunc(func(ctx context.Context, r *kgo.Record) error {
				mu.Lock()
				running[r.Partition]++
				maxRunning[r.Partition] = max(maxRunning[r.Partition], running[r.Partition])
				if mode == ordo.OrderPartition && r.Offset <= last[r.Partition] {
					violations = append(violations, fmt.Sprintf("partition %d: offset %d after %d", r.Partition, r.Offset, last[r.Partition]))
				}
				last[r.Partition] = max(last[r.Partition], r.Offset)
				mu.Unlock()
				time.Sleep(time.Duration(rand.IntN(300)) * time.Microsecond)
				mu.Lock()
				running[r.Partition]--
				applied[pk{r.Partition, r.Offset}]++
				mu.Unlock()
				return nil
			})
			cfg := baseConfig(c.ListenAddrs(), "g", proc, "t")
			cfg.Ordering = mode
			cfg.WorkersPerPartition = 8
			cons := startConsumer(t, cfg)
			waitFor(t, 60*time.Second, "all records", func() bool {
				mu.Lock()
				defer mu.Unlock()
				return len(applied) == n
			})
			waitFor(t, 30*time.Second, "commits", func() bool {
				var sum int64
				for _, s := range cons.Lanes() {
					sum += max(0, s.Committed) // -1: a partition no key hashed to
				}
				return sum == n
			})
			stop(t, cons)
			mu.Lock()
			defer mu.Unlock()
			for _, v := range violations {
				t.Error(v)
			}
			for k, times := range applied {
				if times != 1 {
					t.Errorf("%v applied %d times", k, times)
				}
			}
			for p, m := range maxRunning {
				switch {
				case mode == ordo.OrderPartition && m != 1:
					t.Errorf("partition %d ran %d records at once in partition order", p, m)
				case mode == ordo.OrderUnordered && m < 2:
					t.Errorf("partition %d never ran two records at once unordered (3 keys, 8 workers)", p)
				}
			}
		})
	}
}
