package cli

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strconv"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/ordokafka/ordo/pkg/dlq"
)

// DLQRedriveCmd is `ordo dlq redrive`: produce dead letters again, for one
// consumer group, once.
type DLQRedriveCmd struct {
	DLQFlags
	Execute     bool
	ToSource    bool
	AlsoReaches []string
	Rate        string
	Limit       int
	JSON        bool
	Out         io.Writer
	// Err receives the progress: a bar when it is a terminal, a line a
	// second otherwise.
	Err io.Writer

	rate float64 // set by Validate
}

func newDLQRedriveCmd(out, errw io.Writer) *cobra.Command {
	return newDLQRedriveCommand(&DLQRedriveCmd{Out: out, Err: errw})
}

// newDLQRedriveCommand binds `ordo dlq redrive` to r.
func newDLQRedriveCommand(r *DLQRedriveCmd) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "redrive",
		Short: "Produce dead letters again for their group, once (a dry run unless --execute)",
		Long: `Produce the selected dead letters again, for the consumer group --group. Without
--execute this is a dry run: it says what would be redriven, where, and to whom, and
produces nothing.

By default each letter goes to the group's own first retry tier of its original topic
(<topic>.<group>.retry.1), due at once, so only that group runs it again. With
--to-source it goes back to the original topic and partition, where EVERY group that
reads the topic sees it again: the dry run lists those groups, and --execute then
requires them named exactly with --also-reaches.

Key, value and headers are kept byte for byte; each record gets ordo-redrive-id
(<dlq topic>/<partition>/<offset>); into a retry tier also ordo-not-before (now),
ordo-attempt 0 and ordo-tier 1. Redriven letters are recorded in the consumer group
ordo-redrive.<group>: running the same redrive again applies nothing twice.`,
		Example: `  ordo dlq redrive --topic orders --group ordo-dev                          # dry run
  ordo dlq redrive --topic orders --group ordo-dev --error-class timeout --execute --rate 50/s
  ordo dlq redrive --topic orders --group ordo-dev --limit 10 --execute
  ordo dlq redrive --topic orders --group billing --to-source                # who else will see them
  ordo dlq redrive --topic orders --group billing --to-source --also-reaches audit,search --execute
  ordo dlq redrive --dlq-topic orders-dlt --group billing --execute            # a Spring Kafka DLT`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if err := validated(r.Validate()); err != nil {
				return err
			}
			return r.Run(cmd.Context())
		},
	}
	r.addFlags(cmd.Flags())
	f := cmd.Flags()
	f.BoolVar(&r.Execute, "execute", false, "produce (without it: a dry run)")
	f.BoolVar(&r.ToSource, "to-source", false, "redrive into the original topic, which every group reading it sees (default: the group's first retry tier)")
	f.StringSliceVar(&r.AlsoReaches, "also-reaches", nil, "with --to-source --execute: the other groups that read the topic, exactly as the dry run lists them")
	f.StringVar(&r.Rate, "rate", "", "at most N records per second (N or N/s; default: no limit)")
	f.IntVar(&r.Limit, "limit", 0, "redrive at most N letters, the oldest dead letters first (0: all)")
	f.BoolVar(&r.JSON, "json", false, "print the report as JSON")
	return cmd
}

// Validate checks every flag; it connects to nothing.
func (r *DLQRedriveCmd) Validate() error {
	errs := r.validate(true)
	r.rate = 0
	if s := strings.TrimSpace(r.Rate); s != "" {
		n, err := strconv.ParseFloat(strings.TrimSuffix(s, "/s"), 64)
		if err != nil || n <= 0 || n > 1e7 {
			errs = append(errs, fmt.Errorf("--rate %q: want records per second, N or N/s, greater than 0", r.Rate))
		} else {
			r.rate = n
		}
	}
	if r.Limit < 0 {
		errs = append(errs, fmt.Errorf("--limit must be >= 0 (0: all), got %d", r.Limit))
	}
	if len(r.AlsoReaches) > 0 && !r.ToSource {
		errs = append(errs, errors.New("--also-reaches names the groups a --to-source redrive reaches; it needs --to-source"))
	}
	for i, g := range r.AlsoReaches {
		if strings.TrimSpace(g) == "" {
			errs = append(errs, fmt.Errorf("--also-reaches: entry %d is empty", i+1))
		}
	}
	return errors.Join(errs...)
}

// Run redrives, or with Execute unset, plans and reports.
func (r *DLQRedriveCmd) Run(ctx context.Context) error {
	c, ctx, cancel, err := r.client(ctx)
	if err != nil {
		return err
	}
	defer cancel()
	defer c.Close()
	bar := newRedriveBar(r.Err, isTerminal(r.Err))
	rep, err := c.Redrive(ctx, dlq.RedriveOptions{
		DLQTopic:    r.dlqTopic,
		Group:       r.Group,
		Filter:      r.filter,
		ToSource:    r.ToSource,
		AlsoReaches: trimAll(r.AlsoReaches),
		Execute:     r.Execute,
		Rate:        r.rate,
		Limit:       r.Limit,
		Progress:    bar.update,
	})
	bar.done()
	var (
		nt *dlq.NoTierError
		re *dlq.ReachError
	)
	switch {
	case errors.As(err, &nt):
		return usageError{fmt.Errorf("%w; to redrive into the source topic use --to-source (every group that reads it sees the records again), "+
			"or declare the group's retry tiers in topics/ (groups: [{name: %s, retry: {delays: [...]}}]) and run ordo topics apply", err, r.Group)}
	case errors.As(err, &re):
		if len(re.Reaches) == 0 {
			return usageError{fmt.Errorf("%w: drop --also-reaches", err)}
		}
		return usageError{fmt.Errorf("--to-source reaches groups %s besides %q, which will see the records again: "+
			"name them with --also-reaches %s (given: %s)", strings.Join(re.Reaches, ","), r.Group, strings.Join(re.Reaches, ","), orNoneCLI(re.Acknowledged))}
	}
	if err != nil && rep.Read == 0 {
		return r.explain(err) // nothing happened to report
	}
	if r.JSON {
		if jerr := json.NewEncoder(r.Out).Encode(rep); jerr != nil {
			return errors.Join(err, jerr)
		}
		return r.explain(err)
	}
	r.report(&rep)
	return r.explain(err)
}

func orNoneCLI(s []string) string {
	if len(s) == 0 {
		return "none"
	}
	return strings.Join(s, ",")
}

func trimAll(ss []string) []string {
	out := make([]string, 0, len(ss))
	for _, s := range ss {
		out = append(out, strings.TrimSpace(s))
	}
	return out
}

// report prints what the redrive did or would do.
func (r *DLQRedriveCmd) report(rep *dlq.RedriveReport) {
	w := r.Out
	if rep.Execute {
		fmt.Fprintf(w, "ordo dlq redrive: redrove %d of %d selected dead letters from %s\n", rep.Redriven, rep.Selected, rep.DLQTopic)
	} else {
		fmt.Fprintf(w, "ordo dlq redrive: DRY RUN, nothing produced (--execute redrives): %d dead letters of %s would be redriven\n",
			rep.Selected, rep.DLQTopic)
	}
	fmt.Fprintf(w, "  read       %d dead letters after the cursor %s, up to the end offsets at the start (%s)\n",
		rep.Read, rep.CursorGroup, spanSize(rep.Span))
	var skipped []string
	for _, s := range []struct {
		n    int
		what string
	}{
		{rep.AlreadyRedriven, "already redriven"},
		{rep.OtherGroups, fmt.Sprintf("of other groups (never %s's to redrive)", rep.Group)},
		{rep.Unroutable, "whose headers give no original topic"},
		{rep.Read - rep.AlreadyRedriven - rep.OtherGroups - rep.Unroutable - rep.Matched, "not matching the filters"},
		{rep.Matched - rep.Selected, "left by --limit"},
	} {
		if s.n > 0 {
			skipped = append(skipped, fmt.Sprintf("%d %s", s.n, s.what))
		}
	}
	if len(skipped) > 0 {
		fmt.Fprintf(w, "  skipped    %s\n", strings.Join(skipped, ", "))
	}
	for _, t := range rep.Targets {
		what := "the group's first retry tier, due at once"
		if rep.ToSource {
			what = "the source topic, original partitions"
		}
		fmt.Fprintf(w, "  to         %s: %d (%s)\n", t.Text, t.Count, what)
	}
	if rep.ToSource && len(rep.Targets) > 0 {
		if len(rep.Reaches) == 0 {
			fmt.Fprintf(w, "  reaches    no group besides %s reads the source topic\n", rep.Group)
		} else {
			fmt.Fprintf(w, "  reaches    %s: these groups read the source topic and will see the records again\n", strings.Join(rep.Reaches, ", "))
			if !rep.Execute {
				fmt.Fprintf(w, "             to execute: --execute --also-reaches %s\n", strings.Join(rep.Reaches, ","))
			}
		}
	}
	if len(rep.CursorFull) > 0 {
		fmt.Fprintf(w, "  stopped    in partitions %v: the cursor cannot record more scattered letters; "+
			"redrive the letters earlier filtered runs left (e.g. without filters) to compact it\n", rep.CursorFull)
	}
	if len(rep.Sample) > 0 {
		fmt.Fprintln(w, "  first letters:")
		for _, l := range rep.Sample {
			fmt.Fprintf(w, "    %d/%d  %s  %s  %s\n", l.Partition, l.Offset, origin(l.Meta.Original), orDash(l.Meta.ErrorClass), cut(oneLine(l.Meta.Error), 60))
		}
	}
}

// redriveBar renders a redrive's progress: a bar redrawn in place on a
// terminal, a plain line a second otherwise.
type redriveBar struct {
	w     io.Writer
	tty   bool
	last  time.Time
	shown bool
	p     dlq.Progress
}

func newRedriveBar(w io.Writer, tty bool) *redriveBar {
	return &redriveBar{w: w, tty: tty, last: time.Now()}
}

func (b *redriveBar) update(p dlq.Progress) {
	b.p = p
	every := time.Second
	if b.tty {
		every = 100 * time.Millisecond
	}
	if now := time.Now(); now.Sub(b.last) >= every {
		b.last = now
		b.draw()
	}
}

func (b *redriveBar) draw() {
	if b.w == nil || b.p.Total == 0 {
		return
	}
	p := b.p
	line := fmt.Sprintf("%s: %d/%d offsets read, %d redriven", p.Phase, p.Read, p.Total, p.Redriven)
	if b.tty {
		const width = 30
		filled := int(int64(width) * p.Read / p.Total)
		fmt.Fprintf(b.w, "\r[%s%s] %3d%% %s", strings.Repeat("#", filled), strings.Repeat(".", width-filled), 100*p.Read/p.Total, line)
	} else {
		fmt.Fprintln(b.w, line)
	}
	b.shown = true
}

// done draws the final state and ends the bar's line.
func (b *redriveBar) done() {
	b.draw()
	if b.tty && b.shown {
		fmt.Fprintln(b.w)
	}
}
