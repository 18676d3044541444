package cli

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"maps"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/spf13/cobra"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/ordokafka/ordo/pkg/ordo"
)

// ProduceCmd is `ordo produce`: one record per line of its input, as
// `rpk topic produce` and `kcat -P` do. A line is a value (--format text,
// optionally key<delim>value with --key-delim), or a JSON object (--format
// json, the lines `ordo consume` writes). The first bad line, or the first
// record the brokers refuse, stops the run: what was read before it is
// produced and acknowledged, nothing from it on is.
type ProduceCmd struct {
	Brokers []string
	Topic   string
	// Format is text or json.
	Format string
	// Key is the key of every record (with KeySet; text and json lines
	// without a key).
	Key    string
	KeySet bool
	// KeyDelim splits a text line into key and value at its first
	// occurrence; "" does not.
	KeyDelim string
	// Headers are "name=value", added to every record.
	Headers []string
	// Partition is the partition of every record; -1: the line's, else
	// the key's (murmur2, as Kafka's Java client).
	Partition       int32
	Quiet           bool
	ConnectTimeout  time.Duration
	DeliveryTimeout time.Duration
	Conn            ConnFlags

	// In is read (default: the command's stdin); Out gets a line per
	// record, Err the summary.
	In       io.Reader
	Out, Err io.Writer

	headers []kgo.RecordHeader // parsed by Validate
}

func newProduceCmd(stdout, stderr io.Writer) *cobra.Command {
	return newProduceCommand(&ProduceCmd{Out: stdout, Err: stderr})
}

// newProduceCommand binds p to a new `ordo produce` command and its flags.
func newProduceCommand(p *ProduceCmd) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "produce --brokers HOST:PORT --topic T",
		Short: "Produce one record per line of stdin: values, key<delim>value, or JSON records",
		Long: `Produce one record per line of standard input, for quick checks without kcat.

--format text (default): each line is a record's value (a line ends at \n; a \r
before it is dropped; an empty line is an empty value). With --key-delim D, a
line is key D value, split at the first D; a line without D is an error.

--format json: each line is a JSON object, as ordo consume --format json writes:
  {"key": "c-17", "value": "...", "headers": [{"key": "h", "value": "v"}],
   "partition": 3, "timestamp": "2026-03-01T12:00:00Z"}
"value" is required (null: a tombstone); the others are optional. A key, value
or header value is a string, null, {"base64": "..."} for binary, or any other
JSON value, produced as its text. "headers" may also be an object
{"name": "value", ...}. "timestamp" is RFC 3339 or milliseconds since 1970.
"topic" and "offset" are ignored: --topic says where records go. Blank lines
are skipped.

Without a partition (from the line or --partition) the key chooses it: murmur2,
as Kafka's Java client and ordo's own producers.

Each acknowledged record is printed (line, partition, offset) unless --quiet.
The first bad line stops the run: the lines before it are produced and
acknowledged, nothing from it on is, and the exit code is 1. A record the
brokers refuse stops it too; the records batched with it fail with it, and
the error names the lines that failed. The summary counts what was produced.`,
		Example: `  # one record per line, the line its value; then key:value lines; then a key and headers for all
  echo hello | ordo produce --brokers 127.0.0.1:9092 --topic orders
  printf 'c-1:{"total":12}\nc-2:{"total":7}\n' | ordo produce --brokers 127.0.0.1:9092 --topic orders --key-delim :
  ordo produce --brokers 127.0.0.1:9092 --topic orders -k c-1 -H source=cli -H trace=abc < values.txt
  # JSON records (a value may be any JSON; binary as {"base64": ...})
  echo '{"key":"c-1","value":{"total":12},"headers":{"source":"cli"}}' | ordo produce --brokers 127.0.0.1:9092 --topic orders --format json
  # copy a topic: keys, values, headers, timestamps and partitions kept
  ordo consume --brokers 127.0.0.1:9092 --topic orders -e | ordo produce --brokers 127.0.0.1:9092 --topic orders.copy --format json`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			p.KeySet = cmd.Flags().Changed("key")
			if p.In == nil {
				p.In = cmd.InOrStdin()
			}
			if err := validated(p.Validate()); err != nil {
				return err
			}
			return p.Run(cmd.Context())
		},
	}
	f := cmd.Flags()
	f.StringSliceVar(&p.Brokers, "brokers", []string{"127.0.0.1:9092"}, "seed brokers, host:port (repeat or comma-separate)")
	f.StringVar(&p.Topic, "topic", "", "topic to produce to (required; it must exist)")
	f.StringVarP(&p.Format, "format", "f", "text", "text (a line is a value) or json (a line is a record object)")
	f.StringVarP(&p.Key, "key", "k", "", "key of every record (a json line's own key wins)")
	f.StringVar(&p.KeyDelim, "key-delim", "", "text lines are key<delim>value, split at the first delim")
	f.StringArrayVarP(&p.Headers, "header", "H", nil, "header name=value added to every record (repeatable)")
	f.Int32Var(&p.Partition, "partition", -1, "partition of every record (-1: the line's, else the key's)")
	f.BoolVarP(&p.Quiet, "quiet", "q", false, "print only the summary, not a line per record")
	f.DurationVar(&p.ConnectTimeout, "connect-timeout", 10*time.Second, "time allowed for a seed broker to answer first")
	f.DurationVar(&p.DeliveryTimeout, "delivery-timeout", 30*time.Second, "time allowed for each record to be acknowledged")
	addConnFlags(f, &p.Conn, false)
	return cmd
}

// Validate checks every flag before anything connects or reads; every bad
// one is reported at once, named as its flag.
func (p *ProduceCmd) Validate() error {
	errs := checkBrokers(p.Brokers)
	bad := func(flag, format string, args ...any) {
		errs = append(errs, fmt.Errorf("--"+flag+" "+format, args...))
	}
	switch prob := ordo.TopicNameProblem(p.Topic); {
	case p.Topic == "":
		bad("topic", "is required (the topic to produce to)")
	case prob != "":
		bad("topic", "%q %s", p.Topic, prob)
	}
	switch p.Format {
	case "text":
	case "json":
		if p.KeyDelim != "" {
			bad("key-delim", "is for --format text (a json line has its own key)")
		}
	default:
		bad("format", "%q: want text or json", p.Format)
	}
	if p.KeyDelim != "" && p.KeySet {
		bad("key-delim", "and --key take the key two ways: give one")
	}
	p.headers = nil
	for _, h := range p.Headers {
		name, value, ok := strings.Cut(h, "=")
		if !ok || name == "" {
			bad("header", "%q: want name=value", h)
			continue
		}
		p.headers = append(p.headers, kgo.RecordHeader{Key: name, Value: []byte(value)})
	}
	if p.Partition < -1 {
		bad("partition", "must be >= 0 (or -1: the line's, else the key's), got %d", p.Partition)
	}
	if p.ConnectTimeout <= 0 {
		bad("connect-timeout", "must be > 0, got %s", p.ConnectTimeout)
	}
	if p.DeliveryTimeout <= 0 {
		bad("delivery-timeout", "must be > 0, got %s", p.DeliveryTimeout)
	}
	errs = append(errs, p.Conn.validate()...)
	return errors.Join(errs...)
}

// inputLine is a line of the input, numbered from 1.
type inputLine struct {
	n   int
	b   []byte
	err error
}

// readLines sends the lines of r on lines until EOF, an error (sent) or
// stop, then closes lines.
func readLines(r io.Reader, lines chan<- inputLine, stop <-chan struct{}) {
	defer close(lines)
	br := bufio.NewReader(r)
	for n := 1; ; n++ {
		b, err := br.ReadBytes('\n')
		if len(b) > 0 {
			b = bytes.TrimSuffix(bytes.TrimSuffix(b, []byte("\n")), []byte("\r"))
			select {
			case lines <- inputLine{n: n, b: b}:
			case <-stop:
				return
			}
		}
		if err != nil {
			if err != io.EOF {
				select {
				case lines <- inputLine{n: n, err: err}:
				case <-stop:
				}
			}
			return
		}
	}
}

// produceTally counts what the promises report.
type produceTally struct {
	mu       sync.Mutex
	ok       int
	failed   int
	firstErr error // of the lowest line that failed
	errLine  int   // the lowest line that failed
	lastFail int   // the highest
	parts    map[int32]bool
}

// Run produces the lines of In until EOF, the first bad line or refused
// record, or ctx's end; then it waits for every record given to the
// client to be acknowledged or failed (within --delivery-timeout) and
// reports. A read of In blocked on a terminal or a pipe cannot be
// interrupted: on ctx's end Run returns without its reader, which ends at
// the input's next line or end (the process exits first).
func (p *ProduceCmd) Run(ctx context.Context) error {
	if err := p.Conn.waitForBroker(ctx, p.Brokers, p.ConnectTimeout, "--connect-timeout"); err != nil {
		return err
	}
	opts := append(p.Conn.opts(),
		kgo.SeedBrokers(p.Brokers...),
		kgo.DefaultProduceTopic(p.Topic),
		kgo.RecordPartitioner(linePartitioner{kgo.StickyKeyPartitioner(nil)}),
	)
	cl, err := kgo.NewClient(opts...)
	if err != nil {
		return err
	}
	defer cl.Close()
	partitions, err := topicPartitions(ctx, kadm.NewClient(cl), p.Topic, p.ConnectTimeout)
	if err != nil {
		return err
	}
	if p.Partition >= partitions {
		return fmt.Errorf("--partition %d: topic %s has %d partitions (0-%d)", p.Partition, p.Topic, partitions, partitions-1)
	}

	lines := make(chan inputLine)
	stop := make(chan struct{})
	var reader sync.WaitGroup
	reader.Go(func() { readLines(p.In, lines, stop) })
	readerDone := false
	defer func() {
		close(stop)
		if readerDone {
			reader.Wait()
		}
	}()

	tally := &produceTally{parts: map[int32]bool{}}
	var outMu sync.Mutex
	// Records keep being produced after ctx ends: the ones read are
	// delivered, each within --delivery-timeout. (franz-go's
	// RecordDeliveryTimeout counts from the record's timestamp, which a
	// json line may set in the past: a context per record bounds it
	// instead.)
	pctx := context.WithoutCancel(ctx)
	read, lastLine := 0, 0
	interrupted := false
	var stopErr error
loop:
	for {
		var l inputLine
		var ok bool
		select {
		case <-ctx.Done():
			interrupted = true
			break loop
		case l, ok = <-lines:
		}
		if !ok {
			readerDone = true
			break
		}
		if l.err != nil {
			stopErr = fmt.Errorf("reading line %d: %w", l.n, l.err)
			break
		}
		if tally.failedYet() {
			break // a record was refused: stop reading, report below
		}
		if p.Format == "json" && len(bytes.TrimSpace(l.b)) == 0 {
			continue
		}
		rec, err := p.record(l.b, partitions)
		if err != nil {
			stopErr = fmt.Errorf("line %d: %w", l.n, err)
			break
		}
		n := l.n
		read++
		lastLine = n
		rctx, cancel := context.WithTimeout(pctx, p.DeliveryTimeout)
		cl.Produce(rctx, rec, func(r *kgo.Record, err error) {
			cancel()
			if errors.Is(err, context.DeadlineExceeded) {
				err = fmt.Errorf("not acknowledged within --delivery-timeout %s: %w", p.DeliveryTimeout, err)
			}
			tally.done(n, r, err)
			if err == nil && !p.Quiet {
				outMu.Lock()
				fmt.Fprintf(p.Out, "line %d: %s/%d offset %d\n", n, r.Topic, r.Partition, r.Offset)
				outMu.Unlock()
			}
		})
	}
	if err := cl.Flush(pctx); err != nil {
		return err
	}
	return p.report(tally, read, lastLine, interrupted, stopErr)
}

// record builds the record of one line.
func (p *ProduceCmd) record(line []byte, partitions int32) (*kgo.Record, error) {
	r := &kgo.Record{Partition: -1}
	if p.KeySet {
		r.Key = []byte(p.Key)
	}
	switch {
	case p.Format == "json":
		lr, err := parseRecordJSON(line)
		if err != nil {
			return nil, err
		}
		if lr.hasKey {
			r.Key = lr.key
		}
		r.Value, r.Headers, r.Timestamp, r.Partition = lr.value, lr.headers, lr.timestamp, lr.partition
	case p.KeyDelim != "":
		k, v, ok := bytes.Cut(line, []byte(p.KeyDelim))
		if !ok {
			return nil, fmt.Errorf("no --key-delim %q in the line (each line is key%svalue)", p.KeyDelim, p.KeyDelim)
		}
		r.Key, r.Value = bytes.Clone(k), bytes.Clone(v)
	default:
		r.Value = bytes.Clone(line)
	}
	r.Headers = append(r.Headers, p.headers...)
	if p.Partition >= 0 {
		r.Partition = p.Partition
	}
	if r.Partition >= partitions {
		return nil, fmt.Errorf("partition %d: topic %s has %d partitions (0-%d)", r.Partition, p.Topic, partitions, partitions-1)
	}
	return r, nil
}

func (t *produceTally) failedYet() bool {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.failed > 0
}

func (t *produceTally) done(line int, r *kgo.Record, err error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if err != nil {
		t.failed++
		if t.firstErr == nil || line < t.errLine {
			t.firstErr, t.errLine = err, line
		}
		t.lastFail = max(t.lastFail, line)
		return
	}
	t.ok++
	t.parts[r.Partition] = true
}

// report writes the summary and returns the run's error: the first
// refused record, else why reading stopped early.
func (p *ProduceCmd) report(t *produceTally, read, lastLine int, interrupted bool, stopErr error) error {
	t.mu.Lock()
	defer t.mu.Unlock()
	fmt.Fprintf(p.Err, "ordo produce: %d of %d records produced to %s", t.ok, read, p.Topic)
	if len(t.parts) > 0 {
		fmt.Fprintf(p.Err, " (partitions %s)", partitionList(t.parts))
	}
	if interrupted {
		fmt.Fprintf(p.Err, "; interrupted after line %d, the rest of the input not read", lastLine)
	}
	fmt.Fprintln(p.Err)
	switch {
	case t.firstErr != nil && t.failed == 1:
		return fmt.Errorf("line %d: the record failed: %w; the %d other records read were produced, and no line after line %d",
			t.errLine, t.firstErr, t.ok, lastLine)
	case t.firstErr != nil:
		// The brokers refuse a batch, and a failed record fails those
		// buffered behind it in its partition: the lines are a span.
		return fmt.Errorf("%d records failed, of lines %d to %d (a record and those sent or buffered with it), the first with: %w; %d were produced, and no line after line %d",
			t.failed, t.errLine, t.lastFail, t.firstErr, t.ok, lastLine)
	case stopErr != nil && read == 0:
		return fmt.Errorf("%w: nothing was produced", stopErr)
	case stopErr != nil:
		return fmt.Errorf("%w: nothing from it on was produced; the %d records before it were", stopErr, t.ok)
	}
	return nil
}

// partitionList writes partitions as 0,1,3.
func partitionList(ps map[int32]bool) string {
	var out []string
	for _, p := range slices.Sorted(maps.Keys(ps)) {
		out = append(out, strconv.Itoa(int(p)))
	}
	return strings.Join(out, ",")
}

// topicPartitions returns the number of partitions of topic, or an error
// saying it does not exist.
func topicPartitions(ctx context.Context, adm *kadm.Client, topic string, timeout time.Duration) (int32, error) {
	lctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	td, err := adm.ListTopics(lctx, topic)
	if err != nil {
		return 0, fmt.Errorf("listing topic %s: %w", topic, err)
	}
	d, ok := td[topic]
	if !ok || d.Err != nil || len(d.Partitions) == 0 {
		return 0, fmt.Errorf("topic %s does not exist: create it first (ordo topics apply for the declared topics); ordo produce does not create topics", topic)
	}
	return int32(len(d.Partitions)), nil
}

// linePartitioner sends a record to its Partition when it is >= 0 (the
// line's or --partition), else where the wrapped partitioner (the key's)
// says.
type linePartitioner struct{ kgo.Partitioner }

func (p linePartitioner) ForTopic(t string) kgo.TopicPartitioner {
	return lineTopicPartitioner{p.Partitioner.ForTopic(t)}
}

type lineTopicPartitioner struct{ kgo.TopicPartitioner }

func (p lineTopicPartitioner) RequiresConsistency(r *kgo.Record) bool {
	return r.Partition >= 0 || p.TopicPartitioner.RequiresConsistency(r)
}

func (p lineTopicPartitioner) Partition(r *kgo.Record, n int) int {
	if r.Partition >= 0 {
		return int(r.Partition)
	}
	return p.TopicPartitioner.Partition(r, n)
}

// OnNewBatch lets the wrapped partitioner move on, as franz-go's sticky
// partitioners do for records without a key.
func (p lineTopicPartitioner) OnNewBatch() {
	if nb, ok := p.TopicPartitioner.(kgo.TopicPartitionerOnNewBatch); ok {
		nb.OnNewBatch()
	}
}
