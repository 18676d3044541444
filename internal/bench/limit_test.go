package bench_test

import (
	"bytes"
	"slices"
	"testing"
	"time"

	"github.com/ordokafka/ordo/internal/bench"
	"github.com/ordokafka/ordo/pkg/ordo"
)

func TestComputeLimit(t *testing.T) {
	ms := time.Millisecond
	durs := []time.Duration{1 * ms, 2 * ms, 3 * ms, 4 * ms, 5 * ms, 6 * ms}
	keys := [][]byte{[]byte("a"), []byte("b"), []byte("a"), []byte("c"), []byte("a"), []byte("b")}
	// Sum 21 ms. Key a: 1+3+5 = 9 ms, b: 2+6 = 8 ms, c: 4 ms.
	tests := []struct {
		name        string
		keys        [][]byte
		ordering    ordo.Ordering
		concurrency int
		want        bench.Limit
	}{
		{"key, parallel term binds", keys, ordo.OrderKey, 2,
			bench.Limit{Sum: 21 * ms, Parallel: 10500 * time.Microsecond, Serial: 9 * ms, SerialKey: "a", Value: 10500 * time.Microsecond}},
		{"key, busiest key binds", keys, ordo.OrderKey, 4,
			bench.Limit{Sum: 21 * ms, Parallel: 5250 * time.Microsecond, Serial: 9 * ms, SerialKey: "a", Value: 9 * ms}},
		{"key, no keys: longest record", make([][]byte, 6), ordo.OrderKey, 100,
			bench.Limit{Sum: 21 * ms, Parallel: 210 * time.Microsecond, Serial: 6 * ms, Value: 6 * ms}},
		{"partition: everything serial", keys, ordo.OrderPartition, 100,
			bench.Limit{Sum: 21 * ms, Parallel: 210 * time.Microsecond, Serial: 21 * ms, Value: 21 * ms}},
		{"unordered, longest record binds", keys, ordo.OrderUnordered, 4,
			bench.Limit{Sum: 21 * ms, Parallel: 5250 * time.Microsecond, Serial: 6 * ms, Value: 6 * ms}},
		{"unordered, parallel term binds", keys, ordo.OrderUnordered, 3,
			bench.Limit{Sum: 21 * ms, Parallel: 7 * ms, Serial: 6 * ms, Value: 7 * ms}},
		{"concurrency below 1 counts as 1", keys, ordo.OrderUnordered, 0,
			bench.Limit{Sum: 21 * ms, Parallel: 21 * ms, Serial: 6 * ms, Value: 21 * ms}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := bench.ComputeLimit(durs, tt.keys, tt.ordering, tt.concurrency)
			if got != tt.want {
				t.Fatalf("ComputeLimit = %+v, want %+v", got, tt.want)
			}
		})
	}
}

func TestComputeLimitPublishedAnchor(t *testing.T) {
	// Parallel Consumer's README: 10,000 records of 2.5 ms on average at
	// concurrency 100 have a limit of 0.25 s. With constant 2.5 ms and 1,000
	// keys of 10 records each, the key chains (25 ms) do not bind.
	durs := make([]time.Duration, 10000)
	keys := make([][]byte, len(durs))
	for i := range durs {
		durs[i] = 2500 * time.Microsecond
		keys[i] = []byte{byte(i % 1000 / 256), byte(i % 1000 % 256)}
	}
	if got := bench.ComputeLimit(durs, keys, ordo.OrderKey, 100).Value; got != 250*time.Millisecond {
		t.Fatalf("limit = %s, want 250ms", got)
	}
	if got := bench.ComputeLimit(durs, keys, ordo.OrderPartition, 100).Value; got != 25*time.Second {
		t.Fatalf("partition limit = %s, want 25s", got)
	}
}

func TestNewPlan(t *testing.T) {
	a := bench.NewPlan(2000, 10, 5*time.Millisecond, 7)
	b := bench.NewPlan(2000, 10, 5*time.Millisecond, 7)
	if !slices.Equal(a.Durations, b.Durations) {
		t.Fatal("same seed drew different durations")
	}
	keys := map[string]int{}
	for i, d := range a.Durations {
		if d < 0 || d >= 5*time.Millisecond {
			t.Fatalf("duration %d = %s, outside [0, 5ms)", i, d)
		}
		if !bytes.Equal(a.Keys[i], b.Keys[i]) {
			t.Fatalf("same seed drew different keys at %d", i)
		}
		keys[string(a.Keys[i])]++
	}
	if len(keys) != 10 {
		t.Fatalf("drew %d distinct keys, want 10: %v", len(keys), keys)
	}
	// The durations do not depend on the key count: scenarios compare.
	if c := bench.NewPlan(2000, 0, 5*time.Millisecond, 7); !slices.Equal(a.Durations, c.Durations) {
		t.Fatal("durations depend on the key count")
	}
	for i, k := range bench.NewPlan(10, 0, time.Millisecond, 7).Keys {
		if k != nil {
			t.Fatalf("keys=0 gave record %d key %q", i, k)
		}
	}
	if d := bench.NewPlan(2000, 10, 5*time.Millisecond, 8).Durations; slices.Equal(a.Durations, d) {
		t.Fatal("different seeds drew the same durations")
	}
}

func TestSelect(t *testing.T) {
	tests := []struct {
		spec    string
		want    []string
		wantErr bool
	}{
		{"", bench.Names(), false},
		{"noop", []string{bench.ScenarioNoop}, false},
		{"pc-volume-key-1", []string{bench.ScenarioPCKey1}, false},
		{"pc-volume-key-1000", []string{bench.ScenarioPCKey1000}, false},
		{"pc-volume-key-100,pc-volume-key-1", []string{bench.ScenarioPCKey1, bench.ScenarioPCKey100}, false},
		{"pc-volume-key", []string{bench.ScenarioPCKey1, bench.ScenarioPCKey10, bench.ScenarioPCKey100, bench.ScenarioPCKey1000, bench.ScenarioPCKey10000}, false},
		{"pc-volume-unordered, noop", []string{bench.ScenarioNoop, bench.ScenarioPCUnordered}, false},
		{"pc-volume-p,pc-volume-partition", []string{bench.ScenarioPCPartition}, false},
		{"nope", nil, true},
		{"noop,nope", nil, true},
		{",", nil, true},
	}
	for _, tt := range tests {
		got, err := bench.Select(tt.spec)
		if (err != nil) != tt.wantErr || !slices.Equal(got, tt.want) {
			t.Errorf("Select(%q) = %v, %v; want %v, error %v", tt.spec, got, err, tt.want, tt.wantErr)
		}
	}
}
