package dlq_test

import (
	"encoding/binary"
	"encoding/json"
	"reflect"
	"testing"
	"unicode/utf8"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/ordokafka/ordo/pkg/dlq"
)

// fuzzHeaders turns fuzz input into headers: the keys cycle through the
// ones the decoders read, so that every value reaches a parser.
func fuzzHeaders(data []byte) []kgo.RecordHeader {
	keys := []string{
		"ordo-original-topic", "ordo-original-partition", "ordo-original-offset", "ordo-original-timestamp",
		"ordo-attempt", "ordo-error", "ordo-error-class", "ordo-group", "ordo-truncated", "ordo-original-size",
		dlq.SpringOriginalTopic, dlq.SpringOriginalPartition, dlq.SpringOriginalOffset, dlq.SpringOriginalTimestamp,
		dlq.SpringOriginalConsumerGroup, dlq.SpringExceptionFQCN, dlq.SpringExceptionMessage, dlq.SpringKeyExceptionFQCN,
		dlq.KarafkaSourceTopic, dlq.KarafkaSourcePartition, dlq.KarafkaSourceOffset, dlq.KarafkaSourceConsumerGroup,
		dlq.KarafkaSourceAttempts,
	}
	var hs []kgo.RecordHeader
	for len(data) > 1 {
		k := keys[int(data[0])%len(keys)]
		n := min(int(data[1]), len(data)-2)
		hs = append(hs, kgo.RecordHeader{Key: k, Value: data[2 : 2+n]})
		data = data[2+n:]
	}
	return hs
}

// FuzzDecode: header values come from outside. Decoding never panics,
// gives a known format, keeps every string valid UTF-8 and every unknown
// coordinate at -1, and the metadata survives JSON.
func FuzzDecode(f *testing.F) {
	f.Add([]byte{0, 6, 'o', 'r', 'd', 'e', 'r', 's', 1, 1, '3', 2, 2, '1', '7'})
	f.Add(append([]byte{10, 1, 'o', 11, 4}, binary.BigEndian.AppendUint32(nil, 7)...))
	f.Add(append([]byte{10, 1, 'o', 12, 8}, binary.BigEndian.AppendUint64(nil, 1<<62)...))
	f.Add([]byte{18, 1, 't', 19, 2, '-', '1', 20, 3, '9', '9', '9'})
	f.Add([]byte{0, 2, 0xff, 0xfe, 5, 3, 0xc3, 0x28, 'x'})
	f.Fuzz(func(t *testing.T, data []byte) {
		hs := fuzzHeaders(data)
		for _, m := range []dlq.Meta{dlq.Decode(hs), dlq.DecodeOrdo(hs), dlq.DecodeSpring(hs), dlq.DecodeKarafka(hs)} {
			switch m.Format {
			case dlq.FormatOrdo, dlq.FormatSpring, dlq.FormatKarafka, dlq.FormatNone:
			default:
				t.Fatalf("format %q", m.Format)
			}
			for _, s := range []string{m.Original.Topic, m.Group, m.ErrorClass, m.Cause, m.Error, m.Processor, m.RedriveID} {
				if !utf8.ValidString(s) {
					t.Fatalf("invalid UTF-8 %q in %+v", s, m)
				}
			}
			if m.Original.Partition < -1 || m.Original.Offset < -1 || m.Attempt < 0 {
				t.Fatalf("negative coordinates %+v", m)
			}
			b, err := json.Marshal(m)
			if err != nil {
				t.Fatal(err)
			}
			var back dlq.Meta
			if err := json.Unmarshal(b, &back); err != nil || !reflect.DeepEqual(back, m) {
				t.Fatalf("JSON round trip: %+v -> %s -> %+v, %v", m, b, back, err)
			}
		}
	})
}

// FuzzSpringNumbers: a number Spring encodes (big-endian int or long)
// decodes to itself.
func FuzzSpringNumbers(f *testing.F) {
	f.Add(int32(0), int64(0), int64(0))
	f.Add(int32(2147483647), int64(1<<62), int64(1764482400123))
	f.Add(int32(808464432), int64(3472328296227680304), int64(-1)) // digit bytes
	f.Fuzz(func(t *testing.T, p int32, off, ts int64) {
		if p < 0 || off < 0 || ts < 0 {
			return
		}
		hs := []kgo.RecordHeader{
			{Key: dlq.SpringOriginalTopic, Value: []byte("t")},
			{Key: dlq.SpringOriginalPartition, Value: binary.BigEndian.AppendUint32(nil, uint32(p))},
			{Key: dlq.SpringOriginalOffset, Value: binary.BigEndian.AppendUint64(nil, uint64(off))},
			{Key: dlq.SpringOriginalTimestamp, Value: binary.BigEndian.AppendUint64(nil, uint64(ts))},
		}
		m := dlq.Decode(hs)
		allDigits := func(v []byte) bool {
			for _, c := range v {
				if c < '0' || c > '9' {
					return false
				}
			}
			return true
		}
		// Values whose every byte is an ASCII digit are read as text (see
		// DecodeSpring); skip those, far beyond real partitions and offsets.
		if allDigits(hs[1].Value) || allDigits(hs[2].Value) || allDigits(hs[3].Value) {
			return
		}
		if m.Original.Partition != p || m.Original.Offset != off || m.Original.Timestamp.UnixMilli() != ts {
			t.Fatalf("%d %d %d decoded as %+v", p, off, ts, m.Original)
		}
	})
}
