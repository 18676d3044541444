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
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/ordokafka/ordo/pkg/topics"
)

// TopicsApplyCmd is `ordo topics apply`: create the topics declared in a
// directory, each with the retry tiers and dead-letter topic of every group
// that reads it.
type TopicsApplyCmd struct {
	Dir            string
	Brokers        []string
	DryRun         bool
	Timeout        time.Duration
	ConnectTimeout time.Duration
	Conn           ConnFlags
	Out            io.Writer

	set *topics.Set
}

func newTopicsCmd(out io.Writer) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "topics",
		Short: "Declare and create topics (with each group's retry and DLQ chain)",
		Long: `Topics are declared in topics/*.yaml. Each consumer group that reads a topic
gets a chain of its own: retry tiers <topic>.<group>.retry.<n> and a
dead-letter topic <topic>.<group>.dlq (see topics/README.md).`,
		Example: `  ordo topics list
  ordo topics apply --brokers localhost:19092`,
	}
	a := &TopicsApplyCmd{Out: out}
	apply := &cobra.Command{
		Use:   "apply",
		Short: "Create the declared topics and their groups' chains that are missing",
		Example: `  ordo topics apply --brokers localhost:19092            # docker compose's Redpanda
  ordo topics apply --brokers 127.0.0.1:9092 --dry-run  # what would be created
  ordo topics apply --brokers b1:9092,b2:9092 --dir topics --timeout 1m`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if err := validated(a.Validate()); err != nil {
				return err
			}
			return a.Run(cmd.Context())
		},
	}
	f := apply.Flags()
	f.StringVar(&a.Dir, "dir", "topics", "directory of topic declarations")
	f.StringSliceVar(&a.Brokers, "brokers", []string{"127.0.0.1:9092"}, "seed brokers")
	f.BoolVar(&a.DryRun, "dry-run", false, "print what would be created, create nothing")
	f.DurationVar(&a.Timeout, "timeout", 30*time.Second, "time allowed in all, the connect check included")
	f.DurationVar(&a.ConnectTimeout, "connect-timeout", 10*time.Second, "time allowed for a seed broker to answer first (at most --timeout)")
	addConnFlags(f, &a.Conn, false)

	var dir string
	list := &cobra.Command{
		Use:   "list",
		Short: "List the declared topics and each group's chain (retry tiers, DLQ)",
		Example: `  ordo topics list
  ordo topics list --dir path/to/topics`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			set, err := topics.Load(dir)
			if err != nil {
				return usageError{err}
			}
			return printSpecs(out, set.Specs())
		},
	}
	list.Flags().StringVar(&dir, "dir", "topics", "directory of topic declarations")
	cmd.AddCommand(apply, list)
	return cmd
}

// Validate checks every flag and loads the declarations; it connects to
// nothing. Every bad flag is reported at once, named as the flag.
func (a *TopicsApplyCmd) Validate() error {
	var errs []error
	if len(a.Brokers) == 0 {
		errs = append(errs, errors.New("--brokers is required (host:port of a seed broker)"))
	}
	for i, b := range a.Brokers {
		if strings.TrimSpace(b) == "" {
			errs = append(errs, fmt.Errorf("--brokers: entry %d is empty", i+1))
		}
	}
	if a.Timeout <= 0 {
		errs = append(errs, fmt.Errorf("--timeout must be > 0, got %s", a.Timeout))
	}
	if a.ConnectTimeout <= 0 {
		errs = append(errs, fmt.Errorf("--connect-timeout must be > 0, got %s", a.ConnectTimeout))
	}
	set, err := topics.Load(a.Dir)
	if err != nil {
		errs = append(errs, fmt.Errorf("--dir %q: %w", a.Dir, err))
	}
	a.set = set
	errs = append(errs, a.Conn.validate()...)
	return errors.Join(errs...)
}

// Run checks that a seed broker answers (within --connect-timeout), then
// creates the missing topics, all within --timeout.
func (a *TopicsApplyCmd) Run(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(ctx, a.Timeout)
	defer cancel()
	connect, what := a.ConnectTimeout, "--connect-timeout"
	if a.Timeout < connect {
		connect, what = a.Timeout, "--timeout"
	}
	if err := a.Conn.waitForBroker(ctx, a.Brokers, connect, what); err != nil {
		return err
	}
	cl, err := kgo.NewClient(append([]kgo.Opt{kgo.SeedBrokers(a.Brokers...)}, a.Conn.opts()...)...)
	if err != nil {
		return err
	}
	defer cl.Close()
	specs := a.set.Specs()
	res, err := topics.Apply(ctx, kadm.NewClient(cl), specs, a.DryRun)
	if err != nil && errors.Is(err, context.DeadlineExceeded) {
		err = fmt.Errorf("brokers %s did not finish within --timeout %s: %w", strings.Join(a.Brokers, ","), a.Timeout, err)
	}
	tw := tabwriter.NewWriter(a.Out, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "TOPIC\tKIND\tGROUP\tACTION\tERROR")
	for i, r := range res {
		msg := ""
		if r.Err != nil {
			msg = r.Err.Error()
		}
		// Apply reports one result per spec, in order.
		kind, group := specs[i].Kind, orDash(specs[i].Group)
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\n", r.Topic, kind, group, r.Action, msg)
	}
	return errors.Join(err, tw.Flush())
}

func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

// printSpecs prints the declared topics and, under each, every group's
// chain: its retry tiers with their delays and its dead-letter topic.
func printSpecs(out io.Writer, specs []topics.TopicSpec) error {
	tw := tabwriter.NewWriter(out, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "TOPIC\tKIND\tGROUP\tTIER\tDELAY\tPARTITIONS\tREPLICATION\tCONFIGS")
	for _, s := range specs {
		tier, delay := "-", "-"
		if s.Kind == topics.KindRetry {
			tier, delay = strconv.Itoa(s.Tier), s.Delay.String()
		}
		cfgs := make([]string, 0, len(s.Configs))
		for _, k := range slices.Sorted(maps.Keys(s.Configs)) {
			cfgs = append(cfgs, k+"="+s.Configs[k])
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%d\t%d\t%s\n", s.Name, s.Kind, orDash(s.Group), tier, delay,
			s.Partitions, s.ReplicationFactor, orDash(strings.Join(cfgs, ",")))
	}
	return tw.Flush()
}
