package cli

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"maps"
	"slices"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"
	"unicode/utf8"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/ordokafka/ordo/pkg/dlq"
	"github.com/ordokafka/ordo/pkg/ordo"
)

// DLQFlags are the flags every `ordo dlq` command shares: where the
// dead-letter topic is, and which letters to select.
type DLQFlags struct {
	Brokers        []string
	Group          string
	Topic          string
	DLQTopic       string
	Timeout        time.Duration
	ConnectTimeout time.Duration
	Conn           ConnFlags

	Since, Until  string
	ErrorClasses  []string
	Keys          []string
	Partitions    string // of the original record
	Offsets       string // of the original record
	DLQPartitions string
	DLQOffsets    string

	// Now is the clock of relative --since and --until. Default time.Now.
	Now func() time.Time

	dlqTopic string     // set by validate
	filter   dlq.Filter // set by validate
}

// addFlags declares the shared flags on f.
func (d *DLQFlags) addFlags(f *pflag.FlagSet) {
	f.StringSliceVar(&d.Brokers, "brokers", []string{"127.0.0.1:9092"}, "seed brokers")
	f.StringVar(&d.Group, "group", "", "the consumer group whose dead letters these are (with --topic it names the DLQ)")
	f.StringVar(&d.Topic, "topic", "", "the source topic: the DLQ is <topic>.<group>.dlq (with --dlq-topic: keep letters of this original topic)")
	f.StringVar(&d.DLQTopic, "dlq-topic", "", "a dead-letter topic by name (Spring's <topic>-dlt, Karafka's, an old <topic>.dlq)")
	f.DurationVar(&d.Timeout, "timeout", 5*time.Minute, "time allowed in all, the connect check included (0: no limit)")
	f.DurationVar(&d.ConnectTimeout, "connect-timeout", 10*time.Second, "time allowed for a seed broker to answer first")
	f.StringVar(&d.Since, "since", "", "only letters whose ORIGINAL record is this recent or later: RFC 3339, a date (UTC), or a duration ago (2h)")
	f.StringVar(&d.Until, "until", "", "only letters whose ORIGINAL record is older than this (same forms as --since)")
	f.StringSliceVar(&d.ErrorClasses, "error-class", nil, "only these error classes (Ordo: permanent, retryable, panic, timeout; Spring: an exception or cause class)")
	f.StringSliceVar(&d.Keys, "key", nil, "only letters with one of these keys (exact)")
	f.StringVar(&d.Partitions, "partition", "", "only letters whose ORIGINAL partition is in these ranges (e.g. 0,3-5)")
	f.StringVar(&d.Offsets, "offset", "", "only letters whose ORIGINAL offset is in these ranges (e.g. 1000-2000)")
	f.StringVar(&d.DLQPartitions, "dlq-partition", "", "only these partitions of the dead-letter topic itself")
	f.StringVar(&d.DLQOffsets, "dlq-offset", "", "only these offsets of the dead-letter topic itself (e.g. 100-)")
	addConnFlags(f, &d.Conn, false)
}

// validate checks the shared flags and returns every problem, each naming
// its flag. groupRequired says whether the command needs --group even with
// --dlq-topic.
func (d *DLQFlags) validate(groupRequired bool) []error {
	var errs []error
	bad := func(format string, args ...any) { errs = append(errs, fmt.Errorf(format, args...)) }
	if len(d.Brokers) == 0 {
		bad("--brokers is required (host:port of a seed broker)")
	}
	for i, b := range d.Brokers {
		if strings.TrimSpace(b) == "" {
			bad("--brokers: entry %d is empty", i+1)
		}
	}
	if d.Timeout < 0 {
		bad("--timeout must be >= 0 (0: no limit), got %s", d.Timeout)
	}
	if d.ConnectTimeout <= 0 {
		bad("--connect-timeout must be > 0, got %s", d.ConnectTimeout)
	}
	switch {
	case d.DLQTopic != "":
		d.dlqTopic = d.DLQTopic
		if p := ordo.TopicNameProblem(d.DLQTopic); p != "" {
			bad("--dlq-topic %q %s", d.DLQTopic, p)
		}
		if groupRequired && d.Group == "" {
			bad("--group is required: the consumer group the letters are redriven for")
		}
	case d.Topic == "":
		bad("--topic (with --group) or --dlq-topic is required: which dead-letter topic to read")
	case d.Group == "":
		bad("--group is required with --topic: the DLQ of topic %q is <topic>.<group>.dlq, one per consumer group", d.Topic)
	default:
		d.dlqTopic = ordo.DefaultNaming.DLQTopic(d.Topic, d.Group)
		if p := ordo.TopicNameProblem(d.dlqTopic); p != "" {
			bad("--topic %q with --group %q give the DLQ name %q, which %s", d.Topic, d.Group, d.dlqTopic, p)
		}
	}
	now := time.Now
	if d.Now != nil {
		now = d.Now
	}
	f := dlq.Filter{Group: d.Group, ErrorClasses: nonEmpty(d.ErrorClasses), Keys: d.Keys}
	if d.DLQTopic != "" {
		f.OriginalTopic = d.Topic
	}
	var err error
	if f.Since, err = parseWhen(d.Since, now()); err != nil {
		bad("--since %v", err)
	}
	if f.Until, err = parseWhen(d.Until, now()); err != nil {
		bad("--until %v", err)
	}
	if !f.Since.IsZero() && !f.Until.IsZero() && !f.Since.Before(f.Until) {
		bad("--since (%s) must be before --until (%s)", f.Since.Format(time.RFC3339), f.Until.Format(time.RFC3339))
	}
	for _, r := range []struct {
		flag, val string
		out       *dlq.Ranges
	}{
		{"--partition", d.Partitions, &f.Partitions},
		{"--offset", d.Offsets, &f.Offsets},
		{"--dlq-partition", d.DLQPartitions, &f.DLQPartitions},
		{"--dlq-offset", d.DLQOffsets, &f.DLQOffsets},
	} {
		rs, err := dlq.ParseRanges(r.val)
		if err != nil {
			bad("%s %v (want numbers and ranges such as 0,3-5,100-)", r.flag, err)
		}
		*r.out = rs
	}
	d.filter = f
	errs = append(errs, d.Conn.validate()...)
	return errs
}

func nonEmpty(ss []string) []string {
	out := make([]string, 0, len(ss))
	for _, s := range ss {
		if s = strings.TrimSpace(s); s != "" {
			out = append(out, s)
		}
	}
	if len(out) == 0 {
		return nil
	}
	return out
}

// parseWhen reads --since and --until: RFC 3339, a date (midnight UTC), or a
// duration before now.
func parseWhen(s string, now time.Time) (time.Time, error) {
	s = strings.TrimSpace(s)
	if s == "" {
		return time.Time{}, nil
	}
	if d, err := time.ParseDuration(s); err == nil {
		if d < 0 {
			return time.Time{}, fmt.Errorf("%q: a duration means that long ago; it must not be negative", s)
		}
		return now.Add(-d).UTC(), nil
	}
	for _, layout := range []string{time.RFC3339Nano, "2006-01-02T15:04:05", "2006-01-02"} {
		if t, err := time.Parse(layout, s); err == nil {
			return t.UTC(), nil
		}
	}
	return time.Time{}, fmt.Errorf("%q: want RFC 3339 (2026-11-30T06:00:00Z), a date (2026-11-30) or a duration ago (90m)", s)
}

// client waits for a seed broker (within --connect-timeout) and returns a
// dlq.Client and the context of the whole command (within --timeout).
func (d *DLQFlags) client(ctx context.Context) (*dlq.Client, context.Context, context.CancelFunc, error) {
	cancel := context.CancelFunc(func() {})
	if d.Timeout > 0 {
		ctx, cancel = context.WithTimeout(ctx, d.Timeout)
	}
	connect, what := d.ConnectTimeout, "--connect-timeout"
	if d.Timeout > 0 && d.Timeout < connect {
		connect, what = d.Timeout, "--timeout"
	}
	if err := d.Conn.waitForBroker(ctx, d.Brokers, connect, what); err != nil {
		cancel()
		return nil, nil, nil, err
	}
	c, err := dlq.New(dlq.Config{Opts: append([]kgo.Opt{kgo.SeedBrokers(d.Brokers...)}, d.Conn.opts()...)})
	if err != nil {
		cancel()
		return nil, nil, nil, err
	}
	return c, ctx, cancel, nil
}

// explain words errors of a dlq call that the user can act on.
func (d *DLQFlags) explain(err error) error {
	var te *dlq.TopicError
	switch {
	case err == nil:
		return nil
	case errors.As(err, &te) && d.DLQTopic == "":
		return fmt.Errorf("%w: group %q has no dead-letter topic for %q (is the group declared under the topic's groups: in topics/, and applied?)",
			err, d.Group, d.Topic)
	case errors.Is(err, context.DeadlineExceeded) && d.Timeout > 0:
		return fmt.Errorf("brokers %s did not finish within --timeout %s: %w", strings.Join(d.Brokers, ","), d.Timeout, err)
	}
	return err
}

// spanNote says what a call read, and which partitions it stopped short in.
func spanNote(s dlq.Span) string {
	return fmt.Sprintf("read %s up to its end offsets at the start (%s)", s.Topic, spanSize(s))
}

// spanSize says how much a call read, and which partitions it stopped
// short in.
func spanSize(s dlq.Span) string {
	note := fmt.Sprintf("%d offsets in %d partitions", s.Total(), len(s.Partitions))
	var short []string
	for _, p := range s.Partitions {
		if p.Short {
			short = append(short, fmt.Sprintf("%d (at %d of %d)", p.Partition, p.Next, p.End))
		}
	}
	if len(short) > 0 {
		note += "; no record came before the end in partitions " + strings.Join(short, ", ") + " (compacted or transaction markers)"
	}
	return note
}

func newDLQCmd(out, errw io.Writer) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "dlq",
		Short: "List, inspect, count and redrive dead letters (Ordo's, Spring Kafka's, Karafka's)",
		Long: `Each consumer group has its own dead-letter topic, <topic>.<group>.dlq: name it with
--topic and --group, or name any dead-letter topic with --dlq-topic (Spring Kafka's
and Karafka's dead letters are read too). The commands read the topic from its start
to its end offsets at the time of the call, without a consumer group, and never wait
for new records. Payloads (record values) are hidden unless --show-payload.

Time filters (--since, --until) apply to the ORIGINAL record's timestamp, as the
dead letter's headers give it. --partition and --offset are the ORIGINAL record's;
--dlq-partition and --dlq-offset the dead-letter record's own.`,
		Example: `  ordo dlq list --topic orders --group ordo-dev
  ordo dlq stats --topic orders --group ordo-dev --since 24h
  ordo dlq show --topic orders --group ordo-dev 3/17 --show-payload
  ordo dlq redrive --topic orders --group ordo-dev --error-class timeout           # dry run
  ordo dlq redrive --topic orders --group ordo-dev --error-class timeout --execute`,
	}
	cmd.AddCommand(newDLQListCmd(out), newDLQShowCmd(out), newDLQStatsCmd(out), newDLQRedriveCmd(out, errw))
	return cmd
}

// DLQListCmd is `ordo dlq list`: one line per dead letter.
type DLQListCmd struct {
	DLQFlags
	JSON        bool
	ShowPayload bool
	Limit       int
	Out         io.Writer
}

func newDLQListCmd(out io.Writer) *cobra.Command { return newDLQListCommand(&DLQListCmd{Out: out}) }

// newDLQListCommand binds `ordo dlq list` to l.
func newDLQListCommand(l *DLQListCmd) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "list",
		Short: "List dead letters, one per line (or one JSON object per line)",
		Example: `  ordo dlq list --topic orders --group ordo-dev
  ordo dlq list --topic orders --group ordo-dev --error-class permanent --since 2h --limit 0
  ordo dlq list --dlq-topic orders-dlt --group billing --json | jq .meta.error
  ordo dlq list --topic orders --group ordo-dev --key c-17 --show-payload`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if err := validated(l.Validate()); err != nil {
				return err
			}
			return l.Run(cmd.Context())
		},
	}
	l.addFlags(cmd.Flags())
	cmd.Flags().BoolVar(&l.JSON, "json", false, "one JSON object per letter (keys and values as strings, or {\"base64\": ...} when not UTF-8)")
	cmd.Flags().BoolVar(&l.ShowPayload, "show-payload", false, "show record values (hidden by default)")
	cmd.Flags().IntVar(&l.Limit, "limit", 100, "show at most this many letters, lowest DLQ partition and offset first (0: all)")
	return cmd
}

// Validate checks every flag; it connects to nothing.
func (l *DLQListCmd) Validate() error {
	errs := l.validate(false)
	if l.Limit < 0 {
		errs = append(errs, fmt.Errorf("--limit must be >= 0 (0: all), got %d", l.Limit))
	}
	return errors.Join(errs...)
}

// Run lists the letters.
func (l *DLQListCmd) Run(ctx context.Context) error {
	c, ctx, cancel, err := l.client(ctx)
	if err != nil {
		return err
	}
	defer cancel()
	defer c.Close()
	letters, matched, span, err := c.List(ctx, l.dlqTopic, l.filter, l.Limit, l.ShowPayload)
	if err != nil {
		return l.explain(err)
	}
	if l.JSON {
		enc := json.NewEncoder(l.Out)
		for _, lt := range letters {
			if err := enc.Encode(lt); err != nil {
				return err
			}
		}
		return nil
	}
	tw := tabwriter.NewWriter(l.Out, 0, 4, 2, ' ', 0)
	head := "DLQ\tDEAD-LETTERED\tFORMAT\tORIGINAL\tORIGINAL TIME\tGROUP\tCLASS\tATTEMPT\tKEY\tERROR"
	if l.ShowPayload {
		head += "\tVALUE"
	}
	fmt.Fprintln(tw, head)
	for _, lt := range letters {
		m := lt.Meta
		row := []string{
			fmt.Sprintf("%d/%d", lt.Partition, lt.Offset), when(lt.Timestamp), string(m.Format), origin(m.Original),
			when(m.Original.Timestamp), orDash(m.Group), orDash(m.ErrorClass), attempt(m.Attempt), short(lt.Key, 24), orDash(cut(oneLine(m.Error), 60)),
		}
		if l.ShowPayload {
			row = append(row, short(lt.Value, 80))
		}
		fmt.Fprintln(tw, strings.Join(row, "\t"))
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	fmt.Fprintf(l.Out, "%d of %d matching dead letters shown", len(letters), matched)
	if len(letters) < matched {
		fmt.Fprint(l.Out, " (--limit 0 shows all)")
	}
	if !l.ShowPayload {
		fmt.Fprint(l.Out, "; values hidden (--show-payload)")
	}
	fmt.Fprintf(l.Out, "; %s\n", spanNote(span))
	return nil
}

func when(t time.Time) string {
	if t.IsZero() {
		return "-"
	}
	return t.UTC().Format("2006-01-02T15:04:05.000Z")
}

func origin(o dlq.Origin) string {
	if o.Topic == "" {
		return "-"
	}
	p, off := "?", "?"
	if o.Partition >= 0 {
		p = strconv.Itoa(int(o.Partition))
	}
	if o.Offset >= 0 {
		off = strconv.FormatInt(o.Offset, 10)
	}
	return o.Topic + "/" + p + "/" + off
}

func attempt(n int) string {
	if n == 0 {
		return "-"
	}
	return strconv.Itoa(n)
}

// short shows bytes on one line: quoted text, or hex when not UTF-8, cut
// to about n characters.
func short(b []byte, n int) string {
	switch {
	case b == nil:
		return "-"
	case utf8.Valid(b):
		return cut(strconv.Quote(string(b)), n)
	default:
		return cut(fmt.Sprintf("0x%x", b), n) + fmt.Sprintf(" (%d bytes)", len(b))
	}
}

func cut(s string, n int) string {
	if utf8.RuneCountInString(s) <= n {
		return s
	}
	r := []rune(s)
	return string(r[:n]) + "…"
}

func oneLine(s string) string { return strings.Join(strings.Fields(s), " ") }

// DLQShowCmd is `ordo dlq show`: every field and header of dead letters.
type DLQShowCmd struct {
	DLQFlags
	JSON        bool
	ShowPayload bool
	Limit       int
	Out         io.Writer
}

func newDLQShowCmd(out io.Writer) *cobra.Command { return newDLQShowCommand(&DLQShowCmd{Out: out}) }

// newDLQShowCommand binds `ordo dlq show` to s.
func newDLQShowCommand(s *DLQShowCmd) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "show [partition/offset]",
		Short: "Show dead letters in full: metadata, error, headers (values with --show-payload)",
		Long: `Show dead letters in full. The argument partition/offset names one dead letter by its
place in the dead-letter topic (as list prints it); without it, every letter the filters
select is shown, up to --limit.`,
		Example: `  ordo dlq show --topic orders --group ordo-dev 3/17
  ordo dlq show --topic orders --group ordo-dev 3/17 --show-payload
  ordo dlq show --dlq-topic orders-dlt --key c-17 --limit 5`,
		Args: cobra.MaximumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if len(args) == 1 {
				p, o, ok := strings.Cut(args[0], "/")
				if !ok || p == "" || o == "" || s.DLQPartitions != "" || s.DLQOffsets != "" {
					return usageError{fmt.Errorf("argument %q: want partition/offset of the dead-letter topic, e.g. 3/17 (and no --dlq-partition or --dlq-offset)", args[0])}
				}
				s.DLQPartitions, s.DLQOffsets = p, o
			}
			if err := validated(s.Validate()); err != nil {
				return err
			}
			return s.Run(cmd.Context())
		},
	}
	s.addFlags(cmd.Flags())
	cmd.Flags().BoolVar(&s.JSON, "json", false, "one JSON object per letter")
	cmd.Flags().BoolVar(&s.ShowPayload, "show-payload", false, "show record values (hidden by default)")
	cmd.Flags().IntVar(&s.Limit, "limit", 10, "show at most this many letters (0: all)")
	return cmd
}

// Validate checks every flag; it connects to nothing.
func (s *DLQShowCmd) Validate() error {
	errs := s.validate(false)
	if s.Limit < 0 {
		errs = append(errs, fmt.Errorf("--limit must be >= 0 (0: all), got %d", s.Limit))
	}
	return errors.Join(errs...)
}

// Run shows the letters.
func (s *DLQShowCmd) Run(ctx context.Context) error {
	c, ctx, cancel, err := s.client(ctx)
	if err != nil {
		return err
	}
	defer cancel()
	defer c.Close()
	letters, matched, span, err := c.List(ctx, s.dlqTopic, s.filter, s.Limit, s.ShowPayload)
	if err != nil {
		return s.explain(err)
	}
	if s.JSON {
		enc := json.NewEncoder(s.Out)
		for _, lt := range letters {
			if err := enc.Encode(lt); err != nil {
				return err
			}
		}
		return nil
	}
	if matched == 0 {
		fmt.Fprintf(s.Out, "no dead letter matches; %s\n", spanNote(span))
		return nil
	}
	for i, lt := range letters {
		if i > 0 {
			fmt.Fprintln(s.Out)
		}
		showLetter(s.Out, &lt)
	}
	if len(letters) < matched {
		fmt.Fprintf(s.Out, "\n%d of %d matching dead letters shown (--limit 0 shows all)\n", len(letters), matched)
	}
	return nil
}

func showLetter(w io.Writer, l *dlq.Letter) {
	m := l.Meta
	fmt.Fprintf(w, "%s/%d/%d  dead-lettered %s\n", l.Topic, l.Partition, l.Offset, when(l.Timestamp))
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	row := func(k, v string) { fmt.Fprintf(tw, "  %s\t%s\n", k, v) }
	row("format", string(m.Format))
	row("original", origin(m.Original)+"  at "+when(m.Original.Timestamp))
	row("group", orDash(m.Group))
	if m.Processor != "" {
		row("processor", m.Processor)
	}
	row("attempts", attempt(m.Attempt))
	row("error class", orDash(m.ErrorClass))
	if m.Cause != "" {
		row("cause", m.Cause)
	}
	row("error", orDash(m.Error))
	if m.Truncated {
		row("truncated", fmt.Sprintf("yes: the original value had %d bytes; it stays at %s", m.OriginalSize, origin(m.Original)))
	}
	if m.RedriveID != "" {
		row("redriven from", m.RedriveID)
	}
	for _, p := range m.Problems {
		row("unreadable", p)
	}
	row("key", short(l.Key, 1<<20))
	if l.ValueHidden {
		row("value", fmt.Sprintf("(hidden, %d bytes; --show-payload shows it)", l.ValueSize))
	} else {
		row("value", short(l.Value, 1<<20))
	}
	_ = tw.Flush()
	fmt.Fprintln(w, "  headers")
	for _, h := range l.Headers {
		fmt.Fprintf(w, "    %s: %s\n", h.Key, short(h.Value, 1<<20))
	}
}

// DLQStatsCmd is `ordo dlq stats`: counts by error class, by original
// partition, the most frequent errors and the time range.
type DLQStatsCmd struct {
	DLQFlags
	JSON bool
	Out  io.Writer
}

func newDLQStatsCmd(out io.Writer) *cobra.Command { return newDLQStatsCommand(&DLQStatsCmd{Out: out}) }

// newDLQStatsCommand binds `ordo dlq stats` to s.
func newDLQStatsCommand(s *DLQStatsCmd) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "stats",
		Short: "Count dead letters by error class and original partition; top errors; time range",
		Example: `  ordo dlq stats --topic orders --group ordo-dev
  ordo dlq stats --topic orders --group ordo-dev --since 2026-11-30 --json`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if err := validated(s.Validate()); err != nil {
				return err
			}
			return s.Run(cmd.Context())
		},
	}
	s.addFlags(cmd.Flags())
	cmd.Flags().BoolVar(&s.JSON, "json", false, "print the counts as one JSON object")
	return cmd
}

// Validate checks every flag; it connects to nothing.
func (s *DLQStatsCmd) Validate() error { return errors.Join(s.validate(false)...) }

// Run counts.
func (s *DLQStatsCmd) Run(ctx context.Context) error {
	c, ctx, cancel, err := s.client(ctx)
	if err != nil {
		return err
	}
	defer cancel()
	defer c.Close()
	st, span, err := c.Stats(ctx, s.dlqTopic, s.filter)
	if err != nil {
		return s.explain(err)
	}
	if s.JSON {
		return json.NewEncoder(s.Out).Encode(st)
	}
	w := s.Out
	fmt.Fprintf(w, "%s: %d dead letters match\n", st.Topic, st.Total)
	if st.Total == 0 {
		fmt.Fprintln(w, spanNote(span))
		return nil
	}
	fmt.Fprintf(w, "original records   %s .. %s (their own timestamps, from the headers)\n", when(st.OriginalFirst), when(st.OriginalLast))
	fmt.Fprintf(w, "dead-lettered      %s .. %s\n", when(st.DeadLetteredFirst), when(st.DeadLetteredLast))
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "\nBY ERROR CLASS\tLETTERS")
	for _, k := range slices.Sorted(maps.Keys(st.ByErrorClass)) {
		fmt.Fprintf(tw, "%s\t%d\n", orDash(k), st.ByErrorClass[k])
	}
	fmt.Fprintln(tw, "\nBY ORIGINAL PARTITION\tLETTERS")
	for _, p := range slices.Sorted(maps.Keys(st.ByOriginalPartition)) {
		label := strconv.Itoa(int(p))
		if p < 0 {
			label = "unknown"
		}
		fmt.Fprintf(tw, "%s\t%d\n", label, st.ByOriginalPartition[p])
	}
	fmt.Fprintln(tw, "\nBY FORMAT\tLETTERS")
	for _, f := range slices.Sorted(maps.Keys(st.ByFormat)) {
		fmt.Fprintf(tw, "%s\t%d\n", f, st.ByFormat[f])
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	if len(st.TopErrors) > 0 {
		fmt.Fprintln(w, "\nTOP ERRORS")
		for _, c := range st.TopErrors {
			fmt.Fprintf(w, "%8d  %s\n", c.Count, cut(oneLine(c.Text), 120))
		}
	}
	fmt.Fprintf(w, "\n%s\n", spanNote(span))
	return nil
}
