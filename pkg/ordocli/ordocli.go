// Package ordocli runs the ordo command line from a program of your own,
// so that a team ships one binary with its processors registered beside
// Ordo's built-ins: `ordo run`, `ordo dev`, `ordo topics`, `ordo dlq` and
// the rest, with `--processor` finding the team's processors by name.
//
// The ordo binary itself is this call with the built-ins registered
// (cmd/ordo/main.go):
//
//	func main() {
//		procs := builtin.New()
//		procs.Register("shout", newShout)
//		os.Exit(ordocli.Main(context.Background(), os.Args[1:], os.Stdout, os.Stderr,
//			ordocli.WithProcessors(procs), ordocli.WithSignals()))
//	}
//
// Nothing is global: the processors are the Registry given to Main. See
// docs/processors.md and examples/custom-processor in the repository.
package ordocli

import (
	"context"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"

	"github.com/ordokafka/ordo/internal/cli"
	"github.com/ordokafka/ordo/pkg/registry"
)

// Option configures Main.
type Option func(*options) error

type options struct {
	procs   *registry.Registry
	signals bool
	sigs    <-chan os.Signal
}

// WithProcessors adds the processors of r (built-in ones from
// processors/builtin, your own, or both). A name registered twice, here or
// with WithProcessor, makes Main exit 2 naming it.
func WithProcessors(r *registry.Registry) Option {
	return func(o *options) error { return o.procs.Merge(r) }
}

// WithProcessor adds one processor under name.
func WithProcessor(name string, f registry.Factory) Option {
	return func(o *options) error { return o.procs.Add(name, f) }
}

// WithSignals makes Main handle SIGINT and SIGTERM as ordo does: the first
// drains (running records finish, offsets are committed, the member leaves
// its group), a second during the drain stops at once. Without it, only
// canceling Main's context stops a command (like a first signal).
func WithSignals() Option {
	return func(o *options) error { o.signals = true; return nil }
}

// WithSignalChannel is WithSignals fed by sigs instead of the process's
// signals, for tests: each value sent is one interrupt.
func WithSignalChannel(sigs <-chan os.Signal) Option {
	return func(o *options) error { o.sigs = sigs; return nil }
}

// Main runs the ordo command line with args (os.Args[1:]), writing to
// stdout and stderr, and returns the process exit code: 0 on success, 2
// for a usage or configuration error (an unknown processor among them,
// listing the registered ones), 1 for any other failure.
func Main(ctx context.Context, args []string, stdout, stderr io.Writer, opts ...Option) int {
	o := options{procs: registry.New()}
	for _, opt := range opts {
		if err := opt(&o); err != nil {
			fmt.Fprintln(stderr, "ordo:", err)
			return 2
		}
	}
	sigs := o.sigs
	if o.signals && sigs == nil {
		// Both stages must reach the command, so they are never left to
		// Go's default handler while it runs.
		ch := make(chan os.Signal, 2)
		signal.Notify(ch, os.Interrupt, syscall.SIGTERM)
		defer signal.Stop(ch)
		sigs = ch
	}
	return cli.MainWith(ctx, args, stdout, stderr, sigs, o.procs)
}
