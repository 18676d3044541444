package cli

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/ordokafka/ordo/pkg/replay"
	"github.com/ordokafka/ordo/pkg/store"
	"github.com/ordokafka/ordo/pkg/store/pgstore"
)

// ReplayResetCmd is `ordo replay reset`: move a stopped group's committed
// offsets with one of the Kafka tool's verbs. A dry run unless Execute.
type ReplayResetCmd struct {
	Brokers []string
	Group   string
	// Topics are "topic" or "topic:0,1,2" (also ranges: "topic:0-3").
	Topics []string

	// The verbs: exactly one is set ("" and false are unset).
	ToOffset   string
	ToTime     string
	ByDuration string
	ShiftBy    string
	ToEarliest bool
	ToLatest   bool
	FromFile   string

	Execute bool
	// Reprocess forgets, before the reset is committed, the dedup keys of
	// the records the group will read again (from each partition's new
	// offset to its log end) in the pipeline's idempotency store, so that
	// they apply again instead of being skipped as duplicates.
	Reprocess bool
	// The store of Reprocess, named as ordo run's keys store, redis_url,
	// postgres_dsn, store_prefix and dedup_header, and ordo store
	// migrate's --inbox.
	Store, RedisURL, PostgresDSN, StorePrefix, Inbox, DedupHeader string

	Export         string
	Timeout        time.Duration
	ConnectTimeout time.Duration
	Conn           ConnFlags
	// Out gets the plan; Err warnings and notes.
	Out, Err io.Writer

	req  replay.ResetRequest // built by Validate
	spec *storeSpec          // checked by Validate with Reprocess
}

func newReplayResetCmd(stdout, stderr io.Writer) *cobra.Command {
	r := &ReplayResetCmd{Out: stdout, Err: stderr}
	cmd := &cobra.Command{
		Use:   "reset",
		Short: "Move a stopped group's committed offsets (dry run unless --execute)",
		Long: `Move the committed offsets of a consumer group that has no running member, with
exactly one of the verbs of kafka-consumer-groups.sh --reset-offsets. Without
--execute it only prints, per partition, the committed offset, the new one and
the lag the group will have. Offsets outside a partition's log are clamped to
its start or end, with a warning. --export writes the plan as the Kafka tool's
CSV (topic,partition,offset), which --from-file reads back.

The reset commits every planned partition with empty commit metadata: an Ordo
offset map left by an earlier commit (records finished above the committed
offset, which the next owner would skip) never survives a reset.

Records the group applied through an idempotency store are skipped as
duplicates when the reset delivers them again. --reprocess makes them apply
again: before the reset is committed (and after checking that the group is
stopped), it reads each partition from NEW-OFFSET to LOG-END and forgets the
dedup key of every record there (its event-id header, or --dedup-header, else
its topic/partition/offset) in the store of --store (redis: --redis-url and
--store-prefix; postgres: --postgres-dsn and --inbox), the pipeline's. A dry
run with --reprocess reads the ranges and counts their records; it forgets
nothing. Passwords are never printed.`,
		Example: `  # rewind group ordo-dev on orders to noon UTC: look first, then do it
  ordo replay reset --group ordo-dev --topic orders --to-time 2026-03-01T12:00:00Z
  ordo replay reset --group ordo-dev --topic orders --to-time 2026-03-01T12:00:00Z --execute
  ordo replay reset --group ordo-dev --topic orders:0,1 --shift-by -100
  ordo replay reset --group ordo-dev --topic orders --by-duration 15m --execute
  ordo replay reset --group ordo-dev --topic orders --shift-by 0 --export before.csv   # save the current offsets
  ordo replay reset --group ordo-dev --from-file before.csv --execute                   # and go back to them
  # apply the rewound records again through redis-ledger (forget their dedup keys first)
  ordo replay reset --group ledger --topic orders --to-earliest --execute --reprocess --store redis --redis-url redis://127.0.0.1:6379/0`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if err := validated(r.Validate()); err != nil {
				return err
			}
			return r.Run(cmd.Context())
		},
	}
	f := cmd.Flags()
	f.StringSliceVar(&r.Brokers, "brokers", []string{"127.0.0.1:9092"}, "seed brokers")
	f.StringVar(&r.Group, "group", "", "consumer group to reset (required; it must have no running member)")
	f.StringArrayVar(&r.Topics, "topic", nil, "topic, or topic:partitions (e.g. orders:0,1,2 or orders:0-3); repeatable; required unless --from-file")
	f.StringVar(&r.ToOffset, "to-offset", "", "move every partition to this offset")
	f.StringVar(&r.ToTime, "to-time", "", "move to the first offset at or after this RFC 3339 time")
	f.StringVar(&r.ByDuration, "by-duration", "", "move to the first offset at or after now minus this duration (90m, 2h, or ISO 8601 PT1H30M)")
	f.StringVar(&r.ShiftBy, "shift-by", "", "move by this many offsets from the committed one (negative: back)")
	f.BoolVar(&r.ToEarliest, "to-earliest", false, "move to the log start")
	f.BoolVar(&r.ToLatest, "to-latest", false, "move to the log end")
	f.StringVar(&r.FromFile, "from-file", "", "move to the offsets of a CSV plan (topic,partition,offset, as --export and the Kafka tool write)")
	f.BoolVar(&r.Execute, "execute", false, "commit the plan (without it: a dry run)")
	f.BoolVar(&r.Reprocess, "reprocess", false, "forget the dedup keys of the records from NEW-OFFSET to LOG-END in --store first, so that they apply again")
	f.StringVar(&r.Store, "store", "", "the pipeline's idempotency store for --reprocess: redis or postgres (as ordo run's key store)")
	f.StringVar(&r.RedisURL, "redis-url", "", "its Redis: redis://[:password@]host:port[/db] (key redis_url); the password is never printed")
	f.StringVar(&r.PostgresDSN, "postgres-dsn", "", "its PostgreSQL: postgres://user[:password]@host:port/db (key postgres_dsn); the password is never printed")
	f.StringVar(&r.StorePrefix, "store-prefix", "", "its Redis key prefix (key store_prefix; default "+defaultStorePrefix+")")
	f.StringVar(&r.Inbox, "inbox", "", "its PostgreSQL inbox table (default "+pgstore.DefaultInbox+", ordo run's)")
	f.StringVar(&r.DedupHeader, "dedup-header", "", "the header whose value is a record's dedup key (key dedup_header; default "+store.DefaultDedupHeader+")")
	f.StringVar(&r.Export, "export", "", "write the plan to this CSV file (topic,partition,offset)")
	f.DurationVar(&r.Timeout, "timeout", 30*time.Second, "time allowed in all, the connect check included")
	f.DurationVar(&r.ConnectTimeout, "connect-timeout", 10*time.Second, "time allowed for a seed broker to answer first (at most --timeout)")
	addConnFlags(f, &r.Conn, false)
	return cmd
}

// Validate checks every flag, and reads --from-file, before anything
// connects; every bad one is reported at once, named as its flag.
func (r *ReplayResetCmd) Validate() error {
	errs := checkBrokers(r.Brokers)
	bad := func(flag, format string, args ...any) {
		errs = append(errs, fmt.Errorf("--"+flag+" "+format, args...))
	}
	req := replay.ResetRequest{Group: r.Group}
	if strings.TrimSpace(r.Group) == "" {
		bad("group", "is required (the consumer group to reset)")
	}
	for _, t := range r.Topics {
		sel, err := parseSelection(t)
		if err != nil {
			bad("topic", "%q: %v", t, err)
			continue
		}
		req.Topics = append(req.Topics, sel)
	}

	var verbs []string
	if r.ToOffset != "" {
		verbs = append(verbs, "--to-offset")
		o, err := strconv.ParseInt(r.ToOffset, 10, 64)
		if err != nil || o < 0 {
			bad("to-offset", "%q: want an offset >= 0", r.ToOffset)
		}
		req.Target = replay.Target{Verb: replay.ToOffset, Offset: o}
	}
	if r.ToTime != "" {
		verbs = append(verbs, "--to-time")
		t, err := parseTime(r.ToTime)
		if err != nil {
			bad("to-time", "%v", err)
		}
		req.Target = replay.Target{Verb: replay.ToTime, Time: t}
	}
	if r.ByDuration != "" {
		verbs = append(verbs, "--by-duration")
		d, err := parseFlexDuration(r.ByDuration)
		switch {
		case err != nil:
			bad("by-duration", "%v", err)
		case d <= 0:
			bad("by-duration", "%q: want a duration > 0 (how far back from now)", r.ByDuration)
		}
		req.Target = replay.Target{Verb: replay.ByDuration, Duration: d}
	}
	if r.ShiftBy != "" {
		verbs = append(verbs, "--shift-by")
		n, err := strconv.ParseInt(r.ShiftBy, 10, 64)
		if err != nil {
			bad("shift-by", "%q: want a whole number of offsets (negative: back)", r.ShiftBy)
		}
		req.Target = replay.Target{Verb: replay.ShiftBy, Shift: n}
	}
	if r.ToEarliest {
		verbs = append(verbs, "--to-earliest")
		req.Target = replay.Target{Verb: replay.ToEarliest}
	}
	if r.ToLatest {
		verbs = append(verbs, "--to-latest")
		req.Target = replay.Target{Verb: replay.ToLatest}
	}
	if r.FromFile != "" {
		verbs = append(verbs, "--from-file")
		rows, err := readPlanFile(r.FromFile)
		if err != nil {
			bad("from-file", "%s: %v", r.FromFile, err)
		}
		for _, row := range rows {
			if row.Group != "" && row.Group != r.Group && strings.TrimSpace(r.Group) != "" {
				bad("from-file", "%s: a row of group %q (%s/%d); this reset is of --group %q", r.FromFile, row.Group, row.Topic, row.Partition, r.Group)
				break
			}
		}
		req.Target = replay.Target{Verb: replay.FromPlan, Plan: rows}
	}
	switch len(verbs) {
	case 0:
		errs = append(errs, errors.New("one of --to-offset, --to-time, --by-duration, --shift-by, --to-earliest, --to-latest or --from-file is required"))
	case 1:
	default:
		errs = append(errs, fmt.Errorf("%s are exclusive: give one of them", strings.Join(verbs, ", ")))
	}
	if len(r.Topics) == 0 && r.FromFile == "" {
		bad("topic", "is required (or --from-file): the topic, or topic:partitions, to reset")
	}
	if r.Export != "" {
		if st, err := os.Stat(r.Export); err == nil && st.IsDir() {
			bad("export", "%s is a directory", r.Export)
		} else if st, err := os.Stat(filepath.Dir(r.Export)); err != nil || !st.IsDir() {
			bad("export", "%s: the directory %s does not exist", r.Export, filepath.Dir(r.Export))
		}
	}
	if r.Timeout <= 0 {
		bad("timeout", "must be > 0, got %s", r.Timeout)
	}
	if r.ConnectTimeout <= 0 {
		bad("connect-timeout", "must be > 0, got %s", r.ConnectTimeout)
	}
	r.req = req
	errs = append(errs, r.validateReprocess()...)
	errs = append(errs, r.Conn.validate()...)
	return errors.Join(errs...)
}

func readPlanFile(path string) ([]replay.PlanRow, error) {
	f, err := os.Open(path) //nolint:gosec // the user names the plan file to read
	if err != nil {
		return nil, err
	}
	defer f.Close()
	return replay.ReadCSV(f)
}

// verbText describes the verb for the plan's heading.
func (r *ReplayResetCmd) verbText() string {
	switch {
	case r.ToOffset != "":
		return "--to-offset " + r.ToOffset
	case r.ToTime != "":
		return "--to-time " + r.ToTime
	case r.ByDuration != "":
		return "--by-duration " + r.ByDuration
	case r.ShiftBy != "":
		return "--shift-by " + r.ShiftBy
	case r.ToEarliest:
		return "--to-earliest"
	case r.ToLatest:
		return "--to-latest"
	}
	return "--from-file " + r.FromFile
}

// Run checks that a seed broker answers, plans the reset, prints it,
// writes --export, and with --execute commits it; all within --timeout.
func (r *ReplayResetCmd) Run(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(ctx, r.Timeout)
	defer cancel()
	connect, what := r.ConnectTimeout, "--connect-timeout"
	if r.Timeout < connect {
		connect, what = r.Timeout, "--timeout"
	}
	if err := r.Conn.waitForBroker(ctx, r.Brokers, connect, what); err != nil {
		return err
	}
	cl, err := kgo.NewClient(append([]kgo.Opt{kgo.SeedBrokers(r.Brokers...)}, r.Conn.opts()...)...)
	if err != nil {
		return err
	}
	defer cl.Close()
	adm := kadm.NewClient(cl)
	plan, err := replay.PlanReset(ctx, adm, r.req)
	if err != nil {
		return r.timedOut(err)
	}
	for _, w := range plan.Warnings() {
		fmt.Fprintln(r.Err, "ordo replay reset: warning:", w)
	}
	mode := "dry run, nothing committed (add --execute to commit)"
	if r.Execute {
		mode = "executing"
	}
	fmt.Fprintf(r.Out, "ordo replay reset: group %s, %s: %s\n\n", r.Group, r.verbText(), mode)
	if err := printResetPlan(r.Out, plan); err != nil {
		return err
	}
	if r.Export != "" {
		if err := writePlanFile(r.Export, plan); err != nil {
			return fmt.Errorf("--export %s: %w", r.Export, err)
		}
		fmt.Fprintf(r.Out, "ordo replay reset: plan written to %s (%d rows: topic,partition,offset)\n", r.Export, len(plan.Partitions))
	}
	if !r.Execute {
		var ae *replay.ActiveGroupError
		if err := replay.CheckInactive(ctx, adm, r.Group); errors.As(err, &ae) {
			fmt.Fprintf(r.Err, "ordo replay reset: note: --execute will refuse now: %v\n", err)
		} else if err != nil {
			return r.timedOut(err)
		}
		if r.Reprocess {
			_, err := r.runReprocess(ctx, plan)
			return err
		}
		return nil
	}
	var forgot *reprocessResult
	if r.Reprocess {
		// Nothing is forgotten while the group runs: ExecuteReset checks
		// again, but only after the store was changed.
		if err := replay.CheckInactive(ctx, adm, r.Group); err != nil {
			return r.timedOut(err)
		}
		if forgot, err = r.runReprocess(ctx, plan); err != nil {
			return err
		}
	}
	if err := replay.ExecuteReset(ctx, adm, plan); err != nil {
		if forgot != nil {
			return errNotRewound(r.timedOut(err), forgot)
		}
		return r.timedOut(err)
	}
	fmt.Fprintf(r.Out, "ordo replay reset: committed %d partitions of group %s (with empty commit metadata)\n", len(plan.Partitions), r.Group)
	return nil
}

func (r *ReplayResetCmd) timedOut(err error) error {
	if errors.Is(err, context.DeadlineExceeded) {
		return fmt.Errorf("brokers %s did not finish within --timeout %s: %w", strings.Join(r.Brokers, ","), r.Timeout, err)
	}
	return err
}

func writePlanFile(path string, plan *replay.ResetPlan) error {
	f, err := os.Create(path) //nolint:gosec // the user names the file to write
	if err != nil {
		return err
	}
	if err := replay.WriteCSV(f, plan.Rows()); err != nil {
		_ = f.Close()
		return err
	}
	return f.Close()
}

// printResetPlan prints one line per partition and a total.
func printResetPlan(w io.Writer, plan *replay.ResetPlan) error {
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "TOPIC\tPARTITION\tCURRENT-OFFSET\tNEW-OFFSET\tMOVE\tLOG-START\tLOG-END\tLAG-NOW\tLAG-AFTER")
	var lagNow, lagAfter int64
	noCommit := 0
	for _, p := range plan.Partitions {
		cur, move, now := "-", "-", "-"
		if p.Current >= 0 {
			cur = strconv.FormatInt(p.Current, 10)
			move = fmt.Sprintf("%+d", p.New-p.Current)
			now = strconv.FormatInt(p.CurrentLag(), 10)
			lagNow += p.CurrentLag()
		} else {
			noCommit++
		}
		lagAfter += p.Lag()
		fmt.Fprintf(tw, "%s\t%d\t%s\t%d\t%s\t%d\t%d\t%s\t%d\n", p.Topic, p.Partition, cur, p.New, move, p.LogStart, p.LogEnd, now, p.Lag())
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	note := ""
	if noCommit > 0 {
		note = fmt.Sprintf(" (%d without a committed offset)", noCommit)
	}
	_, err := fmt.Fprintf(w, "\n%d partitions%s; lag %s -> %s records\n", len(plan.Partitions), note, group3(lagNow), group3(lagAfter))
	return err
}
