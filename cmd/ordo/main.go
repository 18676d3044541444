// Command ordo runs Ordo pipelines: `ordo dev` on an embedded broker,
// `ordo run` against real brokers, `ordo topics` to declare topics and
// `ordo bench` to measure. See `ordo help`.
//
// It is pkg/ordocli with the built-in processors registered: a team's own
// binary is the same few lines with its processors added (see
// docs/processors.md).
package main

import (
	"context"
	"os"

	"github.com/ordokafka/ordo/pkg/ordocli"
	"github.com/ordokafka/ordo/processors/builtin"
)

func main() {
	os.Exit(ordocli.Main(context.Background(), os.Args[1:], os.Stdout, os.Stderr,
		ordocli.WithProcessors(builtin.New()), ordocli.WithSignals()))
}
