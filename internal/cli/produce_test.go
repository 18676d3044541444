package cli

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"io"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/ordokafka/ordo/processors/builtin"
)

// newKfake starts a one-broker kfake cluster with opts, closed at the
// test's end.
func newKfake(t *testing.T, opts ...kfake.Opt) *kfake.Cluster {
	t.Helper()
	c, err := kfake.NewCluster(append([]kfake.Opt{kfake.NumBrokers(1)}, opts...)...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.Close)
	return c
}

// runOrdo runs the ordo command line with stdin and returns the exit code,
// stdout and stderr.
func runOrdo(t *testing.T, stdin string, args ...string) (code int, stdout, stderr string) {
	t.Helper()
	var out, errb bytes.Buffer
	code = mainIO(context.Background(), args, strings.NewReader(stdin), &out, &errb, nil, builtin.New())
	return code, out.String(), errb.String()
}

// readAll reads every record of topic with franz-go itself (not ordo
// consume), ordered by partition and offset.
func readAll(t *testing.T, addr string, topic string, opts ...kgo.Opt) []*kgo.Record {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	adm, err := kgo.NewClient(append([]kgo.Opt{kgo.SeedBrokers(addr)}, opts...)...)
	if err != nil {
		t.Fatal(err)
	}
	ends, err := kadm.NewClient(adm).ListEndOffsets(ctx, topic)
	adm.Close()
	if err != nil {
		t.Fatal(err)
	}
	want := int64(0)
	ends.Each(func(o kadm.ListedOffset) { want += o.Offset })
	cl, err := kgo.NewClient(append([]kgo.Opt{kgo.SeedBrokers(addr), kgo.ConsumeTopics(topic)}, opts...)...)
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	var recs []*kgo.Record
	for int64(len(recs)) < want {
		fs := cl.PollFetches(ctx)
		if ctx.Err() != nil {
			t.Fatalf("read %d of %d records of %s", len(recs), want, topic)
		}
		fs.EachRecord(func(r *kgo.Record) { recs = append(recs, r) })
	}
	slices.SortFunc(recs, func(a, b *kgo.Record) int {
		if a.Partition != b.Partition {
			return int(a.Partition - b.Partition)
		}
		return int(a.Offset - b.Offset)
	})
	return recs
}

// keyPartition is the partition franz-go's (and Kafka's Java client's)
// murmur2 partitioning gives key among n.
func keyPartition(key string, n int) int32 {
	return int32(kgo.StickyKeyPartitioner(nil).ForTopic("t").Partition(&kgo.Record{Key: []byte(key)}, n))
}

// Text lines: one value each (an empty line too, a \r before \n
// dropped), with -k, -H and --partition; a line per acknowledged record.
func TestProduceTextLines(t *testing.T) {
	c := newKfake(t, kfake.SeedTopics(3, "orders"))
	addr := c.ListenAddrs()[0]
	code, out, errs := runOrdo(t, "one\r\n\nthree", "produce", "--brokers", addr, "--topic", "orders",
		"-k", "c-1", "-H", "source=cli", "-H", "trace=a=b", "--partition", "2")
	if code != 0 {
		t.Fatalf("exit %d: %s", code, errs)
	}
	wantOut := "line 1: orders/2 offset 0\nline 2: orders/2 offset 1\nline 3: orders/2 offset 2\n"
	if out != wantOut {
		t.Errorf("stdout %q, want %q", out, wantOut)
	}
	if !strings.Contains(errs, "ordo produce: 3 of 3 records produced to orders (partitions 2)") {
		t.Errorf("stderr %q", errs)
	}
	recs := readAll(t, addr, "orders")
	var values []string
	for _, r := range recs {
		values = append(values, string(r.Value))
		if string(r.Key) != "c-1" || r.Partition != 2 || len(r.Headers) != 2 || r.Headers[0].Key != "source" || string(r.Headers[0].Value) != "cli" ||
			r.Headers[1].Key != "trace" || string(r.Headers[1].Value) != "a=b" {
			t.Errorf("record %+v", r)
		}
	}
	if !slices.Equal(values, []string{"one", "", "three"}) {
		t.Errorf("values %q", values)
	}
}

// --key-delim splits at the first delimiter; the key picks the partition
// as Kafka's Java client would (murmur2).
func TestProduceKeyDelim(t *testing.T) {
	c := newKfake(t, kfake.SeedTopics(6, "orders"))
	addr := c.ListenAddrs()[0]
	code, _, errs := runOrdo(t, "c-1:{\"a\":1}\nc-2:x:y\nc-1:z\n", "produce", "--brokers", addr, "--topic", "orders", "--key-delim", ":", "-q")
	if code != 0 {
		t.Fatalf("exit %d: %s", code, errs)
	}
	got := map[string][]string{}
	for _, r := range readAll(t, addr, "orders") {
		if r.Partition != keyPartition(string(r.Key), 6) {
			t.Errorf("key %q on partition %d, murmur2 says %d", r.Key, r.Partition, keyPartition(string(r.Key), 6))
		}
		got[string(r.Key)] = append(got[string(r.Key)], string(r.Value))
	}
	if !slices.Equal(got["c-1"], []string{`{"a":1}`, "z"}) || !slices.Equal(got["c-2"], []string{"x:y"}) {
		t.Errorf("records %q", got)
	}
}

// JSON lines: every documented form of key, value, headers, partition and
// timestamp.
func TestProduceJSONForms(t *testing.T) {
	c := newKfake(t, kfake.SeedTopics(4, "orders"))
	addr := c.ListenAddrs()[0]
	in := strings.Join([]string{
		`{"key":"k1","value":"text","partition":1,"timestamp":"2026-03-01T12:00:00.123Z","headers":{"b":"2","a":"1"}}`,
		`{"key":null,"value":{"total": 12},"partition":1,"timestamp":1772366400000,"headers":[{"key":"h","value":"x"},{"key":"h","value":{"base64":"AP8="}}]}`,
		``,
		`{"key":{"base64":"AAEC"},"value":null,"partition":1}`,
		`{"value":42,"partition":1,"topic":"elsewhere","offset":99}`,
	}, "\n")
	code, out, errs := runOrdo(t, in, "produce", "--brokers", addr, "--topic", "orders", "--format", "json", "-k", "default-key")
	if code != 0 {
		t.Fatalf("exit %d: %s", code, errs)
	}
	if !strings.Contains(out, "line 5: orders/1 offset 3") {
		t.Errorf("stdout %q: a blank line is skipped, the numbers are the input's", out)
	}
	recs := readAll(t, addr, "orders")
	if len(recs) != 4 {
		t.Fatalf("%d records", len(recs))
	}
	r := recs[0]
	if string(r.Key) != "k1" || string(r.Value) != "text" || !r.Timestamp.Equal(time.Date(2026, 3, 1, 12, 0, 0, 123e6, time.UTC)) ||
		len(r.Headers) != 2 || r.Headers[0].Key != "b" || r.Headers[1].Key != "a" {
		t.Errorf("record 1: %+v", r)
	}
	r = recs[1]
	if r.Key != nil || string(r.Value) != `{"total": 12}` || r.Timestamp.UnixMilli() != 1772366400000 ||
		len(r.Headers) != 2 || string(r.Headers[0].Value) != "x" || !bytes.Equal(r.Headers[1].Value, []byte{0, 0xff}) {
		t.Errorf("record 2: key %q value %q headers %v", r.Key, r.Value, r.Headers)
	}
	r = recs[2]
	if !bytes.Equal(r.Key, []byte{0, 1, 2}) || r.Value != nil {
		t.Errorf("record 3 (a tombstone): key %v value %v", r.Key, r.Value)
	}
	r = recs[3]
	if string(r.Key) != "default-key" || string(r.Value) != "42" || r.Topic != "orders" {
		t.Errorf("record 4: %+v", r)
	}
}

// The first bad line stops the run: the lines before it are produced and
// acknowledged, nothing from it on is; exit 1 naming the line.
func TestProduceBadLineStops(t *testing.T) {
	cases := []struct {
		name, format, in, want string
	}{
		{"syntax", "json", `{"value":"a"}` + "\n" + `{"value":"b"}` + "\n" + `{"value":` + "\n" + `{"value":"d"}`,
			"line 3: value: not valid JSON: it ends too early: nothing from it on was produced; the 2 records before it were"},
		{"unknown field", "json", `{"value":"a"}` + "\n" + `{"value":"b"}` + "\n" + `{"vlaue":"c"}`,
			`line 3: unknown field "vlaue" (the fields are topic, partition, offset, timestamp, key, value, headers)`},
		{"no value", "json", `{"value":"a"}` + "\n" + `{"value":"b"}` + "\n" + `{"key":"c"}`,
			`line 3: no "value" (write "value": null for a tombstone)`},
		{"no partition", "json", `{"value":"a"}` + "\n" + `{"value":"b"}` + "\n" + `{"value":"c","partition":7}`,
			"line 3: partition 7: topic orders has 2 partitions (0-1)"},
		{"bad base64", "json", `{"value":"a"}` + "\n" + `{"value":"b"}` + "\n" + `{"value":{"base64":"!!"}}`,
			`line 3: value: {"base64": ...}: illegal base64 data at input byte 0`},
		{"bad timestamp", "json", `{"value":"a"}` + "\n" + `{"value":"b"}` + "\n" + `{"value":"c","timestamp":"yesterday"}`,
			`line 3: timestamp: "yesterday": want an RFC 3339 time`},
		{"no delimiter", "text", "k:a\nk:b\nno delimiter\nk:d", `line 3: no --key-delim ":" in the line (each line is key:value)`},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			c := newKfake(t, kfake.SeedTopics(2, "orders"))
			addr := c.ListenAddrs()[0]
			args := []string{"produce", "--brokers", addr, "--topic", "orders", "--format", tc.format}
			if tc.format == "text" {
				args = append(args, "--key-delim", ":")
			}
			code, out, errs := runOrdo(t, tc.in, args...)
			if code != 1 || !strings.Contains(errs, tc.want) {
				t.Fatalf("exit %d, stderr:\n%s\nwant exit 1 and %q", code, errs, tc.want)
			}
			if !strings.Contains(errs, "ordo produce: 2 of 2 records produced to orders") || strings.Count(out, "\n") != 2 {
				t.Errorf("stdout %q stderr %q: want the 2 records before the bad line reported", out, errs)
			}
			if recs := readAll(t, addr, "orders"); len(recs) != 2 {
				t.Errorf("%d records on the broker, want the 2 before the bad line", len(recs))
			}
		})
	}
}

// A topic that does not exist fails at once, saying so; every bad flag is
// reported at once before anything connects.
func TestProduceErrors(t *testing.T) {
	c := newKfake(t)
	addr := c.ListenAddrs()[0]
	code, _, errs := runOrdo(t, "x\n", "produce", "--brokers", addr, "--topic", "nope")
	if code != 1 || !strings.Contains(errs, "topic nope does not exist: create it first") {
		t.Errorf("exit %d: %s", code, errs)
	}
	code, out, errs := runOrdo(t, "x\n", "produce", "--brokers", "", "--format", "yaml", "-H", "novalue", "--partition", "-2",
		"--delivery-timeout", "0s", "--key-delim", ":", "-k", "k")
	want := []string{"--brokers is required", "--topic is required", `--format "yaml": want text or json`,
		`--header "novalue": want name=value`, "--partition must be >= 0", "--delivery-timeout must be > 0",
		"--key-delim and --key take the key two ways"}
	if code != 2 || out != "" {
		t.Errorf("exit %d, stdout %q", code, out)
	}
	for _, w := range want {
		if !strings.Contains(errs, w) {
			t.Errorf("stderr lacks %q:\n%s", w, errs)
		}
	}
}

// seed produces recs to topic with franz-go (each to its Partition), for
// consume's tests.
func seed(t *testing.T, addr, topic string, recs ...*kgo.Record) {
	t.Helper()
	cl, err := kgo.NewClient(kgo.SeedBrokers(addr), kgo.RecordPartitioner(kgo.ManualPartitioner()), kgo.DefaultProduceTopic(topic))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	if err := cl.ProduceSync(ctx, recs...).FirstErr(); err != nil {
		t.Fatal(err)
	}
}

func valueRecords(partition int32, n int) []*kgo.Record {
	var out []*kgo.Record
	for i := range n {
		out = append(out, &kgo.Record{Partition: partition, Key: []byte("k"), Value: []byte(strconv.Itoa(i))})
	}
	return out
}

// A record the brokers refuse stops the run with an error naming its
// line, and the summary's count is what the broker holds: nothing is
// half-written silently.
func TestProduceRefusedRecordStops(t *testing.T) {
	c := newKfake(t)
	addr := c.ListenAddrs()[0]
	adm, err := kgo.NewClient(kgo.SeedBrokers(addr))
	if err != nil {
		t.Fatal(err)
	}
	maxBytes := "300"
	_, err = kadm.NewClient(adm).CreateTopic(context.Background(), 1, 1, map[string]*string{"max.message.bytes": &maxBytes}, "orders")
	adm.Close()
	if err != nil {
		t.Fatal(err)
	}
	noise := make([]byte, 1000) // random: the producer's compression cannot shrink it under the limit
	_, _ = rand.Read(noise)
	big := hex.EncodeToString(noise)
	code, _, errs := runOrdo(t, "a\nb\n"+big+"\nd\ne\n", "produce", "--brokers", addr, "--topic", "orders", "-q")
	if code != 1 || !strings.Contains(errs, "MESSAGE_TOO_LARGE") {
		t.Fatalf("exit %d, stderr %q", code, errs)
	}
	// Which lines fail with it depends on how the producer batched them
	// (a refused batch fails all its records); the count reported is what
	// the broker holds either way.
	recs := readAll(t, addr, "orders")
	if want := "ordo produce: " + strconv.Itoa(len(recs)) + " of 5 records produced to orders"; !strings.Contains(errs, want) {
		t.Errorf("the broker holds %d records; stderr %q", len(recs), errs)
	}
	for _, r := range recs {
		if len(r.Value) > 1 {
			t.Errorf("the refused record was written: %d bytes", len(r.Value))
		}
	}
	if !strings.Contains(errs, "line 3") && !regexp.MustCompile(`of lines [1-3] to [3-5]`).MatchString(errs) {
		t.Errorf("the error does not point at line 3: %s", errs)
	}
}

// Interrupted while it waits for input (a pipe nobody closes), produce
// stops at once, delivers what it read and says where it stopped.
func TestProduceInterruptedWhileWaitingForInput(t *testing.T) {
	c := newKfake(t, kfake.SeedTopics(1, "orders"))
	addr := c.ListenAddrs()[0]
	pr, pw := io.Pipe()
	defer pw.Close() // ends the reader, blocked in the pipe, after the test
	var out, errb syncBuffer
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	done := make(chan int, 1)
	go func() {
		done <- mainIO(ctx, []string{"produce", "--brokers", addr, "--topic", "orders"}, pr, &out, &errb, nil, builtin.New())
	}()
	if _, err := io.WriteString(pw, "a\nb\n"); err != nil {
		t.Fatal(err)
	}
	for deadline := time.Now().Add(10 * time.Second); !strings.Contains(out.String(), "line 2: orders/0 offset 1"); time.Sleep(10 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("line 2 not produced: %q %q", out.String(), errb.String())
		}
	}
	cancel()
	select {
	case code := <-done:
		if code != 0 || !strings.Contains(errb.String(), "ordo produce: 2 of 2 records produced to orders (partitions 0); interrupted after line 2, the rest of the input not read") {
			t.Errorf("exit %d, stderr %q", code, errb.String())
		}
	case <-time.After(10 * time.Second):
		t.Fatal("produce did not stop when interrupted while waiting for input")
	}
}
