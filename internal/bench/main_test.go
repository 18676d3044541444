package bench_test

import (
	"context"
	"os"
	"os/signal"
	"syscall"
	"testing"

	"go.uber.org/goleak"

	"github.com/ordokafka/ordo/internal/cli"
)

// childEnv makes the test binary act as the ordo binary, so that the
// noop-throughput test can spawn its broker and worker children without
// building cmd/ordo.
const childEnv = "ORDO_BENCH_TEST_AS_ORDO=1"

func TestMain(m *testing.M) {
	if os.Getenv("ORDO_BENCH_TEST_AS_ORDO") == "1" {
		ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
		code := cli.Main(ctx, os.Args[1:], os.Stdout, os.Stderr)
		stop()
		os.Exit(code)
	}
	goleak.VerifyTestMain(m)
}
