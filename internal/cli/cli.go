// Package cli holds the subcommands of the ordo binary. Each subcommand is
// a type with its flags as fields, a Validate method that checks them
// before anything connects, and a Run method that writes to an injectable
// writer, so that tests drive them without a process.
package cli

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
	"sync"

	"github.com/spf13/cobra"

	"github.com/ordokafka/ordo/pkg/registry"
	"github.com/ordokafka/ordo/processors/builtin"
)

// Version is the ordo version, set at build time with -ldflags.
var Version = "dev"

// Main runs the ordo command line, with the built-in processors, and
// returns the process exit code. Canceling ctx is like a first interrupt
// (see MainSignals); there is no second.
func Main(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	return MainWith(ctx, args, stdout, stderr, nil, builtin.New())
}

// MainSignals is Main fed by a source of interrupts (see MainWith).
func MainSignals(ctx context.Context, args []string, stdout, stderr io.Writer, sigs <-chan os.Signal) int {
	return MainWith(ctx, args, stdout, stderr, sigs, builtin.New())
}

// MainWith runs the ordo command line with the processors of procs (nil:
// none) for `ordo run` and `ordo dev`, fed by a source of interrupts:
// pkg/ordocli passes the channel of signal.Notify for SIGINT and SIGTERM,
// tests their own (nil: none). The first signal ends the command's
// context: ordo dev and ordo run stop fetching, say that they drain, and
// finish and commit what runs; another signal during the drain cancels the
// records still running and stops at once. Other commands stop at the
// first.
func MainWith(ctx context.Context, args []string, stdout, stderr io.Writer, sigs <-chan os.Signal, procs *registry.Registry) int {
	return mainIO(ctx, args, os.Stdin, stdout, stderr, sigs, procs)
}

// mainIO is MainWith reading stdin (ordo produce's input).
func mainIO(ctx context.Context, args []string, stdin io.Reader, stdout, stderr io.Writer, sigs <-chan os.Signal, procs *registry.Registry) int {
	ctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	in := newInterrupts(cancel)
	done := make(chan struct{})
	var wg sync.WaitGroup
	if sigs != nil {
		wg.Go(func() { in.watch(sigs, done) })
	}
	defer func() {
		close(done)
		wg.Wait()
	}()
	root := newRoot(stdout, stderr, in, procs)
	root.SetIn(stdin)
	root.SetArgs(args)
	if err := root.ExecuteContext(ctx); err != nil {
		printError(stderr, err)
		var ue usageError
		if errors.As(err, &ue) {
			return 2
		}
		return 1
	}
	return 0
}

// printError prints err after "ordo:", or, when it joins several errors,
// each on its own indented line under a count.
func printError(w io.Writer, err error) {
	errs := leaves(err)
	if len(errs) < 2 {
		fmt.Fprintln(w, "ordo:", err)
		return
	}
	fmt.Fprintf(w, "ordo: %d errors:\n", len(errs))
	for _, e := range errs {
		fmt.Fprintln(w, "  "+strings.ReplaceAll(e.Error(), "\n", "\n    "))
	}
}

// leaves flattens errors.Join trees (through usageError) into their
// members.
func leaves(err error) []error {
	if ue := (usageError{}); errors.As(err, &ue) && ue.error != nil {
		err = ue.error
	}
	j, ok := err.(interface{ Unwrap() []error })
	if !ok {
		return []error{err}
	}
	var out []error
	for _, e := range j.Unwrap() {
		out = append(out, leaves(e)...)
	}
	return out
}

// usageError marks errors in flags or arguments (exit code 2).
type usageError struct{ error }

func (e usageError) Unwrap() error { return e.error }

// NewRoot builds the root command, with the built-in processors.
func NewRoot(stdout, stderr io.Writer) *cobra.Command {
	return newRoot(stdout, stderr, nil, builtin.New())
}

// newRoot builds the root command; in (nil: none) delivers interrupts to
// the commands that drain; procs holds the processors of ordo run and ordo
// dev.
func newRoot(stdout, stderr io.Writer, in *interrupts, procs *registry.Registry) *cobra.Command {
	root := &cobra.Command{
		Use:   "ordo",
		Short: "Ordo runs Kafka processors across a consumer group: in order per key, parallel across keys, committing only what is done.",
		Long: `Ordo runs Kafka processors across a consumer group: in order per key, parallel
across keys, committing only offsets whose records are done, dead-lettering
what fails, and exporting lag for autoscalers.

Start here:  ordo dev --demo     (embedded broker, demo producer, live progress)`,
		Example: `  ordo dev --demo                              # try it: embedded broker, demo events, progress
  ordo topics apply --brokers localhost:19092  # create the declared topics on a real broker
  ordo run --config deploy/ordo.yaml           # run a pipeline against it
  ordo bench --quick                           # measure against raw franz-go`,
		SilenceUsage:  true,
		SilenceErrors: true,
		Version:       Version,
	}
	root.SetOut(stdout)
	root.SetErr(stderr)
	root.SetFlagErrorFunc(func(_ *cobra.Command, err error) error { return usageError{err} })
	root.AddCommand(newDevCmd(stdout, stderr, in, procs), newRunCmd(stdout, stderr, in, procs), newTopicsCmd(stdout), newBenchCmd(stdout), newStoreCmd(stdout))
	root.AddCommand(newLagCmd(stdout, stderr))
	root.AddCommand(newReplayCmd(stdout, stderr))
	root.AddCommand(newDLQCmd(stdout, stderr))
	root.AddCommand(newHealthcheckCmd(stdout))
	root.AddCommand(newProduceCmd(stdout, stderr), newConsumeCmd(stdout, stderr))
	setUpCompletion(root, procs)
	return root
}

// validated wraps a Validate error as a usage error.
func validated(err error) error {
	if err != nil {
		return usageError{err}
	}
	return nil
}
