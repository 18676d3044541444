package memstore_test

import (
	"context"
	"errors"
	"sync"
	"testing"

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
