package dlq_test

import (
	"encoding/binary"
	"fmt"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/ordokafka/ordo/pkg/dlq"
)

// A Spring Kafka dead letter: the partition is a 4-byte big-endian int,
// the offset an 8-byte big-endian long.
func ExampleDecode() {
	m := dlq.Decode([]kgo.RecordHeader{
		{Key: "kafka_dlt-original-topic", Value: []byte("orders")},
		{Key: "kafka_dlt-original-partition", Value: binary.BigEndian.AppendUint32(nil, 3)},
		{Key: "kafka_dlt-original-offset", Value: binary.BigEndian.AppendUint64(nil, 1234)},
		{Key: "kafka_dlt-original-consumer-group", Value: []byte("billing")},
		{Key: "kafka_dlt-exception-fqcn", Value: []byte("java.lang.IllegalStateException")},
		{Key: "kafka_dlt-exception-message", Value: []byte("no such customer")},
	})
	fmt.Println(m.Format, m.Original.Topic, m.Original.Partition, m.Original.Offset, m.Group)
	fmt.Println(m.ErrorClass+":", m.Error)
	// Output:
	// spring orders 3 1234 billing
	// java.lang.IllegalStateException: no such customer
}

func ExampleParseRanges() {
	rs, err := dlq.ParseRanges("0,4-6,100-")
	fmt.Println(rs, err, rs.Contains(5), rs.Contains(7), rs.Contains(1_000_000))
	// Output: 0,4-6,100- <nil> true false true
}
