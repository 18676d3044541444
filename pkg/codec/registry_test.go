package codec_test

import (
	"context"
	"errors"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/hamba/avro/v2"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/sr"
	"github.com/twmb/franz-go/pkg/sr/srfake"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/structpb"
	"google.golang.org/protobuf/types/known/wrapperspb"

	"github.com/ordokafka/ordo/pkg/codec"
	"github.com/ordokafka/ordo/pkg/ordo"
	"github.com/ordokafka/ordo/pkg/ordotest"
)

const (
	orderV1 = `{"type":"record","name":"Order","namespace":"shop","fields":[
		{"name":"id","type":"string"},{"name":"cents","type":"long"}]}`
	// v2 adds a field with a default: readers of v1 and of v2 read both.
	orderV2 = `{"type":"record","name":"Order","namespace":"shop","fields":[
		{"name":"id","type":"string"},{"name":"cents","type":"long"},
		{"name":"currency","type":"string","default":"EUR"}]}`
	// A cents that is a string cannot be read as a long.
	orderBad = `{"type":"record","name":"Order","namespace":"shop","fields":[
		{"name":"id","type":"string"},{"name":"cents","type":"string"}]}`
)

type avroOrderV1 struct {
	ID    string `avro:"id"`
	Cents int64  `avro:"cents"`
}

type avroOrderV2 struct {
	ID       string `avro:"id"`
	Cents    int64  `avro:"cents"`
	Currency string `avro:"currency"`
}

// registry is a fake schema registry (franz-go's srfake) and a client of it.
func registry(t *testing.T) (*srfake.Registry, *sr.Client) {
	t.Helper()
	reg := srfake.New()
	t.Cleanup(reg.Close)
	cl, err := sr.NewClient(sr.URLs(reg.URL()))
	if err != nil {
		t.Fatal(err)
	}
	return reg, cl
}

// avroValue registers schema under orders-value and encodes v with it, in
// the Confluent wire format, as a producer's serializer does.
func avroValue(t *testing.T, reg *srfake.Registry, schema string, v any) []byte {
	t.Helper()
	id, _, err := reg.RegisterSchema("orders-value", sr.Schema{Schema: schema, Type: sr.TypeAvro})
	if err != nil {
		t.Fatal(err)
	}
	s := avro.MustParse(schema)
	var serde sr.Serde
	serde.Register(id, v, sr.EncodeFn(func(v any) ([]byte, error) { return avro.Marshal(s, v) }))
	b, err := serde.Encode(v)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestAvroResolvesWriterSchemasAgainstTheReaders(t *testing.T) {
	reg, cl := registry(t)
	ctx := t.Context()
	v1 := avroValue(t, reg, orderV1, avroOrderV1{ID: "o-1", Cents: 250})
	v2 := avroValue(t, reg, orderV2, avroOrderV2{ID: "o-2", Cents: 900, Currency: "USD"})

	// A v1 reader reads v2 values (the new field skipped)...
	r1, err := codec.Avro[avroOrderV1](cl, orderV1)
	if err != nil {
		t.Fatal(err)
	}
	if o, err := r1.Decode(ctx, v1); err != nil || o != (avroOrderV1{"o-1", 250}) {
		t.Errorf("v1 as v1: %+v, %v", o, err)
	}
	if o, err := r1.Decode(ctx, v2); err != nil || o != (avroOrderV1{"o-2", 900}) {
		t.Errorf("v2 as v1: %+v, %v", o, err)
	}
	// ...and a v2 reader reads v1 values with the default.
	r2, err := codec.Avro[avroOrderV2](cl, orderV2)
	if err != nil {
		t.Fatal(err)
	}
	if o, err := r2.Decode(ctx, v1); err != nil || o != (avroOrderV2{"o-1", 250, "EUR"}) {
		t.Errorf("v1 as v2: %+v, %v", o, err)
	}
	// Without a reader schema, each value is read with its writer's.
	rw, err := codec.Avro[avroOrderV2](cl, "")
	if err != nil {
		t.Fatal(err)
	}
	if o, err := rw.Decode(ctx, v2); err != nil || o != (avroOrderV2{"o-2", 900, "USD"}) {
		t.Errorf("v2 with its own schema: %+v, %v", o, err)
	}
	if _, err := codec.Avro[avroOrderV1](cl, `{"type":`); err == nil {
		t.Error("a reader schema that does not parse was accepted")
	}
}

func TestAvroRefusals(t *testing.T) {
	reg, cl := registry(t)
	ctx := t.Context()
	dec, err := codec.Avro[avroOrderV1](cl, orderV1)
	if err != nil {
		t.Fatal(err)
	}
	incompatible := avroValue(t, reg, orderBad, map[string]any{"id": "o-3", "cents": "ten"})
	unknownID := append([]byte{0, 0, 0, 0x30, 0x39}, avroValue(t, reg, orderV1, avroOrderV1{"o-4", 1})[5:]...) // schema 12345
	protoID, _, err := reg.RegisterSchema("other-value", sr.Schema{Schema: `syntax = "proto3"; message M {}`, Type: sr.TypeProtobuf})
	if err != nil {
		t.Fatal(err)
	}
	notAvro := []byte{0, byte(protoID >> 24), byte(protoID >> 16), byte(protoID >> 8), byte(protoID), 0}
	for _, tc := range []struct {
		name  string
		value []byte
		want  string
	}{
		{"not framed", []byte(`{"id":"o-5"}`), "decoding avro: no schema registry header"},
		{"incompatible writer", incompatible, "cannot be read with the reader schema"},
		{"incompatible writer, again (cached)", incompatible, "cannot be read with the reader schema"},
		{"unknown schema", unknownID, "decoding avro: schema 12345 is not in the registry"},
		{"not an Avro schema", notAvro, "is PROTOBUF, not Avro"},
		{"truncated", avroValue(t, reg, orderV1, avroOrderV1{"o-6", 1})[:6], "decoding avro: schema"},
	} {
		_, err := dec.Decode(ctx, tc.value)
		var de *codec.DecodeError
		if !errors.As(err, &de) || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: %v, want a *DecodeError with %q", tc.name, err, tc.want)
		}
	}
}

// protoValue registers a Protobuf schema and encodes m as message index of
// it, in the Confluent wire format.
func protoValue(t *testing.T, reg *srfake.Registry, m proto.Message, index ...int) []byte {
	t.Helper()
	id, _, err := reg.RegisterSchema("pb-value", sr.Schema{Schema: `syntax = "proto3"; // google/protobuf/*.proto`, Type: sr.TypeProtobuf})
	if err != nil {
		t.Fatal(err)
	}
	var serde sr.Serde
	serde.Register(id, m, sr.Index(index...), sr.EncodeFn(func(v any) ([]byte, error) {
		pm, _ := v.(proto.Message)
		return proto.Marshal(pm)
	}))
	b, err := serde.Encode(m)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestProtobuf(t *testing.T) {
	reg, cl := registry(t)
	ctx := t.Context()
	st, err := structpb.NewStruct(map[string]any{"id": "o-1", "cents": 250})
	if err != nil {
		t.Fatal(err)
	}
	// Struct is the first message of struct.proto: index [0], written as
	// the one-byte shortcut.
	got, err := codec.Protobuf[*structpb.Struct](cl).Decode(ctx, protoValue(t, reg, st, 0))
	if err != nil || got.GetFields()["id"].GetStringValue() != "o-1" || got.GetFields()["cents"].GetNumberValue() != 250 {
		t.Fatalf("%v, %v", got, err)
	}
	// StringValue is not the first message of wrappers.proto.
	idx := (&wrapperspb.StringValue{}).ProtoReflect().Descriptor().Index()
	sv, err := codec.Protobuf[*wrapperspb.StringValue](cl).Decode(ctx, protoValue(t, reg, wrapperspb.String("hi"), idx))
	if err != nil || sv.GetValue() != "hi" {
		t.Fatalf("%v, %v", sv, err)
	}
	// A value of another message than T is refused, naming both.
	_, err = codec.Protobuf[*structpb.Struct](cl).Decode(ctx, protoValue(t, reg, wrapperspb.String("hi"), idx))
	var de *codec.DecodeError
	if !errors.As(err, &de) || !strings.Contains(err.Error(), "is message [7] of its schema, not google.protobuf.Struct (message [0])") {
		t.Errorf("other message: %v", err)
	}
	avroID, _, err := reg.RegisterSchema("orders-value", sr.Schema{Schema: orderV1, Type: sr.TypeAvro})
	if err != nil {
		t.Fatal(err)
	}
	_, err = codec.Protobuf[*structpb.Struct](cl).Decode(ctx, []byte{0, 0, 0, 0, byte(avroID), 0})
	if !errors.As(err, &de) || !strings.Contains(err.Error(), "is AVRO, not Protobuf") {
		t.Errorf("Avro schema: %v", err)
	}
}

// A registry that does not answer holds the record (it is not the
// record's fault): no attempt spent, no dead letter; once the registry is
// back, the record is decoded and applied. A schema the registry does not
// have is the record's fault: dead-lettered at once.
func TestRegistryOutageHoldsUnknownSchemaDeadLetters(t *testing.T) {
	reg, cl := registry(t)
	var down atomic.Bool
	reg.Intercept(func(w http.ResponseWriter, _ *http.Request) bool {
		if down.Load() {
			w.WriteHeader(http.StatusServiceUnavailable)
			return true
		}
		return false
	})
	dec, err := codec.Avro[avroOrderV1](cl, orderV1)
	if err != nil {
		t.Fatal(err)
	}
	var cents atomic.Int64
	proc := codec.Processor(dec, func(_ context.Context, _ *kgo.Record, o avroOrderV1) error {
		cents.Add(o.Cents)
		return nil
	})
	h := ordotest.New(t, proc, ordotest.MaxAttempts(1))
	value := avroValue(t, reg, orderV1, avroOrderV1{"o-1", 250})

	down.Store(true)
	rec := h.ProduceRecord(&kgo.Record{Value: value})
	h.WaitHeld(rec)
	h.Advance(ordo.DefaultHoldDelay)
	if o := h.WaitCalls(rec, 2); o.State != ordotest.Held || !strings.Contains(o.LastErr().Error(), "fetching schema") {
		t.Fatalf("registry down: %v, %v", o.State, o.LastErr())
	}
	down.Store(false)
	h.Advance(ordo.DefaultHoldDelay)
	if o := h.WaitDone(rec); cents.Load() != 250 || o.Retries(0) != 0 {
		t.Fatalf("after the registry came back: %d cents, %d retries", cents.Load(), o.Retries(0))
	}

	unknown := append([]byte{0, 0, 0, 0x30, 0x39}, value[5:]...)
	dl := h.WaitDeadLetter(h.ProduceRecord(&kgo.Record{Value: unknown}))
	if !strings.Contains(ordotest.HeaderValue(dl, ordo.HeaderError), "schema 12345 is not in the registry") {
		t.Errorf("dead letter error %q", ordotest.HeaderValue(dl, ordo.HeaderError))
	}
}
