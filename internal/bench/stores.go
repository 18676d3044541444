package bench

import (
	"context"
	"fmt"
	"io"
	"os"
	"runtime"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/redis/go-redis/v9"
	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/ordokafka/ordo/pkg/ordo"
	"github.com/ordokafka/ordo/pkg/store/pgstore"
	"github.com/ordokafka/ordo/pkg/store/redisstore"
	"github.com/ordokafka/ordo/processors/postgres"
	"github.com/ordokafka/ordo/processors/redisledger"
)

// The services the store scenarios run against, from the environment (the
// variables the tests read); unset, the scenario is skipped with a note.
const (
	RedisAddrVar   = "ORDO_TEST_REDIS_ADDR"
	PostgresDSNVar = "ORDO_TEST_POSTGRES_DSN"
)

// StoreConfig shapes a store scenario: a topic of Records records on
// Partitions partitions and Keys keys, consumed by Ordo with a store-backed
// processor and by a hand-written franz-go loop doing the same writes per
// poll, one side at a time, alternated, Rounds times, in one process with
// the broker (kfake).
type StoreConfig struct {
	// Records, Partitions, Keys and ValueBytes shape the topic. Defaults
	// 200,000, 12, 10,000 (as the other scenarios) and 100.
	Records, Partitions, Keys, ValueBytes int
	// Rounds is the number of alternations. Default 3.
	Rounds int
	// WorkersPerPartition is Ordo's (I/O-bound processors want more than
	// the default 4). Default 32.
	WorkersPerPartition int
	Seed                uint64
	Progress            io.Writer
}

func (c StoreConfig) withDefaults() StoreConfig {
	def := func(v *int, d int) {
		if *v == 0 {
			*v = d
		}
	}
	def(&c.Records, 200_000)
	def(&c.Partitions, 12)
	def(&c.Keys, 10_000)
	def(&c.ValueBytes, 100)
	def(&c.Rounds, 3)
	def(&c.WorkersPerPartition, 32)
	if c.Progress == nil {
		c.Progress = io.Discard
	}
	return c
}

// StoreResult is what a store scenario measured.
type StoreResult struct {
	Records            int
	OrdoRuns, RawRuns  []float64 // records/s, each round
	OrdoRate, RawRate  float64   // medians
	Ratio              float64
	DirectRTT          time.Duration // median of one write sent alone, by hand (no pipeline)
	ApplyAlone         time.Duration // median of one write through the store alone (the coalescer's own cost)
	ApplyP50, ApplyP99 time.Duration // latency of a write through the store during Ordo's runs
}

// fetchMaxWait is both sides' kgo.FetchMaxWait. With franz-go's 5 s,
// a partition that Ordo paused (its in-flight budget full) and resumed
// waited for the fetch in flight to time out: measured at 200,000 records
// and 1,000 keys, Ordo ran at about 28,000 records/s in half of the runs
// and 55,000 in the others; with 100 ms, 42,000 to 57,000. The raw loop
// never pauses; it gets the same setting.
const fetchMaxWait = 100 * time.Millisecond

// storeSide runs one side of a store scenario: it consumes topic with
// group until n records are applied, and returns how long that took.
type storeSide func(ctx context.Context, addr, topic, group string, round int) (time.Duration, error)

func runStoreScenario(ctx context.Context, name string, cfg StoreConfig, ordoSide, rawSide storeSide) (StoreResult, error) {
	res := StoreResult{Records: cfg.Records}
	cluster, err := kfake.NewCluster(kfake.NumBrokers(1))
	if err != nil {
		return res, err
	}
	defer cluster.Close()
	addr := cluster.ListenAddrs()[0]
	id := strconv.FormatInt(time.Now().UnixNano(), 36)
	topic := "bench-" + name + "-" + id
	took, err := produceNoop(ctx, addr, topic, NoopConfig{Records: cfg.Records, Partitions: cfg.Partitions, Keys: cfg.Keys, ValueBytes: cfg.ValueBytes, Seed: cfg.Seed})
	if err != nil {
		return res, err
	}
	fmt.Fprintf(cfg.Progress, "%s: produced %s records in %.2fs\n", name, groupDigits(float64(cfg.Records)), took.Seconds())
	for round := range cfg.Rounds {
		sides := []string{SideRaw, SideOrdo}
		if round%2 == 1 {
			sides = []string{SideOrdo, SideRaw}
		}
		for _, side := range sides {
			runtime.GC()
			group := fmt.Sprintf("bench-%s-%s-%d-%s", name, side, round+1, id)
			run := rawSide
			if side == SideOrdo {
				run = ordoSide
			}
			d, err := run(ctx, addr, topic, group, round)
			if err != nil {
				return res, fmt.Errorf("%s side: %w", side, err)
			}
			rate := float64(cfg.Records) / d.Seconds()
			fmt.Fprintf(cfg.Progress, "%s: round %d %-4s %s records/s (%.2fs)\n", name, round+1, side, groupDigits(rate), d.Seconds())
			if side == SideRaw {
				res.RawRuns = append(res.RawRuns, rate)
			} else {
				res.OrdoRuns = append(res.OrdoRuns, rate)
			}
		}
	}
	res.OrdoRate, res.RawRate = median(res.OrdoRuns), median(res.RawRuns)
	res.Ratio = ratio(res.OrdoRate, res.RawRate)
	return res, nil
}

// latencies keeps a sample of write latencies.
type latencies struct {
	mu sync.Mutex
	n  int
	v  []time.Duration
}

func (l *latencies) add(d time.Duration) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.n++
	if l.n%8 == 0 && len(l.v) < 200_000 {
		l.v = append(l.v, d)
	}
}

func (l *latencies) quantile(q float64) time.Duration {
	l.mu.Lock()
	defer l.mu.Unlock()
	if len(l.v) == 0 {
		return 0
	}
	s := slices.Clone(l.v)
	slices.Sort(s)
	return s[min(len(s)-1, int(q*float64(len(s))))]
}

func medianDuration(ds []time.Duration) time.Duration {
	s := slices.Clone(ds)
	slices.Sort(s)
	return s[len(s)/2]
}

// ordoStoreSide runs Ordo with proc (built per round) until n records are
// applied, with fencer as its Fencer, timing each call into lat.
func ordoStoreSide(ctx context.Context, addr, topic, group string, n int64, workers int, proc ordo.Processor, fencer ordo.Fencer, lat *latencies) (time.Duration, error) {
	var applied atomic.Int64
	done := make(chan struct{})
	timed := ordo.ProcessorFunc(func(ctx context.Context, r *kgo.Record) error {
		t0 := time.Now()
		err := proc.Process(ctx, r)
		lat.add(time.Since(t0))
		if err == nil && applied.Add(1) == n {
			close(done)
		}
		return err
	})
	cons, err := ordo.New(ordo.Config{
		Brokers:             []string{addr},
		Group:               group,
		Topics:              []string{topic},
		Processor:           timed,
		ProcessorName:       "bench",
		WorkersPerPartition: workers,
		MaxWorkers:          1024,
		Fencer:              fencer,
		KgoOpts:             []kgo.Opt{kgo.FetchMaxWait(fetchMaxWait)},
	})
	if err != nil {
		return 0, err
	}
	start := time.Now()
	if err := cons.Start(context.WithoutCancel(ctx)); err != nil {
		return 0, err
	}
	defer func() {
		sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 30*time.Second)
		defer cancel()
		_ = cons.Stop(sctx)
	}()
	select {
	case <-done:
		return time.Since(start), nil
	case <-ctx.Done():
		return 0, fmt.Errorf("applied %d of %d records: %w", applied.Load(), n, ctx.Err())
	}
}

// RedisLedger compares the redis-ledger processor with a hand-written
// franz-go + go-redis loop that applies the same Lua script (the store's
// checks around the ledger's append) to each poll's records in one
// pipeline.
func RedisLedger(ctx context.Context, redisAddr string, cfg StoreConfig) (StoreResult, error) {
	cfg = cfg.withDefaults()
	client := redis.NewClient(&redis.Options{Addr: redisAddr, PoolSize: 64})
	defer client.Close()
	if err := client.Ping(ctx).Err(); err != nil {
		return StoreResult{}, fmt.Errorf("redis at %s: %w", redisAddr, err)
	}
	run := strconv.FormatInt(time.Now().UnixNano(), 36)
	prefix := func(side string, round int) string { return fmt.Sprintf("ordo-bench:%s:%s%d:", run, side, round) }
	defer func() { _ = deleteKeys(context.WithoutCancel(ctx), client, "ordo-bench:"+run+":*") }()
	lat := &latencies{}
	n := int64(cfg.Records)

	ordoSide := func(ctx context.Context, addr, topic, group string, round int) (time.Duration, error) {
		st, err := redisstore.New(redisstore.Options{Client: client, Prefix: prefix("o", round)})
		if err != nil {
			return 0, err
		}
		defer st.Close()
		ledger, err := redisledger.New(redisledger.Options{Store: st})
		if err != nil {
			return 0, err
		}
		return ordoStoreSide(ctx, addr, topic, group, n, cfg.WorkersPerPartition, ledger, st, lat)
	}
	script := redis.NewScript(redisledger.Script().Source())
	rawSide := func(ctx context.Context, addr, topic, group string, round int) (time.Duration, error) {
		// The store only names the keys here; the loop writes by hand.
		st, err := redisstore.New(redisstore.Options{Client: client, Prefix: prefix("r", round)})
		if err != nil {
			return 0, err
		}
		defer st.Close()
		ledger, _ := redisledger.New(redisledger.Options{Store: st})
		ttl := strconv.FormatInt(redisstore.DefaultTTL.Milliseconds(), 10)
		var mu sync.Mutex
		tokens := map[int32]int64{}
		start := time.Now()
		cl, err := kgo.NewClient(kgo.SeedBrokers(addr), kgo.ConsumerGroup(group), kgo.ConsumeTopics(topic), kgo.FetchMaxWait(fetchMaxWait),
			kgo.OnPartitionsAssigned(func(ctx context.Context, _ *kgo.Client, m map[string][]int32) {
				for t, ps := range m {
					for _, p := range ps {
						tok, err := client.Incr(ctx, st.FenceKey(group, t, p)).Result()
						if err == nil {
							mu.Lock()
							tokens[p] = tok
							mu.Unlock()
						}
					}
				}
			}))
		if err != nil {
			return 0, err
		}
		defer cl.Close()
		if err := script.Load(ctx, client).Err(); err != nil {
			return 0, err
		}
		var applied int64
		for applied < n {
			fetches := cl.PollRecords(ctx, 10000)
			if ctx.Err() != nil {
				return 0, ctx.Err()
			}
			type write struct {
				keys []string
				args []any
			}
			var writes []write
			mu.Lock()
			fetches.EachRecord(func(r *kgo.Record) {
				o := ordo.Origin{Topic: r.Topic, Partition: r.Partition, Offset: r.Offset}
				keys, args := ledger.Args(r, o)
				k := append([]string{st.DedupKey("at:" + r.Topic + "/" + strconv.Itoa(int(r.Partition)) + "/" + strconv.FormatInt(r.Offset, 10)),
					st.FenceKey(group, r.Topic, r.Partition)}, keys...)
				a := append([]any{tokens[r.Partition], ttl}, args...)
				writes = append(writes, write{k, a})
			})
			mu.Unlock()
			if len(writes) == 0 {
				continue
			}
			var cmds []*redis.Cmd
			for try := 0; ; try++ {
				pipe := client.Pipeline()
				cmds = cmds[:0]
				for _, w := range writes {
					cmds = append(cmds, script.EvalSha(ctx, pipe, w.keys, w.args...))
				}
				_, err := pipe.Exec(ctx)
				if err != nil && redis.HasErrorPrefix(err, "NOSCRIPT") && try == 0 {
					// The server forgot the script: load it, send the poll
					// again (what applied is a duplicate now).
					if err := script.Load(ctx, client).Err(); err != nil {
						return 0, err
					}
					continue
				}
				if err != nil {
					return 0, err
				}
				break
			}
			for _, c := range cmds {
				if v, _ := c.Slice(); len(v) == 0 || (v[0] != int64(0) && v[0] != int64(1)) {
					return 0, fmt.Errorf("unexpected reply %v", v)
				}
			}
			applied += int64(len(cmds))
		}
		return time.Since(start), nil
	}
	res, err := runStoreScenario(ctx, ScenarioRedisLedger, cfg, ordoSide, rawSide)
	if err != nil {
		return res, err
	}
	res.ApplyP50, res.ApplyP99 = lat.quantile(0.5), lat.quantile(0.99)
	// One write alone: by hand (one EVALSHA round trip), then through the
	// store (the coalescer's hand-off added).
	st, err := redisstore.New(redisstore.Options{Client: client, Prefix: prefix("lat", 0)})
	if err != nil {
		return res, err
	}
	defer st.Close()
	ledger, _ := redisledger.New(redisledger.Options{Store: st})
	var direct, alone []time.Duration
	for i := range 500 {
		r := &kgo.Record{Topic: "lat", Key: []byte("k"), Value: []byte("v"), Offset: int64(i)}
		keys, args := ledger.Args(r, ordo.Origin{Topic: "lat", Offset: int64(i)})
		t0 := time.Now()
		if err := script.EvalSha(ctx, client, append([]string{st.DedupKey("d" + strconv.Itoa(i)), st.FenceKey("g", "lat", 0)}, keys...),
			append([]any{0, "60000"}, args...)...).Err(); err != nil {
			return res, err
		}
		direct = append(direct, time.Since(t0))
		r.Offset += 1000
		t0 = time.Now()
		if err := ledger.Process(ctx, r); err != nil {
			return res, err
		}
		alone = append(alone, time.Since(t0))
	}
	res.DirectRTT, res.ApplyAlone = medianDuration(direct), medianDuration(alone)
	return res, nil
}

func deleteKeys(ctx context.Context, c *redis.Client, pattern string) error {
	iter := c.Scan(ctx, 0, pattern, 5000).Iterator()
	var keys []string
	flush := func() error {
		if len(keys) == 0 {
			return nil
		}
		err := c.Unlink(ctx, keys...).Err()
		keys = keys[:0]
		return err
	}
	for iter.Next(ctx) {
		keys = append(keys, iter.Val())
		if len(keys) == 5000 {
			if err := flush(); err != nil {
				return err
			}
		}
	}
	if err := flush(); err != nil {
		return err
	}
	return iter.Err()
}

// PostgresInbox compares the postgres processor (inbox, fence check and
// upsert per record, coalesced into batch transactions) with a
// hand-written loop that writes each poll's records in one pgx batch in one
// transaction: the fence rows locked, and per record one statement that
// inserts the inbox row and upserts the record if the insert did.
func PostgresInbox(ctx context.Context, dsn string, cfg StoreConfig) (StoreResult, error) {
	cfg = cfg.withDefaults()
	pcfg, err := pgxpool.ParseConfig(dsn)
	if err != nil {
		return StoreResult{}, fmt.Errorf("%s: %w", PostgresDSNVar, err)
	}
	pcfg.MaxConns = 16
	pool, err := pgxpool.NewWithConfig(ctx, pcfg)
	if err != nil {
		return StoreResult{}, err
	}
	defer pool.Close()
	if err := pool.Ping(ctx); err != nil {
		return StoreResult{}, fmt.Errorf("postgres: %w", err)
	}
	run := strconv.FormatInt(time.Now().UnixNano(), 36)
	var tables []string
	defer func() {
		if len(tables) > 0 {
			_, _ = pool.Exec(context.WithoutCancel(ctx), "DROP TABLE IF EXISTS "+joinNames(tables))
		}
	}()
	prepare := func(side string, round int) (pgstore.Options, string, error) {
		base := fmt.Sprintf("ordo_bench_%s_%s%d", run, side, round)
		opts := pgstore.Options{Pool: pool, Inbox: base + "_inbox", Fences: base + "_fence"}
		table := base + "_events"
		tables = append(tables, opts.Inbox, opts.Fences, table)
		if err := pgstore.Migrate(ctx, pool, opts); err != nil {
			return opts, "", err
		}
		return opts, table, postgres.Migrate(ctx, pool, table)
	}
	lat := &latencies{}
	n := int64(cfg.Records)
	ordoSide := func(ctx context.Context, addr, topic, group string, round int) (time.Duration, error) {
		opts, table, err := prepare("o", round)
		if err != nil {
			return 0, err
		}
		st, err := pgstore.New(opts)
		if err != nil {
			return 0, err
		}
		defer st.Close()
		proc, err := postgres.New(postgres.Options{Store: st, Table: table})
		if err != nil {
			return 0, err
		}
		return ordoStoreSide(ctx, addr, topic, group, n, cfg.WorkersPerPartition, proc, st, lat)
	}
	rawSide := func(ctx context.Context, addr, topic, group string, round int) (time.Duration, error) {
		opts, table, err := prepare("r", round)
		if err != nil {
			return 0, err
		}
		in, fe, ev := pgx.Identifier{opts.Inbox}.Sanitize(), pgx.Identifier{opts.Fences}.Sanitize(), pgx.Identifier{table}.Sanitize()
		fenceSQL := "INSERT INTO " + fe + " AS f (grp, topic, partition, token) VALUES ($1, $2, $3, 1) " +
			"ON CONFLICT (grp, topic, partition) DO UPDATE SET token = f.token + 1 RETURNING token"
		lockSQL := "SELECT token FROM " + fe + " WHERE grp = $1 AND topic = $2 AND partition = $3 FOR SHARE"
		writeSQL := "WITH ins AS (INSERT INTO " + in + " (key) VALUES ($1) ON CONFLICT DO NOTHING RETURNING 1) " +
			"INSERT INTO " + ev + ` (key, value, topic, partition, "offset", updated_at) SELECT $2, $3, $4, $5, $6, now() WHERE EXISTS (SELECT 1 FROM ins) ` +
			`ON CONFLICT (key) DO UPDATE SET value = EXCLUDED.value, topic = EXCLUDED.topic, partition = EXCLUDED.partition, "offset" = EXCLUDED."offset", updated_at = now()`
		var mu sync.Mutex
		tokens := map[int32]int64{}
		start := time.Now()
		cl, err := kgo.NewClient(kgo.SeedBrokers(addr), kgo.ConsumerGroup(group), kgo.ConsumeTopics(topic), kgo.FetchMaxWait(fetchMaxWait),
			kgo.OnPartitionsAssigned(func(ctx context.Context, _ *kgo.Client, m map[string][]int32) {
				for t, ps := range m {
					for _, p := range ps {
						var tok int64
						if err := pool.QueryRow(ctx, fenceSQL, group, t, p).Scan(&tok); err == nil {
							mu.Lock()
							tokens[p] = tok
							mu.Unlock()
						}
					}
				}
			}))
		if err != nil {
			return 0, err
		}
		defer cl.Close()
		var applied int64
		for applied < n {
			fetches := cl.PollRecords(ctx, 10000)
			if ctx.Err() != nil {
				return 0, ctx.Err()
			}
			var recs []*kgo.Record
			fetches.EachRecord(func(r *kgo.Record) { recs = append(recs, r) })
			if len(recs) == 0 {
				continue
			}
			err := pgx.BeginFunc(ctx, pool, func(tx pgx.Tx) error {
				b := &pgx.Batch{}
				parts := map[int32]bool{}
				for _, r := range recs {
					if !parts[r.Partition] {
						parts[r.Partition] = true
						b.Queue(lockSQL, group, r.Topic, r.Partition)
					}
					key := "at:" + r.Topic + "/" + strconv.Itoa(int(r.Partition)) + "/" + strconv.FormatInt(r.Offset, 10)
					b.Queue(writeSQL, key, r.Key, r.Value, r.Topic, r.Partition, r.Offset)
				}
				return tx.SendBatch(ctx, b).Close()
			})
			if err != nil {
				return 0, err
			}
			applied += int64(len(recs))
		}
		return time.Since(start), nil
	}
	res, err := runStoreScenario(ctx, ScenarioPostgresInbox, cfg, ordoSide, rawSide)
	res.ApplyP50, res.ApplyP99 = lat.quantile(0.5), lat.quantile(0.99)
	return res, err
}

func joinNames(names []string) string {
	out := ""
	for i, n := range names {
		if i > 0 {
			out += ", "
		}
		out += pgx.Identifier{n}.Sanitize()
	}
	return out
}

// skipped is the result of a store scenario whose service is not set.
func skipped(name, variable string) Result {
	return Result{Name: name, Unit: unitRecordsPerSecond, Skipped: variable + " is not set: set it to run " + name}
}

func runRedisLedger(ctx context.Context, opts Options) (Result, error) {
	addr := os.Getenv(RedisAddrVar)
	if addr == "" {
		return skipped(ScenarioRedisLedger, RedisAddrVar), nil
	}
	cfg := StoreConfig{Records: pick(opts.StoreRecords, quickStoreRecords, 0, opts.Quick), Rounds: pick(opts.Rounds, quickNoopRounds, 0, opts.Quick),
		Seed: opts.Seed, Progress: opts.Progress}
	sr, err := RedisLedger(ctx, addr, cfg)
	if err != nil {
		return Result{}, err
	}
	return storeResult(ScenarioRedisLedger, sr, cfg.withDefaults(),
		fmt.Sprintf("redis-ledger through the Redis store (one Lua script per record, coalesced into pipelines) vs a franz-go poll loop applying the same script to each poll's records in one go-redis pipeline; "+
			"a write alone: %s by hand, %s through the store; during Ordo's runs p50 %s, p99 %s",
			us(sr.DirectRTT), us(sr.ApplyAlone), us(sr.ApplyP50), us(sr.ApplyP99))), nil
}

func runPostgresInbox(ctx context.Context, opts Options) (Result, error) {
	dsn := os.Getenv(PostgresDSNVar)
	if dsn == "" {
		return skipped(ScenarioPostgresInbox, PostgresDSNVar), nil
	}
	cfg := StoreConfig{Records: pick(opts.StoreRecords, quickStoreRecords/2, 100_000, opts.Quick), Rounds: pick(opts.Rounds, quickNoopRounds, 0, opts.Quick),
		Seed: opts.Seed, Progress: opts.Progress}
	sr, err := PostgresInbox(ctx, dsn, cfg)
	if err != nil {
		return Result{}, err
	}
	return storeResult(ScenarioPostgresInbox, sr, cfg.withDefaults(),
		"postgres processor through the PostgreSQL store (inbox row, fence check and upsert per record, coalesced into batch transactions) vs a franz-go poll loop writing each poll's records in one pgx batch in one transaction; "+
			fmt.Sprintf("write latency during Ordo's runs p50 %s, p99 %s", us(sr.ApplyP50), us(sr.ApplyP99))), nil
}

func storeResult(name string, sr StoreResult, cfg StoreConfig, detail string) Result {
	r := Result{
		Name: name, Value: sr.OrdoRate, Baseline: sr.RawRate, Ratio: sr.Ratio, Unit: unitRecordsPerSecond, Records: sr.Records,
		Detail: fmt.Sprintf("%s; median of %d rounds, alternated; %d partitions, %d keys, %d-byte values, %d workers per partition; broker (kfake) in this process",
			detail, cfg.Rounds, cfg.Partitions, cfg.Keys, cfg.ValueBytes, cfg.WorkersPerPartition),
		WriteP50Us: float64(sr.ApplyP50.Microseconds()), WriteP99Us: float64(sr.ApplyP99.Microseconds()),
		DirectRTTUs: float64(sr.DirectRTT.Microseconds()), WriteAloneUs: float64(sr.ApplyAlone.Microseconds()),
	}
	for _, v := range sr.OrdoRuns {
		r.OrdoRuns = append(r.OrdoRuns, float64(int64(v)))
	}
	for _, v := range sr.RawRuns {
		r.RawRuns = append(r.RawRuns, float64(int64(v)))
	}
	return r
}

func us(d time.Duration) string { return strconv.FormatInt(d.Microseconds(), 10) + " µs" }
