package cli

import (
	"bufio"
	"bytes"
	"context"
	"encoding/binary"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/ordokafka/ordo/pkg/devbroker"
	"github.com/ordokafka/ordo/pkg/dlq"
)

// dlqBroker is an embedded broker on a loopback port with the topics of
// decl applied by `ordo topics apply`, and a producer.
type dlqBroker struct {
	t    *testing.T
	addr string
	cl   *kgo.Client
}

func newDLQBroker(t *testing.T, decl string) *dlqBroker {
	t.Helper()
	b, err := devbroker.Start(devbroker.Options{Addr: "127.0.0.1:0"})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(b.Close)
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "t.yaml"), []byte(decl), 0o600); err != nil {
		t.Fatal(err)
	}
	var out bytes.Buffer
	if code := Main(context.Background(), []string{"topics", "apply", "--dir", dir, "--brokers", b.Addr()}, &out, &out); code != 0 {
		t.Fatalf("topics apply: exit %d: %s", code, out.String())
	}
	cl, err := kgo.NewClient(kgo.SeedBrokers(b.Addr()), kgo.RecordPartitioner(kgo.ManualPartitioner()))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(cl.Close)
	return &dlqBroker{t: t, addr: b.Addr(), cl: cl}
}

func (b *dlqBroker) produce(rs ...*kgo.Record) {
	b.t.Helper()
	if err := b.cl.ProduceSync(context.Background(), rs...).FirstErr(); err != nil {
		b.t.Fatal(err)
	}
}

// ordo runs the command line; it returns the exit code, stdout and stderr.
func (b *dlqBroker) ordo(args ...string) (int, string, string) {
	b.t.Helper()
	var out, errb bytes.Buffer
	code := Main(context.Background(), append(args, "--brokers", b.addr), &out, &errb)
	return code, out.String(), errb.String()
}

var (
	t0 = time.Date(2026, 11, 30, 6, 0, 0, 0, time.UTC)
	// Ordo's headers on a dead letter, as its router writes them.
	ordoLetter = func(p int32, off int64, ts time.Time, group, class, msg string) []kgo.RecordHeader {
		return []kgo.RecordHeader{
			{Key: "trace-id", Value: []byte("t-" + strconv.FormatInt(off, 10))},
			{Key: "ordo-original-topic", Value: []byte("orders")},
			{Key: "ordo-original-partition", Value: []byte(strconv.Itoa(int(p)))},
			{Key: "ordo-original-offset", Value: []byte(strconv.FormatInt(off, 10))},
			{Key: "ordo-original-timestamp", Value: []byte(strconv.FormatInt(ts.UnixMilli(), 10))},
			{Key: "ordo-attempt", Value: []byte("5")},
			{Key: "ordo-error", Value: []byte(msg)},
			{Key: "ordo-error-class", Value: []byte(class)},
			{Key: "ordo-group", Value: []byte(group)},
			{Key: "ordo-processor", Value: []byte("example")},
		}
	}
	// Spring Kafka's, as DeadLetterPublishingRecoverer writes them: the
	// partition a big-endian int, offset and timestamp big-endian longs.
	springLetter = func(p int32, off int64, ts time.Time, group string) []kgo.RecordHeader {
		return []kgo.RecordHeader{
			{Key: "kafka_dlt-original-topic", Value: []byte("orders")},
			{Key: "kafka_dlt-original-partition", Value: binary.BigEndian.AppendUint32(nil, uint32(p))},
			{Key: "kafka_dlt-original-offset", Value: binary.BigEndian.AppendUint64(nil, uint64(off))},
			{Key: "kafka_dlt-original-timestamp", Value: binary.BigEndian.AppendUint64(nil, uint64(ts.UnixMilli()))},
			{Key: "kafka_dlt-original-timestamp-type", Value: []byte("CreateTime")},
			{Key: "kafka_dlt-original-consumer-group", Value: []byte(group)},
			{Key: "kafka_dlt-exception-fqcn", Value: []byte("java.lang.IllegalArgumentException")},
			{Key: "kafka_dlt-exception-message", Value: []byte("amount must be positive")},
			{Key: "kafka_dlt-exception-stacktrace", Value: []byte("java.lang.IllegalArgumentException: amount must be positive\n\tat A.b(A.java:1)\n")},
		}
	}
	// Karafka's: strings.
	karafkaLetter = func(p int32, off int64, group string) []kgo.RecordHeader {
		return []kgo.RecordHeader{
			{Key: "source_topic", Value: []byte("orders")},
			{Key: "source_partition", Value: []byte(strconv.Itoa(int(p)))},
			{Key: "source_offset", Value: []byte(strconv.FormatInt(off, 10))},
			{Key: "source_consumer_group", Value: []byte(group)},
			{Key: "source_attempts", Value: []byte("2")},
		}
	}
)

const gTopics = `
topics:
  - name: orders
    partitions: 3
    groups:
      - {name: g, retry: {delays: [1s, 5s]}}
      - {name: audit}
`

// Every bad flag of every dlq command is reported at once, named, with exit
// 2 and before anything connects (the broker address is refused).
func TestDLQFlagsAllAtOnce(t *testing.T) {
	addr := refusedAddr(t)
	var out, errb bytes.Buffer
	code := Main(context.Background(), []string{"dlq", "redrive", "--brokers", addr, "--topic", "orders", "--since", "yesterday",
		"--until", "-1h", "--partition", "3-1", "--dlq-offset", "x", "--rate", "fast", "--limit", "-1", "--also-reaches", "audit",
		"--connect-timeout", "0s"}, &out, &errb)
	if code != 2 {
		t.Fatalf("exit %d, want 2: %s", code, errb.String())
	}
	for _, w := range []string{
		"--group is required with --topic", `--since "yesterday"`, `--until "-1h": a duration means that long ago`,
		`--partition "3-1": 3 is above 1`, `--dlq-offset "x"`, `--rate "fast"`, "--limit must be >= 0",
		"--also-reaches names the groups a --to-source redrive reaches; it needs --to-source", "--connect-timeout must be > 0",
	} {
		if !strings.Contains(errb.String(), w) {
			t.Errorf("stderr lacks %q:\n%s", w, errb.String())
		}
	}
	for _, args := range [][]string{
		{"dlq", "list", "--brokers", addr},
		{"dlq", "redrive", "--brokers", addr, "--dlq-topic", "orders-dlt"},
		{"dlq", "show", "--brokers", addr, "--topic", "orders", "--group", "g", "3:17"},
		{"dlq", "stats", "--brokers", addr, "--topic", "orders", "--group", "a/b"},
	} {
		errb.Reset()
		if code := Main(context.Background(), args, &out, &errb); code != 2 {
			t.Errorf("%v: exit %d, want 2: %s", args, code, errb.String())
		}
	}
	if !strings.Contains(errb.String(), `give the DLQ name "orders.a/b.dlq", which has '/'`) {
		t.Errorf("an illegal derived DLQ name is not named: %s", errb.String())
	}
}

// Payloads stay hidden unless asked for, in tables and in JSON; the JSON
// of every letter decodes back to what the library reads, byte for byte.
func TestDLQListPayloadHiddenAndJSONRoundTrips(t *testing.T) {
	b := newDLQBroker(t, gTopics)
	b.produce(
		&kgo.Record{Topic: "orders.g.dlq", Partition: 0, Key: []byte("c-1"), Value: []byte(`{"secret":"s3cr3t-1"}`), Headers: ordoLetter(0, 10, t0, "g", "permanent", "bad amount")},
		&kgo.Record{Topic: "orders.g.dlq", Partition: 1, Key: []byte{0xff, 0x00}, Value: []byte{0xff, 0xfe, 's', '3', 'c', 'r', '3', 't'}, Headers: springLetter(1, 1<<33, t0.Add(time.Hour), "g")},
		&kgo.Record{Topic: "orders.g.dlq", Partition: 2, Key: []byte("c-3"), Value: []byte("s3cr3t-3"), Headers: karafkaLetter(2, 7, "g")},
	)
	for _, args := range [][]string{{"dlq", "list"}, {"dlq", "list", "--json"}, {"dlq", "show"}, {"dlq", "show", "--json"}} {
		code, out, errs := b.ordo(append(args, "--topic", "orders", "--group", "g")...)
		if code != 0 {
			t.Fatalf("%v: exit %d: %s", args, code, errs)
		}
		if strings.Contains(out, "s3cr3t") || strings.Contains(out, "//5zM2Ny") /* base64 of the binary value */ {
			t.Fatalf("%v shows a payload without --show-payload:\n%s", args, out)
		}
	}
	code, out, _ := b.ordo("dlq", "list", "--topic", "orders", "--group", "g")
	for _, w := range []string{
		"0/0", "orders/0/10", "permanent", "bad amount", `"c-1"`,
		"1/0", "spring", "orders/1/8589934592", "2026-11-30T07:00:00.000Z", "java.lang.IllegalArgumentException", "amount must be positive",
		"2/0", "karafka", "orders/2/7", "3 of 3 matching dead letters shown; values hidden (--show-payload)",
	} {
		if code != 0 || !strings.Contains(out, w) {
			t.Errorf("list lacks %q:\n%s", w, out)
		}
	}

	code, out, errs := b.ordo("dlq", "list", "--topic", "orders", "--group", "g", "--json", "--show-payload")
	if code != 0 {
		t.Fatalf("exit %d: %s", code, errs)
	}
	var got []dlq.Letter
	sc := bufio.NewScanner(strings.NewReader(out))
	for sc.Scan() {
		var l dlq.Letter
		if err := json.Unmarshal(sc.Bytes(), &l); err != nil {
			t.Fatalf("line %q: %v", sc.Text(), err)
		}
		got = append(got, l)
	}
	c, err := dlq.New(dlq.Config{Opts: []kgo.Opt{kgo.SeedBrokers(b.addr)}})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	want, _, _, err := c.List(context.Background(), "orders.g.dlq", dlq.Filter{}, 0, true)
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("JSON round trip:\n got %+v\nwant %+v", got, want)
	}
	if !bytes.Equal(got[1].Value, []byte{0xff, 0xfe, 's', '3', 'c', 'r', '3', 't'}) || !bytes.Equal(got[1].Key, []byte{0xff, 0}) {
		t.Fatalf("binary key or value changed: %q %q", got[1].Key, got[1].Value)
	}

	code, out, _ = b.ordo("dlq", "show", "--topic", "orders", "--group", "g", "1/0", "--show-payload")
	for _, w := range []string{"orders.g.dlq/1/0", "format       spring", "kafka_dlt-exception-stacktrace:", "value        0xfffe73336372337"} {
		if code != 0 || !strings.Contains(out, w) {
			t.Errorf("show lacks %q:\n%s", w, out)
		}
	}
}

// Each filter flag selects what it says: --since/--until on the ORIGINAL
// timestamp, --partition/--offset on the ORIGINAL coordinates,
// --dlq-partition/--dlq-offset on the dead-letter record's.
func TestDLQFilterFlags(t *testing.T) {
	b := newDLQBroker(t, gTopics)
	// DLQ coordinates: p0: o0 o1; p1: o0; p2: o0 o1.
	b.produce(
		&kgo.Record{Topic: "orders.g.dlq", Partition: 0, Key: []byte("a"), Headers: ordoLetter(2, 100, t0, "g", "permanent", "x")},
		&kgo.Record{Topic: "orders.g.dlq", Partition: 0, Key: []byte("b"), Headers: ordoLetter(2, 200, t0.Add(2*time.Hour), "g", "timeout", "y")},
		&kgo.Record{Topic: "orders.g.dlq", Partition: 1, Key: []byte("a"), Headers: ordoLetter(0, 300, t0.Add(4*time.Hour), "g", "panic", "z")},
		&kgo.Record{Topic: "orders.g.dlq", Partition: 2, Key: []byte("c"), Headers: springLetter(1, 400, t0.Add(6*time.Hour), "g")},
		&kgo.Record{Topic: "orders.g.dlq", Partition: 2, Key: []byte("d"), Headers: ordoLetter(1, 500, t0.Add(8*time.Hour), "other", "timeout", "w")},
	)
	tests := []struct {
		flags []string
		want  []string // DLQ partition/offset
	}{
		{nil, []string{"0/0", "0/1", "1/0", "2/0"}}, // 2/1 names another group
		{[]string{"--since", "2026-11-30T08:00:00Z"}, []string{"0/1", "1/0", "2/0"}},
		{[]string{"--until", "2026-11-30T08:00:00Z"}, []string{"0/0"}},
		{[]string{"--since", "2026-11-30T05:00:00-05:00", "--until", "2026-11-30T12:00:01Z"}, []string{"1/0", "2/0"}},
		{[]string{"--since", "2h"}, []string{"1/0", "2/0"}}, // now is t0+6h in this test: since t0+4h, inclusive
		{[]string{"--error-class", "timeout,java.lang.IllegalArgumentException"}, []string{"0/1", "2/0"}},
		{[]string{"--key", "a"}, []string{"0/0", "1/0"}},
		{[]string{"--partition", "2"}, []string{"0/0", "0/1"}},
		{[]string{"--partition", "0-1", "--offset", "350-"}, []string{"2/0"}},
		{[]string{"--dlq-partition", "0,2"}, []string{"0/0", "0/1", "2/0"}},
		{[]string{"--dlq-offset", "1"}, []string{"0/1"}},
	}
	for _, tt := range tests {
		var out bytes.Buffer
		l := &DLQListCmd{Out: &out}
		l.Now = func() time.Time { return t0.Add(6 * time.Hour) }
		cmd := newDLQListCommand(l)
		cmd.SetArgs(append([]string{"--topic", "orders", "--group", "g", "--json", "--limit", "0", "--brokers", b.addr}, tt.flags...))
		cmd.SetOut(&out)
		if err := cmd.ExecuteContext(context.Background()); err != nil {
			t.Fatalf("%v: %v", tt.flags, err)
		}
		var got []string
		sc := bufio.NewScanner(strings.NewReader(out.String()))
		for sc.Scan() {
			var lt dlq.Letter
			if err := json.Unmarshal(sc.Bytes(), &lt); err != nil {
				t.Fatal(err)
			}
			got = append(got, strconv.Itoa(int(lt.Partition))+"/"+strconv.FormatInt(lt.Offset, 10))
		}
		if !slices.Equal(got, tt.want) {
			t.Errorf("%v: got %v, want %v", tt.flags, got, tt.want)
		}
	}
}

// redrive through the command line: a dry run, then --execute, then again
// (nothing twice); a group without tiers is told about --to-source; into
// the source, the other groups that read it must be named exactly.
func TestDLQRedriveCommand(t *testing.T) {
	b := newDLQBroker(t, gTopics)
	for i := range 3 {
		b.produce(&kgo.Record{Topic: "orders.g.dlq", Partition: int32(i), Key: []byte("k"), Value: []byte("v"),
			Headers: ordoLetter(int32(i), int64(i), t0, "g", "permanent", "e")})
	}
	for i := range 2 {
		b.produce(&kgo.Record{Topic: "orders.audit.dlq", Partition: int32(i), Key: []byte("a"), Value: []byte("v"),
			Headers: ordoLetter(int32(i), int64(10+i), t0, "audit", "timeout", "slow")})
	}

	code, out, errs := b.ordo("dlq", "redrive", "--topic", "orders", "--group", "g")
	if code != 0 || !strings.Contains(out, "DRY RUN, nothing produced (--execute redrives): 3 dead letters") ||
		!strings.Contains(out, "orders.g.retry.1: 3 (the group's first retry tier, due at once)") || !strings.Contains(errs, "plan: 3/3 offsets read") {
		t.Fatalf("dry run: exit %d\n%s\n%s", code, out, errs)
	}
	code, out, errs = b.ordo("dlq", "redrive", "--topic", "orders", "--group", "g", "--execute", "--rate", "200/s")
	if code != 0 || !strings.Contains(out, "redrove 3 of 3 selected dead letters from orders.g.dlq") || !strings.Contains(errs, "redrive: 3/3 offsets read, 3 redriven") {
		t.Fatalf("execute: exit %d\n%s\n%s", code, out, errs)
	}
	code, out, _ = b.ordo("dlq", "redrive", "--topic", "orders", "--group", "g", "--execute")
	if code != 0 || !strings.Contains(out, "redrove 0 of 0") || !strings.Contains(out, "read       0 dead letters after the cursor ordo-redrive.g") {
		t.Fatalf("second execute: exit %d\n%s", code, out)
	}

	code, _, errs = b.ordo("dlq", "redrive", "--topic", "orders", "--group", "audit")
	if code != 2 || !strings.Contains(errs, `group "audit" has no retry tier for orders (no topic orders.audit.retry.1)`) || !strings.Contains(errs, "--to-source") {
		t.Fatalf("no tier: exit %d: %s", code, errs)
	}

	// g reads orders (committed offsets); search is a live member on it.
	adm := kadm.NewClient(b.cl)
	offs := make(kadm.Offsets)
	offs.Add(kadm.Offset{Topic: "orders", Partition: 1, At: 0, LeaderEpoch: -1})
	if err := adm.CommitAllOffsets(context.Background(), "g", offs); err != nil {
		t.Fatal(err)
	}
	search, err := kgo.NewClient(kgo.SeedBrokers(b.addr), kgo.ConsumerGroup("search"), kgo.ConsumeTopics("orders"), kgo.SessionTimeout(6*time.Second))
	if err != nil {
		t.Fatal(err)
	}
	defer search.Close()
	deadline := time.Now().Add(20 * time.Second)
	for {
		ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
		search.PollFetches(ctx)
		cancel()
		d, _ := adm.DescribeGroups(context.Background(), "search")
		if g := d["search"]; g.State == "Stable" && len(g.AssignedPartitions()["orders"]) > 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("search never got orders")
		}
	}

	code, out, _ = b.ordo("dlq", "redrive", "--topic", "orders", "--group", "audit", "--to-source")
	if code != 0 || !strings.Contains(out, "reaches    g, search: these groups read the source topic") ||
		!strings.Contains(out, "to execute: --execute --also-reaches g,search") {
		t.Fatalf("dry run to source: exit %d\n%s", code, out)
	}
	for _, ack := range []string{"", "search", "g,search,ledger"} {
		args := []string{"dlq", "redrive", "--topic", "orders", "--group", "audit", "--to-source", "--execute"}
		if ack != "" {
			args = append(args, "--also-reaches", ack)
		}
		code, out, errs = b.ordo(args...)
		if code != 2 || !strings.Contains(errs, `--to-source reaches groups g,search besides "audit", which will see the records again: name them with --also-reaches g,search`) {
			t.Fatalf("--also-reaches %q: exit %d\n%s\n%s", ack, code, out, errs)
		}
	}
	code, out, errs = b.ordo("dlq", "redrive", "--topic", "orders", "--group", "audit", "--to-source", "--execute", "--also-reaches", "search, g")
	if code != 0 || !strings.Contains(out, "redrove 2 of 2 selected dead letters from orders.audit.dlq") || !strings.Contains(out, "orders: 2 (the source topic, original partitions)") {
		t.Fatalf("acknowledged: exit %d\n%s\n%s", code, out, errs)
	}
}

// The redriven records as an independent client (kcat, librdkafka) reads
// them: key, payload and headers, Ordo's added ones included.
func TestDLQRedriveSeenByKcat(t *testing.T) {
	kcat, err := exec.LookPath("kcat")
	if err != nil {
		if os.Getenv("ORDO_E2E_REQUIRE_KCAT") != "" {
			t.Fatal("kcat is not installed and ORDO_E2E_REQUIRE_KCAT is set")
		}
		t.Skip("kcat is not installed (apt-get install kcat); set ORDO_E2E_REQUIRE_KCAT to make this a failure")
	}
	b := newDLQBroker(t, gTopics)
	b.produce(
		&kgo.Record{Topic: "orders.g.dlq", Partition: 2, Key: []byte("c-1"), Value: []byte(`{"amount":-5}`), Headers: ordoLetter(2, 41, t0, "g", "permanent", "bad amount")},
		&kgo.Record{Topic: "orders.g.dlq", Partition: 0, Key: []byte("c-2"), Value: []byte(`{"amount":7}`), Headers: karafkaLetter(1, 42, "g")},
	)
	before := time.Now().UnixMilli()
	if code, out, errs := b.ordo("dlq", "redrive", "--topic", "orders", "--group", "g", "--execute"); code != 0 {
		t.Fatalf("redrive: exit %d\n%s\n%s", code, out, errs)
	}
	after := time.Now().UnixMilli()

	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	raw, err := exec.CommandContext(ctx, kcat, "-C", "-J", "-b", b.addr, "-t", "orders.g.retry.1", "-e", "-q").Output()
	if err != nil {
		t.Fatalf("kcat: %v\n%s", err, raw)
	}
	type kcatRecord struct {
		Partition int32    `json:"partition"`
		Key       string   `json:"key"`
		Payload   string   `json:"payload"`
		Headers   []string `json:"headers"` // key, value, key, value...
	}
	var recs []kcatRecord
	sc := bufio.NewScanner(bytes.NewReader(raw))
	for sc.Scan() {
		var r kcatRecord
		if err := json.Unmarshal(sc.Bytes(), &r); err != nil {
			t.Fatalf("kcat line %q: %v", sc.Text(), err)
		}
		recs = append(recs, r)
	}
	if len(recs) != 2 {
		t.Fatalf("kcat read %d records:\n%s", len(recs), raw)
	}
	for _, r := range recs {
		h := make(map[string][]string)
		var keys []string
		for i := 0; i+1 < len(r.Headers); i += 2 {
			h[r.Headers[i]] = append(h[r.Headers[i]], r.Headers[i+1])
			keys = append(keys, r.Headers[i])
		}
		one := func(k string) string {
			if len(h[k]) != 1 {
				t.Fatalf("%s: header %s %q, want once; headers %q", r.Key, k, h[k], r.Headers)
			}
			return h[k][0]
		}
		if one("ordo-attempt") != "0" || one("ordo-tier") != "1" || one("ordo-group") != "g" || one("ordo-original-topic") != "orders" {
			t.Fatalf("%s: headers %q", r.Key, r.Headers)
		}
		if nb, err := strconv.ParseInt(one("ordo-not-before"), 10, 64); err != nil || nb < before || nb > after {
			t.Fatalf("%s: ordo-not-before %q, want now (%d..%d)", r.Key, one("ordo-not-before"), before, after)
		}
		switch r.Key {
		case "c-1":
			if r.Payload != `{"amount":-5}` || r.Partition != 2 || one("ordo-redrive-id") != "orders.g.dlq/2/0" ||
				one("trace-id") != "t-41" || one("ordo-error") != "bad amount" || one("ordo-original-offset") != "41" || keys[0] != "trace-id" {
				t.Fatalf("c-1 as kcat reads it: %+v", r)
			}
		case "c-2":
			if r.Payload != `{"amount":7}` || r.Partition != 1 || one("ordo-redrive-id") != "orders.g.dlq/0/0" ||
				one("source_topic") != "orders" || one("source_offset") != "42" || one("ordo-original-partition") != "1" || one("ordo-original-offset") != "42" {
				t.Fatalf("c-2 as kcat reads it: %+v", r)
			}
		default:
			t.Fatalf("unexpected record %+v", r)
		}
	}
}

func TestDLQStatsCommand(t *testing.T) {
	b := newDLQBroker(t, gTopics)
	b.produce(
		&kgo.Record{Topic: "orders.g.dlq", Partition: 0, Headers: ordoLetter(2, 1, t0, "g", "permanent", "bad amount")},
		&kgo.Record{Topic: "orders.g.dlq", Partition: 1, Headers: ordoLetter(2, 2, t0.Add(time.Hour), "g", "permanent", "bad amount")},
		&kgo.Record{Topic: "orders.g.dlq", Partition: 2, Headers: springLetter(0, 3, t0.Add(2*time.Hour), "g")},
	)
	code, out, errs := b.ordo("dlq", "stats", "--topic", "orders", "--group", "g")
	for _, w := range []string{
		"orders.g.dlq: 3 dead letters match",
		"original records   2026-11-30T06:00:00.000Z .. 2026-11-30T08:00:00.000Z (their own timestamps, from the headers)",
		"java.lang.IllegalArgumentException  1", "permanent                           2",
		"2                      2", "spring     1",
		"       2  bad amount", "       1  amount must be positive",
	} {
		if code != 0 || !strings.Contains(out, w) {
			t.Errorf("stats lacks %q (exit %d, %s):\n%s", w, code, errs, out)
		}
	}
	code, out, _ = b.ordo("dlq", "stats", "--topic", "orders", "--group", "g", "--json")
	var st dlq.Stats
	if err := json.Unmarshal([]byte(out), &st); code != 0 || err != nil || st.Total != 3 || st.ByOriginalPartition[2] != 2 {
		t.Fatalf("stats --json: %v %+v\n%s", err, st, out)
	}
}

func TestRedriveBar(t *testing.T) {
	var tty bytes.Buffer
	bar := newRedriveBar(&tty, true)
	bar.last = time.Time{} // draw now
	bar.update(dlq.Progress{Phase: "redrive", Read: 50, Total: 200, Redriven: 40})
	bar.done()
	if got := tty.String(); !strings.HasPrefix(got, "\r[#######.......................]  25% redrive: 50/200 offsets read, 40 redriven") || !strings.HasSuffix(got, "\n") {
		t.Fatalf("tty bar %q", got)
	}
	var plain bytes.Buffer
	bar = newRedriveBar(&plain, false)
	bar.update(dlq.Progress{Phase: "plan", Read: 1, Total: 2})
	bar.update(dlq.Progress{Phase: "plan", Read: 2, Total: 2})
	bar.done()
	if got := plain.String(); got != "plan: 2/2 offsets read, 0 redriven\n" {
		t.Fatalf("plain progress %q (one line a second at most, then the last state)", got)
	}
	if isTerminal(&plain) {
		t.Fatal("a buffer is a terminal")
	}
}
