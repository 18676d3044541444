package cli

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"maps"
	"net"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/ordokafka/ordo/internal/testenv"
	"github.com/ordokafka/ordo/pkg/devbroker"
	"github.com/ordokafka/ordo/pkg/ordo"
	"github.com/ordokafka/ordo/pkg/store"
	"github.com/ordokafka/ordo/pkg/store/redisstore"
	"github.com/ordokafka/ordo/processors/example"
)

// reprocessFixture is an in-process broker (the one `ordo dev` runs) with
// the demo topic orders (12 partitions, as topics/orders.yaml declares it)
// and group's dead-letter topic, holding n demo events produced as `ordo
// dev --demo`'s generator does (keyed by customer, numbered per customer);
// one in three also carries an event-id header (idPrefix and its number),
// so that both kinds of dedup key are replayed.
func reprocessFixture(t *testing.T, group string, n int, idPrefix string, everyID int) (*devbroker.Broker, *kadm.Client) {
	t.Helper()
	b, err := devbroker.Start(devbroker.Options{Addr: "127.0.0.1:0", Extra: []kfake.Opt{
		kfake.SeedTopics(12, "orders", ordo.DefaultNaming.DLQTopic("orders", group))}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(b.Close)
	cl, err := kgo.NewClient(kgo.SeedBrokers(b.Addr()), kgo.DefaultProduceTopic("orders"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(cl.Close)
	seq := map[string]int64{}
	recs := make([]*kgo.Record, 0, n)
	for i := range n {
		key := fmt.Sprintf("c-%d", (i*7)%50)
		seq[key]++
		val, _ := json.Marshal(example.Event{Customer: key, Seq: seq[key], AmountCents: int64(i * 37 % 10000)})
		r := &kgo.Record{Key: []byte(key), Value: val}
		if everyID > 0 && i%everyID == 0 {
			r.Headers = []kgo.RecordHeader{{Key: "event-id", Value: fmt.Appendf(nil, "%s%d", idPrefix, i)}}
		}
		recs = append(recs, r)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := cl.ProduceSync(ctx, recs...).FirstErr(); err != nil {
		t.Fatal(err)
	}
	return b, kadm.NewClient(cl)
}

// runUntilCommitted runs `ordo run --config` (body) through Main until
// the group has committed n offsets in all, then interrupts it (as SIGINT
// does) and returns its output once it has drained.
func runUntilCommitted(t *testing.T, adm *kadm.Client, body, group string, n int64) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "ordo.yaml")
	if err := os.WriteFile(p, []byte(body), 0o600); err != nil {
		t.Fatal(err)
	}
	var out, errb bytes.Buffer
	sw := &syncWriter{w: &out}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	done := make(chan int, 1)
	go func() { done <- Main(ctx, []string{"run", "--config", p}, sw, &syncWriter{w: &errb}) }()
	deadline := time.Now().Add(30 * time.Second)
	for {
		offs, err := adm.FetchOffsets(context.Background(), group)
		total := int64(0)
		if err == nil {
			offs.Each(func(o kadm.OffsetResponse) { total += max(o.At, 0) })
		}
		if total == n {
			break
		}
		select {
		case code := <-done:
			t.Fatalf("ordo run exited %d before committing %d (committed %d)\n%s\n%s", code, n, total, out.String(), errb.String())
		default:
		}
		if time.Now().After(deadline) {
			cancel()
			<-done
			t.Fatalf("committed %d of %d (err %v)\n%s\n%s", total, n, err, out.String(), errb.String())
		}
		time.Sleep(20 * time.Millisecond)
	}
	cancel()
	if code := <-done; code != 0 {
		t.Fatalf("ordo run exited %d\n%s\n%s", code, out.String(), errb.String())
	}
	return out.String()
}

// storeCounts reads the stop line's store counts.
var storeCountsRe = regexp.MustCompile(`ordo run: stopped\. processed=(\d+) .* applied=(\d+) duplicates=(\d+) fenced=(\d+) failed-writes=(\d+)`)

func storeCounts(t *testing.T, out string) (processed, applied, dups string) {
	t.Helper()
	m := storeCountsRe.FindStringSubmatch(out)
	if m == nil {
		t.Fatalf("no stop line with store counts:\n%s", out)
	}
	if m[4] != "0" || m[5] != "0" {
		t.Errorf("fenced=%s failed-writes=%s, want 0:\n%s", m[4], m[5], out)
	}
	return m[1], m[2], m[3]
}

// redisLedger reads every key of the redis-ledger under prefix: each
// customer's list, its sequence hash, and the violations counter.
func redisLedger(t *testing.T, c *redis.Client, prefix string) map[string]string {
	t.Helper()
	ctx := context.Background()
	out := map[string]string{}
	iter := c.Scan(ctx, 0, prefix+"ledger:*", 1000).Iterator()
	for iter.Next(ctx) {
		k := iter.Val()
		switch typ := c.Type(ctx, k).Val(); typ {
		case "list":
			out[k] = strings.Join(c.LRange(ctx, k, 0, -1).Val(), "\n")
		case "hash":
			h := c.HGetAll(ctx, k).Val()
			fields := slices.Sorted(maps.Keys(h))
			for i, f := range fields {
				fields[i] = f + "=" + h[f]
			}
			out[k] = strings.Join(fields, ",")
		default:
			out[k] = c.Get(ctx, k).Val()
		}
	}
	if err := iter.Err(); err != nil {
		t.Fatal(err)
	}
	return out
}

// The replay test of issue 9: on an in-process broker (pkg/devbroker, the
// broker `ordo dev` runs), `ordo run` with processor redis-ledger applies
// 600 demo events; `ordo replay reset --to-earliest --execute` makes the
// next run deliver all 600 again, and it applies nothing (600 duplicates,
// the Redis ledger unchanged, key for key); a dry run with --reprocess
// counts 600 records and forgets nothing; `--reprocess --execute` forgets
// their 600 keys, and the next run applies the 600 again: each customer's
// list holds its entries twice, in the same order, and the ledger's
// sequence check counts each re-applied event as a violation (600), its
// per-customer sequences unchanged.
//
// `ordo run` beside the broker, rather than `ordo dev`'s own pipeline:
// `ordo dev`'s group cannot be reset while ordo dev runs (the reset
// refuses an active group), and stopping ordo dev stops its in-memory
// broker and its records.
func TestReplayThroughRedisLedgerAppliesNothingTwiceWithoutReprocess(t *testing.T) {
	const n = 600
	name := testenv.Name(t)
	rc := testenv.Redis(t)
	prefix := "ordotest:" + name + ":"
	t.Cleanup(func() { _ = deletePrefix(context.Background(), rc, prefix) })
	redisURL := "redis://" + testenv.RedisAddr(t) + "/0"
	group := "ledger"
	b, adm := reprocessFixture(t, group, n, name+"-", 3)
	body := "brokers: [" + b.Addr() + "]\ngroup: " + group + "\ntopics: [orders]\nprocessor: redis-ledger\n" +
		"redis_url: " + redisURL + "\nstore_prefix: \"" + prefix + "\"\n" +
		"metrics_addr: \"\"\nlog_level: error\nsession_timeout: 6s\nshutdown_timeout: 10s\n"
	dedupKeys := func() int {
		keys, err := rc.Keys(context.Background(), prefix+"dedup:*").Result()
		if err != nil {
			t.Fatal(err)
		}
		return len(keys)
	}

	out := runUntilCommitted(t, adm, body, group, n)
	if p, a, d := storeCounts(t, out); p != "600" || a != "600" || d != "0" {
		t.Fatalf("first run: processed=%s applied=%s duplicates=%s, want 600 600 0", p, a, d)
	}
	first := redisLedger(t, rc, prefix)
	entries := 0
	for k, v := range first {
		if strings.Contains(k, ":list:") {
			entries += len(strings.Split(v, "\n"))
		}
	}
	if entries != n || first[prefix+"ledger:violations"] != "" || dedupKeys() != n {
		t.Fatalf("after the first run: %d ledger entries, violations %q, %d dedup keys; want %d, none, %d", entries, first[prefix+"ledger:violations"], dedupKeys(), n, n)
	}

	reset := []string{"replay", "reset", "--brokers", b.Addr(), "--group", group, "--topic", "orders", "--to-earliest", "--execute"}
	code, rout, rerr := run(reset...)
	if code != 0 || !strings.Contains(rout, "committed 12 partitions of group "+group) {
		t.Fatalf("reset: exit %d\n%s\n%s", code, rout, rerr)
	}
	out = runUntilCommitted(t, adm, body, group, n)
	if p, a, d := storeCounts(t, out); p != "600" || a != "0" || d != "600" {
		t.Errorf("after a rewind: processed=%s applied=%s duplicates=%s, want 600 0 600", p, a, d)
	}
	if again := redisLedger(t, rc, prefix); !maps.Equal(again, first) {
		t.Errorf("the rewind changed the ledger: %d keys before, %d after", len(first), len(again))
	}

	reprocess := append(slices.Clone(reset[:len(reset)-1]), "--reprocess", "--store", "redis", "--redis-url", redisURL, "--store-prefix", prefix)
	code, rout, rerr = run(reprocess...)
	if code != 0 || !strings.Contains(rout, "12 partitions; 600 records, one dedup key each: a dry run forgets nothing") ||
		!strings.Contains(rout, "TOPIC   PARTITION  FROM  TO  RECORDS  FORGOTTEN") || dedupKeys() != n {
		t.Fatalf("dry run with --reprocess: exit %d, %d dedup keys left\n%s\n%s", code, dedupKeys(), rout, rerr)
	}
	code, rout, rerr = run(append(reprocess, "--execute")...)
	if code != 0 || !strings.Contains(rout, "12 partitions; 600 records; 600 dedup keys forgotten") ||
		!strings.Contains(rout, "committed 12 partitions of group "+group) || dedupKeys() != 0 {
		t.Fatalf("--reprocess --execute: exit %d, %d dedup keys left\n%s\n%s", code, dedupKeys(), rout, rerr)
	}
	t.Logf("ordo replay reset --reprocess --execute:\n%s", rout)
	out = runUntilCommitted(t, adm, body, group, n)
	if p, a, d := storeCounts(t, out); p != "600" || a != "600" || d != "0" {
		t.Errorf("after --reprocess: processed=%s applied=%s duplicates=%s, want 600 600 0", p, a, d)
	}
	third := redisLedger(t, rc, prefix)
	if len(third) != len(first)+1 { // the violations counter is new
		t.Errorf("ledger keys: %d, want %d", len(third), len(first)+1)
	}
	for k, v := range first {
		switch {
		case strings.Contains(k, ":list:"):
			if third[k] != v+"\n"+v {
				t.Errorf("%s: want its %d entries twice, in order; got\n%s", k, len(strings.Split(v, "\n")), third[k])
			}
		case strings.HasSuffix(k, ":violations"):
		default: // the sequences: the last offset of each partition, unchanged
			if third[k] != v {
				t.Errorf("%s: %q, want %q", k, third[k], v)
			}
		}
	}
	if v := third[prefix+"ledger:violations"]; v != "600" {
		t.Errorf("violations %q, want 600: each re-applied event is at or below its customer's last offset", v)
	}
}

// The same through the postgres processor: after a rewind the table is
// unchanged, row for row (updated_at included); after --reprocess every
// row is written again (updated_at moves, the values stay). The events
// carry event ids of the test's own, because ordo run's inbox is the
// shared default one.
func TestReplayThroughPostgresAppliesNothingTwiceWithoutReprocess(t *testing.T) {
	const n = 300
	name := testenv.Name(t)
	dsn := testenv.PostgresDSN(t)
	pool := testenv.Postgres(t)
	table := name + "_events"
	m := &StoreMigrateCmd{PostgresDSN: dsn, Table: table, Inbox: "ordo_inbox", Fences: "ordo_fence", Timeout: 30 * time.Second, Out: &bytes.Buffer{}}
	if err := m.Validate(); err != nil {
		t.Fatal(err)
	}
	if err := m.Run(context.Background()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx := context.Background()
		_, _ = pool.Exec(ctx, "DROP TABLE "+table)
		_, _ = pool.Exec(ctx, "DELETE FROM ordo_inbox WHERE key LIKE $1", "id:"+name+"-%")
	})
	group := "ledger-" + name // fence rows are per group: the shared fence table must not mix runs
	b, adm := reprocessFixture(t, group, n, name+"-", 1)
	body := "brokers: [" + b.Addr() + "]\ngroup: " + group + "\ntopics: [orders]\nprocessor: postgres\n" +
		"postgres_dsn: " + dsn + "\npostgres_table: " + table + "\n" +
		"metrics_addr: \"\"\nlog_level: error\nsession_timeout: 6s\nshutdown_timeout: 10s\n"
	type row struct {
		fields string // value and origin
		at     time.Time
	}
	rows := func() map[string]row {
		rs, err := pool.Query(context.Background(), `SELECT key, value, topic, partition, "offset", updated_at FROM `+table)
		if err != nil {
			t.Fatal(err)
		}
		defer rs.Close()
		out := map[string]row{}
		for rs.Next() {
			var k, v []byte
			var topic string
			var p int32
			var o int64
			var at time.Time
			if err := rs.Scan(&k, &v, &topic, &p, &o, &at); err != nil {
				t.Fatal(err)
			}
			out[string(k)] = row{fmt.Sprintf("%s %s/%d/%d", v, topic, p, o), at}
		}
		return out
	}

	out := runUntilCommitted(t, adm, body, group, n)
	if p, a, d := storeCounts(t, out); p != "300" || a != "300" || d != "0" {
		t.Fatalf("first run: processed=%s applied=%s duplicates=%s, want 300 300 0", p, a, d)
	}
	first := rows()
	if len(first) != 50 {
		t.Fatalf("%d rows, want one per customer (50)", len(first))
	}
	reset := []string{"replay", "reset", "--brokers", b.Addr(), "--group", group, "--topic", "orders", "--to-earliest", "--execute"}
	if code, rout, rerr := run(reset...); code != 0 {
		t.Fatalf("reset: exit %d\n%s\n%s", code, rout, rerr)
	}
	out = runUntilCommitted(t, adm, body, group, n)
	if p, a, d := storeCounts(t, out); p != "300" || a != "0" || d != "300" {
		t.Errorf("after a rewind: processed=%s applied=%s duplicates=%s, want 300 0 300", p, a, d)
	}
	if again := rows(); !maps.Equal(again, first) {
		t.Errorf("the rewind changed the table")
	}
	code, rout, rerr := run(append(reset, "--reprocess", "--store", "postgres", "--postgres-dsn", dsn)...)
	if code != 0 || !strings.Contains(rout, "12 partitions; 300 records; 300 dedup keys forgotten") || !strings.Contains(rout, "inbox ordo_inbox") {
		t.Fatalf("--reprocess --execute: exit %d\n%s\n%s", code, rout, rerr)
	}
	out = runUntilCommitted(t, adm, body, group, n)
	if p, a, d := storeCounts(t, out); p != "300" || a != "300" || d != "0" {
		t.Errorf("after --reprocess: processed=%s applied=%s duplicates=%s, want 300 300 0", p, a, d)
	}
	third := rows()
	for k, v := range first {
		if w := third[k]; w.fields != v.fields || !w.at.After(v.at) {
			t.Errorf("%s: %+v -> %+v: want the same row written again (a later updated_at)", k, v, w)
		}
	}
}

// --reprocess and the store flags are checked with the others, before
// anything connects, all at once, exit 2, each error naming its flag; a
// memory store is refused with the reason; no password is printed.
func TestReplayResetReprocessFlags(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	addr := ln.Addr().String()
	base := []string{"replay", "reset", "--brokers", addr, "--group", "g", "--topic", "orders", "--to-earliest"}
	const secret = "s3cretpw"
	cases := []struct {
		name string
		args []string
		want []string
	}{
		{"no store", []string{"--reprocess"}, []string{"--reprocess needs --store redis or --store postgres (with --redis-url or --postgres-dsn)"}},
		{"memory", []string{"--reprocess", "--store", "memory"}, []string{"--store memory cannot be used with --reprocess: a memory store lives inside the process that runs the pipeline"}},
		{"unknown", []string{"--reprocess", "--store", "etcd"}, []string{`--store "etcd": want redis or postgres`}},
		{"store without reprocess", []string{"--store", "redis", "--redis-url", "redis://h:6379", "--dedup-header", "id"},
			[]string{"--store, --redis-url, --dedup-header only serve --reprocess"}},
		{"redis without url, stray flags", []string{"--reprocess", "--store", "redis", "--inbox", "x", "--postgres-dsn", "postgres://u@h/db", "--to-latest"},
			[]string{"--redis-url is required with store redis", "--inbox is a PostgreSQL table: it has no use with --store redis",
				"--postgres-dsn has no use with --store redis", "--to-earliest, --to-latest are exclusive"}},
		{"postgres", []string{"--reprocess", "--store", "postgres", "--postgres-dsn", "postgres://u:" + secret + "@h:notaport/db", "--inbox", "Bad-Name", "--store-prefix", "p:"},
			[]string{"--postgres-dsn (an unparsable URL): not a PostgreSQL connection string (cannot parse `postgres://u:xxxxx@h:notaport/db`", `--inbox "Bad-Name" is not a table name`,
				"--store-prefix is a Redis key prefix: it has no use with --store postgres"}},
		{"redis password", []string{"--reprocess", "--store", "redis", "--redis-url", "redis://:" + secret + "@h:6379/notadb"},
			[]string{"--redis-url redis://:xxxxx@h:6379/notadb"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			code, out, errb := run(append(slices.Clone(base), tc.args...)...)
			if code != 2 {
				t.Fatalf("exit %d, want 2; stderr %q", code, errb)
			}
			for _, w := range tc.want {
				if !strings.Contains(errb, w) {
					t.Errorf("stderr lacks %q:\n%s", w, errb)
				}
			}
			if out != "" || strings.Contains(errb, secret) {
				t.Errorf("printed %q; stderr %q", out, errb)
			}
		})
	}
	_ = ln.(*net.TCPListener).SetDeadline(time.Now().Add(50 * time.Millisecond))
	if c, err := ln.Accept(); err == nil {
		c.Close()
		t.Error("something connected to --brokers")
	}
}

// applyKeys marks the keys of every record of replayBroker's orders
// (3 partitions x 10, no event id: keys at:orders/<p>/<o>) as applied in
// a Redis store under prefix, as a pipeline that read them all would have.
func applyKeys(t *testing.T, rc *redis.Client, prefix string) *redisstore.Store {
	t.Helper()
	st, err := redisstore.New(redisstore.Options{Client: rc, Prefix: prefix})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(st.Close)
	t.Cleanup(func() { _ = deletePrefix(context.Background(), rc, prefix) })
	noop := redisstore.NewScript(`return 1`)
	for p := range 3 {
		for o := range 10 {
			if _, _, err := st.Apply(context.Background(), store.Op{Key: fmt.Sprintf("at:orders/%d/%d", p, o)}, noop, nil); err != nil {
				t.Fatal(err)
			}
		}
	}
	return st
}

func dedupCount(t *testing.T, rc *redis.Client, prefix string) int {
	t.Helper()
	keys, err := rc.Keys(context.Background(), prefix+"dedup:*").Result()
	if err != nil {
		t.Fatal(err)
	}
	return len(keys)
}

// The range is NEW-OFFSET to LOG-END, not NEW-OFFSET to CURRENT-OFFSET:
// a member that stopped while it held orders/0's first record committed
// offset 0 with an offset map of the 9 records it had finished above it;
// the reset clears the map, so those 9 are delivered again, and their
// keys are forgotten too (all 10 of the partition: with CURRENT-OFFSET as
// the end, none would be, and the 9 would be skipped as duplicates).
func TestReprocessForgetsWhatTheGroupFinishedAboveItsCommit(t *testing.T) {
	rc := testenv.Redis(t)
	prefix := "ordotest:" + testenv.Name(t) + ":"
	applyKeys(t, rc, prefix)
	b, adm := replayBroker(t)
	commitAt(t, adm, "g", map[int32]int64{0: 0}, "ordo2:0:AQIJ")
	commitAt(t, adm, "g", map[int32]int64{1: 10, 2: 10}, "")
	url := "redis://" + testenv.RedisAddr(t) + "/0"
	code, out, errb := run("replay", "reset", "--brokers", b.Addr(), "--group", "g", "--topic", "orders:0,1", "--shift-by", "-3",
		"--execute", "--reprocess", "--store", "redis", "--redis-url", url, "--store-prefix", prefix)
	if code != 0 {
		t.Fatalf("exit %d\n%s\n%s", code, out, errb)
	}
	for _, w := range []string{
		"orders  0          0     10  10       10",
		"orders  1          7     10  3        3",
		"2 partitions; 13 records; 13 dedup keys forgotten",
	} {
		if !strings.Contains(out, w) {
			t.Errorf("output lacks %q:\n%s", w, out)
		}
	}
	if n := dedupCount(t, rc, prefix); n != 17 { // orders/1's 0-6 and orders/2's 10
		t.Errorf("%d dedup keys left, want 17", n)
	}
}

// With a member in the group, --reprocess --execute refuses before it
// touches the store: every key is still there, nothing is committed.
func TestReprocessRefusesAnActiveGroupFirst(t *testing.T) {
	rc := testenv.Redis(t)
	prefix := "ordotest:" + testenv.Name(t) + ":"
	applyKeys(t, rc, prefix)
	b, adm := replayBroker(t)
	commitAt(t, adm, "g", map[int32]int64{0: 10, 1: 10, 2: 10}, "")
	member, err := kgo.NewClient(kgo.SeedBrokers(b.Addr()), kgo.ConsumerGroup("g"), kgo.ConsumeTopics("orders"),
		kgo.SessionTimeout(time.Second), kgo.HeartbeatInterval(100*time.Millisecond))
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	go func() {
		defer close(done)
		for !member.PollFetches(context.Background()).IsClientClosed() {
		}
	}()
	defer func() { member.Close(); <-done }()
	deadline := time.Now().Add(10 * time.Second)
	for {
		if d, err := adm.DescribeGroups(context.Background(), "g"); err == nil && d["g"].State == "Stable" {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the member did not join")
		}
		time.Sleep(20 * time.Millisecond)
	}
	code, out, errb := run("replay", "reset", "--brokers", b.Addr(), "--group", "g", "--topic", "orders", "--to-earliest",
		"--execute", "--reprocess", "--store", "redis", "--redis-url", "redis://"+testenv.RedisAddr(t)+"/0", "--store-prefix", prefix)
	if code != 1 || !strings.Contains(errb, `group "g" has 1 active member`) || strings.Contains(out, "--reprocess:") {
		t.Errorf("exit %d\n%s\n%s", code, out, errb)
	}
	if n := dedupCount(t, rc, prefix); n != 30 {
		t.Errorf("%d dedup keys left, want all 30", n)
	}
	for p, o := range committed(t, adm, "g") {
		if o.At != 10 {
			t.Errorf("orders/%d moved to %d", p, o.At)
		}
	}
}

// When the commit fails after the keys were forgotten (here the broker
// answers UNKNOWN_MEMBER_ID, as when a member joins between the check and
// the commit), the error says that the keys were forgotten and the records
// not rewound, and to run the same command again; run again, it forgets
// nothing more (the keys are gone) and commits.
func TestReprocessCommitFailsAfterForget(t *testing.T) {
	rc := testenv.Redis(t)
	prefix := "ordotest:" + testenv.Name(t) + ":"
	applyKeys(t, rc, prefix)
	b, adm := replayBroker(t)
	commitAt(t, adm, "g", map[int32]int64{0: 10, 1: 10, 2: 10}, "")
	b.ControlKey(int16(kmsg.OffsetCommit), func(kreq kmsg.Request) (kmsg.Response, error, bool) {
		req := kreq.(*kmsg.OffsetCommitRequest)
		resp := req.ResponseKind().(*kmsg.OffsetCommitResponse)
		for _, t := range req.Topics {
			rt := kmsg.NewOffsetCommitResponseTopic()
			rt.Topic, rt.TopicID = t.Topic, t.TopicID
			for _, p := range t.Partitions {
				rp := kmsg.NewOffsetCommitResponseTopicPartition()
				rp.Partition, rp.ErrorCode = p.Partition, kerr.UnknownMemberID.Code
				rt.Partitions = append(rt.Partitions, rp)
			}
			resp.Topics = append(resp.Topics, rt)
		}
		return resp, nil, true // once
	})
	args := []string{"replay", "reset", "--brokers", b.Addr(), "--group", "g", "--topic", "orders", "--to-earliest",
		"--execute", "--reprocess", "--store", "redis", "--redis-url", "redis://" + testenv.RedisAddr(t) + "/0", "--store-prefix", prefix}
	code, out, errb := run(args...)
	for _, w := range []string{"orders/0: the broker refused the commit: UNKNOWN_MEMBER_ID",
		"the dedup keys of 30 records were forgotten (30 were in the store), but the reset was not committed: the records were not rewound",
		"run the same command again"} {
		if code != 1 || !strings.Contains(errb, w) {
			t.Errorf("exit %d, stderr lacks %q:\n%s\n%s", code, w, out, errb)
		}
	}
	if n := dedupCount(t, rc, prefix); n != 0 {
		t.Errorf("%d dedup keys left, want 0", n)
	}
	if c := committed(t, adm, "g"); c[0].At != 10 {
		t.Errorf("orders/0 moved to %d", c[0].At)
	}
	code, out, errb = run(args...)
	if code != 0 || !strings.Contains(out, "3 partitions; 30 records; 0 dedup keys forgotten") || !strings.Contains(out, "committed 3 partitions of group g") {
		t.Errorf("again: exit %d\n%s\n%s", code, out, errb)
	}
	for p, o := range committed(t, adm, "g") {
		if o.At != 0 {
			t.Errorf("orders/%d at %d, want 0", p, o.At)
		}
	}
}

// A store that does not answer: --execute fails before forgetting or
// committing anything, and a dry run says that --execute would fail; the
// password of its URL or DSN is printed as xxxxx, never as itself.
func TestReprocessUnreachableStoreShowsNoPassword(t *testing.T) {
	const secret = "s3cretpw"
	b, adm := replayBroker(t)
	commitAt(t, adm, "g", map[int32]int64{0: 10, 1: 10, 2: 10}, "")
	for _, st := range [][]string{
		{"--store", "redis", "--redis-url", "redis://:" + secret + "@127.0.0.1:1/0"},
		{"--store", "postgres", "--postgres-dsn", "postgres://u:" + secret + "@127.0.0.1:1/db?sslmode=disable"},
	} {
		args := append([]string{"replay", "reset", "--brokers", b.Addr(), "--group", "g", "--topic", "orders", "--to-earliest",
			"--reprocess", "--connect-timeout", "2s"}, st...)
		code, out, errb := run(args...)
		if code != 0 || !strings.Contains(errb, "note: --execute will fail now: ") || !strings.Contains(errb, "xxxxx@127.0.0.1:1") {
			t.Errorf("%s dry run: exit %d\n%s\n%s", st[1], code, out, errb)
		}
		if strings.Contains(out+errb, secret) {
			t.Errorf("%s dry run printed the password:\n%s\n%s", st[1], out, errb)
		}
		code, out, errb = run(append(args, "--execute")...)
		if code != 1 || !strings.Contains(errb, "nothing was forgotten and the reset was not committed") || !strings.Contains(errb, "xxxxx@127.0.0.1:1") {
			t.Errorf("%s --execute: exit %d\n%s\n%s", st[1], code, out, errb)
		}
		if strings.Contains(out+errb, secret) {
			t.Errorf("%s --execute printed the password:\n%s\n%s", st[1], out, errb)
		}
		if c := committed(t, adm, "g"); c[0].At != 10 {
			t.Errorf("orders/0 moved to %d", c[0].At)
		}
	}
}
