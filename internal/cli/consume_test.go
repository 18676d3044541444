package cli

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"
)

// consumedOffsets reads consume's JSON lines into "partition/offset"
// strings, checking that each line is one JSON object.
func consumedOffsets(t *testing.T, out string) []string {
	t.Helper()
	var got []string
	sc := bufio.NewScanner(strings.NewReader(out))
	for sc.Scan() {
		var r struct {
			Partition int32 `json:"partition"`
			Offset    int64 `json:"offset"`
		}
		if err := json.Unmarshal(sc.Bytes(), &r); err != nil {
			t.Fatalf("line %q: %v", sc.Text(), err)
		}
		got = append(got, fmt.Sprintf("%d/%d", r.Partition, r.Offset))
	}
	return got
}

// Every record, binary or not, with null keys, tombstones and repeated
// headers, goes through consume --format json and produce --format json
// into another topic unchanged: key, value, headers, timestamp and
// partition.
func TestConsumeProduceRoundTrip(t *testing.T) {
	c := newKfake(t, kfake.SeedTopics(3, "src", "dst"))
	addr := c.ListenAddrs()[0]
	ts := time.Date(2026, 3, 1, 12, 0, 0, 123e6, time.UTC)
	in := []*kgo.Record{
		{Partition: 0, Key: []byte("c-1"), Value: []byte(`{"total":12,"note":"<a&b>"}`), Timestamp: ts,
			Headers: []kgo.RecordHeader{{Key: "h", Value: []byte("1")}, {Key: "h", Value: []byte("2")}, {Key: "empty", Value: []byte{}}, {Key: "nil"}}},
		{Partition: 1, Key: nil, Value: []byte{0, 0xff, 0xfe, '\n'}, Timestamp: ts.Add(time.Second),
			Headers: []kgo.RecordHeader{{Key: "bin", Value: []byte{0xc3, 0x28}}}},
		{Partition: 1, Key: []byte{0xff}, Value: nil, Timestamp: ts.Add(2 * time.Second)}, // a tombstone with a binary key
		{Partition: 2, Key: []byte(""), Value: []byte("line\nbreak \"quoted\" \u00e9"), Timestamp: ts.Add(3 * time.Second)},
	}
	seed(t, addr, "src", in...)
	code, out, errs := runOrdo(t, "", "consume", "--brokers", addr, "--topic", "src", "-e")
	if code != 0 {
		t.Fatalf("consume: exit %d: %s", code, errs)
	}
	if !strings.Contains(errs, "ordo consume: 4 records from src (every partition read to its end offset at the start)") {
		t.Errorf("stderr %q", errs)
	}
	if !strings.Contains(out, `"value":"{\"total\":12,\"note\":\"<a&b>\"}"`) || !strings.Contains(out, `"value":{"base64":"AP/+Cg=="}`) ||
		!strings.Contains(out, `"key":null`) || !strings.Contains(out, `"timestamp":"2026-03-01T12:00:00.123Z"`) {
		t.Errorf("consume's JSON:\n%s", out)
	}
	code, _, errs = runOrdo(t, out, "produce", "--brokers", addr, "--topic", "dst", "--format", "json", "-q")
	if code != 0 {
		t.Fatalf("produce: exit %d: %s", code, errs)
	}
	got := readAll(t, addr, "dst")
	if len(got) != len(in) {
		t.Fatalf("%d records in dst, want %d", len(got), len(in))
	}
	for i, w := range in {
		g := got[i]
		if g.Partition != w.Partition || !bytes.Equal(g.Key, w.Key) || (g.Key == nil) != (w.Key == nil) ||
			!bytes.Equal(g.Value, w.Value) || (g.Value == nil) != (w.Value == nil) || !g.Timestamp.Equal(w.Timestamp) || len(g.Headers) != len(w.Headers) {
			t.Errorf("record %d: got partition %d key %q value %q ts %v headers %v\nwant partition %d key %q value %q ts %v headers %v",
				i, g.Partition, g.Key, g.Value, g.Timestamp, g.Headers, w.Partition, w.Key, w.Value, w.Timestamp, w.Headers)
			continue
		}
		for j := range w.Headers {
			if g.Headers[j].Key != w.Headers[j].Key || !bytes.Equal(g.Headers[j].Value, w.Headers[j].Value) {
				t.Errorf("record %d header %d: %q=%q, want %q=%q", i, j, g.Headers[j].Key, g.Headers[j].Value, w.Headers[j].Key, w.Headers[j].Value)
			}
		}
	}
}

// --offset in each of its forms, --partitions and --num.
func TestConsumeOffsets(t *testing.T) {
	c := newKfake(t, kfake.SeedTopics(2, "orders"))
	addr := c.ListenAddrs()[0]
	base := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	var recs []*kgo.Record
	for p := range int32(2) {
		for i := range 10 {
			recs = append(recs, &kgo.Record{Partition: p, Value: []byte("v"), Timestamp: base.Add(time.Duration(i) * time.Minute)})
		}
	}
	seed(t, addr, "orders", recs...)
	cases := []struct {
		args []string
		want []string
	}{
		{[]string{"-o", "-3", "-e"}, []string{"0/7", "0/8", "0/9", "1/7", "1/8", "1/9"}},
		{[]string{"-o", "+8", "-e"}, []string{"0/8", "0/9", "1/8", "1/9"}},
		{[]string{"-o", "5", "--partitions", "1", "-e"}, []string{"1/5", "1/6", "1/7", "1/8", "1/9"}},
		{[]string{"-o", "2026-03-01T12:08:00Z", "-e"}, []string{"0/8", "0/9", "1/8", "1/9"}},
		{[]string{"-o", "end", "-e"}, nil},
		{[]string{"-o", "earliest", "--partitions", "0", "-n", "3"}, []string{"0/0", "0/1", "0/2"}},
		{[]string{"-o", "-100", "--partitions", "0-1", "-n", "1"}, []string{"0/0"}},
		{[]string{"-o", "50", "-e"}, nil}, // past the end: starts at the end, with a note
	}
	for _, tc := range cases {
		t.Run(strings.Join(tc.args, " "), func(t *testing.T) {
			code, out, errs := runOrdo(t, "", append([]string{"consume", "--brokers", addr, "--topic", "orders"}, tc.args...)...)
			if code != 0 {
				t.Fatalf("exit %d: %s", code, errs)
			}
			got := consumedOffsets(t, out)
			slices.Sort(got)
			if !slices.Equal(got, tc.want) {
				t.Errorf("read %v, want %v", got, tc.want)
			}
		})
	}
	_, _, errs := runOrdo(t, "", "consume", "--brokers", addr, "--topic", "orders", "-o", "50", "-e")
	if !strings.Contains(errs, "note: orders/0 starts at 10 (its end): offset 50 is past it") {
		t.Errorf("no note for an offset past the end: %s", errs)
	}
	code, _, errs := runOrdo(t, "", "consume", "--brokers", addr, "--topic", "orders", "--partitions", "5", "-e")
	if code != 1 || !strings.Contains(errs, "--partitions 5: topic orders has no partition 5 (it has 2: 0-1)") {
		t.Errorf("exit %d: %s", code, errs)
	}
	code, _, errs = runOrdo(t, "", "consume", "--brokers", addr, "--topic", "orders,nope", "-e")
	if code != 1 || !strings.Contains(errs, "topic nope does not exist") {
		t.Errorf("exit %d: %s", code, errs)
	}
}

// With --group, consume commits exactly the records it printed: a second
// run goes on from there, and no record is printed twice.
func TestConsumeGroupCommitsWhatItPrinted(t *testing.T) {
	c := newKfake(t, kfake.SeedTopics(2, "orders"))
	addr := c.ListenAddrs()[0]
	seed(t, addr, "orders", append(valueRecords(0, 5), valueRecords(1, 5)...)...)
	code, out1, errs := runOrdo(t, "", "consume", "--brokers", addr, "--topic", "orders", "--group", "audit", "-n", "3")
	if code != 0 || !strings.Contains(errs, "committed for group audit") {
		t.Fatalf("exit %d: %s", code, errs)
	}
	adm, err := kgo.NewClient(kgo.SeedBrokers(addr))
	if err != nil {
		t.Fatal(err)
	}
	defer adm.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	committed, err := kadm.NewClient(adm).FetchOffsets(ctx, "audit")
	if err != nil {
		t.Fatal(err)
	}
	var sum int64
	committed.Each(func(o kadm.OffsetResponse) { sum += o.At })
	if sum != 3 {
		t.Errorf("committed offsets sum to %d, want the 3 printed", sum)
	}
	code, out2, errs := runOrdo(t, "", "consume", "--brokers", addr, "--topic", "orders", "--group", "audit", "-e")
	if code != 0 {
		t.Fatalf("exit %d: %s", code, errs)
	}
	all := append(consumedOffsets(t, out1), consumedOffsets(t, out2)...)
	slices.Sort(all)
	want := []string{"0/0", "0/1", "0/2", "0/3", "0/4", "1/0", "1/1", "1/2", "1/3", "1/4"}
	if !slices.Equal(all, want) {
		t.Errorf("the two runs read %v, want each record once: %v", all, want)
	}
	// Everything read: a third run has nothing, and says so at once.
	code, out3, _ := runOrdo(t, "", "consume", "--brokers", addr, "--topic", "orders", "--group", "audit", "-e")
	if code != 0 || out3 != "" {
		t.Errorf("third run: exit %d, read %q", code, out3)
	}
}

// -e ends at the end offsets even when the last offsets are transaction
// markers (not records), and committed transactions are printed.
func TestConsumeExitAtEndAfterTransactionMarkers(t *testing.T) {
	c := newKfake(t, kfake.SeedTopics(1, "orders"))
	addr := c.ListenAddrs()[0]
	cl, err := kgo.NewClient(kgo.SeedBrokers(addr), kgo.TransactionalID("tx"), kgo.DefaultProduceTopic("orders"))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	for i := range 2 {
		if err := cl.BeginTransaction(); err != nil {
			t.Fatal(err)
		}
		if err := cl.ProduceSync(ctx, &kgo.Record{Value: []byte{byte('a' + i)}}).FirstErr(); err != nil {
			t.Fatal(err)
		}
		if err := cl.EndTransaction(ctx, kgo.TryCommit); err != nil {
			t.Fatal(err)
		}
	}
	done := make(chan struct{})
	var code int
	var out, errs string
	go func() {
		defer close(done)
		code, out, errs = runOrdo(t, "", "consume", "--brokers", addr, "--topic", "orders", "-e", "--format", "text")
	}()
	select {
	case <-done:
	case <-time.After(15 * time.Second):
		t.Fatal("consume -e did not stop at the end (the last offset is a transaction marker)")
	}
	if code != 0 || strings.Count(out, "\n") != 2 || !strings.Contains(out, `orders/0/0 `) || !strings.Contains(out, `value "b"`) {
		t.Errorf("exit %d, stdout %q, stderr %q", code, out, errs)
	}
}

// --format text: one line per record, text quoted, binary in hex.
func TestConsumeTextFormat(t *testing.T) {
	c := newKfake(t, kfake.SeedTopics(1, "orders"))
	addr := c.ListenAddrs()[0]
	ts := time.Date(2026, 3, 1, 12, 0, 0, 5e6, time.UTC)
	seed(t, addr, "orders",
		&kgo.Record{Key: []byte("c-17"), Value: []byte(`{"total":12}`), Timestamp: ts, Headers: []kgo.RecordHeader{{Key: "source", Value: []byte("web")}}},
		&kgo.Record{Value: []byte{0xff, 0}, Timestamp: ts})
	code, out, errs := runOrdo(t, "", "consume", "--brokers", addr, "--topic", "orders", "-e", "-f", "text")
	want := `orders/0/0 2026-03-01T12:00:00.005Z key "c-17" value "{\"total\":12}" "source"="web"` + "\n" +
		`orders/0/1 2026-03-01T12:00:00.005Z key null value 0xff00` + "\n"
	if code != 0 || out != want {
		t.Errorf("exit %d, stderr %q, stdout:\n%s\nwant:\n%s", code, errs, out, want)
	}
}

// Every bad flag at once, exit 2, before anything connects.
func TestConsumeFlagsAllAtOnce(t *testing.T) {
	code, out, errs := runOrdo(t, "", "consume", "--brokers", "127.0.0.1:1", "--group", "g", "--partitions", "x", "-o", "soon",
		"-n", "-1", "-f", "yaml", "--connect-timeout", "0s")
	want := []string{"--topic is required", `--offset "soon": want start, end, an offset N, +N`, "--num must be >= 0",
		`--partitions "x": "x" is not a partition number`, `--partitions chooses partitions, and --group "g" has its members assigned theirs`,
		`--format "yaml": want json or text`, "--connect-timeout must be > 0"}
	if code != 2 || out != "" {
		t.Errorf("exit %d, stdout %q", code, out)
	}
	for _, w := range want {
		if !strings.Contains(errs, w) {
			t.Errorf("stderr lacks %q:\n%s", w, errs)
		}
	}
}
