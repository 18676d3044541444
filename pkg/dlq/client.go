package dlq

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/ordokafka/ordo/pkg/ordo"
)

// Defaults of Config.
const (
	DefaultIdleTimeout    = 5 * time.Second
	DefaultMaxCursorBytes = 4096
	DefaultCommitEvery    = 500
)

// Config configures a Client.
type Config struct {
	// Opts reach the cluster: at least kgo.SeedBrokers, and whatever TLS or
	// SASL it needs. The Client adds its own consume and produce options.
	Opts []kgo.Opt
	// Naming names a group's retry tiers (the default redrive target).
	// Default ordo.DefaultNaming, the naming of `ordo topics apply`.
	Naming ordo.Naming
	// IdleTimeout ends the read of a partition that sends nothing for this
	// long before reaching the end offset taken at the start of the call
	// (its last offsets hold no record: compacted away, or transaction
	// markers). Default DefaultIdleTimeout (5s).
	IdleTimeout time.Duration
	// MaxCursorBytes bounds a redrive cursor's commit metadata per
	// partition; keep it at or under the brokers' offset.metadata.max.bytes.
	// Default DefaultMaxCursorBytes (4096, Kafka's default).
	MaxCursorBytes int
	// CommitEvery is how many redriven records a redrive produces between
	// two commits of its cursor. Default DefaultCommitEvery (500).
	CommitEvery int
	// Now is the clock of ordo-not-before on redriven records. Default
	// time.Now.
	Now func() time.Time
}

// Client reads and redrives dead-letter topics.
type Client struct {
	cfg Config
	cl  *kgo.Client // admin requests and produces
	adm *kadm.Client
}

// New returns a Client; it connects lazily. Close it when done.
func New(cfg Config) (*Client, error) {
	if len(cfg.Opts) == 0 {
		return nil, errors.New("dlq: Config.Opts must reach the cluster (at least kgo.SeedBrokers)")
	}
	if cfg.IdleTimeout < 0 || cfg.MaxCursorBytes < 0 || cfg.CommitEvery < 0 {
		return nil, errors.New("dlq: Config.IdleTimeout, MaxCursorBytes and CommitEvery must not be negative")
	}
	if cfg.IdleTimeout == 0 {
		cfg.IdleTimeout = DefaultIdleTimeout
	}
	if cfg.MaxCursorBytes == 0 {
		cfg.MaxCursorBytes = DefaultMaxCursorBytes
	}
	if cfg.CommitEvery == 0 {
		cfg.CommitEvery = DefaultCommitEvery
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.Naming == (ordo.Naming{}) {
		cfg.Naming = ordo.DefaultNaming
	}
	opts := slices.Concat(cfg.Opts, []kgo.Opt{
		// The redrive sets every record's partition itself.
		kgo.RecordPartitioner(kgo.ManualPartitioner()),
		kgo.ProducerLinger(5 * time.Millisecond),
	})
	cl, err := kgo.NewClient(opts...)
	if err != nil {
		return nil, fmt.Errorf("dlq: %w", err)
	}
	return &Client{cfg: cfg, cl: cl, adm: kadm.NewClient(cl)}, nil
}

// Close closes the client's connections.
func (c *Client) Close() { c.cl.Close() }

// Span is the part of a dead-letter topic a call read: per partition, from
// Start to End (exclusive), End being the end offset when the call began.
type Span struct {
	Topic      string
	Partitions []PartitionSpan
}

// PartitionSpan is the span of one partition.
type PartitionSpan struct {
	Partition int32
	// Start is the first offset read; End the end offset taken at the
	// start of the call (records produced later are not read).
	Start, End int64
	// LogStart is the partition's log start offset (older records are
	// gone).
	LogStart int64
	// Short is set when the partition sent nothing for Config.IdleTimeout
	// before End was reached; Next is then the offset it stopped at.
	Short bool
	Next  int64
}

// read is the number of offsets read so far.
func (s *Span) read() int64 {
	var n int64
	for _, p := range s.Partitions {
		n += p.Next - p.Start
	}
	return n
}

// Total is the number of offsets the span covers.
func (s Span) Total() int64 {
	var n int64
	for _, p := range s.Partitions {
		n += p.End - p.Start
	}
	return n
}

// Scan reads topic from its start offsets to its end offsets taken when
// the call begins, without a consumer group (nothing is committed), and
// calls fn, in offset order within each partition, with every letter that
// f matches. It never waits for new records. fn must not keep the letter's
// slices beyond the call unless it copies them. An error from fn stops
// the scan and is returned.
func (c *Client) Scan(ctx context.Context, topic string, f Filter, fn func(*Letter) error) (Span, error) {
	span, err := c.span(ctx, topic, f, nil)
	if err != nil {
		return span, err
	}
	err = c.read(ctx, &span, func(l *Letter) error {
		if !f.Match(l) {
			return nil
		}
		return fn(l)
	})
	return span, err
}

// span lists the offsets of topic to read: every partition f's
// DLQPartitions allow, from its start offset (or from[p] if higher, or the
// lowest offset DLQOffsets allows) to its end offset.
func (c *Client) span(ctx context.Context, topic string, f Filter, from map[int32]int64) (Span, error) {
	span := Span{Topic: topic}
	starts, err := c.adm.ListStartOffsets(ctx, topic)
	if err == nil {
		err = starts.Error()
	}
	if err != nil {
		if errors.Is(err, kerr.UnknownTopicOrPartition) {
			return span, &TopicError{Topic: topic}
		}
		return span, fmt.Errorf("dlq: start offsets of %s: %w", topic, err)
	}
	ends, err := c.adm.ListEndOffsets(ctx, topic)
	if err == nil {
		err = ends.Error()
	}
	if err != nil {
		return span, fmt.Errorf("dlq: end offsets of %s: %w", topic, err)
	}
	if _, ok := starts[topic]; !ok {
		return span, &TopicError{Topic: topic}
	}
	lo, hi := f.DLQOffsets.bounds()
	for p, s := range starts[topic] {
		if !f.DLQPartitions.Contains(int64(p)) {
			continue
		}
		e, ok := ends.Lookup(topic, p)
		if !ok {
			continue
		}
		start, end := max(s.Offset, lo, from[p]), e.Offset
		if hi < end {
			end = hi + 1
		}
		if start < end {
			span.Partitions = append(span.Partitions, PartitionSpan{Partition: p, Start: start, End: end, Next: start, LogStart: s.Offset})
		}
	}
	slices.SortFunc(span.Partitions, func(a, b PartitionSpan) int { return int(a.Partition) - int(b.Partition) })
	return span, nil
}

// TopicError reports a dead-letter topic that does not exist.
type TopicError struct{ Topic string }

func (e *TopicError) Error() string {
	return fmt.Sprintf("dead-letter topic %q does not exist", e.Topic)
}

// Unwrap makes errors.Is(err, kerr.UnknownTopicOrPartition) true.
func (e *TopicError) Unwrap() error { return kerr.UnknownTopicOrPartition }

// read consumes span (updating each partition's Next and Short) and calls
// fn with every letter in it, in offset order per partition.
func (c *Client) read(ctx context.Context, span *Span, fn func(*Letter) error) error {
	if len(span.Partitions) == 0 {
		return nil
	}
	at := make(map[int32]kgo.Offset, len(span.Partitions))
	idx := make(map[int32]int, len(span.Partitions))
	for i, p := range span.Partitions {
		at[p.Partition] = kgo.NewOffset().At(p.Start)
		idx[p.Partition] = i
	}
	opts := slices.Concat(c.cfg.Opts, []kgo.Opt{
		kgo.ConsumePartitions(map[string]map[int32]kgo.Offset{span.Topic: at}),
		// Transaction markers take offsets; seeing them lets a partition
		// reach its end offset.
		kgo.KeepControlRecords(),
	})
	cl, err := kgo.NewClient(opts...)
	if err != nil {
		return fmt.Errorf("dlq: %w", err)
	}
	defer cl.Close()

	left := len(span.Partitions)
	done := func(p *PartitionSpan) {
		left--
		cl.PauseFetchPartitions(map[string][]int32{span.Topic: {p.Partition}})
	}
	lastProgress := time.Now()
	for left > 0 {
		wait := c.cfg.IdleTimeout - time.Since(lastProgress)
		if wait <= 0 {
			// Nothing for IdleTimeout: every partition still open ends here.
			for i := range span.Partitions {
				if p := &span.Partitions[i]; p.Next < p.End && !p.Short {
					p.Short = true
					done(p)
				}
			}
			return nil
		}
		pctx, cancel := context.WithTimeout(ctx, wait)
		fetches := cl.PollFetches(pctx)
		cancel()
		if err := ctx.Err(); err != nil {
			return err
		}
		var ferr error
		fetches.EachError(func(t string, p int32, err error) {
			if !errors.Is(err, context.DeadlineExceeded) && ferr == nil {
				ferr = fmt.Errorf("dlq: fetch %s/%d: %w", t, p, err)
			}
		})
		if ferr != nil {
			return ferr
		}
		for it := fetches.RecordIter(); !it.Done(); {
			r := it.Next()
			i, ok := idx[r.Partition]
			if !ok {
				continue
			}
			p := &span.Partitions[i]
			if p.Next >= p.End || p.Short || r.Offset < p.Next {
				continue
			}
			if r.Offset >= p.End {
				p.Next = p.End
				lastProgress = time.Now()
				done(p)
				continue
			}
			p.Next = r.Offset + 1
			lastProgress = time.Now()
			if !r.Attrs.IsControl() {
				l := FromRecord(r)
				if err := fn(&l); err != nil {
					return err
				}
			}
			if p.Next >= p.End {
				done(p)
			}
		}
	}
	return nil
}
