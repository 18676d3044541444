package ordocli_test

import (
	"context"
	"fmt"
	"os"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/ordokafka/ordo/pkg/ordo"
	"github.com/ordokafka/ordo/pkg/ordocli"
	"github.com/ordokafka/ordo/pkg/registry"
	"github.com/ordokafka/ordo/processors/builtin"
)

// A program of your own is the ordo command line with your processors
// beside the built-ins: `yourbinary run --processor audit`, `yourbinary
// dev --processor audit`, and every other ordo command. Here it is asked
// for a processor it does not have, and says what it has.
func Example() {
	audit := func(registry.Setup) (ordo.Processor, error) {
		return ordo.ProcessorFunc(func(context.Context, *kgo.Record) error { return nil }), nil
	}
	code := ordocli.Main(context.Background(),
		[]string{"run", "--brokers", "127.0.0.1:1", "--group", "g", "--topic", "t", "--processor", "aduit", "--metrics-addr", ""},
		os.Stdout, os.Stdout,
		ordocli.WithProcessors(builtin.New()), ordocli.WithProcessor("audit", audit))
	fmt.Println("exit", code)
	// Output:
	// ordo: --processor: "aduit" is not registered (registered: audit, example, log, postgres, redis-ledger, webhook)
	// exit 2
}
