package cli

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"slices"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/twmb/franz-go/pkg/kgo"
)

// The JSON lines of `ordo consume --format json`, which `ordo produce
// --format json` reads back (docs/cli.md, "Record JSON"):
//
//	{"topic":"orders","partition":3,"offset":17,"timestamp":"2026-03-01T12:00:00.123Z",
//	 "key":"c-17","value":"{\"id\":1}","headers":[{"key":"source","value":"web"}]}
//
// Keys, values and header keys and values are bytes, written as a JSON
// string when they are valid UTF-8, as {"base64": "..."} when they are
// not, and as null when they are absent (a null key; a tombstone's value),
// as `ordo dlq list --json` writes them. Produce reads those three forms,
// and also any other JSON value (an object, a number...) as the bytes of
// its text, as written.

// recordTimeLayout is the layout of a record's timestamp: RFC 3339, UTC,
// in milliseconds as Kafka keeps it.
const recordTimeLayout = "2006-01-02T15:04:05.000Z07:00"

// appendRecordJSON appends r as one JSON line, without HTML escaping.
func appendRecordJSON(dst []byte, r *kgo.Record) []byte {
	dst = append(dst, `{"topic":`...)
	dst = appendJSONString(dst, r.Topic)
	dst = fmt.Appendf(dst, `,"partition":%d,"offset":%d,"timestamp":"%s","key":`, r.Partition, r.Offset, r.Timestamp.UTC().Format(recordTimeLayout))
	dst = appendBytesJSON(dst, r.Key)
	dst = append(dst, `,"value":`...)
	dst = appendBytesJSON(dst, r.Value)
	dst = append(dst, `,"headers":[`...)
	for i, h := range r.Headers {
		if i > 0 {
			dst = append(dst, ',')
		}
		dst = append(dst, `{"key":`...)
		dst = appendBytesJSON(dst, []byte(h.Key))
		dst = append(dst, `,"value":`...)
		dst = appendBytesJSON(dst, h.Value)
		dst = append(dst, '}')
	}
	return append(dst, "]}\n"...)
}

// appendBytesJSON appends b as a JSON string when it is valid UTF-8, as
// {"base64": "..."} when it is not, and as null when it is nil.
func appendBytesJSON(dst, b []byte) []byte {
	switch {
	case b == nil:
		return append(dst, "null"...)
	case utf8.Valid(b):
		return appendJSONString(dst, string(b))
	}
	dst = append(dst, `{"base64":"`...)
	dst = base64.StdEncoding.AppendEncode(dst, b)
	return append(dst, `"}`...)
}

// appendJSONString appends s quoted as JSON, leaving <, > and & as they
// are (encoding/json's Marshal would write \u003c).
func appendJSONString(dst []byte, s string) []byte {
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	_ = enc.Encode(s) // a string always encodes
	return append(dst, bytes.TrimSuffix(buf.Bytes(), []byte("\n"))...)
}

// recordFields are the fields a produce line may have.
var recordFields = []string{"topic", "partition", "offset", "timestamp", "key", "value", "headers"}

// lineRecord is a record read from a JSON line.
type lineRecord struct {
	key, value []byte
	hasKey     bool
	partition  int32 // -1: none given
	timestamp  time.Time
	headers    []kgo.RecordHeader
}

// parseRecordJSON reads one JSON object: the fields of recordFields, each
// at most once; "value" is required (null for a tombstone); "topic" and
// "offset" are read and ignored (where a record lands is the broker's).
func parseRecordJSON(line []byte) (lineRecord, error) {
	rec := lineRecord{partition: -1}
	dec := json.NewDecoder(bytes.NewReader(line))
	dec.UseNumber()
	if tok, err := dec.Token(); err != nil || tok != json.Delim('{') {
		return rec, errors.New(`want a JSON object, {"key": ..., "value": ...}`)
	}
	seen := map[string]bool{}
	for dec.More() {
		tok, err := dec.Token()
		if err != nil {
			return rec, jsonProblem(err)
		}
		name, _ := tok.(string)
		if !slices.Contains(recordFields, name) {
			return rec, fmt.Errorf("unknown field %q (the fields are %s)", name, strings.Join(recordFields, ", "))
		}
		if seen[name] {
			return rec, fmt.Errorf("field %q given twice", name)
		}
		seen[name] = true
		var raw json.RawMessage
		if err := dec.Decode(&raw); err != nil {
			return rec, fmt.Errorf("%s: %w", name, jsonProblem(err))
		}
		if err := rec.set(name, raw); err != nil {
			return rec, fmt.Errorf("%s: %w", name, err)
		}
	}
	if _, err := dec.Token(); err != nil { // the closing brace
		return rec, jsonProblem(err)
	}
	if _, err := dec.Token(); err != io.EOF {
		return rec, errors.New("more after the JSON object (one record per line)")
	}
	if !seen["value"] {
		return rec, errors.New(`no "value" (write "value": null for a tombstone)`)
	}
	return rec, nil
}

func (rec *lineRecord) set(name string, raw json.RawMessage) error {
	var err error
	switch name {
	case "topic", "offset": // where the record was read; ignored
	case "partition":
		if isNull(raw) {
			return nil
		}
		var p json.Number
		if json.Unmarshal(raw, &p) == nil {
			if n, err := p.Int64(); err == nil && n >= 0 && n <= math.MaxInt32 {
				rec.partition = int32(n)
				return nil
			}
		}
		return fmt.Errorf("%s: want a partition number >= 0", raw)
	case "timestamp":
		rec.timestamp, err = parseRecordTime(raw)
	case "key":
		rec.key, err = bytesFromJSON(raw)
		rec.hasKey = true
	case "value":
		rec.value, err = bytesFromJSON(raw)
	case "headers":
		rec.headers, err = headersFromJSON(raw)
	}
	return err
}

func isNull(raw json.RawMessage) bool { return bytes.Equal(bytes.TrimSpace(raw), []byte("null")) }

// parseRecordTime reads an RFC 3339 time or a number of milliseconds
// since 1970; null is none.
func parseRecordTime(raw json.RawMessage) (time.Time, error) {
	if isNull(raw) {
		return time.Time{}, nil
	}
	var s string
	if json.Unmarshal(raw, &s) == nil {
		t, err := time.Parse(time.RFC3339Nano, s)
		if err != nil {
			return time.Time{}, fmt.Errorf("%q: want an RFC 3339 time (2026-03-01T12:00:00.123Z) or milliseconds since 1970", s)
		}
		return t, nil
	}
	var n json.Number
	if json.Unmarshal(raw, &n) == nil {
		if ms, err := n.Int64(); err == nil && ms >= 0 {
			return time.UnixMilli(ms), nil
		}
	}
	return time.Time{}, fmt.Errorf("%s: want an RFC 3339 time (2026-03-01T12:00:00.123Z) or milliseconds since 1970", raw)
}

// bytesFromJSON reads bytes: null (nil), a string (its UTF-8 bytes),
// {"base64": "..."} (the decoded bytes), or any other JSON value (the
// bytes of its text, as written).
func bytesFromJSON(raw json.RawMessage) ([]byte, error) {
	raw = bytes.TrimSpace(raw)
	switch {
	case isNull(raw):
		return nil, nil
	case raw[0] == '"':
		var s string
		if err := json.Unmarshal(raw, &s); err != nil {
			return nil, jsonProblem(err)
		}
		return []byte(s), nil
	case raw[0] == '{':
		var b64 map[string]json.RawMessage
		if err := json.Unmarshal(raw, &b64); err == nil && len(b64) == 1 {
			if enc, ok := b64["base64"]; ok {
				var s string
				if err := json.Unmarshal(enc, &s); err != nil {
					return nil, errors.New(`{"base64": ...} wants a string`)
				}
				b, err := base64.StdEncoding.DecodeString(s)
				if err != nil {
					return nil, fmt.Errorf(`{"base64": ...}: %w`, err)
				}
				return b, nil
			}
		}
	}
	return slices.Clone(raw), nil
}

// headersFromJSON reads headers: a list of {"key": ..., "value": ...} (as
// consume writes them; order and repeated keys kept) or an object
// {"name": value, ...} (in the order written); null is none.
func headersFromJSON(raw json.RawMessage) ([]kgo.RecordHeader, error) {
	raw = bytes.TrimSpace(raw)
	var out []kgo.RecordHeader
	switch {
	case isNull(raw):
		return nil, nil
	case raw[0] == '[':
		var list []map[string]json.RawMessage
		if err := json.Unmarshal(raw, &list); err != nil {
			return nil, errors.New(`want [{"key": ..., "value": ...}, ...] or {"name": value, ...}`)
		}
		for i, h := range list {
			k, okK := h["key"]
			v, okV := h["value"]
			if !okK || !okV || len(h) != 2 {
				return nil, fmt.Errorf(`entry %d: want {"key": ..., "value": ...}`, i+1)
			}
			kb, err := bytesFromJSON(k)
			if err != nil || kb == nil {
				return nil, fmt.Errorf("entry %d: key: want a string", i+1)
			}
			vb, err := bytesFromJSON(v)
			if err != nil {
				return nil, fmt.Errorf("entry %d: value: %w", i+1, err)
			}
			out = append(out, kgo.RecordHeader{Key: string(kb), Value: vb})
		}
		return out, nil
	case raw[0] == '{':
		dec := json.NewDecoder(bytes.NewReader(raw))
		_, _ = dec.Token() // {
		for dec.More() {
			tok, err := dec.Token()
			if err != nil {
				return nil, jsonProblem(err)
			}
			var v json.RawMessage
			if err := dec.Decode(&v); err != nil {
				return nil, jsonProblem(err)
			}
			vb, err := bytesFromJSON(v)
			if err != nil {
				return nil, fmt.Errorf("%q: %w", tok, err)
			}
			name, _ := tok.(string) // an object's keys are strings
			out = append(out, kgo.RecordHeader{Key: name, Value: vb})
		}
		return out, nil
	}
	return nil, errors.New(`want [{"key": ..., "value": ...}, ...] or {"name": value, ...}`)
}

// jsonProblem words a JSON syntax error without Go's type names.
func jsonProblem(err error) error {
	var se *json.SyntaxError
	if errors.As(err, &se) {
		return fmt.Errorf("not valid JSON: %w (at byte %d)", se, se.Offset)
	}
	if errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, io.EOF) {
		return errors.New("not valid JSON: it ends too early")
	}
	return err
}
