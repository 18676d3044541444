// Package memstore is an idempotency store in memory: the semantics of
// redisstore and pgstore (a write applies once per key, and only with the
// partition's latest fencing token) without a server, for `ordo dev` and for
// tests. It forgets everything when the process ends, so it protects against
// redeliveries within one process only.
package memstore

import (
	"context"
	"sync"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/ordokafka/ordo/pkg/ordo"
	"github.com/ordokafka/ordo/pkg/store"
)

// Options configure a Store.
type Options struct {
	// TTL is how long an applied key is remembered. Default 0: for the
	// life of the Store.
	TTL time.Duration
	// Now is the clock. Default time.Now.
	Now func() time.Time
}

// Store is an in-memory idempotency store and ordo.Fencer. It is safe for
// concurrent use.
type Store struct {
	store.Counters
	opts Options

	// mu guards the maps. It is never held while a write runs or while
	// waiting for a scope's lock.
	mu       sync.Mutex
	applied  map[string]time.Time // key -> expiry (zero: never)
	inflight map[string]chan struct{}
	scopes   map[scopeKey]*scope
}

type scopeKey struct {
	group, topic string
	partition    int32
}

// scope is one partition's fence. Writes hold mu for reading while they
// check the token and apply; Fence holds it for writing, so that once Fence
// returns no write with an older token can still be running.
type scope struct {
	mu    sync.RWMutex
	token int64
}

// New returns an empty Store.
func New(opts Options) *Store {
	if opts.Now == nil {
		opts.Now = time.Now
	}
	return &Store{opts: opts, applied: map[string]time.Time{}, inflight: map[string]chan struct{}{}, scopes: map[scopeKey]*scope{}}
}

var _ store.Store = (*Store)(nil)

func (s *Store) scope(f store.Fence) *scope {
	k := scopeKey{f.Group, f.Topic, f.Partition}
	s.mu.Lock()
	defer s.mu.Unlock()
	sc := s.scopes[k]
	if sc == nil {
		sc = &scope{}
		s.scopes[k] = sc
	}
	return sc
}

// Fence implements ordo.Fencer: it returns the partition's next token.
func (s *Store) Fence(_ context.Context, group, topic string, partition int32) (int64, error) {
	sc := s.scope(store.Fence{Group: group, Topic: topic, Partition: partition})
	sc.mu.Lock()
	defer sc.mu.Unlock()
	sc.token++
	s.CountFence()
	return sc.token, nil
}

// Apply runs write once for op.Key, if op's token is the partition's latest
// (or 0): it returns store.Duplicate without running write when the key was
// applied before, an error wrapping store.ErrFenced when the token is
// stale, and write's error (the key is then not marked) if it fails. Calls
// for the same key run one at a time; others run concurrently.
func (s *Store) Apply(ctx context.Context, op store.Op, write func(ctx context.Context) error) (o store.Outcome, err error) {
	defer func() { s.Count(o, err) }()
	release, err := s.lockKey(ctx, op.Key)
	if err != nil {
		return 0, err
	}
	defer release()
	if op.Fence.Token != 0 {
		sc := s.scope(op.Fence)
		sc.mu.RLock()
		defer sc.mu.RUnlock()
		if op.Fence.Token < sc.token {
			return 0, &store.FencedError{Fence: op.Fence, Current: sc.token}
		}
	}
	now := s.opts.Now()
	s.mu.Lock()
	exp, seen := s.applied[op.Key]
	if seen && !exp.IsZero() && !now.Before(exp) {
		delete(s.applied, op.Key)
		seen = false
	}
	s.mu.Unlock()
	if seen {
		return store.Duplicate, nil
	}
	if err := write(ctx); err != nil {
		return 0, err
	}
	var until time.Time
	if s.opts.TTL > 0 {
		until = now.Add(s.opts.TTL)
	}
	s.mu.Lock()
	s.applied[op.Key] = until
	s.mu.Unlock()
	return store.Applied, nil
}

// lockKey waits until no other call for key is running, and marks one.
func (s *Store) lockKey(ctx context.Context, key string) (func(), error) {
	for {
		s.mu.Lock()
		ch, busy := s.inflight[key]
		if !busy {
			ch = make(chan struct{})
			s.inflight[key] = ch
			s.mu.Unlock()
			return func() {
				s.mu.Lock()
				delete(s.inflight, key)
				s.mu.Unlock()
				close(ch)
			}, nil
		}
		s.mu.Unlock()
		select {
		case <-ch:
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	}
}

// Applied reports whether key was applied (and has not expired).
func (s *Store) Applied(key string) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	exp, ok := s.applied[key]
	return ok && (exp.IsZero() || s.opts.Now().Before(exp))
}

// Forget implements store.Forgetter: it removes keys, so that their
// records apply again, and returns how many were applied (and had not
// expired). It never fails.
func (s *Store) Forget(_ context.Context, keys []string) (int64, error) {
	now := s.opts.Now()
	s.mu.Lock()
	defer s.mu.Unlock()
	var n int64
	for _, k := range keys {
		exp, ok := s.applied[k]
		if !ok {
			continue
		}
		delete(s.applied, k)
		if exp.IsZero() || now.Before(exp) {
			n++
		}
	}
	return n, nil
}

var _ store.Forgetter = (*Store)(nil)

// Dedup is a Middleware that runs the processor inside Apply: a record whose
// key (from keys) was applied before is done without a call, and a call of a
// member whose token is stale is not made (the record holds its partition,
// see store.ProcessorError). Because the key is marked in memory only, it
// makes a processor effectively-once only within this process: use it in
// tests and `ordo dev`, and redisstore or pgstore otherwise.
func (s *Store) Dedup(keys store.Keys) ordo.Middleware {
	return func(next ordo.Processor) ordo.Processor {
		return ordo.ProcessorFunc(func(ctx context.Context, r *kgo.Record) error {
			_, err := s.Apply(ctx, keys.For(ctx, r), func(ctx context.Context) error { return next.Process(ctx, r) })
			return store.ProcessorError(err)
		})
	}
}
