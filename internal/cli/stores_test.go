package cli

import (
	"bytes"
	"context"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/ordokafka/ordo/internal/testenv"
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
			m := regexp.MustCompile(`processed=(\d+) .* dlq=0 .*store=` + kind + ` applied=(\d+) duplicates=0 fenced=0 store-errors=0`).FindStringSubmatch(last)
			if len(m) != 3 || m[1] != m[2] || m[1] == "0" {
				t.Errorf("final line %q: want every processed event applied once through the %s store, none dead-lettered", last, kind)
			}
			t.Log(last)
		})
	}
}
