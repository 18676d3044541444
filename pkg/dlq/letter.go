package dlq

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"errors"
	"time"
	"unicode/utf8"

	"github.com/twmb/franz-go/pkg/kgo"
)

// Letter is one dead letter: the record on the dead-letter topic and what
// its headers say about the record that failed.
type Letter struct {
	// Topic, Partition, Offset and Timestamp are the dead-letter record's
	// own coordinates and timestamp (UTC): when it was dead-lettered.
	Topic     string    `json:"topic"`
	Partition int32     `json:"partition"`
	Offset    int64     `json:"offset"`
	Timestamp time.Time `json:"timestamp"`
	// Key, Value and Headers are the record's, byte for byte.
	Key     Bytes    `json:"key"`
	Value   Bytes    `json:"value,omitempty"`
	Headers []Header `json:"headers"`
	// ValueSize is len(Value), kept when the payload is hidden.
	ValueSize int `json:"value_size"`
	// ValueHidden reports that Value was removed (see WithoutPayload).
	ValueHidden bool `json:"value_hidden,omitempty"`
	// Meta is what the headers say, decoded by Decode.
	Meta Meta `json:"meta"`
}

// FromRecord reads a record of a dead-letter topic. It keeps the record's
// slices; copy them if the record's buffers are reused.
func FromRecord(r *kgo.Record) Letter {
	hs := make([]Header, len(r.Headers))
	for i, h := range r.Headers {
		hs[i] = Header{Key: h.Key, Value: h.Value}
	}
	// A producer may set any timestamp; one JSON cannot write is left zero.
	ts, _ := timestamp(r.Timestamp.UnixMilli())
	return Letter{
		Topic:     r.Topic,
		Partition: r.Partition,
		Offset:    r.Offset,
		Timestamp: ts,
		Key:       r.Key,
		Value:     r.Value,
		Headers:   hs,
		ValueSize: len(r.Value),
		Meta:      Decode(r.Headers),
	}
}

// ID is the dead letter's redrive id, "<dlq topic>/<partition>/<offset>":
// the value of the ordo-redrive-id header a redrive writes.
func (l *Letter) ID() string {
	return l.Topic + "/" + itoa(int64(l.Partition)) + "/" + itoa(l.Offset)
}

// WithoutPayload returns a copy of l without its value (ValueHidden set,
// ValueSize kept). Keys and headers are kept: they identify the record.
func (l Letter) WithoutPayload() Letter {
	l.Value, l.ValueHidden = nil, true
	return l
}

// RecordHeaders returns the letter's headers as franz-go headers.
func (l *Letter) RecordHeaders() []kgo.RecordHeader {
	hs := make([]kgo.RecordHeader, len(l.Headers))
	for i, h := range l.Headers {
		hs[i] = kgo.RecordHeader{Key: h.Key, Value: h.Value}
	}
	return hs
}

// Header is a record header. Its JSON form is {"key": ..., "value": ...},
// each encoded as a [Bytes].
type Header struct {
	Key   string
	Value []byte
}

type headerJSON struct {
	Key   Bytes `json:"key"`
	Value Bytes `json:"value"`
}

// MarshalJSON encodes the key and the value as [Bytes].
func (h Header) MarshalJSON() ([]byte, error) {
	return json.Marshal(headerJSON{Key: Bytes(h.Key), Value: h.Value})
}

// UnmarshalJSON decodes what MarshalJSON encodes.
func (h *Header) UnmarshalJSON(b []byte) error {
	var j headerJSON
	if err := json.Unmarshal(b, &j); err != nil {
		return err
	}
	h.Key, h.Value = string(j.Key), j.Value
	return nil
}

// Bytes is a key, value or header value. It encodes to JSON as a string
// when it is valid UTF-8, as {"base64": "..."} when it is not, and as null
// when it is nil, so that JSON output is readable and still gives back the
// exact bytes.
type Bytes []byte

type base64JSON struct {
	Base64 string `json:"base64"`
}

// MarshalJSON encodes b as described on [Bytes].
func (b Bytes) MarshalJSON() ([]byte, error) {
	switch {
	case b == nil:
		return []byte("null"), nil
	case utf8.Valid(b):
		return json.Marshal(string(b))
	default:
		return json.Marshal(base64JSON{Base64: base64.StdEncoding.EncodeToString(b)})
	}
}

// UnmarshalJSON decodes what MarshalJSON encodes.
func (b *Bytes) UnmarshalJSON(data []byte) error {
	data = bytes.TrimSpace(data)
	switch {
	case bytes.Equal(data, []byte("null")):
		*b = nil
		return nil
	case len(data) > 0 && data[0] == '"':
		var s string
		if err := json.Unmarshal(data, &s); err != nil {
			return err
		}
		*b = Bytes(s)
		if *b == nil {
			*b = Bytes{}
		}
		return nil
	case len(data) > 0 && data[0] == '{':
		var j base64JSON
		if err := json.Unmarshal(data, &j); err != nil {
			return err
		}
		v, err := base64.StdEncoding.DecodeString(j.Base64)
		if err != nil {
			return err
		}
		*b = v
		return nil
	}
	return errors.New("dlq: bytes must be a JSON string, {\"base64\": ...} or null")
}
