package memstore_test

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/ordokafka/ordo/pkg/store"
	"github.com/ordokafka/ordo/pkg/store/memstore"
	"github.com/ordokafka/ordo/pkg/store/storetest"
)

func TestConformance(t *testing.T) {
	storetest.Run(t, func(t *testing.T) storetest.Harness {
		st := memstore.New(memstore.Options{})
		var mu sync.Mutex
		applied := map[string]int{}
		return storetest.Harness{
			Store: st,
			Apply: func(ctx context.Context, op store.Op) (store.Outcome, error) {
				return st.Apply(ctx, op, func(context.Context) error {
					mu.Lock()
					defer mu.Unlock()
					applied[op.Key]++
					return nil
				})
			},
			ApplyFailing: func(ctx context.Context, op store.Op) error {
				_, err := st.Apply(ctx, op, func(context.Context) error { return errors.New("sink refused") })
				return err
			},
			Effects: func(context.Context) (map[string]int, error) {
				mu.Lock()
				defer mu.Unlock()
				out := map[string]int{}
				for k, v := range applied {
					out[k] = v
				}
				return out, nil
			},
		}
	})
}

// Forget does not count a key whose TTL has passed (it was no longer
// applied), and forgets it all the same.
func TestForgetCountsLiveKeysOnly(t *testing.T) {
	now := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	st := memstore.New(memstore.Options{TTL: time.Minute, Now: func() time.Time { return now }})
	ctx := context.Background()
	noop := func(context.Context) error { return nil }
	for _, k := range []string{"old", "new"} {
		if o, err := st.Apply(ctx, store.Op{Key: k}, noop); err != nil || o != store.Applied {
			t.Fatal(o, err)
		}
		now = now.Add(50 * time.Second)
	}
	// "old" was applied 100s ago (expired), "new" 50s ago.
	if n, err := st.Forget(ctx, []string{"old", "new", "none"}); err != nil || n != 1 {
		t.Fatalf("Forget: %d, %v; want 1", n, err)
	}
	if st.Applied("old") || st.Applied("new") {
		t.Error("a forgotten key is still applied")
	}
}
