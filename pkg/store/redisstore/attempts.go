package redisstore

import (
	"context"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/ordokafka/ordo/pkg/ordo"
)

// Attempts is an ordo.AttemptStore on Redis: set it as
// ordo.Config.Attempts and a record that kills its process on every call
// (a panic outside the processor, os.Exit, an OOM kill) still moves on to
// its next retry tier or the dead-letter topic after Retry.MaxAttempts
// such calls, instead of crash-looping its partition forever.
//
// Each record delivery has one hash, <prefix>attempt:<key>, with a began
// flag and the count of calls that ran alone in their process. Begin reads
// and sets both in one script; End deletes the hash. A hash left behind by
// a process that died expires after TTL.
type Attempts struct {
	client redis.UniversalClient
	prefix string
	ttl    time.Duration
}

var _ ordo.AttemptStore = (*Attempts)(nil)

// AttemptsOptions configure Attempts.
type AttemptsOptions struct {
	// Prefix is put before every key. Default "ordo:".
	Prefix string
	// TTL bounds how long a crashed call is remembered. Default 24h: more
	// than the time a crash loop takes to use up its attempts.
	TTL time.Duration
}

// NewAttempts returns an AttemptStore on client. The client is not closed
// by it.
func NewAttempts(client redis.UniversalClient, opts AttemptsOptions) *Attempts {
	if opts.Prefix == "" {
		opts.Prefix = DefaultPrefix
	}
	if opts.TTL <= 0 {
		opts.TTL = 24 * time.Hour
	}
	return &Attempts{client: client, prefix: opts.Prefix, ttl: opts.TTL}
}

var beginAttempt = redis.NewScript(`
local alone = tonumber(redis.call('HGET', KEYS[1], 'alone') or '0')
local began = redis.call('HGET', KEYS[1], 'began')
redis.call('HSET', KEYS[1], 'began', '1')
if ARGV[1] == '1' then redis.call('HINCRBY', KEYS[1], 'alone', 1) end
redis.call('PEXPIRE', KEYS[1], ARGV[2])
if began then return {alone, 1} end
return {alone, 0}`)

// Key returns the Redis key of a record delivery's attempts.
func (a *Attempts) Key(key string) string { return a.prefix + "attempt:" + key }

// Begin implements ordo.AttemptStore: it returns the calls of the record
// that ran alone and never ended, and whether any call began and never
// ended, and records this call's beginning.
func (a *Attempts) Begin(ctx context.Context, key string, alone bool) (int, bool, error) {
	arg := "0"
	if alone {
		arg = "1"
	}
	res, err := beginAttempt.Run(ctx, a.client, []string{a.Key(key)}, arg, a.ttl.Milliseconds()).Int64Slice()
	if err != nil {
		return 0, false, classify(err)
	}
	return int(res[0]), res[1] == 1, nil
}

// End implements ordo.AttemptStore: the call ended, whatever its result.
func (a *Attempts) End(ctx context.Context, key string) error {
	if err := a.client.Del(ctx, a.Key(key)).Err(); err != nil {
		return classify(err)
	}
	return nil
}
