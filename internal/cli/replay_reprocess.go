package cli

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"strconv"
	"strings"
	"text/tabwriter"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/ordokafka/ordo/pkg/replay"
	"github.com/ordokafka/ordo/pkg/store"
	"github.com/ordokafka/ordo/pkg/store/pgstore"
)

// `ordo replay reset --reprocess`: before the reset is committed, forget
// the dedup keys of the records the group will read again, so that they
// apply again instead of being skipped as duplicates. See docs/replay.md,
// "Replays and deduplication".
//
// The range of each partition is [NEW-OFFSET, LOG-END) of the plan: every
// record the group reads after the reset, up to the end when the plan was
// made. Not [NEW-OFFSET, CURRENT-OFFSET): an Ordo member commits the
// lowest unfinished offset, and the records it finished above it (listed
// in its offset map, which the reset clears, or applied just before a
// crash) are delivered again too; their keys must go as well.

// forgetBatch is how many keys are handed to the store's Forget at once.
const forgetBatch = 1000

// reprocessFlags are the store flags of replay reset, named as ordo run's
// keys (store, redis_url, postgres_dsn, store_prefix, dedup_header) and
// ordo store migrate's --inbox.
var reprocessFlags = []string{"store", "redis-url", "postgres-dsn", "store-prefix", "inbox", "dedup-header"}

// storeFlagsSet names the store flags given.
func (r *ReplayResetCmd) storeFlagsSet() []string {
	var set []string
	for i, v := range []string{r.Store, r.RedisURL, r.PostgresDSN, r.StorePrefix, r.Inbox, r.DedupHeader} {
		if v != "" {
			set = append(set, "--"+reprocessFlags[i])
		}
	}
	return set
}

// validateReprocess checks --reprocess and the store flags, connecting to
// nothing; it sets r.spec. Its errors never contain a password.
func (r *ReplayResetCmd) validateReprocess() []error {
	var errs []error
	bad := func(flag, format string, args ...any) {
		errs = append(errs, fmt.Errorf("--"+flag+" "+format, args...))
	}
	r.spec = nil
	set := r.storeFlagsSet()
	if !r.Reprocess {
		if len(set) > 0 {
			errs = append(errs, fmt.Errorf("%s only serve --reprocess (the store whose dedup keys it forgets); without it a reset touches no store", strings.Join(set, ", ")))
		}
		return errs
	}
	kind := strings.ToLower(strings.TrimSpace(r.Store))
	switch kind {
	case "":
		bad("reprocess", "needs --store redis or --store postgres (with --redis-url or --postgres-dsn): the idempotency store of the group's pipeline, whose dedup keys it forgets")
		return errs
	case storeMemory:
		bad("store", "memory cannot be used with --reprocess: a memory store lives inside the process that runs the pipeline (ordo dev, or ordo run with store memory) and is emptied when that process stops, so there is nothing to forget from here: a restarted pipeline applies every record again anyway")
		return errs
	case storeRedis, storePostgres:
	default:
		bad("store", "%q: want redis or postgres", r.Store)
		return errs
	}
	flagOf := map[string]string{"store": "store", "redis_url": "redis-url", "postgres_dsn": "postgres-dsn"}
	fc := &FileConfig{Store: kind, RedisURL: r.RedisURL, PostgresDSN: r.PostgresDSN, StorePrefix: r.StorePrefix, DedupHeader: r.DedupHeader}
	sp := fc.checkStore(func(key, format string, args ...any) {
		errs = append(errs, fmt.Errorf("--"+flagOf[key]+" "+format, args...))
	})
	if kind == storeRedis {
		if r.PostgresDSN != "" {
			bad("postgres-dsn", "has no use with --store redis")
		}
		if r.Inbox != "" {
			bad("inbox", "is a PostgreSQL table: it has no use with --store redis (the Redis namespace is --store-prefix)")
		}
	}
	if kind == storePostgres {
		if r.RedisURL != "" {
			bad("redis-url", "has no use with --store postgres")
		}
		if r.StorePrefix != "" {
			bad("store-prefix", "is a Redis key prefix: it has no use with --store postgres (the PostgreSQL namespace is --inbox)")
		}
		sp.inbox = r.Inbox
		if r.Inbox != "" {
			if err := pgstore.CheckTableName(r.Inbox); err != nil {
				bad("inbox", "%v", err)
			}
		}
	}
	if len(errs) == 0 {
		r.spec = sp
	}
	return errs
}

// namespace describes where the keys live: the Redis prefix or the inbox.
func (r *ReplayResetCmd) namespace() string {
	if r.spec.kind == storeRedis {
		return fmt.Sprintf("store redis at %s, keys %sdedup:*", r.spec.redacted, r.spec.prefix)
	}
	inbox := r.spec.inbox
	if inbox == "" {
		inbox = pgstore.DefaultInbox
	}
	return fmt.Sprintf("store postgres at %s, inbox %s", r.spec.redacted, inbox)
}

// reprocessRanges are the ranges whose keys --reprocess forgets: from
// each partition's new offset to its log end in the plan.
func reprocessRanges(plan *replay.ResetPlan) []replay.ScanRange {
	out := make([]replay.ScanRange, 0, len(plan.Partitions))
	for _, p := range plan.Partitions {
		out = append(out, replay.ScanRange{Topic: p.Topic, Partition: p.Partition, From: p.New, To: p.LogEnd})
	}
	return out
}

// reprocessResult is what --reprocess read and forgot, per partition.
type reprocessResult struct {
	ranges    []replay.ScannedRange
	forgotten []int64 // per range; nil in a dry run
	records   int64
	total     int64 // keys forgotten in all
}

// reprocess reads the ranges and, unless dryRun, forgets the key of every
// record in them, in batches, as it reads. It returns what it did, also
// on an error.
func (r *ReplayResetCmd) reprocess(ctx context.Context, plan *replay.ResetPlan, f store.Forgetter, dryRun bool) (*reprocessResult, error) {
	res := &reprocessResult{}
	asked := reprocessRanges(plan)
	index := map[string]int{}
	for i, a := range asked {
		index[a.Topic+"/"+strconv.FormatInt(int64(a.Partition), 10)] = i
	}
	forgotten := make([]int64, len(asked))
	pending := make([][]string, len(asked))
	flush := func(i int) error {
		if len(pending[i]) == 0 {
			return nil
		}
		n, err := f.Forget(ctx, pending[i])
		forgotten[i] += n
		res.total += n
		pending[i] = pending[i][:0]
		return r.spec.scrubError(err)
	}
	keys := r.spec.keys
	ranges, err := replay.Scan(ctx, replay.ScanConfig{Brokers: r.Brokers, KgoOpts: r.kgoOpts(), Ranges: asked}, func(rec *kgo.Record) error {
		res.records++
		if dryRun {
			return nil
		}
		// Outside a processor call, Keys gives the key a call gave the
		// record: its event id, else its own coordinates (a source
		// topic's record is its own origin).
		i := index[rec.Topic+"/"+strconv.FormatInt(int64(rec.Partition), 10)]
		pending[i] = append(pending[i], keys.Key(ctx, rec))
		if len(pending[i]) >= forgetBatch {
			return flush(i)
		}
		return nil
	})
	if err == nil && !dryRun {
		for i := range pending {
			if err = flush(i); err != nil {
				break
			}
		}
	}
	res.ranges = ranges
	if !dryRun {
		res.forgotten = forgotten
	}
	return res, err
}

// kgoOpts are the options of the scan's clients after the seed brokers:
// the connection flags (TLS, SASL), as the command's admin client has.
func (r *ReplayResetCmd) kgoOpts() []kgo.Opt { return r.Conn.opts() }

// printReprocess prints what --reprocess read and forgot per partition.
func printReprocess(w io.Writer, res *reprocessResult) error {
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "TOPIC\tPARTITION\tFROM\tTO\tRECORDS\tFORGOTTEN")
	for i, rg := range res.ranges {
		forgot := "-"
		if res.forgotten != nil {
			forgot = strconv.FormatInt(res.forgotten[i], 10)
		}
		fmt.Fprintf(tw, "%s\t%d\t%d\t%d\t%d\t%s\n", rg.Topic, rg.Partition, rg.From, rg.To, rg.Records, forgot)
	}
	return tw.Flush()
}

// runReprocess is --reprocess's part of Run, after the plan was printed:
// in a dry run it reads the ranges and counts their records, and checks
// that the store answers; with --execute it checks that the group is
// inactive, forgets the keys, and returns what it forgot for the commit
// that follows.
func (r *ReplayResetCmd) runReprocess(ctx context.Context, plan *replay.ResetPlan) (*reprocessResult, error) {
	fmt.Fprintf(r.Out, "\nordo replay reset: --reprocess: the dedup keys of the records from NEW-OFFSET to LOG-END (%s)\n\n", r.namespace())
	var f store.Forgetter
	if r.Execute {
		be, err := openBackends(ctx, r.spec, false, r.ConnectTimeout, slog.New(slog.DiscardHandler))
		if err != nil {
			return nil, fmt.Errorf("%w; nothing was forgotten and the reset was not committed", err)
		}
		defer be.Close()
		if be.redis != nil {
			f = be.redis
		} else {
			f = be.pg
		}
	}
	res, err := r.reprocess(ctx, plan, f, !r.Execute)
	if res.ranges != nil {
		for _, rg := range res.ranges {
			if rg.Warning != "" {
				fmt.Fprintln(r.Err, "ordo replay reset: warning:", rg.Warning)
			}
		}
		if perr := printReprocess(r.Out, res); perr != nil && err == nil {
			err = perr
		}
	}
	if err != nil {
		err = r.timedOut(err)
		if !r.Execute {
			return res, err
		}
		return res, fmt.Errorf("%w\nordo replay reset: forgot %s dedup keys (of %s records read) before this error; the reset was not committed, so the group's offsets are unchanged: run the same command again", err, group3(res.total), group3(res.records))
	}
	if !r.Execute {
		fmt.Fprintf(r.Out, "\n%d partitions; %s records, one dedup key each: a dry run forgets nothing (with --execute, their keys are forgotten, then the reset is committed)\n", len(res.ranges), group3(res.records))
		be, err := openBackends(ctx, r.spec, false, r.ConnectTimeout, slog.New(slog.DiscardHandler))
		if err != nil {
			fmt.Fprintf(r.Err, "ordo replay reset: note: --execute will fail now: %v\n", err)
		}
		be.Close()
		return res, nil
	}
	fmt.Fprintf(r.Out, "\n%d partitions; %s records; %s dedup keys forgotten (the others were not in the store)\n", len(res.ranges), group3(res.records), group3(res.total))
	if res.total == 0 && res.records > 0 {
		fmt.Fprintf(r.Err, "ordo replay reset: warning: none of the %s records' keys was in the store: check that --store-prefix (or --inbox) and --dedup-header are the pipeline's store_prefix and dedup_header\n", group3(res.records))
	}
	return res, nil
}

// errNotRewound is the reset's failure after the keys were forgotten.
func errNotRewound(err error, res *reprocessResult) error {
	return fmt.Errorf("%w\nordo replay reset: the dedup keys of %s records were forgotten (%s were in the store), but the reset was not committed: the records were not rewound, and they apply again only when the group reads them again; run the same command again once the group is stopped", err, group3(res.records), group3(res.total))
}
