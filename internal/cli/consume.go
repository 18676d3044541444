package cli

import (
	"context"
	"errors"
	"fmt"
	"io"
	"maps"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/spf13/cobra"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/ordokafka/ordo/pkg/ordo"
)

// ConsumeCmd is `ordo consume`: print the records of topics, as `rpk topic
// consume` and `kcat -C` do. Without --group it reads without a consumer
// group and commits nothing; with --group it reads as a member of that
// group and commits the records it printed.
type ConsumeCmd struct {
	Brokers []string
	Topics  []string
	Group   string
	// Offset is where each partition starts (without --group; with it,
	// only partitions the group never committed): start (or earliest),
	// end (or latest), N (that offset), +N (N after the start), -N (N
	// before the end), an RFC 3339 time, or a duration ago (15m).
	Offset string
	// Num stops after this many records (0: no bound).
	Num int
	// ExitAtEnd stops once every partition is read up to its end offset
	// at the start.
	ExitAtEnd bool
	// Partitions are "0,1,2" or ranges "0-3" (no --group); "" is all.
	Partitions     string
	Format         string // json or text
	ConnectTimeout time.Duration
	Conn           ConnFlags

	// Out gets the records, Err notes and the summary.
	Out, Err io.Writer
	// Now is the clock of a --offset given as a duration. Default
	// time.Now.
	Now func() time.Time

	start startAt // parsed by Validate
	parts []int32
}

// startKind is the kind of a --offset.
type startKind int

const (
	atStart     startKind = iota // start, earliest; +N: n after it
	atEnd                        // end, latest; -N: n before it
	atExact                      // N
	atTimestamp                  // a time, or a duration ago
)

// startAt is a parsed --offset.
type startAt struct {
	kind startKind
	n    int64
	t    time.Time
}

// parseOffset reads a --offset.
func parseOffset(s string, now time.Time) (startAt, error) {
	s = strings.TrimSpace(s)
	switch s {
	case "start", "earliest", "beginning", "oldest":
		return startAt{kind: atStart}, nil
	case "end", "latest", "newest":
		return startAt{kind: atEnd}, nil
	}
	if rest, ok := strings.CutPrefix(s, "+"); ok {
		if n, err := strconv.ParseInt(rest, 10, 64); err == nil && n >= 0 {
			return startAt{kind: atStart, n: n}, nil
		}
	}
	if rest, ok := strings.CutPrefix(s, "-"); ok {
		if n, err := strconv.ParseInt(rest, 10, 64); err == nil && n >= 0 {
			return startAt{kind: atEnd, n: n}, nil
		}
	}
	if n, err := strconv.ParseInt(s, 10, 64); err == nil && n >= 0 {
		return startAt{kind: atExact, n: n}, nil
	}
	if t, err := time.Parse(time.RFC3339Nano, s); err == nil {
		return startAt{kind: atTimestamp, t: t}, nil
	}
	if d, err := time.ParseDuration(s); err == nil && d > 0 {
		return startAt{kind: atTimestamp, t: now.Add(-d)}, nil
	}
	return startAt{}, fmt.Errorf("%q: want start, end, an offset N, +N (after the start), -N (before the end), an RFC 3339 time or a duration ago (15m)", s)
}

// kgoOffset is the offset as franz-go takes it (for a group's partitions
// with no commit).
func (s startAt) kgoOffset() kgo.Offset {
	switch s.kind {
	case atEnd:
		return kgo.NewOffset().AtEnd().Relative(-s.n)
	case atExact:
		return kgo.NewOffset().At(s.n)
	case atTimestamp:
		return kgo.NewOffset().AfterMilli(s.t.UnixMilli())
	}
	return kgo.NewOffset().AtStart().Relative(s.n)
}

// offsetKeywords complete --offset in the shell.
var offsetKeywords = []string{"start", "end"}

func newConsumeCmd(stdout, stderr io.Writer) *cobra.Command {
	return newConsumeCommand(&ConsumeCmd{Out: stdout, Err: stderr})
}

// newConsumeCommand binds c to a new `ordo consume` command and its flags.
func newConsumeCommand(c *ConsumeCmd) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "consume --brokers HOST:PORT --topic T [--group G] [-o OFFSET] [-n N] [-e]",
		Short: "Print records of topics: JSON lines (what ordo produce --format json reads) or text",
		Long: `Print the records of one or more topics, for quick checks without kcat.

Without --group, the partitions are read directly and nothing is committed.
With --group, ordo consume joins that consumer group (it becomes one of its
members: run it beside a live group only if you mean to take partitions from
it) and commits the records it printed.

--offset says where each partition starts (with --group: only partitions the
group never committed): start (or earliest), end (or latest), N (the offset N),
+N (N records after the start), -N (N records before the end), an RFC 3339 time
(the first record at or after it) or a duration ago (15m). An offset outside a
partition's log is moved to its start or end, with a note.

It runs until interrupted, or until --num records (-n), or with --exit-at-end
(-e) until every partition is read up to the end offset it had at the start.

--format json (default) prints one JSON object per record:
  {"topic":"orders","partition":3,"offset":17,"timestamp":"2026-03-01T12:00:00.123Z",
   "key":"c-17","value":"{\"total\":12}","headers":[{"key":"source","value":"web"}]}
A key, value or header is a JSON string when it is valid UTF-8, {"base64":"..."}
when it is not, null when absent (a null key; a tombstone). ordo produce
--format json reads these lines back. --format text prints one line per record:
  orders/3/17 2026-03-01T12:00:00.123Z key "c-17" value "{\"total\":12}" "source"="web"
with text quoted and binary as 0x... hex.`,
		Example: `  ordo consume --brokers 127.0.0.1:9092 --topic orders -e                   # everything there, then exit
  ordo consume --brokers 127.0.0.1:9092 --topic orders -o -5 -e             # the last 5 of each partition
  ordo consume --brokers 127.0.0.1:9092 --topic orders -o end               # new records, until Ctrl-C
  ordo consume --brokers 127.0.0.1:9092 --topic orders -o 2026-03-01T12:00:00Z -n 10 --format text
  ordo consume --brokers 127.0.0.1:9092 --topic orders --partitions 0,3 -o 1000 -n 1
  ordo consume --brokers 127.0.0.1:9092 --topic orders --group audit -e    # as group audit, committing
  ordo consume --brokers 127.0.0.1:9092 --topic orders -e | jq -r .value`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if err := validated(c.Validate()); err != nil {
				return err
			}
			return c.Run(cmd.Context())
		},
	}
	f := cmd.Flags()
	f.StringSliceVar(&c.Brokers, "brokers", []string{"127.0.0.1:9092"}, "seed brokers, host:port (repeat or comma-separate)")
	f.StringSliceVar(&c.Topics, "topic", nil, "topic to read (required; repeat or comma-separate)")
	f.StringVar(&c.Group, "group", "", "read as a member of this consumer group, committing what is printed (default: no group, no commit)")
	f.StringVarP(&c.Offset, "offset", "o", "start", "where each partition starts: start, end, N, +N, -N, an RFC 3339 time or a duration ago")
	f.IntVarP(&c.Num, "num", "n", 0, "stop after this many records (0: no bound)")
	f.BoolVarP(&c.ExitAtEnd, "exit-at-end", "e", false, "stop once every partition is read up to its end offset at the start")
	f.StringVar(&c.Partitions, "partitions", "", "only these partitions, e.g. 0,1,2 or 0-3 (not with --group)")
	f.StringVarP(&c.Format, "format", "f", "json", "json (one object per record) or text (one line per record)")
	f.DurationVar(&c.ConnectTimeout, "connect-timeout", 10*time.Second, "time allowed for a seed broker to answer first")
	addConnFlags(f, &c.Conn, false)
	return cmd
}

// Validate checks every flag before anything connects; every bad one is
// reported at once, named as its flag.
func (c *ConsumeCmd) Validate() error {
	errs := checkBrokers(c.Brokers)
	bad := func(flag, format string, args ...any) {
		errs = append(errs, fmt.Errorf("--"+flag+" "+format, args...))
	}
	if len(c.Topics) == 0 {
		bad("topic", "is required (the topic to read; repeat it for more)")
	}
	for i, t := range c.Topics {
		if p := ordo.TopicNameProblem(t); p != "" {
			bad("topic", "entry %d %q %s", i+1, t, p)
		} else if slices.Contains(c.Topics[:i], t) {
			bad("topic", "entry %d repeats %q", i+1, t)
		}
	}
	if c.Group != "" && strings.TrimSpace(c.Group) == "" {
		bad("group", "is blank")
	}
	now := time.Now
	if c.Now != nil {
		now = c.Now
	}
	var err error
	if c.start, err = parseOffset(c.Offset, now()); err != nil {
		bad("offset", "%v", err)
	}
	if c.Num < 0 {
		bad("num", "must be >= 0 (0: no bound), got %d", c.Num)
	}
	c.parts = nil
	if c.Partitions != "" {
		if c.parts, err = parsePartitions(c.Partitions); err != nil {
			bad("partitions", "%q: %v", c.Partitions, err)
		}
		if c.Group != "" {
			bad("partitions", "chooses partitions, and --group %q has its members assigned theirs: give one of them", c.Group)
		}
	}
	switch c.Format {
	case "json", "text":
	default:
		bad("format", "%q: want json or text", c.Format)
	}
	if c.ConnectTimeout <= 0 {
		bad("connect-timeout", "must be > 0, got %s", c.ConnectTimeout)
	}
	errs = append(errs, c.Conn.validate()...)
	return errors.Join(errs...)
}

// tp is a topic partition.
type tp struct {
	topic     string
	partition int32
}

// span is where a partition's read starts and the end offset it had when
// the command started.
type span struct{ start, end int64 }

// Run reads until ctx ends, --num records were printed, or with
// --exit-at-end every partition reached its end offset at the start. With
// --group, it commits the records it printed before it leaves.
func (c *ConsumeCmd) Run(ctx context.Context) error {
	if err := c.Conn.waitForBroker(ctx, c.Brokers, c.ConnectTimeout, "--connect-timeout"); err != nil {
		return err
	}
	admCl, err := kgo.NewClient(append(c.Conn.opts(), kgo.SeedBrokers(c.Brokers...))...)
	if err != nil {
		return err
	}
	spans, err := c.plan(ctx, kadm.NewClient(admCl))
	admCl.Close()
	if err != nil {
		return err
	}

	opts := append(c.Conn.opts(), kgo.SeedBrokers(c.Brokers...),
		// Transaction markers take offsets: seeing them lets a partition
		// reach its end offset (they are not printed).
		kgo.KeepControlRecords())
	if c.Group != "" {
		opts = append(opts, kgo.ConsumerGroup(c.Group), kgo.ConsumeTopics(c.Topics...),
			kgo.ConsumeResetOffset(c.start.kgoOffset()), kgo.AutoCommitMarks())
	} else {
		at := map[string]map[int32]kgo.Offset{}
		for p, s := range spans {
			if at[p.topic] == nil {
				at[p.topic] = map[int32]kgo.Offset{}
			}
			at[p.topic][p.partition] = kgo.NewOffset().At(s.start)
		}
		opts = append(opts, kgo.ConsumePartitions(at))
	}
	cl, err := kgo.NewClient(opts...)
	if err != nil {
		return err
	}
	defer cl.Close()
	n, why, err := c.read(ctx, cl, spans)
	if c.Group != "" {
		// Commit what was printed, whatever stopped the read, then leave.
		cctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), c.ConnectTimeout)
		cerr := cl.CommitMarkedOffsets(cctx)
		cancel()
		if cerr != nil {
			err = errors.Join(err, fmt.Errorf("committing the printed records for group %s: %w", c.Group, cerr))
		}
	}
	fmt.Fprintf(c.Err, "ordo consume: %d records from %s (%s)", n, strings.Join(c.Topics, ","), why)
	if c.Group != "" {
		fmt.Fprintf(c.Err, "; committed for group %s", c.Group)
	}
	fmt.Fprintln(c.Err)
	return err
}

// plan lists the partitions to read and, for each, where the read starts
// and the end offset it has now. Topics that do not exist and partitions
// they do not have are errors; a start outside the log is moved into it,
// with a note.
func (c *ConsumeCmd) plan(ctx context.Context, adm *kadm.Client) (map[tp]span, error) {
	lctx, cancel := context.WithTimeout(ctx, c.ConnectTimeout)
	defer cancel()
	starts, err := adm.ListStartOffsets(lctx, c.Topics...)
	if err != nil {
		return nil, fmt.Errorf("listing the start offsets of %s: %w", strings.Join(c.Topics, ","), err)
	}
	ends, err := adm.ListEndOffsets(lctx, c.Topics...)
	if err != nil {
		return nil, fmt.Errorf("listing the end offsets of %s: %w", strings.Join(c.Topics, ","), err)
	}
	var missing []string
	for _, t := range c.Topics {
		if ps, ok := starts[t]; !ok || len(ps) == 0 || ps[-1].Err != nil {
			missing = append(missing, t)
		}
	}
	if len(missing) > 0 {
		return nil, fmt.Errorf("topic %s does not exist (ordo topics list shows the declared ones)", strings.Join(missing, ", "))
	}
	var at kadm.ListedOffsets
	if c.start.kind == atTimestamp {
		if at, err = adm.ListOffsetsAfterMilli(lctx, c.start.t.UnixMilli(), c.Topics...); err != nil {
			return nil, fmt.Errorf("listing the offsets of %s at %s: %w", strings.Join(c.Topics, ","), c.start.t.Format(time.RFC3339), err)
		}
	}
	var committed kadm.OffsetResponses
	if c.Group != "" {
		// A group that never committed: no offsets (some brokers say so
		// with GROUP_ID_NOT_FOUND).
		if committed, err = adm.FetchOffsets(lctx, c.Group); err != nil && !errors.Is(err, kerr.GroupIDNotFound) {
			return nil, fmt.Errorf("fetching the committed offsets of group %s: %w", c.Group, err)
		}
	}
	spans := map[tp]span{}
	for _, t := range c.Topics {
		ps := slices.Sorted(maps.Keys(starts[t]))
		for _, want := range c.parts {
			if _, ok := starts[t][want]; !ok {
				return nil, fmt.Errorf("--partitions %s: topic %s has no partition %d (it has %d: 0-%d)", c.Partitions, t, want, len(ps), len(ps)-1)
			}
		}
		for _, p := range ps {
			if c.parts != nil && !slices.Contains(c.parts, p) {
				continue
			}
			s, e := starts[t][p], ends[t][p]
			if s.Err != nil || e.Err != nil {
				return nil, fmt.Errorf("offsets of %s/%d: %w", t, p, errors.Join(s.Err, e.Err))
			}
			sp := span{end: e.Offset}
			if o, ok := committed.Lookup(t, p); ok && o.Err == nil && o.At >= 0 {
				sp.start = o.At
				spans[tp{t, p}] = sp
				continue
			}
			switch c.start.kind {
			case atStart:
				sp.start = s.Offset + c.start.n
			case atEnd:
				sp.start = e.Offset - c.start.n
			case atExact:
				sp.start = c.start.n
			case atTimestamp:
				sp.start = e.Offset
				if o, ok := at.Lookup(t, p); ok && o.Err == nil && o.Offset >= 0 {
					sp.start = o.Offset
				}
			}
			switch {
			case sp.start < s.Offset:
				if c.start.kind == atExact {
					fmt.Fprintf(c.Err, "ordo consume: note: %s/%d starts at %d (its log start): offset %d is gone\n", t, p, s.Offset, sp.start)
				}
				sp.start = s.Offset
			case sp.start > e.Offset:
				if c.start.kind == atExact {
					fmt.Fprintf(c.Err, "ordo consume: note: %s/%d starts at %d (its end): offset %d is past it\n", t, p, e.Offset, sp.start)
				}
				sp.start = e.Offset
			}
			spans[tp{t, p}] = sp
		}
	}
	return spans, nil
}

// read prints records until ctx ends, Num records, or with ExitAtEnd every
// span's end; it returns how many it printed and why it stopped.
func (c *ConsumeCmd) read(ctx context.Context, cl *kgo.Client, spans map[tp]span) (int, string, error) {
	left := 0 // partitions not at their end
	next := make(map[tp]int64, len(spans))
	for p, s := range spans {
		next[p] = s.start
		if s.start < s.end {
			left++
		}
	}
	n := 0
	var buf []byte
	for {
		switch {
		case c.Num > 0 && n >= c.Num:
			return n, fmt.Sprintf("--num %d reached", c.Num), nil
		case c.ExitAtEnd && left == 0:
			return n, "every partition read to its end offset at the start", nil
		}
		limit := 0
		if c.Num > 0 {
			limit = c.Num - n
		}
		fetches := cl.PollRecords(ctx, limit)
		if ctx.Err() != nil {
			return n, "interrupted", nil
		}
		var ferr error
		fetches.EachError(func(t string, p int32, err error) {
			if ferr == nil && !errors.Is(err, context.Canceled) {
				ferr = fmt.Errorf("fetching %s/%d: %w", t, p, err)
			}
		})
		if ferr != nil {
			return n, "failed", ferr
		}
		for it := fetches.RecordIter(); !it.Done(); {
			r := it.Next()
			key := tp{r.Topic, r.Partition}
			if s, ok := spans[key]; ok && next[key] < s.end && r.Offset+1 >= s.end {
				left--
			}
			if r.Offset >= next[key] {
				next[key] = r.Offset + 1
			}
			if r.Attrs.IsControl() {
				if c.Group != "" {
					cl.MarkCommitRecords(r)
				}
				continue
			}
			if c.Num > 0 && n >= c.Num {
				continue
			}
			buf = c.format(buf[:0], r)
			if _, err := c.Out.Write(buf); err != nil {
				return n, "output failed", err
			}
			n++
			if c.Group != "" {
				cl.MarkCommitRecords(r)
			}
		}
	}
}

// format appends r as --format says.
func (c *ConsumeCmd) format(dst []byte, r *kgo.Record) []byte {
	if c.Format == "json" {
		return appendRecordJSON(dst, r)
	}
	dst = fmt.Appendf(dst, "%s/%d/%d %s key %s value %s", r.Topic, r.Partition, r.Offset,
		r.Timestamp.UTC().Format(recordTimeLayout), textBytes(r.Key), textBytes(r.Value))
	for _, h := range r.Headers {
		dst = fmt.Appendf(dst, " %s=%s", strconv.Quote(h.Key), textBytes(h.Value))
	}
	return append(dst, '\n')
}

// textBytes shows bytes on one line: quoted text, 0x... hex when not
// UTF-8, null when nil.
func textBytes(b []byte) string {
	switch {
	case b == nil:
		return "null"
	case utf8.Valid(b):
		return strconv.Quote(string(b))
	}
	return fmt.Sprintf("0x%x", b)
}
