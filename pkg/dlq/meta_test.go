package dlq_test

import (
	"encoding/json"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/ordokafka/ordo/pkg/dlq"
)

var ts0 = time.Date(2026, 11, 30, 6, 0, 0, 123e6, time.UTC)

func TestDecodeFormats(t *testing.T) {
	own := []kgo.RecordHeader{{Key: "trace", Value: []byte("abc")}}
	tests := []struct {
		name string
		hs   []kgo.RecordHeader
		want dlq.Meta
	}{
		{
			name: "ordo",
			hs:   append(own, ordoHeaders("orders", 3, 17, ts0, "billing", "permanent", "bad amount")...),
			want: dlq.Meta{Format: dlq.FormatOrdo, Original: dlq.Origin{Topic: "orders", Partition: 3, Offset: 17, Timestamp: ts0},
				Group: "billing", ErrorClass: "permanent", Error: "bad amount", Attempt: 5, Processor: "example"},
		},
		{
			name: "spring",
			hs:   append(own, springHeaders("orders", 7, 1<<40, ts0, "billing", "java.lang.IllegalStateException", "no such customer")...),
			want: dlq.Meta{Format: dlq.FormatSpring, Original: dlq.Origin{Topic: "orders", Partition: 7, Offset: 1 << 40, Timestamp: ts0},
				Group: "billing", ErrorClass: "org.springframework.kafka.listener.ListenerExecutionFailedException",
				Cause: "java.lang.IllegalStateException", Error: "no such customer"},
		},
		{
			name: "karafka",
			hs:   append(own, karafkaHeaders("orders", 2, 99, "billing-app")...),
			want: dlq.Meta{Format: dlq.FormatKarafka, Original: dlq.Origin{Topic: "orders", Partition: 2, Offset: 99},
				Group: "billing-app", Attempt: 3},
		},
		{
			name: "none",
			hs:   own,
			want: dlq.Meta{Format: dlq.FormatNone, Original: dlq.Origin{Partition: -1, Offset: -1}},
		},
		{
			// Spring dead-lettered a record, then Ordo consumed the DLT and
			// dead-lettered it again: Ordo's headers come last.
			name: "spring then ordo",
			hs: append(springHeaders("orders", 7, 5, ts0, "billing", "X", "first"),
				ordoHeaders("orders-dlt", 0, 1, ts0.Add(time.Hour), "ledger", "panic", "second")...),
			want: dlq.Meta{Format: dlq.FormatOrdo, Original: dlq.Origin{Topic: "orders-dlt", Partition: 0, Offset: 1, Timestamp: ts0.Add(time.Hour)},
				Group: "ledger", ErrorClass: "panic", Error: "second", Attempt: 5, Processor: "example"},
		},
		{
			// A forged ordo- header on the source record, kept by Spring:
			// Spring's headers come after it, so Spring's win.
			name: "forged ordo header under spring",
			hs: append([]kgo.RecordHeader{{Key: "ordo-original-topic", Value: []byte("payments")}},
				springHeaders("orders", 1, 2, ts0, "billing", "X", "m")...),
			want: dlq.Meta{Format: dlq.FormatSpring, Original: dlq.Origin{Topic: "orders", Partition: 1, Offset: 2, Timestamp: ts0},
				Group: "billing", ErrorClass: "org.springframework.kafka.listener.ListenerExecutionFailedException", Cause: "X", Error: "m"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := dlq.Decode(tt.hs)
			if !reflect.DeepEqual(got, tt.want) {
				t.Fatalf("Decode:\n got %+v\nwant %+v", got, tt.want)
			}
		})
	}
}

// Spring's timestamp -1 (a record without one) is unknown; decimal text is
// accepted where Spring writes binary; a value of the wrong width is a
// problem, not a guess; repeated headers: first original, last exception.
func TestDecodeSpringEdges(t *testing.T) {
	hs := []kgo.RecordHeader{
		{Key: "kafka_dlt-original-topic", Value: []byte("orders")},
		{Key: "kafka_dlt-original-partition", Value: []byte{0, 0, 1}},                                        // 3 bytes
		{Key: "kafka_dlt-original-offset", Value: []byte("12345")},                                           // text
		{Key: "kafka_dlt-original-timestamp", Value: []byte{0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff}}, // -1
		{Key: "kafka_dlt-exception-message", Value: []byte("first")},
		{Key: "kafka_dlt-original-topic", Value: []byte("orders-retry-0")},
		{Key: "kafka_dlt-exception-message", Value: []byte("latest")},
		{Key: "kafka_dlt-key-exception-fqcn", Value: []byte("org.apache.kafka.common.errors.SerializationException")},
	}
	m := dlq.DecodeSpring(hs)
	if m.Original.Topic != "orders" || m.Original.Partition != -1 || m.Original.Offset != 12345 || !m.Original.Timestamp.IsZero() {
		t.Fatalf("original = %+v", m.Original)
	}
	if m.Error != "latest" || m.ErrorClass != "org.apache.kafka.common.errors.SerializationException" {
		t.Fatalf("error %q class %q", m.Error, m.ErrorClass)
	}
	if len(m.Problems) != 1 || !strings.Contains(m.Problems[0], "kafka_dlt-original-partition: want a 4-byte big-endian integer, got 3 bytes") {
		t.Fatalf("problems %q", m.Problems)
	}
}

func TestDecodeProblems(t *testing.T) {
	m := dlq.Decode([]kgo.RecordHeader{
		{Key: "ordo-original-topic", Value: []byte("orders\xff")},
		{Key: "ordo-original-partition", Value: []byte("-3")},
		{Key: "ordo-original-offset", Value: []byte("x")},
		{Key: "ordo-attempt", Value: []byte("99999999999")},
	})
	if m.Original.Topic != "orders\uFFFD" || m.Original.Partition != -1 || m.Original.Offset != -1 || m.Attempt != 0 {
		t.Fatalf("meta %+v", m)
	}
	if len(m.Problems) != 3 {
		t.Fatalf("problems %q", m.Problems)
	}
	k := dlq.Decode(karafkaHeaders("orders", 1, 1, "g")[:1])
	if k.Format != dlq.FormatKarafka || k.Original.Partition != -1 || len(k.Problems) != 0 {
		t.Fatalf("karafka with the topic only: %+v", k)
	}
}

// A letter's JSON gives back the same letter, bytes that are not UTF-8
// included.
func TestLetterJSONRoundTrip(t *testing.T) {
	r := &kgo.Record{
		Topic: "orders.billing.dlq", Partition: 2, Offset: 40, Timestamp: ts0.Add(time.Minute),
		Key: []byte{0xff, 'k'}, Value: []byte(`{"amount": 1}`),
		Headers: append([]kgo.RecordHeader{{Key: "bin", Value: []byte{0, 1, 0xfe}}, {Key: "empty", Value: []byte{}}, {Key: "nil"}},
			springHeaders("orders", 7, 9, ts0, "billing", "X", "boom")...),
	}
	for _, l := range []dlq.Letter{dlq.FromRecord(r), dlq.FromRecord(r).WithoutPayload()} {
		b, err := json.Marshal(l)
		if err != nil {
			t.Fatal(err)
		}
		var back dlq.Letter
		if err := json.Unmarshal(b, &back); err != nil {
			t.Fatal(err)
		}
		if !reflect.DeepEqual(back, l) {
			t.Fatalf("round trip:\n got %+v\nwant %+v\njson %s", back, l, b)
		}
	}
	b, _ := json.Marshal(dlq.FromRecord(r).WithoutPayload())
	if strings.Contains(string(b), "amount") || !strings.Contains(string(b), `"value_hidden":true`) || !strings.Contains(string(b), `"value_size":13`) {
		t.Fatalf("payload not hidden: %s", b)
	}
	if !strings.Contains(string(b), `"key":{"base64":"/2s="}`) {
		t.Fatalf("key not base64: %s", b)
	}
}

func TestParseRanges(t *testing.T) {
	good := map[string]string{"": "", "3": "3", "3-7": "3-7", "100-": "100-", "-50": "0-50", "0, 4-6 ,9": "0,4-6,9"}
	for in, want := range good {
		rs, err := dlq.ParseRanges(in)
		if err != nil || rs.String() != want {
			t.Errorf("ParseRanges(%q) = %v (%q), %v; want %q", in, rs, rs.String(), err, want)
		}
	}
	for _, in := range []string{"x", "7-3", "1,,2", "-", "1--2", "-1-", "3.5"} {
		if rs, err := dlq.ParseRanges(in); err == nil {
			t.Errorf("ParseRanges(%q) = %v, want an error", in, rs)
		}
	}
	rs, _ := dlq.ParseRanges("0,4-6,10-")
	for v, want := range map[int64]bool{0: true, 1: false, 4: true, 6: true, 7: false, 10: true, 1 << 50: true} {
		if rs.Contains(v) != want {
			t.Errorf("Contains(%d) = %v", v, !want)
		}
	}
}

func TestFilterMatch(t *testing.T) {
	mk := func(hs []kgo.RecordHeader, p int32, off int64, key string) *dlq.Letter {
		l := dlq.FromRecord(&kgo.Record{Topic: "d", Partition: p, Offset: off, Key: []byte(key), Headers: hs})
		return &l
	}
	billing := mk(ordoHeaders("orders", 3, 17, ts0, "billing", "permanent", "e"), 1, 100, "k1")
	audit := mk(ordoHeaders("orders", 3, 18, ts0, "audit", "timeout", "e"), 1, 101, "k2")
	spring := mk(springHeaders("orders", 5, 40, ts0.Add(time.Hour), "billing", "java.lang.IllegalStateException", "m"), 0, 7, "k1")
	karafka := mk(karafkaHeaders("payments", 2, 9, "billing"), 2, 8, "k3")
	bare := mk(nil, 0, 9, "k1")
	all := []*dlq.Letter{billing, audit, spring, karafka, bare}
	rs := func(s string) dlq.Ranges { r, _ := dlq.ParseRanges(s); return r }
	tests := []struct {
		name string
		f    dlq.Filter
		want []*dlq.Letter
	}{
		{"zero", dlq.Filter{}, all},
		{"group: letters naming none are kept", dlq.Filter{Group: "billing"}, []*dlq.Letter{billing, spring, karafka, bare}},
		{"since on the original timestamp", dlq.Filter{Since: ts0.Add(time.Minute)}, []*dlq.Letter{spring}},
		{"until is exclusive", dlq.Filter{Until: ts0.Add(time.Hour)}, []*dlq.Letter{billing, audit}},
		{"error class, or Spring's cause", dlq.Filter{ErrorClasses: []string{"timeout", "java.lang.IllegalStateException"}}, []*dlq.Letter{audit, spring}},
		{"key", dlq.Filter{Keys: []string{"k1"}}, []*dlq.Letter{billing, spring, bare}},
		{"original partition", dlq.Filter{Partitions: rs("3-5")}, []*dlq.Letter{billing, audit, spring}},
		{"original offset", dlq.Filter{Offsets: rs("18-40")}, []*dlq.Letter{audit, spring}},
		{"dlq partition", dlq.Filter{DLQPartitions: rs("0")}, []*dlq.Letter{spring, bare}},
		{"dlq offset", dlq.Filter{DLQOffsets: rs("8-100")}, []*dlq.Letter{billing, karafka, bare}},
		{"original topic", dlq.Filter{OriginalTopic: "payments"}, []*dlq.Letter{karafka}},
	}
	for _, tt := range tests {
		var got []*dlq.Letter
		for _, l := range all {
			if tt.f.Match(l) {
				got = append(got, l)
			}
		}
		if !reflect.DeepEqual(got, tt.want) {
			t.Errorf("%s: matched %d letters, want %d", tt.name, len(got), len(tt.want))
		}
	}
	if err := (dlq.Filter{Since: ts0, Until: ts0}).Validate(); err == nil {
		t.Error("since == until validated")
	}
}
