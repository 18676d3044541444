package redisstore_test

import (
	"context"
	"errors"
	"strconv"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/ordokafka/ordo/internal/testenv"
	"github.com/ordokafka/ordo/pkg/store"
	"github.com/ordokafka/ordo/pkg/store/redisstore"
	"github.com/ordokafka/ordo/pkg/store/storetest"
)

// countScript counts one application of a key in a hash: KEYS[1] the hash,
// ARGV[1] the key.
var countScript = redisstore.NewScript(`return redis.call('HINCRBY', KEYS[1], ARGV[1], 1)`)

// failScript fails the write without writing.
var failScript = redisstore.NewScript(`return redis.error_reply('sink refused')`)

func TestConformance(t *testing.T) {
	for _, batch := range []int{1, 0} { // no coalescing, and the default
		name := "pipelined"
		if batch == 1 {
			name = "unbatched"
		}
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			client := testenv.Redis(t)
			storetest.Run(t, func(t *testing.T) storetest.Harness {
				prefix := "ordotest:" + testenv.Name(t) + ":"
				st, err := redisstore.New(redisstore.Options{Client: client, Prefix: prefix, MaxBatch: batch})
				if err != nil {
					t.Fatal(err)
				}
				t.Cleanup(st.Close)
				t.Cleanup(func() { cleanup(t, client, prefix) })
				counts := prefix + "effects"
				return storetest.Harness{
					Store: st,
					Apply: func(ctx context.Context, op store.Op) (store.Outcome, error) {
						o, _, err := st.Apply(ctx, op, countScript, []string{counts}, op.Key)
						return o, err
					},
					ApplyFailing: func(ctx context.Context, op store.Op) error {
						_, _, err := st.Apply(ctx, op, failScript, nil)
						return err
					},
					Effects: func(ctx context.Context) (map[string]int, error) {
						m, err := client.HGetAll(ctx, counts).Result()
						if err != nil {
							return nil, err
						}
						out := map[string]int{}
						for k, v := range m {
							n, err := strconv.Atoi(v)
							if err != nil {
								return nil, err
							}
							out[k] = n
						}
						return out, nil
					},
				}
			})
		})
	}
}

// cleanup deletes the keys under prefix.
func cleanup(t *testing.T, client *redis.Client, prefix string) {
	ctx := context.Background()
	iter := client.Scan(ctx, 0, prefix+"*", 1000).Iterator()
	var keys []string
	for iter.Next(ctx) {
		keys = append(keys, iter.Val())
	}
	if len(keys) > 0 {
		if err := client.Del(ctx, keys...).Err(); err != nil {
			t.Log(err)
		}
	}
}

// TestTTL: the dedup key expires after the TTL (the write then applies
// again).
func TestTTL(t *testing.T) {
	client := testenv.Redis(t)
	prefix := "ordotest:" + testenv.Name(t) + ":"
	t.Cleanup(func() { cleanup(t, client, prefix) })
	st, err := redisstore.New(redisstore.Options{Client: client, Prefix: prefix, TTL: 200 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	ctx := context.Background()
	sc := redisstore.NewScript(`return redis.call('INCR', KEYS[1])`)
	op := store.Op{Key: "k"}
	apply := func() (store.Outcome, any) {
		o, v, err := st.Apply(ctx, op, sc, []string{prefix + "n"})
		if err != nil {
			t.Fatal(err)
		}
		return o, v
	}
	if o, v := apply(); o != store.Applied || v != int64(1) {
		t.Fatalf("first: %v %v", o, v)
	}
	if ttl := client.PTTL(ctx, st.DedupKey("k")).Val(); ttl <= 0 || ttl > 200*time.Millisecond {
		t.Errorf("dedup key TTL %s, want (0, 200ms]", ttl)
	}
	if o, _ := apply(); o != store.Duplicate {
		t.Fatalf("second: %v", o)
	}
	time.Sleep(300 * time.Millisecond)
	if o, v := apply(); o != store.Applied || v != int64(2) {
		t.Fatalf("after the TTL: %v %v; want applied again", o, v)
	}
}

// TestUnavailable: a Redis that cannot be reached fails writes and fences
// with ErrUnavailable, within the store's timeout.
func TestUnavailable(t *testing.T) {
	testenv.RedisAddr(t)
	client := redis.NewClient(&redis.Options{Addr: "127.0.0.1:1", MaxRetries: -1})
	defer client.Close()
	st, err := redisstore.New(redisstore.Options{Client: client, Timeout: time.Second})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	_, _, err = st.Apply(context.Background(), store.Op{Key: "k"}, redisstore.NewScript(`return 1`), nil)
	if !errors.Is(err, store.ErrUnavailable) {
		t.Errorf("write: %v, want ErrUnavailable", err)
	}
	if _, err := st.Fence(context.Background(), "g", "t", 0); !errors.Is(err, store.ErrUnavailable) {
		t.Errorf("fence: %v, want ErrUnavailable", err)
	}
	if n, err := st.Forget(context.Background(), []string{"k"}); !errors.Is(err, store.ErrUnavailable) || n != 0 {
		t.Errorf("forget: %d, %v; want 0 and ErrUnavailable", n, err)
	}
	if s := st.Stats(); s.Errors != 1 {
		t.Errorf("stats %+v, want 1 error", s)
	}
}
