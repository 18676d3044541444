package bench

import (
	"math/rand/v2"
	"strconv"
	"time"

	"github.com/ordokafka/ordo/pkg/ordo"
)

// Plan is a simulated workload: for each record, by its index (which is its
// offset in a fresh single-partition topic), the time its processing takes
// and its key. A nil key marks a record that orders with nothing.
type Plan struct {
	Durations []time.Duration
	Keys      [][]byte
}

// Seed streams of the plan's random number generator: the durations do not
// depend on the key count, so every pc-volume scenario of one seed and size
// processes the same durations and their results compare.
const (
	streamDurations = 1
	streamKeys      = 2
)

// NewPlan draws records durations uniform in [0, maxWork) from a generator
// seeded with seed. With keys > 0, record i gets the key "k<n>" with n drawn
// uniform in [0, keys); with keys == 0 records have no key.
func NewPlan(records, keys int, maxWork time.Duration, seed uint64) Plan {
	dr := rand.New(rand.NewPCG(seed, streamDurations))
	kr := rand.New(rand.NewPCG(seed, streamKeys))
	p := Plan{Durations: make([]time.Duration, records), Keys: make([][]byte, records)}
	var names [][]byte
	if keys > 0 {
		names = make([][]byte, keys)
		for i := range names {
			names[i] = []byte("k" + strconv.Itoa(i))
		}
	}
	for i := range records {
		if maxWork > 0 {
			p.Durations[i] = time.Duration(dr.Int64N(int64(maxWork)))
		}
		if keys > 0 {
			p.Keys[i] = names[kr.IntN(keys)]
		}
	}
	return p
}

// Limit is the shortest time in which a workload can be processed, whatever
// the scheduler: no run can beat it, so measured/limit is the overhead.
type Limit struct {
	// Sum is the sum of all durations.
	Sum time.Duration
	// Parallel is Sum divided by the concurrency: the time if every worker
	// were busy all the time.
	Parallel time.Duration
	// Serial is the largest sum of durations that must run one after the
	// other: the records of the busiest key (OrderKey), of the whole
	// partition (OrderPartition), or the longest single record.
	Serial time.Duration
	// SerialKey is the key of Serial in OrderKey; empty otherwise.
	SerialKey string
	// Value is max(Parallel, Serial).
	Value time.Duration
}

// ComputeLimit returns the limit of processing the records with the given
// durations and keys (keys[i] nil: independent record) on one partition in
// the given ordering, with at most concurrency processor calls at a time.
func ComputeLimit(durations []time.Duration, keys [][]byte, ordering ordo.Ordering, concurrency int) Limit {
	var l Limit
	for _, d := range durations {
		l.Sum += d
	}
	if concurrency < 1 {
		concurrency = 1
	}
	l.Parallel = l.Sum / time.Duration(concurrency)
	switch ordering {
	case ordo.OrderPartition:
		l.Serial = l.Sum
	case ordo.OrderKey:
		perKey := map[string]time.Duration{}
		for i, d := range durations {
			if i < len(keys) && keys[i] != nil {
				k := string(keys[i])
				perKey[k] += d
				if perKey[k] > l.Serial || (perKey[k] == l.Serial && k < l.SerialKey) {
					l.Serial, l.SerialKey = perKey[k], k
				}
				continue
			}
			if d > l.Serial {
				l.Serial, l.SerialKey = d, ""
			}
		}
	default:
		for _, d := range durations {
			l.Serial = max(l.Serial, d)
		}
	}
	l.Value = max(l.Parallel, l.Serial)
	return l
}
