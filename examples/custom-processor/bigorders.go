package main

import (
	"context"
	"errors"
	"fmt"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/ordokafka/ordo/pkg/codec"
	"github.com/ordokafka/ordo/pkg/ordo"
	"github.com/ordokafka/ordo/pkg/registry"
)

// Order is an order event, as `ordo dev --demo` produces them.
type Order struct {
	Customer    string `json:"customer"`
	AmountCents int64  `json:"amount_cents"`
}

// BigOrders reports the orders above a limit.
func BigOrders(limitCents int64, report func(ctx context.Context, o Order)) ordo.Processor {
	return codec.Processor(codec.JSON[Order](), func(ctx context.Context, r *kgo.Record, o Order) error {
		if o.Customer == "" {
			return ordo.Permanent(errors.New("order without a customer"))
		}
		if o.AmountCents > limitCents {
			report(ctx, o)
		}
		return nil
	})
}

// BigOrdersConfig is the processor's processor_config.
type BigOrdersConfig struct {
	// LimitCents: orders above it are reported. Default 10000.
	LimitCents int64 `yaml:"limit_cents"`
}

// newBigOrders is the processor's factory: it reads processor_config and
// reports big orders to the log.
func newBigOrders(s registry.Setup) (ordo.Processor, error) {
	c := BigOrdersConfig{LimitCents: 10000}
	if err := s.Decode(&c); err != nil {
		return nil, err
	}
	if c.LimitCents <= 0 {
		return nil, fmt.Errorf("limit_cents: must be > 0, got %d", c.LimitCents)
	}
	return BigOrders(c.LimitCents, func(ctx context.Context, o Order) {
		s.Logger.InfoContext(ctx, "big order", "customer", o.Customer, "cents", o.AmountCents)
	}), nil
}
