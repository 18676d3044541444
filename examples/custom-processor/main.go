// Command custom-processor is the ordo command line with a processor of
// its own, big-orders, registered beside the built-in ones:
//
//	go run ./examples/custom-processor dev --demo --processor big-orders --processor-config '{limit_cents: 5000}'
//
// See README.md beside this file.
package main

import (
	"context"
	"io"
	"os"

	"github.com/ordokafka/ordo/pkg/ordocli"
	"github.com/ordokafka/ordo/processors/builtin"
)

func main() {
	os.Exit(run(context.Background(), os.Args[1:], os.Stdout, os.Stderr, ordocli.WithSignals()))
}

// run is the program: the built-in processors, big-orders, and every ordo
// command.
func run(ctx context.Context, args []string, stdout, stderr io.Writer, opts ...ordocli.Option) int {
	procs := builtin.New() // example, log
	procs.Register("big-orders", newBigOrders)
	opts = append(opts, ordocli.WithProcessors(procs))
	return ordocli.Main(ctx, args, stdout, stderr, opts...)
}
