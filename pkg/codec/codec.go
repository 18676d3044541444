// Package codec gives processors typed payloads: a Decoder turns a record's
// value into a T, and Processor adapts a function of the decoded value to an
// ordo.Processor.
//
//	proc := codec.Processor(codec.JSON[Order](), func(ctx context.Context, r *kgo.Record, o Order) error {
//		return ledger.Apply(ctx, o)
//	})
//
// A value that cannot be decoded is a *DecodeError, which Processor makes
// ordo.Permanent: the record goes to the dead-letter topic at once, with the
// reason in its ordo-error header, and is never retried (retrying cannot fix
// a malformed payload).
//
// JSON uses encoding/json. Avro and Protobuf read values in the Confluent
// Schema Registry's wire format (a magic byte, the writer's schema ID, for
// Protobuf the message's index, then the payload) through franz-go's sr
// package: the writer's schema is fetched from the registry by its ID, once,
// and cached. A registry that cannot be reached is not the record's fault:
// the record is held (ordo.Hold), not dead-lettered, and tried again.
package codec

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/ordokafka/ordo/pkg/ordo"
)

// Decoder decodes a record's value into a T.
//
// An error that means the value itself is wrong (malformed, of an unknown
// schema, of a schema the reader cannot read) is a *DecodeError; any other
// error (a schema registry that did not answer) says the value may decode
// later.
type Decoder[T any] interface {
	Decode(ctx context.Context, value []byte) (T, error)
}

// DecoderFunc adapts a function to a Decoder.
type DecoderFunc[T any] func(ctx context.Context, value []byte) (T, error)

// Decode calls f(ctx, value).
func (f DecoderFunc[T]) Decode(ctx context.Context, value []byte) (T, error) { return f(ctx, value) }

// DecodeError is a value that cannot be decoded.
type DecodeError struct {
	// Format is the decoder's format: "json", "avro", "protobuf".
	Format string
	// Err says what is wrong.
	Err error
}

func (e *DecodeError) Error() string { return "decoding " + e.Format + ": " + e.Err.Error() }
func (e *DecodeError) Unwrap() error { return e.Err }

// Processor returns a processor that decodes each record's value with dec
// and calls fn with it. A *DecodeError is returned as ordo.Permanent,
// naming the record: the record is dead-lettered at once with the reason.
// Any other error of dec, and every error of fn, is returned as it is
// (retried, held or dead-lettered as the error says).
func Processor[T any](dec Decoder[T], fn func(ctx context.Context, r *kgo.Record, v T) error) ordo.Processor {
	return ordo.ProcessorFunc(func(ctx context.Context, r *kgo.Record) error {
		v, err := dec.Decode(ctx, r.Value)
		var de *DecodeError
		switch {
		case errors.As(err, &de):
			return ordo.Permanent(fmt.Errorf("%s/%d@%d: %w", r.Topic, r.Partition, r.Offset, err))
		case err != nil:
			return err
		}
		return fn(ctx, r, v)
	})
}

// JSON returns a Decoder of JSON values into T with encoding/json. Fields
// of the value that T lacks are ignored (see StrictJSON).
func JSON[T any]() Decoder[T] { return jsonDecoder[T]{} }

// StrictJSON is JSON refusing a value with a field that T lacks, and a
// value followed by more data.
func StrictJSON[T any]() Decoder[T] { return jsonDecoder[T]{strict: true} }

type jsonDecoder[T any] struct{ strict bool }

func (d jsonDecoder[T]) Decode(_ context.Context, b []byte) (T, error) {
	var v T
	if !d.strict {
		if err := json.Unmarshal(b, &v); err != nil {
			return v, &DecodeError{Format: "json", Err: err}
		}
		return v, nil
	}
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&v); err != nil {
		return v, &DecodeError{Format: "json", Err: err}
	}
	if dec.More() {
		return v, &DecodeError{Format: "json", Err: errors.New("data after the value")}
	}
	return v, nil
}
