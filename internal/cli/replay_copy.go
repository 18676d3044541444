package cli

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/ordokafka/ordo/pkg/replay"
)

// ReplayCopyCmd is `ordo replay copy`: copy a range of each partition of
// a topic into another topic, records unchanged plus two headers.
type ReplayCopyCmd struct {
	Brokers []string
	From    string
	Into    string
	// Partitions are "0,1,2" or ranges "0-3"; "" is all.
	Partitions string
	// The range's ends; "" is the log's own (start, and end at start).
	FromOffset, ToOffset string
	FromTime, ToTime     string
	// Rate is "N/s", "N/m", "N/h" or a bare N per second; "" no bound.
	Rate  string
	Limit int64
	ID    string
	// Progress is auto (a bar on a terminal, lines otherwise), bar, lines
	// or none.
	Progress       string
	ConnectTimeout time.Duration
	Conn           ConnFlags
	// Out gets the plan and the summary; Err warnings and progress.
	Out, Err io.Writer

	cfg      replay.CopyConfig // built by Validate
	terminal func(io.Writer) bool
}

func newReplayCopyCmd(stdout, stderr io.Writer) *cobra.Command {
	c := &ReplayCopyCmd{Out: stdout, Err: stderr}
	cmd := &cobra.Command{
		Use:   "copy",
		Short: "Copy a range of a topic into another topic, records unchanged",
		Long: `Copy the records of a range of each partition of --from into --into: key, value,
headers and timestamp unchanged, plus the headers ordo-replay-source
(topic/partition/offset) and ordo-replay-id. A range runs from --from-offset or
--from-time (default: the log start) up to, not including, --to-offset or
--to-time (default: the end when the copy starts); a copy never waits for new
records. One producer writes each source partition's records in order, and the
target partition is chosen by the key (murmur2, as Kafka's Java client), so a
key keeps its order and one partition. The copy joins no consumer group and
commits nothing.`,
		Example: `  # a five-minute window of orders into orders.replay
  ordo replay copy --from orders --into orders.replay --from-time 2026-03-01T12:00:00Z --to-time 2026-03-01T12:05:00Z
  ordo replay copy --from orders --into orders.replay --partitions 0,3 --from-offset 1000 --to-offset 2000
  ordo replay copy --from orders.dlq --into orders --rate 50/s --limit 500     # redrive slowly, at most 500`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if err := validated(c.Validate()); err != nil {
				return err
			}
			return c.Run(cmd.Context())
		},
	}
	f := cmd.Flags()
	f.StringSliceVar(&c.Brokers, "brokers", []string{"127.0.0.1:9092"}, "seed brokers")
	f.StringVar(&c.From, "from", "", "source topic (required)")
	f.StringVar(&c.Into, "into", "", "target topic (required; it must exist)")
	f.StringVar(&c.Partitions, "partitions", "", "source partitions, e.g. 0,1,2 or 0-3 (default: all)")
	f.StringVar(&c.FromOffset, "from-offset", "", "first offset copied of each partition (default: the log start)")
	f.StringVar(&c.ToOffset, "to-offset", "", "stop before this offset in each partition (default: the end at start)")
	f.StringVar(&c.FromTime, "from-time", "", "start at the first record at or after this RFC 3339 time")
	f.StringVar(&c.ToTime, "to-time", "", "stop before the first record at or after this RFC 3339 time")
	f.StringVar(&c.Rate, "rate", "", "at most this many records, e.g. 500/s, 100/m (default: no bound)")
	f.Int64Var(&c.Limit, "limit", 0, "copy at most this many records in all (0: no bound)")
	f.StringVar(&c.ID, "id", "", "value of the ordo-replay-id header (default: the time and a random suffix)")
	f.StringVar(&c.Progress, "progress", "auto", "auto (a bar on a terminal, lines otherwise), bar, lines or none")
	f.DurationVar(&c.ConnectTimeout, "connect-timeout", 10*time.Second, "time allowed for a seed broker to answer first")
	addConnFlags(f, &c.Conn, false)
	return cmd
}

// Validate checks every flag before anything connects; every bad one is
// reported at once, named as its flag.
func (c *ReplayCopyCmd) Validate() error {
	errs := checkBrokers(c.Brokers)
	bad := func(flag, format string, args ...any) {
		errs = append(errs, fmt.Errorf("--"+flag+" "+format, args...))
	}
	cfg := replay.CopyConfig{Brokers: c.Brokers, From: c.From, Into: c.Into, Limit: c.Limit, ID: c.ID}
	for _, t := range []struct{ flag, name string }{{"from", c.From}, {"into", c.Into}} {
		switch err := replay.ValidTopic(t.name); {
		case t.name == "":
			bad(t.flag, "is required (the %s topic)", map[string]string{"from": "source", "into": "target"}[t.flag])
		case err != nil:
			bad(t.flag, "%v", err)
		}
	}
	if c.Partitions != "" {
		ps, err := parsePartitions(c.Partitions)
		if err != nil {
			bad("partitions", "%q: %v", c.Partitions, err)
		}
		cfg.Partitions = ps
	}
	offset := func(flag, v string) (replay.Bound, int64, bool) {
		if v == "" {
			return replay.Bound{}, 0, false
		}
		o, err := strconv.ParseInt(v, 10, 64)
		if err != nil || o < 0 {
			bad(flag, "%q: want an offset >= 0", v)
			return replay.Bound{}, 0, false
		}
		return replay.AtOffset(o), o, true
	}
	at := func(flag, v string) (replay.Bound, time.Time, bool) {
		if v == "" {
			return replay.Bound{}, time.Time{}, false
		}
		t, err := parseTime(v)
		if err != nil {
			bad(flag, "%v", err)
			return replay.Bound{}, time.Time{}, false
		}
		return replay.AtTime(t), t, true
	}
	fromO, of, okFO := offset("from-offset", c.FromOffset)
	toO, ot, okTO := offset("to-offset", c.ToOffset)
	fromT, tf, okFT := at("from-time", c.FromTime)
	toT, tt, okTT := at("to-time", c.ToTime)
	if c.FromOffset != "" && c.FromTime != "" {
		errs = append(errs, errors.New("--from-offset and --from-time are exclusive: give one of them"))
	}
	if c.ToOffset != "" && c.ToTime != "" {
		errs = append(errs, errors.New("--to-offset and --to-time are exclusive: give one of them"))
	}
	switch {
	case okFO:
		cfg.Start = fromO
	case okFT:
		cfg.Start = fromT
	}
	switch {
	case okTO:
		cfg.End = toO
	case okTT:
		cfg.End = toT
	}
	if okFO && okTO && ot <= of {
		bad("to-offset", "%s must be after --from-offset %s (the range stops before --to-offset)", c.ToOffset, c.FromOffset)
	}
	if okFT && okTT && !tt.After(tf) {
		bad("to-time", "%s must be after --from-time %s", c.ToTime, c.FromTime)
	}
	if c.Rate != "" {
		r, err := parseRate(c.Rate)
		if err != nil {
			bad("rate", "%v", err)
		}
		cfg.Rate = r
	}
	if c.Limit < 0 {
		bad("limit", "must be >= 0 (0: no bound), got %d", c.Limit)
	}
	if c.ID != "" {
		for _, r := range c.ID {
			if r < 0x21 || r > 0x7e {
				bad("id", "%q: use printable ASCII without spaces", c.ID)
				break
			}
		}
	}
	switch c.Progress {
	case "auto", "bar", "lines", "none":
	default:
		bad("progress", "%q: want auto, bar, lines or none", c.Progress)
	}
	if c.ConnectTimeout <= 0 {
		bad("connect-timeout", "must be > 0, got %s", c.ConnectTimeout)
	}
	errs = append(errs, c.Conn.validate()...)
	cfg.KgoOpts = c.Conn.opts()
	c.cfg = cfg
	return errors.Join(errs...)
}

// Run checks that a seed broker answers, then copies; it prints the
// ranges first, progress while it copies and a summary at the end.
func (c *ReplayCopyCmd) Run(ctx context.Context) error {
	if err := c.Conn.waitForBroker(ctx, c.Brokers, c.ConnectTimeout, "--connect-timeout"); err != nil {
		return err
	}
	cfg := c.cfg
	if cfg.ID == "" {
		cfg.ID = replay.NewID()
	}
	cfg.OnPlan = func(ranges []replay.CopyRange) {
		for _, r := range ranges {
			if r.Warning != "" {
				fmt.Fprintln(c.Err, "ordo replay copy: warning:", r.Warning)
			}
		}
		c.printRanges(cfg, ranges)
	}
	pr := c.progressPrinter()
	if pr != nil {
		cfg.Progress = pr.update
		cfg.ProgressInterval = pr.every
	}
	res, err := replay.Copy(ctx, cfg)
	if res == nil {
		return err
	}
	c.printSummary(cfg, res, err)
	if err != nil {
		var resume []string
		for _, p := range res.Partitions {
			for _, r := range res.Ranges {
				if r.Partition == p.Partition && p.LastOffset+1 < r.To && r.Len() > 0 {
					from := max(p.LastOffset+1, r.From)
					resume = append(resume, fmt.Sprintf("--partitions %d --from-offset %d --to-offset %d", p.Partition, from, r.To))
				}
			}
		}
		if errors.Is(err, context.Canceled) {
			err = errors.New("interrupted")
		}
		if len(resume) > 0 {
			return fmt.Errorf("%w; copied %d records before it; what is left, per partition: %s", err, res.Copied, strings.Join(resume, "; "))
		}
		return err
	}
	return nil
}

func (c *ReplayCopyCmd) printRanges(cfg replay.CopyConfig, ranges []replay.CopyRange) {
	var total int64
	for _, r := range ranges {
		total += r.Len()
	}
	limit := ""
	if cfg.Limit > 0 && cfg.Limit < total {
		limit = fmt.Sprintf(", at most %s by --limit", group3(cfg.Limit))
	}
	rate := ""
	if cfg.Rate > 0 {
		rate = ", --rate " + c.Rate
	}
	fmt.Fprintf(c.Out, "ordo replay copy: %s -> %s, replay id %s: %d partitions, %s offsets%s%s\n\n",
		cfg.From, cfg.Into, cfg.ID, len(ranges), group3(total), limit, rate)
	tw := tabwriter.NewWriter(c.Out, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "PARTITION\tFROM\tTO\tOFFSETS\tLOG-START\tLOG-END")
	for _, r := range ranges {
		fmt.Fprintf(tw, "%d\t%d\t%d\t%d\t%d\t%d\n", r.Partition, r.From, r.To, r.Len(), r.LogStart, r.LogEnd)
	}
	_ = tw.Flush()
	fmt.Fprintln(c.Out)
}

func (c *ReplayCopyCmd) printSummary(cfg replay.CopyConfig, res *replay.CopyResult, err error) {
	verb := "copied"
	switch {
	case err != nil:
		verb = "stopped after copying"
	case res.LimitReached:
		verb = "copied (--limit reached)"
	}
	per := ""
	if s := res.Elapsed.Seconds(); s > 0 && res.Copied > 0 {
		per = fmt.Sprintf(", %s records/s", group3(int64(float64(res.Copied)/s)))
	}
	fmt.Fprintf(c.Out, "ordo replay copy: %s %s records from %s into %s in %s%s; replay id %s\n",
		verb, group3(res.Copied), cfg.From, cfg.Into, res.Elapsed.Round(time.Millisecond), per, res.ID)
	for _, p := range res.Partitions {
		last := "none"
		if p.LastOffset >= 0 {
			last = strconv.FormatInt(p.LastOffset, 10)
		}
		fmt.Fprintf(c.Out, "  %s/%d: %s records, last source offset %s\n", cfg.From, p.Partition, group3(p.Copied), last)
	}
}

// copyProgress draws the progress of a copy on Err: a bar redrawn in place
// on a terminal, or a line per interval. The fraction is of the offsets in
// the ranges, or, under a --limit smaller than them, of the records.
type copyProgress struct {
	w     io.Writer
	bar   bool
	every time.Duration
	drawn bool
}

func (c *ReplayCopyCmd) progressPrinter() *copyProgress {
	mode := c.Progress
	if mode == "auto" {
		isTTY := c.terminal
		if isTTY == nil {
			isTTY = isTerminal
		}
		mode = "lines"
		if isTTY(c.Err) {
			mode = "bar"
		}
	}
	switch mode {
	case "bar":
		return &copyProgress{w: c.Err, bar: true, every: 200 * time.Millisecond}
	case "lines":
		return &copyProgress{w: c.Err, every: time.Second}
	}
	return nil
}

func (p *copyProgress) update(s replay.CopyProgress) {
	pct := 100.0
	if s.TotalOffsets > 0 {
		pct = 100 * float64(s.Offsets) / float64(s.TotalOffsets)
	}
	rate := ""
	if sec := s.Elapsed.Seconds(); sec > 0 {
		rate = fmt.Sprintf("%s records/s", group3(int64(float64(s.Copied)/sec)))
	}
	if !p.bar {
		if s.Done && !p.drawn {
			return // the summary follows; a line for a copy under a second says nothing more
		}
		p.drawn = true
		fmt.Fprintf(p.w, "ordo replay copy: [%s] %s/%s (%.0f%%), %s records copied, %s\n",
			s.Elapsed.Round(time.Second), group3(s.Offsets), group3(s.TotalOffsets), pct, group3(s.Copied), rate)
		return
	}
	const width = 30
	fill := int(pct / 100 * width)
	bar := strings.Repeat("=", fill)
	if fill < width {
		bar += ">" + strings.Repeat(" ", width-fill-1)
	}
	fmt.Fprintf(p.w, "\r[%s] %3.0f%%  %s/%s  %s copied  %s  ", bar, pct, group3(s.Offsets), group3(s.TotalOffsets), group3(s.Copied), rate)
	p.drawn = true
	if s.Done {
		fmt.Fprintln(p.w)
	}
}
