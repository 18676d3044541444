package cli

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/ordokafka/ordo/internal/testenv"
	"github.com/ordokafka/ordo/pkg/devbroker"
	"github.com/ordokafka/ordo/pkg/ordo"
)

// The store, breaker and rate-limit keys are checked with the others,
// before anything connects, all reported at once, each named as written.
func TestRunStoreKeysCheckedBeforeConnecting(t *testing.T) {
	cases := []struct {
		name string
		file string
		env  []string
		want []string
	}{
		{"unknown store", baseFile + "store: bogus\n", nil,
			[]string{`store: "bogus": want memory, redis or postgres`}},
		{"store that does not fit", strings.Replace(baseFile, "processor: log", "processor: redis-ledger", 1) + "store: memory\nredis_url: redis://h:6379\n", nil,
			[]string{`store: "memory" does not fit processor redis-ledger: want redis`}},
		{"missing and malformed", strings.Replace(baseFile, "processor: log", "processor: redis-ledger", 1), []string{"ORDO_RATE_LIMIT_PER_SECOND=fast", "ORDO_BREAKER_FAILURES=-1"},
			[]string{`redis_url: is required with store redis`, `ORDO_RATE_LIMIT_PER_SECOND: want a number, got "fast"`, `ORDO_BREAKER_FAILURES: must be > 0, got -1`}},
		{"bad url", strings.Replace(baseFile, "processor: log", "processor: redis-ledger", 1) + "redis_url: http://h:6379\ndedup_ttl: -1s\n", nil,
			[]string{`redis_url: http://h:6379: redis: invalid URL scheme: http`, `dedup_ttl: must not be negative, got -1s`}},
		{"webhook", strings.Replace(baseFile, "processor: log", "processor: webhook", 1) + "webhook_timeout: -1s\n", nil,
			[]string{`webhook_url: is required with processor webhook (set webhook_url in the --config file or with ORDO_WEBHOOK_URL or --webhook-url)`, `webhook_timeout: must not be negative`}},
		{"postgres table", strings.Replace(baseFile, "processor: log", "processor: postgres", 1) + "postgres_dsn: postgres://u@h/db\npostgres_table: Orders-2\n", nil,
			[]string{`postgres_table: "Orders-2" is not a table name`}},
		{"attempts outside redis", baseFile + "store: memory\ncount_attempts: true\n", nil,
			[]string{`count_attempts: needs store redis (the counts must outlive the process), got store "memory"`}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			_, _, err := loadRun(t, tc.file, tc.env)
			if err == nil {
				t.Fatal("no error")
			}
			for _, w := range tc.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("errors lack %q:\n%s", w, err)
				}
			}
			assertNoGoNames(t, err)
		})
	}
}

// A password in redis_url, postgres_dsn or webhook_url is never printed:
// not in a validation error, not in a connection error, not in the
// command's output or logs.
func TestStorePasswordsNeverPrinted(t *testing.T) {
	const secret = "s3cretpw"
	check := func(t *testing.T, what string, texts ...string) {
		t.Helper()
		for _, s := range texts {
			if strings.Contains(s, secret) {
				t.Errorf("%s shows the password: %s", what, s)
			}
		}
	}
	for _, file := range []string{
		"processor: redis-ledger\nredis_url: redis://:" + secret + "@h:6379/notadb\n",
		"processor: redis-ledger\nredis_url: redis://user:" + secret + "@h:6379/0?dial_timeout=nope\n",
		"processor: postgres\npostgres_dsn: host=h password=" + secret + " port=notaport\n",
		"processor: postgres\npostgres_dsn: postgres://u:" + secret + "@h:notaport/db\n",
		"processor: webhook\nwebhook_url: ftp://u:" + secret + "@h/x\n",
	} {
		body := strings.Replace(baseFile, "processor: log\n", file, 1)
		_, _, err := loadRun(t, body, nil)
		if err == nil {
			t.Fatalf("%s: no error", file)
		}
		check(t, "a validation error", err.Error())
		if !strings.Contains(err.Error(), "xxxxx") && !strings.Contains(err.Error(), "webhook_url") {
			t.Errorf("error does not show the redacted value: %s", err)
		}
	}
	for _, file := range []string{
		"processor: redis-ledger\nredis_url: redis://:" + secret + "@127.0.0.1:1/0\nconnect_timeout: 1s\n",
		"processor: postgres\npostgres_dsn: postgres://u:" + secret + "@127.0.0.1:1/db?sslmode=disable\nconnect_timeout: 1s\n",
	} {
		body := strings.Replace(baseFile, "processor: log\n", file, 1)
		r, _, err := loadRun(t, body, nil)
		if err != nil {
			t.Fatal(err)
		}
		*r.fc.MetricsAddr = ""
		err = r.Run(context.Background())
		if err == nil {
			t.Fatal("Run connected to nothing and did not fail")
		}
		check(t, "a connection error", err.Error(), r.Out.(*bytes.Buffer).String(), r.Err.(*bytes.Buffer).String())
		if !strings.Contains(err.Error(), "xxxxx") {
			t.Errorf("error does not name the redacted address: %s", err)
		}
	}
}

// ordo dev runs the demo pipeline in memory, on Redis and on PostgreSQL:
// every event processed is applied once through the store, fenced.
func TestDevOnEachStore(t *testing.T) {
	for _, kind := range []string{"memory", "redis", "postgres"} {
		t.Run(kind, func(t *testing.T) {
			d := &DevCmd{KafkaAddr: "127.0.0.1:0", MetricsAddr: "", TopicsDir: "../../topics", Topic: "orders",
				Group: "g-" + testenv.Name(t), Demo: true, Rate: 2000, Customers: 50, Work: 0, Duration: 3 * time.Second,
				ShutdownTimeout: 10 * time.Second, Ordering: "key", Workers: 4, LogLevel: "error"}
			switch kind {
			case "redis":
				d.RedisURL = "redis://" + testenv.RedisAddr(t) + "/0"
			case "postgres":
				d.PostgresDSN = testenv.PostgresDSN(t)
			}
			var out bytes.Buffer
			d.Out = &syncWriter{w: &out}
			if err := d.Validate(); err != nil {
				t.Fatal(err)
			}
			if err := d.Run(context.Background()); err != nil {
				t.Fatal(err)
			}
			last := finalLine(out.String())
			m := regexp.MustCompile(`processed=(\d+) .* dlq=0 .*store=` + kind + ` applied=(\d+) duplicates=0 fenced=0 failed-writes=0`).FindStringSubmatch(last)
			if len(m) != 3 || m[1] != m[2] || m[1] == "0" {
				t.Errorf("final line %q: want every processed event applied once through the %s store, none dead-lettered", last, kind)
			}
			t.Log(last)
		})
	}
}

// ordo run with each store-backed processor: every record is applied
// through its store, fenced, and committed; a second group over the same
// records (a replay) applies nothing again.
func TestRunStoreBackedProcessors(t *testing.T) {
	for _, proc := range []string{"redis-ledger", "postgres"} {
		t.Run(proc, func(t *testing.T) {
			name := testenv.Name(t)
			var extra string
			switch proc {
			case "redis-ledger":
				extra = "redis_url: redis://" + testenv.RedisAddr(t) + "/0\nstore_prefix: \"ordotest:" + name + ":\"\n"
				c := testenv.Redis(t)
				t.Cleanup(func() { _ = deletePrefix(context.Background(), c, "ordotest:"+name+":") })
			case "postgres":
				dsn := testenv.PostgresDSN(t)
				m := &StoreMigrateCmd{PostgresDSN: dsn, Table: name + "_events", Inbox: "ordo_inbox", Fences: "ordo_fence", Timeout: 30 * time.Second, Out: io.Discard}
				if err := m.Validate(); err != nil {
					t.Fatal(err)
				}
				if err := m.Run(context.Background()); err != nil {
					t.Fatal(err)
				}
				pool := testenv.Postgres(t)
				t.Cleanup(func() { _, _ = pool.Exec(context.Background(), "DROP TABLE "+name+"_events") })
				extra = "postgres_dsn: " + dsn + "\npostgres_table: " + name + "_events\n"
			}
			b, err := devbroker.Start(devbroker.Options{Addr: "127.0.0.1:0", Extra: []kfake.Opt{kfake.SeedTopics(3, "orders", ordo.DefaultNaming.DLQTopic("orders", "g"), ordo.DefaultNaming.DLQTopic("orders", "replay"))}})
			if err != nil {
				t.Fatal(err)
			}
			defer b.Close()
			cl, err := kgo.NewClient(kgo.SeedBrokers(b.Addr()), kgo.DefaultProduceTopic("orders"))
			if err != nil {
				t.Fatal(err)
			}
			defer cl.Close()
			for i := range 100 {
				r := &kgo.Record{Key: fmt.Appendf(nil, "c-%d", i%7), Value: fmt.Appendf(nil, "v%d", i),
					Headers: []kgo.RecordHeader{{Key: "event-id", Value: fmt.Appendf(nil, "%s-%d", name, i)}}}
				if err := cl.ProduceSync(context.Background(), r).FirstErr(); err != nil {
					t.Fatal(err)
				}
			}
			for _, group := range []string{"g", "replay"} {
				body := "brokers: [" + b.Addr() + "]\ngroup: " + group + "\ntopics: [orders]\nprocessor: " + proc + "\n" + extra +
					"metrics_addr: \"\"\nlog_level: error\nsession_timeout: 6s\nshutdown_timeout: 10s\n"
				p := filepath.Join(t.TempDir(), "ordo.yaml")
				if err := os.WriteFile(p, []byte(body), 0o600); err != nil {
					t.Fatal(err)
				}
				var out bytes.Buffer
				r := &RunCmd{ConfigPath: p, Out: &syncWriter{w: &out}, Err: io.Discard}
				if err := r.Validate(); err != nil {
					t.Fatal(err)
				}
				ctx, cancel := context.WithCancel(context.Background())
				done := make(chan error, 1)
				go func() { done <- r.Run(ctx) }()
				adm := kadm.NewClient(cl)
				deadline := time.Now().Add(30 * time.Second)
				for {
					offs, err := adm.FetchOffsets(context.Background(), group)
					total := int64(0)
					if err == nil {
						offs.Each(func(o kadm.OffsetResponse) { total += o.At })
					}
					if total == 100 {
						break
					}
					if time.Now().After(deadline) {
						t.Fatalf("%s: committed %d of 100 (err %v)\n%s", group, total, err, out.String())
					}
					time.Sleep(50 * time.Millisecond)
				}
				cancel()
				if err := <-done; err != nil {
					t.Fatal(err)
				}
				want := "applied=100 duplicates=0 fenced=0 failed-writes=0"
				if group == "replay" {
					want = "applied=0 duplicates=100 fenced=0 failed-writes=0"
				}
				if !strings.Contains(out.String(), "ordo run: stopped. processed=100 ") || !strings.Contains(out.String(), want) {
					t.Errorf("%s output lacks %q:\n%s", group, want, out.String())
				}
			}
		})
	}
}
