package cli

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
)

// waitForBroker returns once one of brokers answers a metadata request, or,
// after timeout, an error that names the brokers, the setting that bounds
// the wait (what, e.g. "--connect-timeout") and what to check. Commands
// that connect call it first, so that an unreachable broker fails fast and
// in words instead of as a bare "context deadline exceeded".
func waitForBroker(ctx context.Context, brokers []string, timeout time.Duration, what string, opts ...kgo.Opt) error {
	cl, err := kgo.NewClient(append([]kgo.Opt{kgo.SeedBrokers(brokers...)}, opts...)...)
	if err != nil {
		return fmt.Errorf("brokers %s: %w", strings.Join(brokers, ","), err)
	}
	defer cl.Close()
	wctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	retry := time.NewTimer(0)
	defer retry.Stop()
	var last error
	for {
		if last = cl.Ping(wctx); last == nil {
			return nil
		}
		retry.Reset(250 * time.Millisecond)
		select {
		case <-wctx.Done():
			if errors.Is(ctx.Err(), context.Canceled) { // interrupted, not timed out
				return ctx.Err()
			}
			return unreachable(brokers, timeout, what, last)
		case <-retry.C:
		}
	}
}

// unreachable words the error of brokers that did not answer.
func unreachable(brokers []string, timeout time.Duration, what string, last error) error {
	why := last.Error()
	if errors.Is(last, context.DeadlineExceeded) {
		why = "no answer"
	}
	return fmt.Errorf("no broker of %s answered within %s (%s): %s; check that a Kafka broker runs at that address "+
		"and that it is the broker's advertised host:port (ordo dev: 127.0.0.1:9092; docker compose: localhost:19092)",
		strings.Join(brokers, ","), timeout, what, why)
}
