package codec_test

import (
	"context"
	"fmt"

	"github.com/hamba/avro/v2"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/sr"
	"github.com/twmb/franz-go/pkg/sr/srfake"

	"github.com/ordokafka/ordo/pkg/codec"
	"github.com/ordokafka/ordo/pkg/ordo"
)

// OrderAvro is the Go side of the Avro schema orderSchema.
type OrderAvro struct {
	ID    string `avro:"id"`
	Cents int64  `avro:"cents"`
}

const orderSchema = `{"type": "record", "name": "Order", "namespace": "shop",
  "fields": [{"name": "id", "type": "string"}, {"name": "cents", "type": "long"}]}`

// newAvroOrders is a processor of Avro orders, their writer schemas
// fetched from the registry at registryURL.
func newAvroOrders(registryURL string) (ordo.Processor, error) {
	cl, err := sr.NewClient(sr.URLs(registryURL))
	if err != nil {
		return nil, err
	}
	orders, err := codec.Avro[OrderAvro](cl, orderSchema)
	if err != nil {
		return nil, err
	}
	return codec.Processor(orders, func(ctx context.Context, r *kgo.Record, o OrderAvro) error {
		fmt.Printf("order %s: %d cents\n", o.ID, o.Cents)
		return nil
	}), nil
}

func ExampleAvro() {
	reg := srfake.New() // franz-go's fake registry; yours is at http://registry:8081
	defer reg.Close()
	proc, err := newAvroOrders(reg.URL())
	if err != nil {
		panic(err)
	}

	// What a producer's serializer writes: magic byte, schema ID, Avro.
	id, _, _ := reg.RegisterSchema("orders-value", sr.Schema{Schema: orderSchema, Type: sr.TypeAvro})
	var serde sr.Serde
	serde.Register(id, OrderAvro{}, sr.EncodeFn(func(v any) ([]byte, error) { return avro.Marshal(avro.MustParse(orderSchema), v) }))
	value := serde.MustEncode(OrderAvro{ID: "o-1", Cents: 250})

	ctx := context.Background()
	fmt.Println(proc.Process(ctx, &kgo.Record{Topic: "orders", Value: value}))
	fmt.Println(proc.Process(ctx, &kgo.Record{Topic: "orders", Offset: 3, Value: []byte(`{"id": "o-2"}`)}))
	// Output:
	// order o-1: 250 cents
	// <nil>
	// permanent: orders/0@3: decoding avro: no schema registry header (magic byte 0 and a schema ID): not written by a registry serializer
}
