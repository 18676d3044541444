package cli

import (
	"bytes"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"
)

// loadRun runs `ordo run`'s Validate on a config file with body (none if
// body is ""), the environment env and the flags args, as the command
// would. It returns the command, the file's path and Validate's error.
func loadRun(t *testing.T, body string, env []string, args ...string) (*RunCmd, string, error) {
	t.Helper()
	path := ""
	if body != "" {
		path = filepath.Join(t.TempDir(), "ordo.yaml")
		if err := os.WriteFile(path, []byte(body), 0o600); err != nil {
			t.Fatal(err)
		}
		args = append([]string{"--config", path}, args...)
	}
	r := &RunCmd{Out: &bytes.Buffer{}, Err: &bytes.Buffer{}, Environ: func() []string { return env }}
	cmd := newRunCommand(r)
	if err := cmd.ParseFlags(args); err != nil {
		t.Fatal(err)
	}
	err := r.Validate()
	return r, path, err
}

// errorLines splits a joined error into its lines, one per error.
func errorLines(err error) []string {
	if err == nil {
		return nil
	}
	return strings.Split(err.Error(), "\n")
}

// goName matches a Go field name of ordo.Config or of FileConfig, or a Go
// type: no error of ordo run may show one.
var goName = func() *regexp.Regexp {
	var names []string
	for _, k := range runKeys {
		if k.field != "" {
			names = append(names, regexp.QuoteMeta(k.field))
		}
	}
	names = append(names, `Config\.`, `FileConfig`, `cli\.`, `struct`, `MaxInFlightBytesPerPart`, `MetricsAddr`, `LogLevel`, `ExampleWork`, `ClientID`)
	return regexp.MustCompile(`\b(` + strings.Join(names, "|") + `)\b`)
}()

func assertNoGoNames(t *testing.T, err error) {
	t.Helper()
	if err == nil {
		return
	}
	if m := goName.FindString(err.Error()); m != "" {
		t.Errorf("error shows the Go name %q:\n%s", m, err)
	}
}

const baseFile = `brokers: [file:1]
group: file-group
topics: [orders]
processor: log
retry: {max_attempts: 2}
metrics_addr: 127.0.0.1:9200
`

// The layers: file < ORDO_* environment < flags.
func TestRunConfigPrecedence(t *testing.T) {
	cases := []struct {
		name     string
		file     string
		env      []string
		args     []string
		brokers  []string
		group    string
		topics   []string
		attempts int
		metrics  string
	}{
		{name: "file only", file: baseFile,
			brokers: []string{"file:1"}, group: "file-group", topics: []string{"orders"}, attempts: 2, metrics: "127.0.0.1:9200"},
		{name: "environment over file", file: baseFile,
			env:     []string{"ORDO_BROKERS=a:1, b:2", "ORDO_GROUP=env-group", "ORDO_RETRY_MAX_ATTEMPTS=7", "ORDO_METRICS_ADDR=", "PATH=/bin"},
			brokers: []string{"a:1", "b:2"}, group: "env-group", topics: []string{"orders"}, attempts: 7, metrics: ""},
		{name: "flags over environment", file: baseFile,
			env:     []string{"ORDO_BROKERS=a:1,b:2", "ORDO_GROUP=env-group", "ORDO_TOPICS=env-topic"},
			args:    []string{"--brokers", "c:3", "--group", "flag-group", "--metrics-addr", "127.0.0.1:9101", "--topic", "a", "--topic", "b,c"},
			brokers: []string{"c:3"}, group: "flag-group", topics: []string{"a", "b", "c"}, attempts: 2, metrics: "127.0.0.1:9101"},
		{name: "no file", env: []string{"ORDO_PROCESSOR=example", "ORDO_GROUP=g"},
			args:    []string{"--brokers", "x:1,y:2", "--topic", "orders"},
			brokers: []string{"x:1", "y:2"}, group: "g", topics: []string{"orders"}, attempts: 0, metrics: "127.0.0.1:9100"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			r, _, err := loadRun(t, tc.file, tc.env, tc.args...)
			if err != nil {
				t.Fatal(err)
			}
			fc := r.fc
			if !slices.Equal(fc.Brokers, tc.brokers) || fc.Group != tc.group || !slices.Equal(fc.Topics, tc.topics) ||
				fc.Retry.MaxAttempts != tc.attempts || *fc.MetricsAddr != tc.metrics {
				t.Errorf("got brokers %q group %q topics %q retry.max_attempts %d metrics_addr %q",
					fc.Brokers, fc.Group, fc.Topics, fc.Retry.MaxAttempts, *fc.MetricsAddr)
			}
			if !slices.Equal(r.cfg.Brokers, tc.brokers) || r.cfg.Group != tc.group {
				t.Errorf("ordo.Config brokers %q group %q", r.cfg.Brokers, r.cfg.Group)
			}
		})
	}
}

// Every key reaches its place, from the file and from its variable.
func TestRunConfigEveryKeyFromFileAndEnv(t *testing.T) {
	pki := newTestPKI(t)
	passFile := writeFile(t, "pass", "pw\n")
	body := `brokers: [a:1]
group: g
topics: [t]
processor: example
processor_config: {work: 2ms}
client_id: cid
instance_id: pod-1
tls: {enabled: true, ca_file: CA, cert_file: CERT, key_file: KEY, server_name: localhost, insecure_skip_verify: true}
sasl: {mechanism: scram-sha-512, user: u, password_file: PASS}
ordering: partition
start: 2026-11-30T07:00:00Z
offsets_lost: fail
workers_per_partition: 3
max_workers: 30
max_in_flight_per_partition: 100
max_in_flight: 1000
max_in_flight_bytes_per_partition: 1000
max_in_flight_bytes: 5000
max_poll_records: 77
max_tracked_span: 5000
max_offset_map_bytes: 1000
processor_name: ledger
process_timeout: 3s
commit_interval: 2s
connect_timeout: 4s
session_timeout: 10s
rebalance_timeout: 20s
revoke_timeout: 5s
shutdown_timeout: 6s
retry: {max_attempts: 3, initial_backoff: 10ms, max_backoff: 1s, hold_delay: 2s, tiers: [1m, 10m], tier_attempts: 2}
metrics_addr: ""
pprof: true
log_level: warn
example_work: 1ms
store: memory
redis_url: redis://localhost:6379/0
postgres_dsn: postgres://u@h/db
store_prefix: p
postgres_table: events
dedup_header: msg-id
dedup_ttl: 1h
count_attempts: false
webhook_url: http://h/x
webhook_timeout: 2s
breaker: {failures: 3, open_for: 2s, probes: 2}
rate_limit: {per_second: 2.5, burst: 3}
`
	body = strings.NewReplacer("CA,", pki.caFile+",", "CERT,", pki.clientCert+",", "KEY,", pki.clientKey+",", "PASS}", passFile+"}").Replace(body)
	// The secrets (sasl.password, sasl.token: variables only) and
	// sasl.token_file (oauthbearer's) are tested apart.
	testedApart := []string{"sasl.password", "sasl.token", "sasl.token_file"}
	var env []string
	for line := range strings.SplitSeq(strings.TrimSpace(body), "\n") {
		k, v, _ := strings.Cut(line, ": ")
		if k == "tls" || k == "sasl" {
			for kv := range strings.SplitSeq(strings.Trim(v, "{}"), ", ") {
				sk, sv, _ := strings.Cut(kv, ": ")
				env = append(env, "ORDO_"+strings.ToUpper(k+"_"+sk)+"="+sv)
			}
			continue
		}
		if k == "retry" {
			env = append(env, "ORDO_RETRY_MAX_ATTEMPTS=3", "ORDO_RETRY_INITIAL_BACKOFF=10ms", "ORDO_RETRY_MAX_BACKOFF=1s", "ORDO_RETRY_HOLD_DELAY=2s",
				"ORDO_RETRY_TIERS=1m,10m", "ORDO_RETRY_TIER_ATTEMPTS=2")
			continue
		}
		if k == "breaker" {
			env = append(env, "ORDO_BREAKER_FAILURES=3", "ORDO_BREAKER_OPEN_FOR=2s", "ORDO_BREAKER_PROBES=2")
			continue
		}
		if k == "rate_limit" {
			env = append(env, "ORDO_RATE_LIMIT_PER_SECOND=2.5", "ORDO_RATE_LIMIT_BURST=3")
			continue
		}
		v = strings.Trim(v, `[]"`)
		env = append(env, "ORDO_"+strings.ToUpper(k)+"="+v)
	}
	check := func(t *testing.T, r *RunCmd) {
		t.Helper()
		c := r.cfg
		if c.ProcessorName != "ledger" || c.Ordering.String() != "partition" || c.WorkersPerPartition != 3 || c.MaxWorkers != 30 ||
			c.MaxInFlightPerPartition != 100 || c.MaxInFlight != 1000 || c.MaxInFlightBytesPerPartition != 1000 ||
			c.MaxInFlightBytes != 5000 || c.MaxPollRecords != 77 || c.MaxTrackedSpan != 5000 || c.MaxOffsetMapBytes != 1000 || c.ProcessTimeout != 3*time.Second ||
			c.CommitInterval != 2*time.Second || c.ConnectTimeout != 4*time.Second || c.SessionTimeout != 10*time.Second ||
			c.RebalanceTimeout != 20*time.Second || c.RevokeTimeout != 5*time.Second || c.ShutdownTimeout != 6*time.Second ||
			c.Retry.MaxAttempts != 3 || c.Retry.InitialBackoff != 10*time.Millisecond || c.Retry.MaxBackoff != time.Second ||
			c.Retry.HoldDelay != 2*time.Second || len(c.KgoOpts) != 4 ||
			c.Start.String() != "2026-11-30T07:00:00Z" || c.OffsetsLost != "fail" ||
			!slices.Equal(c.Retry.Tiers, []time.Duration{time.Minute, 10 * time.Minute}) || c.Retry.TierAttempts != 2 {
			t.Errorf("config %+v", c)
		}
		fc := r.fc
		if fc.ClientID != "cid" || fc.InstanceID != "pod-1" || *fc.MetricsAddr != "" || fc.LogLevel != "warn" || fc.ExampleWork != time.Millisecond || fc.Processor != "example" || !fc.Pprof ||
			fc.ProcessorConfig["work"] != "2ms" {
			t.Errorf("command keys %+v", fc)
		}
		if fc.Store != "memory" || fc.RedisURL != "redis://localhost:6379/0" || fc.PostgresDSN != "postgres://u@h/db" || fc.StorePrefix != "p" ||
			fc.PostgresTable != "events" || fc.DedupHeader != "msg-id" || fc.DedupTTL != time.Hour || fc.WebhookURL != "http://h/x" ||
			fc.WebhookTimeout != 2*time.Second || fc.Breaker.Failures != 3 || fc.Breaker.OpenFor != 2*time.Second || fc.Breaker.Probes != 2 ||
			fc.RateLimit.PerSecond != 2.5 || fc.RateLimit.Burst != 3 {
			t.Errorf("store keys %+v", fc)
		}
		if r.spec.kind != "memory" || r.spec.keys.Header != "msg-id" || r.spec.rate != 2.5 {
			t.Errorf("store spec %+v", r.spec)
		}
	}
	checkConn := func(t *testing.T, r *RunCmd) {
		t.Helper()
		want := TLSOptions{Enabled: true, CAFile: pki.caFile, CertFile: pki.clientCert, KeyFile: pki.clientKey, ServerName: "localhost", InsecureSkipVerify: true}
		if r.fc.TLS != want || r.fc.SASL != (SASLOptions{Mechanism: "scram-sha-512", User: "u", PasswordFile: passFile}) {
			t.Errorf("tls %+v, sasl %+v", r.fc.TLS, r.fc.SASL)
		}
		if r.conn == nil || !r.conn.tls || r.conn.mechanism != "SCRAM-SHA-512" || r.conn.user != "u" {
			t.Errorf("connection %+v", r.conn)
		}
	}
	t.Run("file", func(t *testing.T) {
		r, _, err := loadRun(t, body, nil)
		if err != nil {
			t.Fatal(err)
		}
		check(t, r)
		checkConn(t, r)
	})
	t.Run("env", func(t *testing.T) {
		r, _, err := loadRun(t, "", env)
		if err != nil {
			t.Fatal(err)
		}
		check(t, r)
		checkConn(t, r)
	})
	if len(env)+len(testedApart) != len(runKeys) {
		t.Errorf("%d variables and %d keys tested apart for %d keys", len(env), len(testedApart), len(runKeys))
	}
}

func TestRunConfigUnknownKeysNameKeyAndFile(t *testing.T) {
	_, path, err := loadRun(t, baseFile+"workers: 3\nretry_max: 1\nmetrics: {addr: x}\n", nil)
	lines := errorLines(err)
	want := []string{
		path + `: unknown key "workers"`,
		path + `: unknown key "retry_max"`,
		path + `: unknown key "metrics.addr"`,
	}
	if len(lines) != len(want) {
		t.Fatalf("errors:\n%v\nwant %d", err, len(want))
	}
	for _, w := range want {
		if !strings.Contains(err.Error(), w) {
			t.Errorf("errors lack %q:\n%s", w, err)
		}
	}
	if !strings.Contains(err.Error(), "did you mean workers_per_partition?") {
		t.Errorf("no suggestion for workers:\n%s", err)
	}
	assertNoGoNames(t, err)

	_, path, err = loadRun(t, baseFile+"retry_: x\n", nil)
	if err == nil || !strings.Contains(err.Error(), path+`: unknown key "retry_"`) {
		t.Errorf("error %v", err)
	}
	// A section written as a value.
	_, path, err = loadRun(t, "brokers: [a:1]\ngroup: g\ntopics: [t]\nprocessor: log\nretry: 3\n", nil)
	if err == nil || !strings.Contains(err.Error(), path+": retry: want a mapping of max_attempts, initial_backoff, max_backoff, hold_delay") {
		t.Errorf("error %v", err)
	}
}

// Three bad values: three errors, each named as the user wrote it, from
// whichever layer it came.
func TestRunConfigEveryBadValueReported(t *testing.T) {
	t.Run("file", func(t *testing.T) {
		body := strings.Replace(baseFile, "retry: {max_attempts: 2}", "retry:\n  max_attempts: -2", 1)
		_, path, err := loadRun(t, body+"workers_per_partition: -1\nshutdown_timeout: -5s\n", nil)
		lines := errorLines(err)
		want := []string{
			path + ": workers_per_partition: must be > 0, got -1",
			path + ": retry.max_attempts: must be > 0, got -2",
			path + ": shutdown_timeout: must not be negative, got -5s",
		}
		if len(lines) != 3 {
			t.Fatalf("%d errors, want 3:\n%v", len(lines), err)
		}
		for _, w := range want {
			if !slices.Contains(lines, w) {
				t.Errorf("errors lack %q:\n%s", w, err)
			}
		}
		assertNoGoNames(t, err)
	})
	t.Run("environment", func(t *testing.T) {
		_, _, err := loadRun(t, baseFile, []string{"ORDO_WORKERS_PER_PARTITION=-1", "ORDO_RETRY_MAX_ATTEMPTS=-2", "ORDO_SHUTDOWN_TIMEOUT=-5s"})
		lines := errorLines(err)
		want := []string{
			"ORDO_WORKERS_PER_PARTITION: must be > 0, got -1",
			"ORDO_RETRY_MAX_ATTEMPTS: must be > 0, got -2",
			"ORDO_SHUTDOWN_TIMEOUT: must not be negative, got -5s",
		}
		if len(lines) != 3 {
			t.Fatalf("%d errors, want 3:\n%v", len(lines), err)
		}
		for _, w := range want {
			if !slices.Contains(lines, w) {
				t.Errorf("errors lack %q:\n%s", w, err)
			}
		}
	})
	t.Run("flags", func(t *testing.T) {
		_, _, err := loadRun(t, baseFile, nil, "--topic", "a,a", "--metrics-addr", "nope", "--log-level", "loud", "--processor", "nope")
		lines := errorLines(err)
		want := []string{
			`--topic entry 2: repeats topic "a"`,
			`--metrics-addr: "nope": want host:port (or "" to serve no metrics)`,
			`--log-level: "loud": want debug, info, warn or error`,
			`--processor: "nope" is not registered (registered: example, log, postgres, redis-ledger, webhook)`,
		}
		if len(lines) != len(want) {
			t.Fatalf("%d errors, want %d:\n%v", len(lines), len(want), err)
		}
		for _, w := range want {
			if !slices.Contains(lines, w) {
				t.Errorf("errors lack %q:\n%s", w, err)
			}
		}
	})
}

// Checks that used to happen only at run time, or never, happen in
// Validate, before anything connects or listens.
func TestRunConfigChecksBeforeAnythingStarts(t *testing.T) {
	cases := []struct{ line, want string }{
		{"metrics_addr: nope", `metrics_addr: "nope": want host:port`},
		{"metrics_addr: 127.0.0.1:http", `metrics_addr: "127.0.0.1:http": port "http" is not a number`},
		{"shutdown_timeout: -5s", "shutdown_timeout: must not be negative, got -5s"},
		{"example_work: -1s", "example_work: must not be negative, got -1s"},
		{"connect_timeout: -1s", "connect_timeout: must not be negative, got -1s"},
		{"log_level: loud", `log_level: "loud": want debug, info, warn or error`},
		{"processor: nope", `processor: "nope" is not registered`},
		{"processor_config: 3", `processor_config: want a mapping of the processor's options, got 3`},
		{"processor_config: {max_valeu: 10}", `processor_config: processor "log": unknown option "max_valeu"`},
		{"processor_config: {max_value: many}", `processor_config: processor "log": cannot read "many" as int`},
		{"processor_config: {max_value: -1}", `processor_config: processor "log": max_value: must not be negative, got -1`},
		{"ordering: sideways", `ordering: "sideways": want key, partition or unordered`},
		{"revoke_timeout: 2m", "revoke_timeout: (2m0s) must be below rebalance_timeout (1m0s)"},
		{"retry: {initial_backoff: 2s, max_backoff: 1s}", "retry.max_backoff: (1s) must be >= retry.initial_backoff (2s)"},
		{"max_in_flight: 5", "max_in_flight: (5) must be >= max_in_flight_per_partition (10000)"},
		{"topics: [a, '']", "topics[1]: is empty"},
		{"commit_interval: soon", `commit_interval: want a duration with its unit, such as 500ms or 1m; got "soon"`},
		{"process_timeout: 30", "process_timeout: want a duration with its unit, such as 500ms or 1m; got 30"},
		{"max_workers: many", `max_workers: want an integer, got "many"`},
		{"brokers: {a: 1}", "brokers: want a list, got a mapping"},
	}
	for _, tc := range cases {
		t.Run(tc.line, func(t *testing.T) {
			body := strings.Replace(baseFile, "metrics_addr: 127.0.0.1:9200\n", "", 1)
			key, _, _ := strings.Cut(tc.line, ":")
			var kept []string
			for l := range strings.SplitSeq(body, "\n") {
				if !strings.HasPrefix(l, key+":") {
					kept = append(kept, l)
				}
			}
			_, path, err := loadRun(t, strings.Join(kept, "\n")+tc.line+"\n", nil)
			if err == nil || !strings.Contains(err.Error(), path+": "+tc.want) {
				t.Fatalf("error %v\nwant one with %q", err, path+": "+tc.want)
			}
			if n := len(errorLines(err)); n != 1 {
				t.Errorf("%d errors, want 1:\n%s", n, err)
			}
			assertNoGoNames(t, err)
		})
	}
}

func TestRunConfigMissingKeysSayHowToSetThem(t *testing.T) {
	_, _, err := loadRun(t, "", nil)
	want := []string{
		"brokers: is required (host:port of at least one seed broker) (set brokers in the --config file or with ORDO_BROKERS or --brokers)",
		"group: is required (set group in the --config file or with ORDO_GROUP or --group)",
		"topics: is required (at least one topic) (set topics in the --config file or with ORDO_TOPICS or --topic)",
		"processor: is required (registered: example, log, postgres, redis-ledger, webhook) (set processor in the --config file or with ORDO_PROCESSOR or --processor)",
	}
	lines := errorLines(err)
	if len(lines) != len(want) {
		t.Fatalf("%d errors, want %d:\n%v", len(lines), len(want), err)
	}
	for _, w := range want {
		if !slices.Contains(lines, w) {
			t.Errorf("errors lack %q:\n%s", w, err)
		}
	}
	assertNoGoNames(t, err)
}

// ORDO_* variables that name no key are ignored with a warning that names
// them and never prints their values.
func TestRunConfigUnknownVariablesNamedNotPrinted(t *testing.T) {
	var errb bytes.Buffer
	r := &RunCmd{Out: &bytes.Buffer{}, Err: &errb, Environ: func() []string {
		return []string{"ORDO_BROKER=typo:1", "ORDO_STORE_PASSWORD=s3cret", "ORDO_TEST_POSTGRES_DSN=postgres://u:s3cret@db/x", "ORDO_BROKERS=a:1",
			"ORDO_GROUP=g", "ORDO_TOPICS=t", "ORDO_PROCESSOR=log", "HOME=/root"}
	}}
	newRunCommand(r)
	if err := r.Validate(); err != nil {
		t.Fatal(err)
	}
	// ORDO_TEST_* are the test suite's own variables: not reported.
	if got := errb.String(); !strings.Contains(got, "ignoring ORDO_BROKER, ORDO_STORE_PASSWORD: not configuration keys") || strings.Contains(got, "ORDO_TEST_") ||
		strings.Contains(got, "s3cret") || strings.Contains(got, "typo") {
		t.Errorf("warning %q", got)
	}
}

// The documented rule: ORDO_ and the key path upper-cased, "." as "_".
func TestRunConfigEnvNames(t *testing.T) {
	for key, want := range map[string]string{
		"brokers": "ORDO_BROKERS", "retry.max_attempts": "ORDO_RETRY_MAX_ATTEMPTS", "metrics_addr": "ORDO_METRICS_ADDR",
		"max_in_flight_bytes_per_partition": "ORDO_MAX_IN_FLIGHT_BYTES_PER_PARTITION",
	} {
		if got := keyByName[key].env(); got != want {
			t.Errorf("%s: %s, want %s", key, got, want)
		}
	}
	if len(keyByEnv) != len(runKeys) || len(keyByName) != len(runKeys) {
		t.Errorf("keys or variables collide: %d keys, %d names, %d variables", len(runKeys), len(keyByName), len(keyByEnv))
	}
}

// docs/configuration.md lists every key with its variable.
func TestRunConfigKeysDocumented(t *testing.T) {
	doc, err := os.ReadFile("../../docs/configuration.md")
	if err != nil {
		t.Fatal(err)
	}
	for _, k := range runKeys {
		row := "| `" + k.key + "` | `" + k.env() + "` |"
		if !strings.Contains(string(doc), row) {
			t.Errorf("docs/configuration.md lacks the row %s", row)
		}
	}
}

// Through the command line: exit 2, the count, then one error a line.
func TestRunBadConfigExitsTwoListingEveryError(t *testing.T) {
	path := filepath.Join(t.TempDir(), "bad.yaml")
	if err := os.WriteFile(path, []byte(baseFile+"workers: 3\nshutdown_timeout: -5s\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	t.Setenv("ORDO_MAX_WORKERS", "abc")
	var out, errb bytes.Buffer
	code := Main(t.Context(), []string{"run", "--config", path, "--group", ""}, &out, &errb)
	if code != 2 {
		t.Fatalf("exit %d, want 2; stderr:\n%s", code, errb.String())
	}
	want := "ordo: 4 errors:\n" +
		"  " + path + ": unknown key \"workers\" (did you mean workers_per_partition?)\n" +
		"  ORDO_MAX_WORKERS: want an integer, got \"abc\"\n" +
		"  --group: is required\n" +
		"  " + path + ": shutdown_timeout: must not be negative, got -5s\n"
	if !strings.HasSuffix(errb.String(), want) {
		t.Errorf("stderr:\n%s\nwant it to end with:\n%s", errb.String(), want)
	}
}
