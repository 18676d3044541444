package replay

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
)

// ScanRange is a range of one partition's offsets, From (inclusive) up to
// To (exclusive).
type ScanRange struct {
	Topic     string
	Partition int32
	From, To  int64
}

// Len is the number of offsets in the range.
func (r ScanRange) Len() int64 { return max(0, r.To-r.From) }

// ScanConfig configures a Scan.
type ScanConfig struct {
	// Brokers are the seed brokers. Required.
	Brokers []string
	// KgoOpts are passed to Scan's clients after its own: TLS, SASL,
	// client ID.
	KgoOpts []kgo.Opt
	// Ranges are the ranges to read, at most one per partition. A range
	// with To <= From reads nothing.
	Ranges []ScanRange
}

// ScannedRange is what Scan read of one range.
type ScannedRange struct {
	// ScanRange is the range as read: From raised to the log start (the
	// records below it were deleted), To cut to the log end.
	ScanRange
	// Asked is the range as given.
	Asked ScanRange
	// LogStart and LogEnd are the partition's log start offset and high
	// watermark when the scan started.
	LogStart, LogEnd int64
	// Records are the records handed to fn (transaction markers are not).
	Records int64
	// Warning says why the range read differs from the one asked ("" if
	// it does not).
	Warning string
}

func (c *ScanConfig) check() error {
	var errs []error
	if len(c.Brokers) == 0 {
		errs = append(errs, errors.New("no brokers"))
	}
	seen := map[tpKey]bool{}
	for _, r := range c.Ranges {
		k := tpKey{r.Topic, r.Partition}
		if err := ValidTopic(r.Topic); err != nil {
			errs = append(errs, err)
			continue
		}
		switch {
		case r.Partition < 0:
			errs = append(errs, fmt.Errorf("%s: the partition is negative", k))
		case r.From < 0:
			errs = append(errs, fmt.Errorf("%s: offset %d is negative", k, r.From))
		case seen[k]:
			errs = append(errs, fmt.Errorf("%s: more than one range", k))
		}
		seen[k] = true
	}
	return errors.Join(errs...)
}

// Scan reads every record of cfg.Ranges and calls fn with each, in offset
// order within a partition, one call at a time; partitions are read
// concurrently, so calls of different partitions interleave. It joins no
// group and commits nothing.
//
// What it reads is what an Ordo consumer is delivered: Ordo reads with
// franz-go's default isolation, read_uncommitted, so the records of
// aborted and open transactions are handed to fn too; transaction markers
// are not. A range ends exactly at its To, also when its last offsets are
// transaction markers, and never waits for records produced after the
// scan started: a To past the log end (the high watermark when the scan
// started) is cut to it, and a From below the log start (records deleted
// or expired) is raised to it, each with a warning on the range. Records
// deleted while the scan runs fail it (OFFSET_OUT_OF_RANGE) rather than
// being skipped.
//
// Scan returns the ranges as read with their counts, in topic and
// partition order, when every range is read; on fn's error (returned as
// it is), a fetch error, or ctx's end, it returns them with what was read
// so far, and the error.
func Scan(ctx context.Context, cfg ScanConfig, fn func(*kgo.Record) error) ([]ScannedRange, error) {
	if err := cfg.check(); err != nil {
		return nil, err
	}
	adm, err := kgo.NewClient(append([]kgo.Opt{kgo.SeedBrokers(cfg.Brokers...)}, cfg.KgoOpts...)...)
	if err != nil {
		return nil, err
	}
	ranges, err := planScan(ctx, kadm.NewClient(adm), cfg.Ranges)
	adm.Close()
	if err != nil {
		return nil, err
	}
	s := &scanner{fn: fn, ranges: ranges, pos: make([]int64, len(ranges)), byTP: map[tpKey]int{}}
	offsets := map[string]map[int32]kgo.Offset{}
	for i, r := range ranges {
		s.pos[i] = r.From
		if r.Len() == 0 {
			continue
		}
		s.byTP[tpKey{r.Topic, r.Partition}] = i
		if offsets[r.Topic] == nil {
			offsets[r.Topic] = map[int32]kgo.Offset{}
		}
		offsets[r.Topic][r.Partition] = kgo.NewOffset().At(r.From)
	}
	if len(s.byTP) == 0 {
		return ranges, nil
	}
	cl, err := kgo.NewClient(append([]kgo.Opt{
		kgo.SeedBrokers(cfg.Brokers...),
		kgo.ConsumePartitions(offsets),
		// Ordo's consumers read uncommitted records; so does the scan.
		kgo.FetchIsolationLevel(kgo.ReadUncommitted()),
		// Transaction markers come through so that a range ending on one
		// is seen to end.
		kgo.KeepControlRecords(),
		// Records deleted under the scan are an error, not a silent jump
		// to the new log start.
		kgo.ConsumeResetOffset(kgo.NoResetOffset()),
	}, cfg.KgoOpts...)...)
	if err != nil {
		return ranges, err
	}
	defer cl.Close()
	return s.ranges, s.loop(ctx, cl)
}

// scanner is one run of Scan; its poll loop owns it.
type scanner struct {
	fn     func(*kgo.Record) error
	ranges []ScannedRange
	pos    []int64       // next offset of each range
	byTP   map[tpKey]int // the ranges still to read
}

func (s *scanner) loop(ctx context.Context, cl *kgo.Client) error {
	for len(s.byTP) > 0 {
		fs := cl.PollRecords(ctx, 10000)
		if err := ctx.Err(); err != nil {
			return err
		}
		var fetchErr error
		fs.EachError(func(t string, p int32, err error) {
			if fetchErr == nil {
				fetchErr = fmt.Errorf("reading %s/%d: %w", t, p, err)
			}
		})
		if fetchErr != nil {
			return fetchErr
		}
		finished := map[string][]int32{}
		var stop error
		fs.EachPartition(func(fp kgo.FetchTopicPartition) {
			i, ok := s.byTP[tpKey{fp.Topic, fp.Partition}]
			if stop != nil || !ok {
				return
			}
			var done bool
			done, stop = s.read(i, fp.Records)
			if done {
				delete(s.byTP, tpKey{fp.Topic, fp.Partition})
				finished[fp.Topic] = append(finished[fp.Topic], fp.Partition)
			}
		})
		if stop != nil {
			return stop
		}
		if len(finished) > 0 {
			cl.PauseFetchPartitions(finished)
		}
	}
	return nil
}

// read hands the records of one fetch of range i that lie in it to fn,
// in order. A record at or past the range's end, or the range's last
// offset (a record or a transaction marker), ends the range.
func (s *scanner) read(i int, recs []*kgo.Record) (done bool, err error) {
	r := &s.ranges[i]
	for _, rec := range recs {
		if rec.Offset < s.pos[i] {
			continue
		}
		if rec.Offset >= r.To {
			s.pos[i] = r.To
			return true, nil
		}
		if !rec.Attrs.IsControl() {
			if err := s.fn(rec); err != nil {
				return false, err
			}
			r.Records++
		}
		s.pos[i] = rec.Offset + 1
		if s.pos[i] >= r.To {
			return true, nil
		}
	}
	return false, nil
}

// planScan checks that the ranges' partitions exist and bounds each range
// by its partition's log.
func planScan(ctx context.Context, adm *kadm.Client, asked []ScanRange) ([]ScannedRange, error) {
	sel := map[string][]int32{}
	for _, r := range asked {
		sel[r.Topic] = append(sel[r.Topic], r.Partition)
	}
	topics := make([]string, 0, len(sel))
	for t := range sel {
		topics = append(topics, t)
	}
	slices.Sort(topics)
	out := make([]ScannedRange, 0, len(asked))
	if len(topics) == 0 {
		return out, nil
	}
	details, err := adm.ListTopics(ctx, topics...)
	if err != nil {
		return nil, fmt.Errorf("listing topics: %w", err)
	}
	if _, err := resolvePartitions(sel, details); err != nil {
		return nil, err
	}
	starts, err := adm.ListStartOffsets(ctx, topics...)
	if err != nil {
		return nil, fmt.Errorf("listing log start offsets: %w", err)
	}
	ends, err := adm.ListEndOffsets(ctx, topics...)
	if err != nil {
		return nil, fmt.Errorf("listing log end offsets: %w", err)
	}
	var errs []error
	for _, a := range asked {
		k := tpKey{a.Topic, a.Partition}
		s, ok1 := starts.Lookup(a.Topic, a.Partition)
		e, ok2 := ends.Lookup(a.Topic, a.Partition)
		if !ok1 || !ok2 || s.Err != nil || e.Err != nil {
			errs = append(errs, fmt.Errorf("%s: log bounds: %w", k, cmp.Or(s.Err, e.Err, errors.New("not listed"))))
			continue
		}
		r := ScannedRange{ScanRange: a, Asked: a, LogStart: s.Offset, LogEnd: e.Offset}
		if a.To > a.From {
			var warn []string
			if r.To > r.LogEnd {
				warn = append(warn, fmt.Sprintf("the end %d is past the log end %d; stopping at %d", r.To, r.LogEnd, r.LogEnd))
				r.To = r.LogEnd
			}
			if r.From < r.LogStart {
				if r.To <= r.LogStart {
					warn = append(warn, fmt.Sprintf("records [%d, %d) were deleted (the log starts at %d); nothing to read", r.From, r.To, r.LogStart))
				} else {
					warn = append(warn, fmt.Sprintf("records [%d, %d) were deleted (the log starts at %d); reading from %d", r.From, r.LogStart, r.LogStart, r.LogStart))
				}
				r.From = r.LogStart
			}
			r.To = max(r.To, r.From)
			if len(warn) > 0 {
				r.Warning = k.String() + ": " + strings.Join(warn, "; ")
			}
		}
		out = append(out, r)
	}
	if len(errs) > 0 {
		return nil, errors.Join(errs...)
	}
	slices.SortFunc(out, func(a, b ScannedRange) int {
		return cmp.Or(cmp.Compare(a.Topic, b.Topic), cmp.Compare(a.Partition, b.Partition))
	})
	return out, nil
}
