package cli

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/url"
	"regexp"
	"strings"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/redis/go-redis/v9"

	"github.com/ordokafka/ordo/pkg/guard"
	"github.com/ordokafka/ordo/pkg/ordo"
	"github.com/ordokafka/ordo/pkg/store"
	"github.com/ordokafka/ordo/pkg/store/memstore"
	"github.com/ordokafka/ordo/pkg/store/pgstore"
	"github.com/ordokafka/ordo/pkg/store/redisstore"
	"github.com/ordokafka/ordo/processors/postgres"
	"github.com/ordokafka/ordo/processors/redisledger"
	"github.com/ordokafka/ordo/processors/webhook"
)

// Store kinds.
const (
	storeNone     = ""
	storeMemory   = "memory"
	storeRedis    = "redis"
	storePostgres = "postgres"
)

// Defaults of the store keys.
const (
	defaultPostgresTable = "ordo_events"
	defaultStorePrefix   = redisstore.DefaultPrefix
)

// storeSpec is a checked store configuration: what Validate parsed,
// before anything connects.
type storeSpec struct {
	kind    string
	redis   *redis.Options
	pg      *pgxpool.Config
	secrets []string // passwords to keep out of every message
	keys    store.Keys
	ttl     time.Duration
	prefix  string
	table   string
	inbox   string // pgstore's tables ("": its defaults)
	fences  string
	// fresh clears what a previous run left (ordo dev: its broker starts
	// empty, so its offsets, the default dedup keys, start over).
	fresh    bool
	breaker  *guard.BreakerOptions // nil: no breaker
	rate     float64
	burst    int
	redacted string // the store's address, printable
	// countAttempts sets a Redis ordo.AttemptStore as Config.Attempts.
	countAttempts bool
}

// storeFor is the store kind a processor uses by default, and the kinds
// it accepts.
func storeFor(processor string) (def string, ok []string) {
	switch processor {
	case "redis-ledger":
		return storeRedis, []string{storeRedis}
	case "postgres":
		return storePostgres, []string{storePostgres}
	}
	return storeNone, []string{storeNone, storeMemory}
}

// checkStore checks the store keys of fc for its processor, connecting to
// nothing; bad reports an error about a key.
func (fc *FileConfig) checkStore(bad func(key, format string, args ...any)) *storeSpec {
	sp := &storeSpec{keys: store.Keys{Header: fc.DedupHeader}, ttl: fc.DedupTTL, prefix: fc.StorePrefix, table: fc.PostgresTable,
		rate: fc.RateLimit.PerSecond, burst: fc.RateLimit.Burst}
	def, accepted := storeFor(fc.Processor)
	sp.kind = strings.ToLower(strings.TrimSpace(fc.Store))
	if sp.kind == "" {
		sp.kind = def
	}
	switch sp.kind {
	case storeNone, storeMemory, storeRedis, storePostgres:
		if fc.Processor != "" && !contains(accepted, sp.kind) {
			bad("store", "%q does not fit processor %s: want %s", fc.Store, fc.Processor, orList(accepted))
		}
	default:
		bad("store", "%q: want memory, redis or postgres", fc.Store)
	}
	if sp.kind == storeRedis {
		switch fc.RedisURL {
		case "":
			bad("redis_url", "is required with store redis (redis://[:password@]host:port[/db])")
		default:
			opts, err := redis.ParseURL(fc.RedisURL)
			if err != nil {
				bad("redis_url", "%s: %s", redactURL(fc.RedisURL), scrub(err.Error(), passwordOf(fc.RedisURL)))
				break
			}
			sp.redis = opts
			sp.secrets = append(sp.secrets, opts.Password)
			sp.redacted = redactURL(fc.RedisURL)
		}
	}
	if sp.kind == storePostgres {
		switch fc.PostgresDSN {
		case "":
			bad("postgres_dsn", "is required with store postgres (postgres://user[:password]@host:port/db)")
		default:
			cfg, err := pgxpool.ParseConfig(fc.PostgresDSN)
			if err != nil {
				bad("postgres_dsn", "%s: not a PostgreSQL connection string (%s)", redactDSN(fc.PostgresDSN), scrub(err.Error(), passwordOf(fc.PostgresDSN)))
				break
			}
			sp.pg = cfg
			sp.secrets = append(sp.secrets, cfg.ConnConfig.Password)
			sp.redacted = redactDSN(fc.PostgresDSN)
		}
		if sp.table == "" {
			sp.table = defaultPostgresTable
		}
		if err := pgstore.CheckTableName(sp.table); err != nil {
			bad("postgres_table", "%v", err)
		}
	}
	if fc.DedupTTL < 0 {
		bad("dedup_ttl", "must not be negative, got %s", fc.DedupTTL)
	}
	if fc.CountAttempts && sp.kind != storeRedis {
		bad("count_attempts", "needs store redis (the counts must outlive the process), got store %q", sp.kind)
	}
	sp.countAttempts = fc.CountAttempts
	if sp.prefix == "" {
		sp.prefix = defaultStorePrefix
	}
	if fc.Processor == "webhook" {
		switch fc.WebhookURL {
		case "":
			bad("webhook_url", "is required with processor webhook")
		default:
			if err := webhook.CheckURL(fc.WebhookURL); err != nil {
				bad("webhook_url", "%s: %v", redactURL(fc.WebhookURL), err)
			}
		}
		if fc.WebhookTimeout < 0 {
			bad("webhook_timeout", "must not be negative, got %s", fc.WebhookTimeout)
		}
	}
	if fc.Breaker.Failures < 0 {
		bad("breaker.failures", "must be > 0, got %d", fc.Breaker.Failures)
	}
	if fc.Breaker.OpenFor < 0 {
		bad("breaker.open_for", "must not be negative, got %s", fc.Breaker.OpenFor)
	}
	if fc.Breaker.Probes < 0 {
		bad("breaker.probes", "must be > 0, got %d", fc.Breaker.Probes)
	}
	if fc.RateLimit.PerSecond < 0 {
		bad("rate_limit.per_second", "must not be negative (0: no limit), got %g", fc.RateLimit.PerSecond)
	}
	if fc.RateLimit.Burst < 0 {
		bad("rate_limit.burst", "must be > 0, got %d", fc.RateLimit.Burst)
	}
	if dep := dependencyOf(fc.Processor); dep != "" {
		sp.breaker = &guard.BreakerOptions{Name: dep, Failures: uint32(max(fc.Breaker.Failures, 0)), //nolint:gosec // checked above
			OpenFor: fc.Breaker.OpenFor, Probes: uint32(max(fc.Breaker.Probes, 0))} //nolint:gosec // checked above
	}
	return sp
}

// dependencyOf names the downstream a processor calls: its breaker's name.
func dependencyOf(processor string) string {
	switch processor {
	case "redis-ledger":
		return "redis"
	case "postgres":
		return "postgres"
	case "webhook":
		return "webhook"
	}
	return ""
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

func orList(kinds []string) string {
	var out []string
	for _, k := range kinds {
		if k == "" {
			out = append(out, "none (unset)")
		} else {
			out = append(out, k)
		}
	}
	return strings.Join(out, " or ")
}

// passwordOf returns the password of a URL or a key=value DSN, "" if none.
func passwordOf(s string) string {
	if u, err := url.Parse(s); err == nil && u.User != nil {
		if p, ok := u.User.Password(); ok {
			return p
		}
	}
	if m := dsnPassword.FindStringSubmatch(s); m != nil {
		return strings.Trim(m[1], "'")
	}
	return ""
}

var dsnPassword = regexp.MustCompile(`(?i)\bpassword\s*=\s*('[^']*'|\S+)`)

// redactURL returns s with its password replaced by xxxxx, or a
// placeholder if s is not a URL.
func redactURL(s string) string {
	u, err := url.Parse(s)
	if err != nil {
		return "(an unparsable URL)"
	}
	return u.Redacted()
}

// redactDSN is redactURL for a URL or a key=value connection string.
func redactDSN(s string) string {
	if strings.Contains(s, "://") {
		return redactURL(s)
	}
	return dsnPassword.ReplaceAllString(s, "password=xxxxx")
}

// scrub replaces every secret in s by xxxxx.
func scrub(s string, secrets ...string) string {
	for _, sec := range secrets {
		if sec != "" {
			s = strings.ReplaceAll(s, sec, "xxxxx")
		}
	}
	return s
}

// scrubError is err with every secret of sp replaced in its text.
func (sp *storeSpec) scrubError(err error) error {
	if err == nil {
		return nil
	}
	msg := scrub(err.Error(), sp.secrets...)
	if msg == err.Error() {
		return err
	}
	return errors.New(msg)
}

// backends is what a pipeline's store configuration opened: the store (its
// Fencer), the breakers, the collectors to register and what to close.
type backends struct {
	spec      *storeSpec
	fencer    ordo.Fencer
	attempts  ordo.AttemptStore // nil unless count_attempts
	mem       *memstore.Store
	redis     *redisstore.Store
	pg        *pgstore.Store
	pool      *pgxpool.Pool
	breakers  *guard.Breakers
	mws       []ordo.Middleware
	collector []prometheus.Collector
	closers   []func()
}

// openBackends connects the store of sp within timeout (Redis: PING;
// PostgreSQL: a query on the inbox, which `ordo store migrate` creates, or
// the migration itself when migrate is set), and builds the breaker and
// the rate limit. Its errors never contain a password.
func openBackends(ctx context.Context, sp *storeSpec, migrate bool, timeout time.Duration, log *slog.Logger) (*backends, error) {
	b := &backends{spec: sp}
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	fail := func(err error) (*backends, error) {
		b.Close()
		return nil, sp.scrubError(err)
	}
	var st store.Store
	switch sp.kind {
	case storeMemory:
		b.mem = memstore.New(memstore.Options{TTL: sp.ttl})
		st = b.mem
		b.mws = append(b.mws, b.mem.Dedup(sp.keys))
	case storeRedis:
		client := redis.NewClient(sp.redis)
		b.closers = append(b.closers, func() { _ = client.Close() })
		if err := client.Ping(ctx).Err(); err != nil {
			return fail(fmt.Errorf("redis at %s does not answer: %w", sp.redacted, err))
		}
		if sp.fresh {
			if err := deletePrefix(ctx, client, sp.prefix); err != nil {
				return fail(fmt.Errorf("redis at %s: clearing %s*: %w", sp.redacted, sp.prefix, err))
			}
		}
		rs, err := redisstore.New(redisstore.Options{Client: client, Prefix: sp.prefix, TTL: sp.ttl})
		if err != nil {
			return fail(err)
		}
		b.closers = append(b.closers, rs.Close)
		b.redis, st = rs, rs
		if sp.countAttempts {
			b.attempts = redisstore.NewAttempts(client, redisstore.AttemptsOptions{Prefix: sp.prefix})
		}
	case storePostgres:
		pool, err := pgxpool.NewWithConfig(ctx, sp.pg)
		if err != nil {
			return fail(fmt.Errorf("postgres at %s: %w", sp.redacted, err))
		}
		b.closers = append(b.closers, pool.Close)
		b.pool = pool
		pgOpts := pgstore.Options{Pool: pool, Inbox: sp.inbox, Fences: sp.fences}
		if migrate {
			if err := pgstore.Migrate(ctx, pool, pgOpts); err != nil {
				return fail(fmt.Errorf("postgres at %s: %w", sp.redacted, err))
			}
			if err := postgres.Migrate(ctx, pool, sp.table); err != nil {
				return fail(fmt.Errorf("postgres at %s: %w", sp.redacted, err))
			}
		}
		if sp.fresh {
			if _, err := pool.Exec(ctx, "TRUNCATE "+sp.inbox+", "+sp.fences+", "+sp.table); err != nil {
				return fail(fmt.Errorf("postgres at %s: clearing the previous run: %w", sp.redacted, err))
			}
		}
		if _, err := pool.Exec(ctx, "SELECT 1 FROM "+cmp.Or(sp.inbox, pgstore.DefaultInbox)+" LIMIT 0"); err != nil {
			hint := ""
			if !migrate {
				hint = " (create the tables with: ordo store migrate --postgres-dsn ...)"
			}
			return fail(fmt.Errorf("postgres at %s: %w%s", sp.redacted, err, hint))
		}
		ps, err := pgstore.New(pgOpts)
		if err != nil {
			return fail(err)
		}
		b.closers = append(b.closers, ps.Close)
		b.pg, st = ps, ps
	}
	if st != nil {
		b.fencer = st
		b.collector = append(b.collector, store.NewCollector(sp.kind, st))
	}
	if sp.breaker != nil {
		bs, err := guard.NewBreakers(nil) // registered on the consumer's registry by the caller
		if err != nil {
			return fail(err)
		}
		opts := *sp.breaker
		opts.OnStateChange = func(name string, from, to guard.State) {
			log.Warn("circuit breaker", "name", name, "from", from.String(), "to", to.String())
		}
		br, err := bs.New(opts)
		if err != nil {
			return fail(err)
		}
		b.breakers = bs
		b.collector = append(b.collector, bs)
		b.mws = append(b.mws, br.Middleware())
	}
	if sp.rate > 0 {
		name := "processor"
		if sp.breaker != nil {
			name = sp.breaker.Name
		}
		lim, err := guard.NewLimiter(name, sp.rate, sp.burst)
		if err != nil {
			return fail(err)
		}
		b.mws = append(b.mws, lim.Middleware())
	}
	return b, nil
}

// Close releases what openBackends opened, in reverse order.
func (b *backends) Close() {
	if b == nil {
		return
	}
	for i := len(b.closers) - 1; i >= 0; i-- {
		b.closers[i]()
	}
	b.closers = nil
}

// processor builds a store-backed built-in processor on b.
func (b *backends) processor(name string, fc *FileConfig) (ordo.Processor, error) {
	switch name {
	case "redis-ledger":
		return redisledger.New(redisledger.Options{Store: b.redis, Keys: b.spec.keys})
	case "postgres":
		return postgres.New(postgres.Options{Store: b.pg, Table: b.spec.table, Keys: b.spec.keys})
	case "webhook":
		return webhook.New(webhook.Options{URL: fc.WebhookURL, Timeout: fc.WebhookTimeout, Keys: b.spec.keys})
	}
	return nil, fmt.Errorf("%q is not a store-backed processor", name)
}

// deletePrefix deletes every Redis key under prefix.
func deletePrefix(ctx context.Context, c *redis.Client, prefix string) error {
	iter := c.Scan(ctx, 0, prefix+"*", 1000).Iterator()
	var keys []string
	for iter.Next(ctx) {
		keys = append(keys, iter.Val())
		if len(keys) == 1000 {
			if err := c.Del(ctx, keys...).Err(); err != nil {
				return err
			}
			keys = keys[:0]
		}
	}
	if err := iter.Err(); err != nil {
		return err
	}
	if len(keys) > 0 {
		return c.Del(ctx, keys...).Err()
	}
	return nil
}
