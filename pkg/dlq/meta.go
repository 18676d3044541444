package dlq

import (
	"encoding/binary"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/ordokafka/ordo/pkg/ordo"
)

// Format is the convention a dead letter's metadata headers follow.
type Format string

// The formats Decode reads.
const (
	// FormatOrdo: the ordo- headers Ordo's router writes (text, decimal
	// numbers, unix milliseconds; see docs/dead-letters.md).
	FormatOrdo Format = "ordo"
	// FormatSpring: Spring Kafka's DeadLetterPublishingRecoverer
	// (kafka_dlt-* headers; partition, offset and timestamp big-endian
	// binary).
	FormatSpring Format = "spring"
	// FormatKarafka: Karafka's dead letter queue (source_* headers, text).
	FormatKarafka Format = "karafka"
	// FormatNone: no header of a known format; only the DLQ record's own
	// coordinates are known.
	FormatNone Format = "none"
)

// Spring Kafka's dead-letter headers (org.springframework.kafka.support.
// KafkaHeaders, written by DeadLetterPublishingRecoverer). Text values are
// UTF-8. Spring writes the partition as a 4-byte big-endian int and the
// offset and timestamp (unix ms) as 8-byte big-endian longs.
const (
	SpringOriginalTopic         = "kafka_dlt-original-topic"
	SpringOriginalPartition     = "kafka_dlt-original-partition" // int32, big-endian
	SpringOriginalOffset        = "kafka_dlt-original-offset"    // int64, big-endian
	SpringOriginalTimestamp     = "kafka_dlt-original-timestamp" // int64, big-endian, unix ms
	SpringOriginalTimestampType = "kafka_dlt-original-timestamp-type"
	SpringOriginalConsumerGroup = "kafka_dlt-original-consumer-group"
	SpringExceptionFQCN         = "kafka_dlt-exception-fqcn"
	SpringExceptionCauseFQCN    = "kafka_dlt-exception-cause-fqcn"
	SpringExceptionMessage      = "kafka_dlt-exception-message"
	SpringExceptionStacktrace   = "kafka_dlt-exception-stacktrace"
	// A failure to deserialize the key is reported under key- names.
	SpringKeyExceptionFQCN       = "kafka_dlt-key-exception-fqcn"
	SpringKeyExceptionMessage    = "kafka_dlt-key-exception-message"
	SpringKeyExceptionStacktrace = "kafka_dlt-key-exception-stacktrace"
)

// Karafka's dead-letter headers (its DLQ strategies add them to the
// message's own headers). All values are text; numbers are decimal.
const (
	KarafkaSourceTopic         = "source_topic"
	KarafkaSourcePartition     = "source_partition"
	KarafkaSourceOffset        = "source_offset"
	KarafkaSourceConsumerGroup = "source_consumer_group"
	KarafkaSourceAttempts      = "source_attempts"
)

// Origin is where a dead letter's record was consumed from, as its headers
// say.
type Origin struct {
	Topic string `json:"topic,omitempty"`
	// Partition is -1 when the headers do not say.
	Partition int32 `json:"partition"`
	// Offset is -1 when the headers do not say.
	Offset int64 `json:"offset"`
	// Timestamp is the original record's timestamp (UTC); zero when the
	// headers do not say. Filters on time (Filter.Since, Filter.Until) use it.
	Timestamp time.Time `json:"timestamp,omitzero"`
}

// Meta is what a dead letter's headers say about it, whatever their format.
type Meta struct {
	// Format is the convention the headers follow.
	Format Format `json:"format"`
	// Original is the record that failed.
	Original Origin `json:"original"`
	// Group is the consumer group that failed it ("" when the headers do
	// not say).
	Group string `json:"group,omitempty"`
	// ErrorClass is Ordo's error class (permanent, retryable, panic,
	// timeout) or, for Spring, the exception's class name.
	ErrorClass string `json:"error_class,omitempty"`
	// Cause is Spring's exception cause class name.
	Cause string `json:"cause,omitempty"`
	// Error is the error's text (Ordo's ordo-error, Spring's exception
	// message).
	Error string `json:"error,omitempty"`
	// Attempt is the number of processing attempts made (0: not said).
	Attempt int `json:"attempt,omitempty"`
	// Processor is Ordo's processor name.
	Processor string `json:"processor,omitempty"`
	// Truncated reports a dead letter whose value Ordo cut to fit;
	// OriginalSize is then the original value's size in bytes.
	Truncated    bool  `json:"truncated,omitempty"`
	OriginalSize int64 `json:"original_size,omitempty"`
	// RedriveID is set on a record that a redrive produced: the
	// "<dlq topic>/<partition>/<offset>" it came from.
	RedriveID string `json:"redrive_id,omitempty"`
	// Problems lists the headers of the format that are present but could
	// not be read, each with why. Their fields are left unknown.
	Problems []string `json:"problems,omitempty"`
}

func unknownMeta(f Format) Meta {
	return Meta{Format: f, Original: Origin{Partition: -1, Offset: -1}}
}

// Decode reads a dead letter's metadata from its headers. When headers of
// several formats are present (a record dead-lettered by Spring, then by
// Ordo, keeps the earlier headers), the format whose marker header comes
// last wins: each dead-lettering appends its headers after the ones it
// kept. The markers are ordo-original-topic, kafka_dlt-original-topic (or
// kafka_dlt-exception-fqcn) and source_topic. With none, the Format is
// FormatNone.
//
// Decode never fails: a header it cannot read is reported in
// Meta.Problems and its field is left unknown.
func Decode(hs []kgo.RecordHeader) Meta {
	best, at := FormatNone, -1
	for i, h := range hs {
		var f Format
		switch h.Key {
		case ordo.HeaderOriginalTopic:
			f = FormatOrdo
		case SpringOriginalTopic, SpringExceptionFQCN:
			f = FormatSpring
		case KarafkaSourceTopic:
			f = FormatKarafka
		default:
			continue
		}
		if i > at {
			best, at = f, i
		}
	}
	switch best {
	case FormatOrdo:
		return DecodeOrdo(hs)
	case FormatSpring:
		return DecodeSpring(hs)
	case FormatKarafka:
		return DecodeKarafka(hs)
	}
	return unknownMeta(FormatNone)
}

// headers indexes header values by key: first and last occurrence.
type headers struct {
	first, last map[string][]byte
}

func index(hs []kgo.RecordHeader) headers {
	x := headers{first: make(map[string][]byte, len(hs)), last: make(map[string][]byte, len(hs))}
	for _, h := range hs {
		if _, ok := x.first[h.Key]; !ok {
			x.first[h.Key] = h.Value
		}
		x.last[h.Key] = h.Value
	}
	return x
}

// text returns a header value as a string that is valid UTF-8 (invalid
// bytes become U+FFFD); the raw bytes stay in the letter's headers.
func text(v []byte) string { return strings.ToValidUTF8(string(v), "\uFFFD") }

// DecodeOrdo reads Ordo's headers (whatever other headers say). Values are
// text: decimal numbers, unix milliseconds.
func DecodeOrdo(hs []kgo.RecordHeader) Meta {
	x := index(hs)
	m := unknownMeta(FormatOrdo)
	bad := func(k, why string) { m.Problems = append(m.Problems, k+": "+why) }
	if v, ok := x.last[ordo.HeaderOriginalTopic]; ok {
		m.Original.Topic = text(v)
	}
	if v, ok := x.last[ordo.HeaderOriginalPartition]; ok {
		if n, err := decimal(v, 32); err != nil {
			bad(ordo.HeaderOriginalPartition, err.Error())
		} else {
			m.Original.Partition = int32(n)
		}
	}
	if v, ok := x.last[ordo.HeaderOriginalOffset]; ok {
		if n, err := decimal(v, 64); err != nil {
			bad(ordo.HeaderOriginalOffset, err.Error())
		} else {
			m.Original.Offset = n
		}
	}
	if v, ok := x.last[ordo.HeaderOriginalTimestamp]; ok {
		n, err := decimal(v, 64)
		if err == nil {
			m.Original.Timestamp, err = timestamp(n)
		}
		if err != nil {
			bad(ordo.HeaderOriginalTimestamp, err.Error())
		}
	}
	if v, ok := x.last[ordo.HeaderAttempt]; ok {
		if n, err := decimal(v, 32); err != nil {
			bad(ordo.HeaderAttempt, err.Error())
		} else {
			m.Attempt = int(n)
		}
	}
	if v, ok := x.last[ordo.HeaderOriginalSize]; ok {
		if n, err := decimal(v, 64); err != nil {
			bad(ordo.HeaderOriginalSize, err.Error())
		} else {
			m.OriginalSize = n
		}
	}
	if v, ok := x.last[ordo.HeaderTruncated]; ok {
		m.Truncated = string(v) == "true"
	}
	m.Group = text(x.last[ordo.HeaderGroup])
	m.ErrorClass = text(x.last[ordo.HeaderErrorClass])
	m.Error = text(x.last[ordo.HeaderError])
	m.Processor = text(x.last[ordo.HeaderProcessor])
	m.RedriveID = text(x.last[ordo.HeaderRedriveID])
	return m
}

// DecodeSpring reads Spring Kafka's kafka_dlt-* headers. The original
// coordinates are the first occurrence of each header (a record that went
// through several dead-letter hops with appendOriginalHeaders keeps the
// first hop's first); the exception headers are the last occurrence (the
// latest failure). Partition, offset and timestamp are big-endian binary
// as Spring writes them; decimal text is accepted too.
func DecodeSpring(hs []kgo.RecordHeader) Meta {
	x := index(hs)
	m := unknownMeta(FormatSpring)
	bad := func(k, why string) { m.Problems = append(m.Problems, k+": "+why) }
	if v, ok := x.first[SpringOriginalTopic]; ok {
		m.Original.Topic = text(v)
	}
	if v, ok := x.first[SpringOriginalPartition]; ok {
		if n, err := javaInt(v, 4); err != nil {
			bad(SpringOriginalPartition, err.Error())
		} else {
			m.Original.Partition = int32(n)
		}
	}
	if v, ok := x.first[SpringOriginalOffset]; ok {
		if n, err := javaInt(v, 8); err != nil {
			bad(SpringOriginalOffset, err.Error())
		} else {
			m.Original.Offset = n
		}
	}
	if v, ok := x.first[SpringOriginalTimestamp]; ok {
		n, err := javaInt(v, 8)
		if err == nil && n >= 0 { // -1: the record had no timestamp
			m.Original.Timestamp, err = timestamp(n)
		}
		if err != nil {
			bad(SpringOriginalTimestamp, err.Error())
		}
	}
	m.Group = text(x.first[SpringOriginalConsumerGroup])
	// A key that failed to deserialize is reported under the key- names.
	m.ErrorClass = text(lastOf(x, SpringExceptionFQCN, SpringKeyExceptionFQCN))
	m.Error = text(lastOf(x, SpringExceptionMessage, SpringKeyExceptionMessage))
	m.Cause = text(x.last[SpringExceptionCauseFQCN])
	return m
}

// lastOf returns the last value of the first of keys that is present.
func lastOf(x headers, keys ...string) []byte {
	for _, k := range keys {
		if v, ok := x.last[k]; ok {
			return v
		}
	}
	return nil
}

// DecodeKarafka reads Karafka's source_* headers: text, decimal numbers.
// Karafka records no error text or original timestamp in them.
func DecodeKarafka(hs []kgo.RecordHeader) Meta {
	x := index(hs)
	m := unknownMeta(FormatKarafka)
	bad := func(k, why string) { m.Problems = append(m.Problems, k+": "+why) }
	if v, ok := x.last[KarafkaSourceTopic]; ok {
		m.Original.Topic = text(v)
	}
	if v, ok := x.last[KarafkaSourcePartition]; ok {
		if n, err := decimal(v, 32); err != nil {
			bad(KarafkaSourcePartition, err.Error())
		} else {
			m.Original.Partition = int32(n)
		}
	}
	if v, ok := x.last[KarafkaSourceOffset]; ok {
		if n, err := decimal(v, 64); err != nil {
			bad(KarafkaSourceOffset, err.Error())
		} else {
			m.Original.Offset = n
		}
	}
	if v, ok := x.last[KarafkaSourceAttempts]; ok {
		if n, err := decimal(v, 32); err != nil {
			bad(KarafkaSourceAttempts, err.Error())
		} else {
			m.Attempt = int(n)
		}
	}
	m.Group = text(x.last[KarafkaSourceConsumerGroup])
	return m
}

// decimal parses a non-negative decimal number of at most bits bits.
func decimal(v []byte, bits int) (int64, error) {
	n, err := strconv.ParseInt(string(v), 10, bits)
	if err != nil || n < 0 {
		return 0, fmt.Errorf("want a non-negative decimal number, got %s", quote(v))
	}
	return n, nil
}

// javaInt parses a big-endian binary integer of size bytes (4: Java int, 8:
// Java long), as Spring writes them. A value of only ASCII digits is read
// as decimal text instead: a binary offset or timestamp made of digit
// bytes would be above 3*10^18, and a partition above 8*10^8.
func javaInt(v []byte, size int) (int64, error) {
	if len(v) > 0 && allDigits(v) {
		return decimal(v, size*8)
	}
	if len(v) != size {
		return 0, fmt.Errorf("want a %d-byte big-endian integer, got %d bytes", size, len(v))
	}
	var n int64
	if size == 4 {
		n = int64(int32(binary.BigEndian.Uint32(v))) //nolint:gosec // a Java int is signed 32 bits
	} else {
		n = int64(binary.BigEndian.Uint64(v)) //nolint:gosec // a Java long is signed 64 bits
	}
	if n < -1 {
		return 0, fmt.Errorf("want a non-negative number, got %d", n)
	}
	return n, nil
}

func allDigits(v []byte) bool {
	for _, c := range v {
		if c < '0' || c > '9' {
			return false
		}
	}
	return true
}

// quote shows at most 32 bytes of a bad value.
func quote(v []byte) string {
	if len(v) > 32 {
		return strconv.Quote(string(v[:32])) + "..."
	}
	return strconv.Quote(string(v))
}

func millis(ms int64) time.Time { return time.UnixMilli(ms).UTC() }

// minMillis and maxMillis bound the times JSON and RFC 3339 can write:
// years 0 to 9999.
var (
	minMillis = time.Date(0, 1, 1, 0, 0, 0, 0, time.UTC).UnixMilli()
	maxMillis = time.Date(9999, 12, 31, 23, 59, 59, 999e6, time.UTC).UnixMilli()
)

// timestamp parses a unix-millisecond timestamp that RFC 3339 can write.
func timestamp(n int64) (time.Time, error) {
	if n < minMillis || n > maxMillis {
		return time.Time{}, fmt.Errorf("%d ms is outside years 0 to 9999", n)
	}
	return millis(n), nil
}
