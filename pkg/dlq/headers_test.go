package dlq_test

import (
	"encoding/binary"
	"strconv"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/ordokafka/ordo/pkg/ordo"
)

// The dead-letter headers of the three formats, built as their writers
// build them, for the tests.

// ordoHeaders are what Ordo's router writes (pkg/ordo/router.go): text.
func ordoHeaders(topic string, p int32, off int64, ts time.Time, group, class, errText string) []kgo.RecordHeader {
	return []kgo.RecordHeader{
		{Key: ordo.HeaderOriginalTopic, Value: []byte(topic)},
		{Key: ordo.HeaderOriginalPartition, Value: []byte(strconv.Itoa(int(p)))},
		{Key: ordo.HeaderOriginalOffset, Value: []byte(strconv.FormatInt(off, 10))},
		{Key: ordo.HeaderOriginalTimestamp, Value: []byte(strconv.FormatInt(ts.UnixMilli(), 10))},
		{Key: ordo.HeaderAttempt, Value: []byte("5")},
		{Key: ordo.HeaderError, Value: []byte(errText)},
		{Key: ordo.HeaderErrorClass, Value: []byte(class)},
		{Key: ordo.HeaderGroup, Value: []byte(group)},
		{Key: ordo.HeaderProcessor, Value: []byte("example")},
	}
}

// springHeaders are what Spring Kafka's DeadLetterPublishingRecoverer
// writes: the topic, group and exception texts as UTF-8, the partition as
// ByteBuffer.allocate(4).putInt(p) (big-endian), offset and timestamp as
// ByteBuffer.allocate(8).putLong(v).
func springHeaders(topic string, p int32, off int64, ts time.Time, group, fqcn, msg string) []kgo.RecordHeader {
	part := binary.BigEndian.AppendUint32(nil, uint32(p))
	offset := binary.BigEndian.AppendUint64(nil, uint64(off))
	stamp := binary.BigEndian.AppendUint64(nil, uint64(ts.UnixMilli()))
	return []kgo.RecordHeader{
		{Key: "kafka_dlt-original-topic", Value: []byte(topic)},
		{Key: "kafka_dlt-original-partition", Value: part},
		{Key: "kafka_dlt-original-offset", Value: offset},
		{Key: "kafka_dlt-original-timestamp", Value: stamp},
		{Key: "kafka_dlt-original-timestamp-type", Value: []byte("CreateTime")},
		{Key: "kafka_dlt-original-consumer-group", Value: []byte(group)},
		{Key: "kafka_dlt-exception-fqcn", Value: []byte("org.springframework.kafka.listener.ListenerExecutionFailedException")},
		{Key: "kafka_dlt-exception-cause-fqcn", Value: []byte(fqcn)},
		{Key: "kafka_dlt-exception-message", Value: []byte(msg)},
		{Key: "kafka_dlt-exception-stacktrace", Value: []byte("org.springframework.kafka.listener.ListenerExecutionFailedException: " + msg + "\n\tat com.example.Listener.on(Listener.java:42)\n")},
	}
}

// karafkaHeaders are what Karafka's DLQ strategy merges into the message's
// headers: strings, numbers in decimal.
func karafkaHeaders(topic string, p int32, off int64, group string) []kgo.RecordHeader {
	return []kgo.RecordHeader{
		{Key: "source_topic", Value: []byte(topic)},
		{Key: "source_partition", Value: []byte(strconv.Itoa(int(p)))},
		{Key: "source_offset", Value: []byte(strconv.FormatInt(off, 10))},
		{Key: "source_consumer_group", Value: []byte(group)},
		{Key: "source_attempts", Value: []byte("3")},
		{Key: "source_trace_id", Value: []byte("b6a1c3e2-7f0d-4c1e-9a55-2f8d7c3e1a90")},
	}
}
