package codec

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"sync"

	"github.com/hamba/avro/v2"
	"github.com/twmb/franz-go/pkg/sr"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protoreflect"

	"github.com/ordokafka/ordo/pkg/ordo"
)

// registryDecoder decodes values framed in the Confluent wire format,
// fetching each writer schema from the registry once and registering its
// decoding in an sr.Serde.
type registryDecoder[T any] struct {
	format string
	cl     *sr.Client
	serde  sr.Serde
	// prepare checks the writer's schema and returns how to decode its
	// values; a *DecodeError when T cannot be read from it.
	prepare func(sch sr.Schema) ([]sr.EncodingOpt, error)
	// alloc makes the value a decode fills; nil: the zero T.
	alloc func() T
	// mismatch explains a value whose Protobuf message index is not T's.
	mismatch func(b []byte) error

	mu      sync.Mutex
	known   map[int]bool  // schema IDs registered in serde
	refused map[int]error // schema IDs found unusable, and why
}

func (d *registryDecoder[T]) Decode(ctx context.Context, b []byte) (T, error) {
	var v T
	if d.alloc != nil {
		v = d.alloc()
	}
	id, _, err := d.serde.DecodeID(b)
	if err != nil {
		return v, &DecodeError{Format: d.format, Err: errors.New("no schema registry header (magic byte 0 and a schema ID): not written by a registry serializer")}
	}
	if err := d.learn(ctx, id); err != nil {
		return v, err
	}
	if err := d.serde.Decode(b, &v); err != nil {
		if errors.Is(err, sr.ErrNotRegistered) && d.mismatch != nil {
			return v, &DecodeError{Format: d.format, Err: d.mismatch(b)}
		}
		return v, &DecodeError{Format: d.format, Err: fmt.Errorf("schema %d: %w", id, err)}
	}
	return v, nil
}

// learn makes sure the decoding of schema id is registered: it fetches the
// schema and prepares it the first time.
func (d *registryDecoder[T]) learn(ctx context.Context, id int) error {
	var zero T
	d.mu.Lock()
	known, refused := d.known[id], d.refused[id]
	d.mu.Unlock()
	if known {
		return nil
	}
	if refused != nil {
		return refused
	}
	sch, err := d.cl.SchemaByID(ctx, id)
	var re *sr.ResponseError
	switch {
	case errors.As(err, &re) && re.StatusCode == http.StatusNotFound:
		return &DecodeError{Format: d.format, Err: fmt.Errorf("schema %d is not in the registry: %w", id, err)}
	case err != nil:
		// The registry did not answer: the record is fine, hold it.
		return ordo.Hold(fmt.Errorf("fetching schema %d from the registry: %w", id, err))
	}
	opts, err := d.prepare(sch)
	if err != nil {
		err = &DecodeError{Format: d.format, Err: fmt.Errorf("schema %d: %w", id, err)}
		d.mu.Lock()
		if d.refused == nil {
			d.refused = map[int]error{}
		}
		d.refused[id] = err
		d.mu.Unlock()
		return err
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	if !d.known[id] { // two records of a new schema may race here
		d.serde.Register(id, zero, opts...)
		if d.known == nil {
			d.known = map[int]bool{}
		}
		d.known[id] = true
	}
	return nil
}

// Avro returns a Decoder of Avro values in the Confluent wire format into
// T, a struct whose fields name their Avro fields with `avro:"name"` tags
// (github.com/hamba/avro).
//
// readerSchema is the schema T was written for. Each writer's schema is
// resolved against it by Avro's rules (a field the writer lacks takes its
// default, one the reader lacks is skipped), so producers can evolve the
// schema compatibly; a writer schema the reader cannot read is a
// *DecodeError. readerSchema "" decodes with each writer's schema as it
// is. Avro returns an error if readerSchema does not parse.
//
// Schema references (a writer schema naming types of other subjects) are
// not resolved: such a writer schema is refused.
func Avro[T any](cl *sr.Client, readerSchema string) (Decoder[T], error) {
	var reader avro.Schema
	if readerSchema != "" {
		var err error
		if reader, err = avro.ParseWithCache(readerSchema, "", &avro.SchemaCache{}); err != nil {
			return nil, fmt.Errorf("codec: the reader schema: %w", err)
		}
	}
	d := &registryDecoder[T]{format: "avro", cl: cl}
	d.prepare = func(sch sr.Schema) ([]sr.EncodingOpt, error) {
		if sch.Type != sr.TypeAvro {
			return nil, fmt.Errorf("is %s, not Avro", sch.Type)
		}
		if len(sch.References) > 0 {
			return nil, errors.New("has references, which this decoder does not resolve")
		}
		writer, err := avro.ParseWithCache(sch.Schema, "", &avro.SchemaCache{})
		if err != nil {
			return nil, fmt.Errorf("does not parse: %w", err)
		}
		use := writer
		if reader != nil && reader.Fingerprint() != writer.Fingerprint() {
			if use, err = avro.NewSchemaCompatibility().Resolve(reader, writer); err != nil {
				return nil, fmt.Errorf("cannot be read with the reader schema: %w", err)
			}
		} else if reader != nil {
			use = reader
		}
		return []sr.EncodingOpt{sr.DecodeFn(func(b []byte, v any) error { return avro.Unmarshal(use, b, v) })}, nil
	}
	return d, nil
}

// Protobuf returns a Decoder of Protobuf values in the Confluent wire
// format into T, a generated message type (a pointer, *pb.Order).
//
// The wire format names the message by its index in the writer's .proto
// file; it must be T's own index in its file (the producer and the
// consumer share the .proto, as generated code does): a value of another
// message is a *DecodeError. The writer's schema must be a Protobuf schema;
// its text is not parsed or compared with T's descriptor.
func Protobuf[T proto.Message](cl *sr.Client) Decoder[T] {
	var zero T
	path := messagePath(zero)
	d := &registryDecoder[T]{format: "protobuf", cl: cl}
	d.alloc = func() T {
		m, _ := zero.ProtoReflect().New().Interface().(T) // New is of T's own type
		return m
	}
	d.mismatch = func(b []byte) error {
		_, rest, _ := d.serde.DecodeID(b)
		idx, _, err := d.serde.DecodeIndex(rest, 0)
		if err != nil {
			return fmt.Errorf("bad message index: %w", err)
		}
		return fmt.Errorf("the value is message %v of its schema, not %s (message %v)", idx, messageName(zero), path)
	}
	d.prepare = func(sch sr.Schema) ([]sr.EncodingOpt, error) {
		if sch.Type != sr.TypeProtobuf {
			return nil, fmt.Errorf("is %s, not Protobuf", sch.Type)
		}
		return []sr.EncodingOpt{sr.Index(path...), sr.DecodeFn(func(b []byte, v any) error {
			m, ok := v.(*T) // Decode passes &v
			if !ok {
				return fmt.Errorf("codec: decoding into %T", v)
			}
			return proto.Unmarshal(b, *m)
		})}, nil
	}
	return d
}

// messagePath is the index path of m's message in its .proto file: [2]
// for the file's third message, [0, 1] for the second message nested in
// the first.
func messagePath(m proto.Message) []int {
	var path []int
	var desc protoreflect.Descriptor = m.ProtoReflect().Descriptor()
	for {
		md, ok := desc.(protoreflect.MessageDescriptor)
		if !ok {
			break
		}
		path = append(path, md.Index())
		desc = md.Parent()
	}
	slices.Reverse(path)
	return path
}

func messageName(m proto.Message) protoreflect.FullName {
	return m.ProtoReflect().Descriptor().FullName()
}
