// Command ordo runs Ordo pipelines: `ordo dev` on an embedded broker,
// `ordo run` against real brokers, `ordo topics` to declare topics and
// `ordo bench` to measure. See `ordo help`.
package main

import (
	"context"
	"os"
	"os/signal"
	"syscall"

	"github.com/ordokafka/ordo/internal/cli"
)

func main() {
	// The first SIGINT/SIGTERM drains, a second stops at once: both must
	// reach the command, so they are never left to Go's default handler.
	sigs := make(chan os.Signal, 2)
	signal.Notify(sigs, os.Interrupt, syscall.SIGTERM)
	code := cli.MainSignals(context.Background(), os.Args[1:], os.Stdout, os.Stderr, sigs)
	signal.Stop(sigs)
	os.Exit(code)
}
