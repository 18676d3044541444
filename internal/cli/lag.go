package cli

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/spf13/cobra"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/ordokafka/ordo/pkg/lag"
)

// LagCmd is `ordo lag`: the lag of consumer groups per partition, from the
// brokers (records, seconds, status), once or every --interval.
type LagCmd struct {
	Brokers       []string
	Groups        []string
	AllGroups     bool
	Topics        []string
	Watch         bool
	Interval      time.Duration
	Window        time.Duration
	ScrapeTimeout time.Duration
	JSON          bool
	Conn          ConnFlags

	Out io.Writer
	// Clock is the collector's clock; nil: the wall clock.
	Clock lag.Clock
	// KgoOpts are more client options (tests).
	KgoOpts []kgo.Opt
}

func newLagCmd(out, errw io.Writer) *cobra.Command {
	l := &LagCmd{Out: out}
	cmd := &cobra.Command{
		Use:   "lag --brokers HOST:PORT --group G [--topic T] [--watch] [--json]",
		Short: "Show consumer-group lag per partition from the brokers: records, seconds and status",
		Long: `Show the lag of consumer groups per partition, read from the brokers (committed
offsets and end offsets), whether or not a member runs: LAG is end offset minus
committed offset, AGE the age of the oldest unconsumed record (the one at the
committed offset), STATUS the partition's status over --window:

  OK     caught up within the window, or moving without falling behind
  WARN   moving, but the lag grew over the window: scale up
  STALL  committed offset stuck with lag while a member owns the partition:
         a poison or held record
  STOP   committed offset stuck with lag and no member consumes it
  -      not watched for a whole window yet (a single run; use --watch)

A partition never committed lags from its log start offset. Every partition of
each topic the group committed to is shown, and of each --topic even before a
first commit. The figures are those of ordo_consumer_lag_records,
ordo_consumer_lag_seconds and ordo_consumer_status (see ordo lag serve).`,
		Example: `  ordo lag --brokers 127.0.0.1:9092 --group ordo-dev                 # once, as a table
  ordo lag --brokers 127.0.0.1:9092 --group ordo-dev --watch         # every 2s, statuses after --window
  ordo lag --brokers 127.0.0.1:9092 --group ordo-dev --topic orders --json
  ordo lag --brokers localhost:19092 --all-groups --watch --interval 5s --window 1m`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if err := validated(l.Validate()); err != nil {
				return err
			}
			return l.Run(cmd.Context())
		},
	}
	f := cmd.Flags()
	f.StringSliceVar(&l.Brokers, "brokers", nil, "seed brokers, host:port (repeat or comma-separate)")
	f.StringSliceVar(&l.Groups, "group", nil, "consumer group (repeat or comma-separate)")
	f.BoolVar(&l.AllGroups, "all-groups", false, "every group the brokers list")
	f.StringSliceVar(&l.Topics, "topic", nil, "only these topics; also shows a named group's partitions before its first commit")
	f.BoolVar(&l.Watch, "watch", false, "print again every --interval until interrupted")
	f.DurationVar(&l.Interval, "interval", 2*time.Second, "time between two scrapes with --watch")
	f.DurationVar(&l.Window, "window", lag.DefaultWindow, "span over which the status is judged")
	f.DurationVar(&l.ScrapeTimeout, "timeout", lag.DefaultScrapeTimeout, "bound of one scrape")
	f.BoolVar(&l.JSON, "json", false, "JSON output (one object per scrape, one per line with --watch)")
	addConnFlags(f, &l.Conn, false)
	cmd.AddCommand(newLagServeCmd(out, errw))
	return cmd
}

// checkGroupFlags checks the flags ordo lag and ordo lag serve share,
// adding each bad one to errs.
func checkGroupFlags(brokers, groups, topics []string, allGroups bool, window, timeout time.Duration, errs *[]error) {
	bad := func(flag, format string, args ...any) {
		*errs = append(*errs, fmt.Errorf("--"+flag+" "+format, args...))
	}
	if len(brokers) == 0 {
		bad("brokers", "is required: the seed brokers, host:port (ordo dev: 127.0.0.1:9092)")
	}
	for i, b := range brokers {
		if err := checkHostPort(b); err != nil {
			bad("brokers", "entry %d %q: %v", i+1, b, err)
		}
	}
	if len(groups) == 0 && !allGroups {
		bad("group", "is required (or --all-groups)")
	}
	for i, g := range groups {
		if strings.TrimSpace(g) == "" {
			bad("group", "entry %d is empty", i+1)
		}
	}
	for i, t := range topics {
		if strings.TrimSpace(t) == "" {
			bad("topic", "entry %d is empty", i+1)
		}
	}
	if window <= 0 {
		bad("window", "must be > 0, got %s", window)
	}
	if timeout <= 0 {
		bad("timeout", "must be > 0, got %s", timeout)
	}
}

// Validate checks every flag, connecting to nothing, and reports every bad
// one at once, each named as its flag.
func (l *LagCmd) Validate() error {
	var errs []error
	checkGroupFlags(l.Brokers, l.Groups, l.Topics, l.AllGroups, l.Window, l.ScrapeTimeout, &errs)
	if l.Interval <= 0 {
		errs = append(errs, fmt.Errorf("--interval must be > 0, got %s", l.Interval))
	} else if l.Watch && l.Interval > l.Window {
		errs = append(errs, fmt.Errorf("--interval %s is longer than --window %s: no status could ever be judged", l.Interval, l.Window))
	}
	errs = append(errs, l.Conn.validate()...)
	return errors.Join(errs...)
}

// Run prints the lag once, or every Interval with Watch until ctx ends. A
// scrape that measured nothing is an error naming the brokers; a partial
// one is printed with its errors on the output.
func (l *LagCmd) Run(ctx context.Context) error {
	if !l.Watch { // once: a broker that cannot be reached, or refuses the credentials, says so in words
		if err := l.Conn.waitForBroker(ctx, l.Brokers, l.ScrapeTimeout, "--timeout", l.KgoOpts...); err != nil {
			return err
		}
	}
	c, err := lag.New(lag.Config{Brokers: l.Brokers, Groups: l.Groups, AllGroups: l.AllGroups, Topics: l.Topics,
		Window: l.Window, ScrapeTimeout: l.ScrapeTimeout, Clock: l.Clock, KgoOpts: append(l.Conn.opts(), l.KgoOpts...)})
	if err != nil {
		return err
	}
	defer c.Close()
	t := time.NewTicker(l.Interval)
	defer t.Stop()
	for {
		sctx, cancel := context.WithTimeout(ctx, l.ScrapeTimeout)
		snap, err := c.Scrape(sctx)
		cancel()
		if ctx.Err() != nil {
			return nil // interrupted
		}
		if err != nil && len(snap.Partitions) == 0 && !l.Watch {
			return err
		}
		if perr := l.print(snap, err); perr != nil {
			return perr
		}
		if !l.Watch {
			return nil
		}
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
		}
	}
}

// print writes one scrape: a table (with the scrape's errors under it), or
// one JSON line.
func (l *LagCmd) print(snap lag.Snapshot, scrapeErr error) error {
	if l.JSON {
		out := struct {
			lag.Snapshot
			Errors []string `json:"errors,omitempty"`
		}{Snapshot: snap}
		if out.Partitions == nil {
			out.Partitions = []lag.Partition{}
		}
		for _, e := range leaves(scrapeErr) {
			if e != nil {
				out.Errors = append(out.Errors, e.Error())
			}
		}
		b, err := json.Marshal(out)
		if err != nil {
			return err
		}
		_, err = fmt.Fprintf(l.Out, "%s\n", b)
		return err
	}
	if l.Watch {
		fmt.Fprintf(l.Out, "\n%s  window %s\n", snap.At.Format(time.TimeOnly), l.Window)
	}
	writeLagTable(l.Out, snap)
	for _, e := range leaves(scrapeErr) {
		if e != nil {
			fmt.Fprintln(l.Out, "error:", e)
		}
	}
	return nil
}

// writeLagTable writes snap as a table, a line per partition and a total
// per group and topic.
func writeLagTable(w io.Writer, snap lag.Snapshot) {
	if len(snap.Partitions) == 0 {
		fmt.Fprintln(w, "no committed offsets for these groups (name the topics with --topic to see a group before its first commit)")
		return
	}
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "GROUP\tTOPIC\tPARTITION\tCOMMITTED\tEND\tLAG\tAGE\tSTATUS\t")
	var total int64
	var oldest float64
	flush := func(p lag.Partition) {
		fmt.Fprintf(tw, "%s\t%s\ttotal\t\t\t%d\t%s\t\t\n", p.Group, p.Topic, total, age(&oldest))
		total, oldest = 0, 0
	}
	for i, p := range snap.Partitions {
		committed := "-"
		if p.Committed >= 0 {
			committed = strconv.FormatInt(p.Committed, 10)
		}
		fmt.Fprintf(tw, "%s\t%s\t%d\t%s\t%d\t%d\t%s\t%s\t\n", p.Group, p.Topic, p.Partition, committed, p.End, p.Lag, age(p.LagSeconds), p.Status)
		total += p.Lag
		if p.LagSeconds != nil {
			oldest = max(oldest, *p.LagSeconds)
		}
		if i+1 == len(snap.Partitions) || snap.Partitions[i+1].Group != p.Group || snap.Partitions[i+1].Topic != p.Topic {
			flush(p)
		}
	}
	_ = tw.Flush()
}

// age formats seconds of lag; "?" when unknown.
func age(s *float64) string {
	if s == nil {
		return "?"
	}
	return strconv.FormatFloat(*s, 'f', 1, 64) + "s"
}

// LagServeCmd is `ordo lag serve`: the lag collector alone, as a
// Prometheus exporter for any groups.
type LagServeCmd struct {
	Brokers       []string
	Groups        []string
	AllGroups     bool
	Topics        []string
	Addr          string
	Window        time.Duration
	ScrapeTimeout time.Duration
	Pprof         bool
	LogLevel      string
	Conn          ConnFlags

	Out io.Writer
	// ready is called with the server's address once it listens (tests).
	ready func(addr string)
}

func newLagServeCmd(out, errw io.Writer) *cobra.Command {
	return newLagServeCommand(&LagServeCmd{Out: out}, errw)
}

// newLagServeCommand binds s to a new `ordo lag serve` command and its
// flags; errw receives the logs.
func newLagServeCommand(s *LagServeCmd, errw io.Writer) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "serve --brokers HOST:PORT --group G... --addr HOST:PORT",
		Short: "Export consumer-group lag to Prometheus, with no member running",
		Long: `Serve the lag collector alone: at each scrape of /metrics it reads the groups'
committed offsets and the end offsets from the brokers and exports
ordo_consumer_lag_records, ordo_consumer_lag_seconds and ordo_consumer_status per
partition, and ordo_lag_scrape_errors_total. It needs no member of the group, so
it reports a group scaled to zero: run one of it (not one per worker) and scale
the workers on its figures (deploy/keda, deploy/hpa; docs/scaling.md).
/healthz answers while the process lives, /readyz when a broker answers.`,
		Example: `  ordo lag serve --brokers 127.0.0.1:9092 --group ordo-dev --addr 127.0.0.1:9308
  ordo lag serve --brokers b1:9092,b2:9092 --group orders-ledger --topic orders --addr :9308
  ordo lag serve --brokers localhost:19092 --all-groups --addr 0.0.0.0:9308 --window 5m`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if err := validated(s.Validate()); err != nil {
				return err
			}
			return s.Run(cmd.Context(), errw)
		},
	}
	f := cmd.Flags()
	f.StringSliceVar(&s.Brokers, "brokers", nil, "seed brokers, host:port (repeat or comma-separate)")
	f.StringSliceVar(&s.Groups, "group", nil, "consumer group (repeat or comma-separate)")
	f.BoolVar(&s.AllGroups, "all-groups", false, "every group the brokers list, at each scrape")
	f.StringSliceVar(&s.Topics, "topic", nil, "only these topics; also exports a named group's partitions before its first commit")
	f.StringVar(&s.Addr, "addr", "127.0.0.1:9308", "address of /metrics, /healthz and /readyz")
	f.DurationVar(&s.Window, "window", lag.DefaultWindow, "span over which the status is judged")
	f.DurationVar(&s.ScrapeTimeout, "timeout", lag.DefaultScrapeTimeout, "bound of one scrape (keep it below Prometheus's scrape_timeout)")
	f.BoolVar(&s.Pprof, "pprof", false, "serve net/http/pprof under /debug/pprof/")
	f.StringVar(&s.LogLevel, "log-level", "warn", "log level: debug, info, warn, error")
	addConnFlags(f, &s.Conn, false)
	return cmd
}

// Validate checks every flag, connecting to nothing and listening on
// nothing, and reports every bad one at once.
func (s *LagServeCmd) Validate() error {
	var errs []error
	checkGroupFlags(s.Brokers, s.Groups, s.Topics, s.AllGroups, s.Window, s.ScrapeTimeout, &errs)
	if err := checkHostPort(s.Addr); err != nil {
		errs = append(errs, fmt.Errorf("--addr %q: %w", s.Addr, err))
	}
	if _, err := parseLevel(s.LogLevel); err != nil {
		errs = append(errs, fmt.Errorf("--log-level %w", err))
	}
	errs = append(errs, s.Conn.validate()...)
	return errors.Join(errs...)
}

// Run serves until ctx ends.
func (s *LagServeCmd) Run(ctx context.Context, errw io.Writer) error {
	level, _ := parseLevel(s.LogLevel)
	log := slog.New(slog.NewTextHandler(errw, &slog.HandlerOptions{Level: level}))
	c, err := lag.New(lag.Config{Brokers: s.Brokers, Groups: s.Groups, AllGroups: s.AllGroups, Topics: s.Topics,
		Window: s.Window, ScrapeTimeout: s.ScrapeTimeout, KgoOpts: s.Conn.opts()})
	if err != nil {
		return err
	}
	defer c.Close()
	reg := prometheus.NewRegistry()
	reg.MustRegister(c)
	ms, err := serveMetrics(s.Addr, reg, log, httpOpts{ready: brokersAnswer(s.Brokers, s.Conn.opts()...), pprof: s.Pprof})
	if err != nil {
		return err
	}
	defer func() {
		sctx, cancel := context.WithTimeout(context.Background(), time.Second)
		defer cancel()
		ms.Close(sctx)
	}()
	what := strings.Join(s.Groups, ",")
	if s.AllGroups {
		what = strings.TrimPrefix(what+",every listed group", ",")
	}
	fmt.Fprintf(s.Out, "ordo lag serve: lag of %s from %s on http://%s/metrics\n", what, strings.Join(s.Brokers, ","), ms.Addr())
	if s.ready != nil {
		s.ready(ms.Addr())
	}
	<-ctx.Done()
	return nil
}

// brokersAnswer is a readiness check: nil when a broker of brokers answers
// a metadata request within 2 s, else an error naming them. Each check
// uses a client of its own, closed after it.
func brokersAnswer(brokers []string, opts ...kgo.Opt) func() error {
	return func() error {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		defer cancel()
		cl, err := kgo.NewClient(append([]kgo.Opt{kgo.SeedBrokers(brokers...)}, opts...)...)
		if err != nil {
			return fmt.Errorf("brokers %s: %w", strings.Join(brokers, ","), err)
		}
		defer cl.Close()
		if err := cl.Ping(ctx); err != nil {
			return fmt.Errorf("no broker of %s answered within 2s: %w", strings.Join(brokers, ","), err)
		}
		return nil
	}
}

// devLag is the lag collector `ordo dev` runs for its own group, on the
// consumer's registry: the group's lag as an autoscaler would see it, next
// to the member's own ordo_member_lag_*.
func devLag(reg prometheus.Registerer, brokers []string, group, topic string) (*lag.Collector, error) {
	c, err := lag.New(lag.Config{Brokers: brokers, Groups: []string{group}, Topics: []string{topic}, Window: devLagWindow})
	if err != nil {
		return nil, err
	}
	if err := reg.Register(c); err != nil {
		c.Close()
		return nil, err
	}
	return c, nil
}

// devLagWindow is ordo dev's status window: short, to see statuses soon.
const devLagWindow = 30 * time.Second
