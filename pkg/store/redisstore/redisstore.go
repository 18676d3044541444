// Package redisstore is an idempotency store on Redis (go-redis v9): each
// write is one Lua script that checks the dedup key, checks the fencing
// token and applies the effect, atomically, and marks the key with a TTL;
// there is never a separate "seen?" round trip. Concurrent writes are
// coalesced into pipelines (a few in flight at once), so a processor that
// writes once per record costs a fraction of a round trip per record under
// load.
//
// Keys (all under Options.Prefix, default "ordo:"):
//
//	<prefix>dedup:<op key>                   "1", expiring after Options.TTL
//	<prefix>fence:<group>/<topic>/<partition> the partition's latest token (INCR)
//
// The effect's own keys are the caller's. On Redis Cluster every key of one
// write must hash to one slot (use a hash tag in the prefix and in the
// effect's keys); the tests run against a single Redis.
package redisstore

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/ordokafka/ordo/pkg/store"
	"github.com/ordokafka/ordo/pkg/store/internal/batch"
)

// Defaults.
const (
	DefaultPrefix    = "ordo:"
	DefaultTTL       = 7 * 24 * time.Hour
	DefaultPipelines = 4
	DefaultMaxBatch  = 256
	DefaultTimeout   = 5 * time.Second
)

// Options configure a Store.
type Options struct {
	// Client is the Redis client. Required. The Store does not close it.
	Client redis.UniversalClient
	// Prefix is put before every key the store writes. Default "ordo:".
	// Give each sink its own: dedup keys are unique within a prefix.
	Prefix string
	// TTL is how long an applied key is remembered. A redelivery older
	// than this applies again: keep it above the topics' retention if you
	// replay. Default 7 days.
	TTL time.Duration
	// Pipelines is how many pipelines may be in flight at once. Default 4.
	Pipelines int
	// MaxBatch bounds the writes of one pipeline. Default 256. 1 turns
	// coalescing off (one round trip per write).
	MaxBatch int
	// Timeout bounds one pipeline's round trip; a write that overruns it
	// fails with store.ErrUnavailable (it may or may not have applied;
	// trying it again is safe). Default 5s.
	Timeout time.Duration
}

// Script is an effect: the body of a Lua function that the store runs
// after its checks, in the same script. The body sees its own KEYS and
// ARGV (the keys and args given to Apply), and may return a value (handed
// back by Apply) or redis.error_reply(msg) to fail the write without
// marking its key. Redis does not roll back a script: check everything
// before the first write, as the ledger does.
type Script struct {
	body   string
	script *redis.Script
}

// wrapper is the script every write runs. KEYS[1] is the dedup key,
// KEYS[2] the fence key; ARGV[1] the token (0: not fenced), ARGV[2] the TTL
// in milliseconds. The reply is {0, value} (applied), {1} (duplicate) or
// {2, current token} (fenced).
const wrapper = `local tok = tonumber(ARGV[1])
if tok ~= 0 then
  local cur = tonumber(redis.call('GET', KEYS[2]) or '0')
  if tok < cur then return {2, cur} end
end
if redis.call('EXISTS', KEYS[1]) == 1 then return {1} end
local k, a = {}, {}
for i = 3, #KEYS do k[#k + 1] = KEYS[i] end
for i = 3, #ARGV do a[#a + 1] = ARGV[i] end
local function effect(KEYS, ARGV)
%s
end
local r = effect(k, a)
if type(r) == 'table' and r.err then return r end
redis.call('SET', KEYS[1], '1', 'PX', ARGV[2])
return {0, r}
`

// NewScript returns the effect whose Lua function body is body.
func NewScript(body string) *Script {
	return &Script{body: body, script: redis.NewScript(fmt.Sprintf(wrapper, body))}
}

// Body returns the effect's Lua body, as given to NewScript.
func (s *Script) Body() string { return s.body }

// Source returns the whole script a write runs: the store's checks around
// the body. A hand-written pipeline that runs it (as the benchmark's
// baseline does) passes the dedup key, the fence key, the token and the TTL
// in milliseconds first.
func (s *Script) Source() string { return fmt.Sprintf(wrapper, s.body) }

// EffectError is a write whose effect returned redis.error_reply, or whose
// script failed in Redis; its key is not marked.
type EffectError struct{ Msg string }

func (e *EffectError) Error() string { return "store: effect failed: " + e.Msg }

// Store is an idempotency store on Redis and an ordo.Fencer. It is safe for
// concurrent use; Close stops its pipelines.
type Store struct {
	store.Counters
	opts Options
	co   *batch.Coalescer[req, res]

	mu     sync.Mutex
	loaded map[*Script]bool // loaded with SCRIPT LOAD on this server, as far as known
}

type req struct {
	op   store.Op
	sc   *Script
	keys []string
	args []any
}

type res struct {
	outcome store.Outcome
	value   any
}

var _ store.Store = (*Store)(nil)

// New returns a Store. It does not connect: the first write or Fence does.
func New(opts Options) (*Store, error) {
	if opts.Client == nil {
		return nil, errors.New("redisstore: Options.Client is required")
	}
	if opts.Prefix == "" {
		opts.Prefix = DefaultPrefix
	}
	if opts.TTL == 0 {
		opts.TTL = DefaultTTL
	}
	if opts.Pipelines == 0 {
		opts.Pipelines = DefaultPipelines
	}
	if opts.MaxBatch == 0 {
		opts.MaxBatch = DefaultMaxBatch
	}
	if opts.Timeout == 0 {
		opts.Timeout = DefaultTimeout
	}
	switch {
	case opts.TTL < time.Millisecond:
		return nil, fmt.Errorf("redisstore: Options.TTL must be at least 1ms, got %s", opts.TTL)
	case opts.Pipelines < 0:
		return nil, fmt.Errorf("redisstore: Options.Pipelines must be > 0, got %d", opts.Pipelines)
	case opts.MaxBatch < 0:
		return nil, fmt.Errorf("redisstore: Options.MaxBatch must be > 0, got %d", opts.MaxBatch)
	case opts.Timeout < 0:
		return nil, fmt.Errorf("redisstore: Options.Timeout must be > 0, got %s", opts.Timeout)
	}
	s := &Store{opts: opts, loaded: map[*Script]bool{}}
	s.co = batch.New(opts.Pipelines, opts.MaxBatch, s.flush)
	return s, nil
}

// Close stops the store's pipelines; writes after it fail. It does not
// close the client.
func (s *Store) Close() { s.co.Close() }

// Prefix returns the store's key prefix.
func (s *Store) Prefix() string { return s.opts.Prefix }

// DedupKey returns the Redis key that marks op key as applied.
func (s *Store) DedupKey(key string) string { return s.opts.Prefix + "dedup:" + key }

// FenceKey returns the Redis key that holds a partition's latest token.
func (s *Store) FenceKey(group, topic string, partition int32) string {
	return s.opts.Prefix + "fence:" + group + "/" + topic + "/" + strconv.FormatInt(int64(partition), 10)
}

// forgetBatch bounds the DELs of one Forget pipeline.
const forgetBatch = 1000

var _ store.Forgetter = (*Store)(nil)

// Forget implements store.Forgetter: it deletes the dedup keys of keys
// (one DEL each, so that no command spans two hash slots on a cluster),
// in pipelines of up to 1,000, each within Options.Timeout, and returns
// how many existed. A key listed twice is counted once. An error that
// could not reach Redis wraps store.ErrUnavailable; the count is then of
// the pipelines that completed.
func (s *Store) Forget(ctx context.Context, keys []string) (int64, error) {
	var n int64
	for len(keys) > 0 {
		b := keys[:min(len(keys), forgetBatch)]
		keys = keys[len(b):]
		m, err := s.forget(ctx, b)
		n += m
		if err != nil {
			return n, err
		}
	}
	return n, nil
}

func (s *Store) forget(ctx context.Context, keys []string) (int64, error) {
	ctx, cancel := context.WithTimeout(ctx, s.opts.Timeout)
	defer cancel()
	pipe := s.opts.Client.Pipeline()
	cmds := make([]*redis.IntCmd, len(keys))
	for i, k := range keys {
		cmds[i] = pipe.Del(ctx, s.DedupKey(k))
	}
	if _, err := pipe.Exec(ctx); err != nil {
		return 0, classify(err)
	}
	var n int64
	for _, c := range cmds {
		n += c.Val()
	}
	return n, nil
}

// Fence implements ordo.Fencer: INCR on the partition's fence key.
func (s *Store) Fence(ctx context.Context, group, topic string, partition int32) (int64, error) {
	ctx, cancel := context.WithTimeout(ctx, s.opts.Timeout)
	defer cancel()
	tok, err := s.opts.Client.Incr(ctx, s.FenceKey(group, topic, partition)).Result()
	if err != nil {
		return 0, classify(err)
	}
	s.CountFence()
	return tok, nil
}

// Apply runs sc with keys and args once for op.Key, if op's token is the
// partition's latest (or 0), in one script: it returns store.Applied and
// the effect's return value, store.Duplicate when the key was applied
// before (the effect did not run), an error wrapping store.ErrFenced when
// the token is stale, an *EffectError when the effect failed, and an error
// wrapping store.ErrUnavailable when Redis could not be reached. The write
// joins the next pipeline.
func (s *Store) Apply(ctx context.Context, op store.Op, sc *Script, keys []string, args ...any) (store.Outcome, any, error) {
	r, err := s.co.Do(ctx, req{op: op, sc: sc, keys: keys, args: args})
	s.Count(r.outcome, err)
	return r.outcome, r.value, err
}

// flush runs a batch of writes in one pipeline, loading scripts that the
// server does not know and running their writes again.
func (s *Store) flush(calls []*batch.Call[req, res]) {
	ctx, cancel := context.WithTimeout(context.Background(), s.opts.Timeout)
	defer cancel()
	s.ensureLoaded(ctx, calls)
	todo := calls
	for range 2 {
		cmds := s.exec(ctx, todo)
		var again []*batch.Call[req, res]
		for i, c := range todo {
			if err := cmds[i].Err(); err != nil && redis.HasErrorPrefix(err, "NOSCRIPT") {
				again = append(again, c)
				continue
			}
			c.Res, c.Err = s.result(c.Req, cmds[i])
		}
		if len(again) == 0 {
			return
		}
		s.mu.Lock()
		for _, c := range again {
			delete(s.loaded, c.Req.sc) // the server forgot it (a restart, SCRIPT FLUSH)
		}
		s.mu.Unlock()
		s.ensureLoaded(ctx, again)
		todo = again
	}
	for _, c := range todo {
		c.Err = store.Unavailable(errors.New("script not loaded on the server after SCRIPT LOAD"))
	}
}

func (s *Store) exec(ctx context.Context, calls []*batch.Call[req, res]) []*redis.Cmd {
	pipe := s.opts.Client.Pipeline()
	cmds := make([]*redis.Cmd, len(calls))
	ttl := strconv.FormatInt(s.opts.TTL.Milliseconds(), 10)
	for i, c := range calls {
		r := c.Req
		keys := make([]string, 0, 2+len(r.keys))
		keys = append(keys, s.DedupKey(r.op.Key), s.FenceKey(r.op.Fence.Group, r.op.Fence.Topic, r.op.Fence.Partition))
		keys = append(keys, r.keys...)
		args := make([]any, 0, 2+len(r.args))
		args = append(args, r.op.Fence.Token, ttl)
		args = append(args, r.args...)
		cmds[i] = pipe.EvalSha(ctx, r.sc.script.Hash(), keys, args...)
	}
	_, _ = pipe.Exec(ctx) // each command carries its own error
	return cmds
}

// ensureLoaded loads the scripts of calls that this store has not loaded.
// A failure is left for the EVALSHA to report.
func (s *Store) ensureLoaded(ctx context.Context, calls []*batch.Call[req, res]) {
	var todo []*Script
	s.mu.Lock()
	for _, c := range calls {
		if !s.loaded[c.Req.sc] && !containsScript(todo, c.Req.sc) {
			todo = append(todo, c.Req.sc)
		}
	}
	s.mu.Unlock()
	for _, sc := range todo {
		if err := sc.script.Load(ctx, s.opts.Client).Err(); err == nil {
			s.mu.Lock()
			s.loaded[sc] = true
			s.mu.Unlock()
		}
	}
}

func containsScript(list []*Script, sc *Script) bool {
	for _, x := range list {
		if x == sc {
			return true
		}
	}
	return false
}

// result reads one write's reply.
func (s *Store) result(r req, cmd *redis.Cmd) (res, error) {
	v, err := cmd.Result()
	if err != nil {
		return res{}, classify(err)
	}
	reply, ok := v.([]any)
	if !ok || len(reply) == 0 {
		return res{}, fmt.Errorf("redisstore: unexpected reply %v", v)
	}
	code, _ := reply[0].(int64)
	switch code {
	case 0:
		var val any
		if len(reply) > 1 {
			val = reply[1]
		}
		return res{outcome: store.Applied, value: val}, nil
	case 1:
		return res{outcome: store.Duplicate}, nil
	case 2:
		var cur int64
		if len(reply) > 1 {
			cur, _ = reply[1].(int64)
		}
		return res{}, &store.FencedError{Fence: r.op.Fence, Current: cur}
	}
	return res{}, fmt.Errorf("redisstore: unexpected reply %v", v)
}

// unavailablePrefixes are server replies that mean "not now", not "never".
var unavailablePrefixes = []string{"LOADING", "BUSY", "MASTERDOWN", "READONLY", "CLUSTERDOWN", "TRYAGAIN", "NOREPLICAS", "OOM"}

// classify maps a go-redis error to the store's: a reply from the server is
// an *EffectError unless it means the server cannot serve now; anything
// else (a connection, a timeout, a closed pool) is ErrUnavailable.
func classify(err error) error {
	var rerr redis.Error
	if errors.As(err, &rerr) && !errors.Is(err, redis.ErrClosed) && !errors.Is(err, redis.ErrPoolTimeout) {
		msg := rerr.Error()
		for _, p := range unavailablePrefixes {
			if strings.HasPrefix(msg, p) {
				return store.Unavailable(err)
			}
		}
		return &EffectError{Msg: msg}
	}
	return store.Unavailable(err)
}
