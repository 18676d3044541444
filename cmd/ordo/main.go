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
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := cli.Main(ctx, os.Args[1:], os.Stdout, os.Stderr)
	stop()
	os.Exit(code)
}
