package cli

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/ordokafka/ordo/pkg/ordo"
)

// waitFor returns once one of brokers answers a metadata request, or,
// after timeout, an error that names the brokers, the setting that bounds
// the wait (what, e.g. "--connect-timeout") and what to check. Commands
// that connect call it first (most through ConnFlags.waitForBroker), so
// that an unreachable broker fails fast and in words instead of as a bare
// "context deadline exceeded". conn is the command's TLS and SASL
// settings (nil: none; opts include its options): a failure that
// retrying cannot cure (credentials refused, a certificate not trusted,
// TLS or SASL missing on one side) ends the wait at once, worded in the
// names the user gave the settings (connection.explainConnect).
func waitFor(ctx context.Context, brokers []string, timeout time.Duration, what string, conn *connection, opts []kgo.Opt) error {
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
	same := 0 // failures in a row like the last
	for {
		err := cl.Ping(wctx)
		if err == nil {
			return nil
		}
		if last != nil && errors.Is(err, io.EOF) == errors.Is(last, io.EOF) {
			same++
		} else {
			same = 1
		}
		last = err
		if msg, fatal := conn.explainConnect(err, same); fatal {
			return fmt.Errorf("brokers %s: %s", strings.Join(brokers, ","), msg)
		}
		retry.Reset(250 * time.Millisecond)
		select {
		case <-wctx.Done():
			if errors.Is(ctx.Err(), context.Canceled) { // interrupted, not timed out
				return ctx.Err()
			}
			err := unreachable(brokers, timeout, what, last)
			if hint := conn.unreachableHint(); hint != "" {
				err = fmt.Errorf("%w%s", err, hint)
			}
			return err
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

// missingTopics returns the topics of cfg's pipeline the brokers do not
// have: its source topics, and its group's retry tiers and dead-letter
// topics (a failed record could not be routed: its partition would wait,
// loudly, until someone created them).
func missingTopics(ctx context.Context, cfg ordo.Config, timeout time.Duration) ([]string, error) {
	cl, err := kgo.NewClient(append([]kgo.Opt{kgo.SeedBrokers(cfg.Brokers...)}, cfg.KgoOpts...)...)
	if err != nil {
		return nil, err
	}
	defer cl.Close()
	naming := cfg.Naming
	if naming == (ordo.Naming{}) {
		naming = ordo.DefaultNaming
	}
	want := []string{}
	for _, t := range cfg.Topics {
		want = append(want, t, naming.DLQTopic(t, cfg.Group))
		for n := 1; n <= len(cfg.Retry.Tiers); n++ {
			want = append(want, naming.RetryTopic(t, cfg.Group, n))
		}
	}
	lctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	listed, err := kadm.NewClient(cl).ListTopics(lctx, want...)
	if err != nil {
		return nil, err
	}
	var missing []string
	for _, t := range want {
		if d, ok := listed[t]; !ok || d.Err != nil {
			missing = append(missing, t)
		}
	}
	return missing, nil
}
