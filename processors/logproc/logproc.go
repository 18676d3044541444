// Package logproc is a processor that logs each record it receives, for
// trying out a pipeline or watching a topic through Ordo.
package logproc

import (
	"context"
	"log/slog"

	"github.com/twmb/franz-go/pkg/kgo"
)

// Processor logs records at info level.
type Processor struct {
	log *slog.Logger
	// MaxValue bounds how many bytes of the value are logged.
	MaxValue int
}

// New returns a Processor that logs to log.
func New(log *slog.Logger) *Processor { return &Processor{log: log, MaxValue: 256} }

// Process implements ordo.Processor.
func (p *Processor) Process(ctx context.Context, r *kgo.Record) error {
	v := r.Value
	if len(v) > p.MaxValue {
		v = v[:p.MaxValue]
	}
	p.log.InfoContext(ctx, "record", "topic", r.Topic, "partition", r.Partition, "offset", r.Offset,
		"key", string(r.Key), "value", string(v))
	return nil
}
