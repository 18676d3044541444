package codec_test

import (
	"context"
	"fmt"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/ordokafka/ordo/pkg/codec"
	"github.com/ordokafka/ordo/pkg/ordo"
)

type Payment struct {
	Customer string `json:"customer"`
	Cents    int64  `json:"cents"`
}

func ExampleProcessor() {
	proc := codec.Processor(codec.JSON[Payment](), func(ctx context.Context, r *kgo.Record, p Payment) error {
		fmt.Printf("%s pays %d cents\n", p.Customer, p.Cents)
		return nil
	})

	ctx := context.Background()
	_ = proc.Process(ctx, &kgo.Record{Topic: "payments", Value: []byte(`{"customer":"c-1","cents":250}`)})
	err := proc.Process(ctx, &kgo.Record{Topic: "payments", Offset: 7, Value: []byte(`{"customer":"c-2","cents":`)})
	fmt.Println(ordo.ClassOf(err), "-", err)
	// Output:
	// c-1 pays 250 cents
	// permanent - permanent: payments/0@7: decoding json: unexpected end of JSON input
}
