package cli

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/spf13/cobra"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
	yaml3 "gopkg.in/yaml.v3"

	"github.com/ordokafka/ordo/pkg/devbroker"
	"github.com/ordokafka/ordo/pkg/ordo"
	"github.com/ordokafka/ordo/pkg/registry"
	"github.com/ordokafka/ordo/pkg/store"
	"github.com/ordokafka/ordo/pkg/topics"
	"github.com/ordokafka/ordo/processors/builtin"
	"github.com/ordokafka/ordo/processors/example"
)

// DevCmd is `ordo dev`: an embedded Kafka-protocol broker, the topics
// declared in topics/, and the example pipeline, in one process.
type DevCmd struct {
	KafkaAddr       string
	MetricsAddr     string
	TopicsDir       string
	Topic           string
	Group           string
	Demo            bool
	Rate            int
	Customers       int
	MalformedEvery  int
	FlakyEvery      int
	Work            time.Duration
	Duration        time.Duration
	ShutdownTimeout time.Duration
	BrokerOnly      bool
	Ordering        string
	Workers         int
	LogLevel        string
	Pprof           bool
	// RedisURL runs the pipeline on Redis (the redis-ledger processor, the
	// Redis store as fencer); PostgresDSN on PostgreSQL (the postgres
	// processor, tables migrated at start). Neither: in memory.
	RedisURL    string
	PostgresDSN string
	// Processor names the pipeline's processor, in Processors (nil: the
	// built-in ones, processors/builtin) or storeProcessors; "": example,
	// or redis-ledger with RedisURL, postgres with PostgresDSN.
	// ProcessorConfig is its options, a YAML mapping ("": none).
	Processor       string
	ProcessorConfig string
	Processors      *registry.Registry

	Out io.Writer

	in        *interrupts    // a signal during the drain stops at once; nil: none
	set       *topics.Set    // loaded by Validate
	spec      *storeSpec     // checked by Validate
	config    map[string]any // ProcessorConfig, read by Validate
	validated bool
}

func newDevCmd(out, _ io.Writer, in *interrupts, procs *registry.Registry) *cobra.Command {
	d := &DevCmd{Out: out, in: in, Processors: procs}
	cmd := &cobra.Command{
		Use:   "dev",
		Short: "Run an embedded broker, the example pipeline and (with --demo) a demo producer",
		Long: `Run an embedded Kafka-protocol broker (kfake) on --kafka-addr that any Kafka
client can use, create the topics declared in --topics-dir, and run the example
pipeline on --topic. With --demo, a generator produces keyed order events (one in
--malformed-every is malformed and goes to the dead-letter topic). A progress line
is printed every second; Prometheus metrics are served on --metrics-addr, with the
group's lag from the broker (ordo_consumer_lag_*, status window 30s), /healthz,
/readyz (the consumer's readiness) and, with --pprof, /debug/pprof/. Watch the
lag with: ordo lag --brokers 127.0.0.1:9092 --group ordo-dev --watch

The pipeline applies each event once, fenced: in memory by default (the example
processor behind an in-memory idempotency store); with --redis-url, the
redis-ledger processor appends each event to a per-customer Redis list; with
--postgres-dsn, the postgres processor upserts each event into ordo_dev_events
(inbox ordo_dev_inbox; the tables are created at start). Those two store any
value, so the malformed events are applied, not dead-lettered. Passwords in
either are never printed.`,
		Example: `  ordo dev --demo                        # broker, topics, demo producer, example pipeline
  ordo dev --demo --rate 500 --work 10ms  # slower processing: watch the lag
  ordo dev --broker-only                  # only the broker and the topics, for your own clients
  ordo dev --demo --duration 30s          # drain and stop after 30 seconds
  ordo dev --demo --redis-url redis://127.0.0.1:6379/0                                # on Redis (redis-ledger)
  ordo dev --demo --postgres-dsn postgres://postgres@127.0.0.1:5432/ordo?sslmode=disable  # on PostgreSQL`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if err := validated(d.Validate()); err != nil {
				return err
			}
			return d.Run(cmd.Context())
		},
	}
	f := cmd.Flags()
	f.StringVar(&d.KafkaAddr, "kafka-addr", "127.0.0.1:9092", "address the embedded broker listens on and advertises")
	f.StringVar(&d.MetricsAddr, "metrics-addr", "127.0.0.1:9100", "address of the Prometheus /metrics endpoint (empty: none)")
	f.StringVar(&d.TopicsDir, "topics-dir", "topics", "directory of topic declarations to create")
	f.StringVar(&d.Topic, "topic", "orders", "topic the example pipeline consumes")
	f.StringVar(&d.Group, "group", "ordo-dev", "consumer group of the example pipeline")
	f.BoolVar(&d.Demo, "demo", false, "produce demo order events")
	f.IntVar(&d.Rate, "rate", 2000, "demo events per second")
	f.IntVar(&d.Customers, "customers", 1000, "distinct demo keys (customers)")
	f.IntVar(&d.MalformedEvery, "malformed-every", 200, "one demo event in this many is malformed (0: none)")
	f.IntVar(&d.FlakyEvery, "flaky-every", 100, "one demo event in this many fails its first calls and succeeds in a retry tier (0: none)")
	f.DurationVar(&d.Work, "work", 2*time.Millisecond, "simulated processing time per event")
	f.DurationVar(&d.Duration, "duration", 0, "stop after this long (0: run until interrupted)")
	f.DurationVar(&d.ShutdownTimeout, "shutdown-timeout", 15*time.Second, "time allowed to drain and commit on stop")
	f.BoolVar(&d.BrokerOnly, "broker-only", false, "run only the broker and create the topics")
	f.StringVar(&d.Ordering, "ordering", "key", "ordering: key, partition or unordered")
	f.IntVar(&d.Workers, "workers", ordo.DefaultWorkersPerPartition, "workers per partition")
	f.StringVar(&d.LogLevel, "log-level", "warn", "log level: debug, info, warn, error")
	f.BoolVar(&d.Pprof, "pprof", false, "serve net/http/pprof under /debug/pprof/ on --metrics-addr")
	f.StringVar(&d.RedisURL, "redis-url", "", "run the pipeline on Redis: redis://[:password@]host:port[/db]")
	f.StringVar(&d.PostgresDSN, "postgres-dsn", "", "run the pipeline on PostgreSQL: postgres://user[:password]@host:port/db")
	f.StringVar(&d.Processor, "processor", "", "processor of the pipeline ("+registered(d.processors())+`); default example, redis-ledger with --redis-url, postgres with --postgres-dsn`)
	f.StringVar(&d.ProcessorConfig, "processor-config", "", `the processor's options, a YAML mapping ('{work: 2ms}')`)
	return cmd
}

// Validate checks every flag before anything starts (no broker, no topic,
// no listener) and reports every bad one at once, each named as its flag.
func (d *DevCmd) Validate() error {
	var errs []error
	bad := func(flag, format string, args ...any) {
		errs = append(errs, fmt.Errorf("--"+flag+" "+format, args...))
	}
	if err := checkHostPort(d.KafkaAddr); err != nil {
		bad("kafka-addr", "%q: %v", d.KafkaAddr, err)
	}
	if d.MetricsAddr != "" {
		if err := checkHostPort(d.MetricsAddr); err != nil {
			bad("metrics-addr", "%q: %v", d.MetricsAddr, err)
		} else if d.MetricsAddr == d.KafkaAddr && !strings.HasSuffix(d.MetricsAddr, ":0") {
			bad("metrics-addr", "%q is also --kafka-addr", d.MetricsAddr)
		}
	}
	if d.Rate < 1 {
		bad("rate", "must be >= 1, got %d", d.Rate)
	}
	if d.Customers < 1 {
		bad("customers", "must be >= 1, got %d", d.Customers)
	}
	if d.FlakyEvery < 0 {
		bad("flaky-every", "must be >= 0 (0: none), got %d", d.FlakyEvery)
	}
	if d.MalformedEvery < 0 {
		bad("malformed-every", "must be >= 0 (0: none), got %d", d.MalformedEvery)
	}
	if d.Work < 0 {
		bad("work", "must not be negative, got %s", d.Work)
	}
	if d.Duration < 0 {
		bad("duration", "must not be negative (0: until interrupted), got %s", d.Duration)
	}
	if d.ShutdownTimeout <= 0 {
		bad("shutdown-timeout", "must be > 0, got %s", d.ShutdownTimeout)
	}
	if _, err := ordo.ParseOrdering(d.Ordering); err != nil {
		bad("ordering", "%q: want key, partition or unordered", d.Ordering)
	}
	if d.Workers < 1 {
		bad("workers", "must be >= 1, got %d", d.Workers)
	}
	if _, err := parseLevel(d.LogLevel); err != nil {
		bad("log-level", "%v", err)
	}
	if strings.TrimSpace(d.Group) == "" && !d.BrokerOnly {
		bad("group", "must not be empty")
	}
	fc := d.fileConfig()
	d.config = nil
	if err := yaml3.Unmarshal([]byte(d.ProcessorConfig), &d.config); err != nil {
		bad("processor-config", "want a YAML mapping ('{key: value}'), got %q", d.ProcessorConfig)
	}
	if procs := d.processors(); !procs.Has(fc.Processor) && !isStoreProcessor(procs, fc.Processor) {
		bad("processor", "%v", &registry.NotRegisteredError{Name: fc.Processor, Registered: processorNames(procs)})
	}
	if d.RedisURL != "" && d.PostgresDSN != "" {
		bad("postgres-dsn", "and --redis-url are exclusive: the pipeline runs on one store")
	}
	flagOf := map[string]string{"redis_url": "redis-url", "postgres_dsn": "postgres-dsn"}
	d.spec = fc.checkStore(func(key, format string, args ...any) {
		errs = append(errs, fmt.Errorf("--"+cmp.Or(flagOf[key], key)+" "+format, args...))
	})
	d.spec.inbox, d.spec.fences, d.spec.fresh = "ordo_dev_inbox", "ordo_dev_fence", true
	d.set = nil
	switch {
	case d.TopicsDir == "" && !d.BrokerOnly:
		bad("topics-dir", `"" (no topic declarations) needs --broker-only`)
	case d.TopicsDir == "":
	default:
		if st, err := os.Stat(d.TopicsDir); err != nil || !st.IsDir() {
			bad("topics-dir", "%q is not a directory (run from the repository root or pass --topics-dir)", d.TopicsDir)
			break
		}
		set, err := topics.Load(d.TopicsDir)
		if err != nil {
			bad("topics-dir", "%q: %v", d.TopicsDir, err)
			break
		}
		d.set = set
		if _, ok := set.Lookup(d.Topic); !ok && !d.BrokerOnly {
			bad("topic", "%q is not declared in %s", d.Topic, d.TopicsDir)
		}
	}
	d.validated = len(errs) == 0
	return errors.Join(errs...)
}

// fileConfig is the processor and store configuration of the dev pipeline.
func (d *DevCmd) fileConfig() *FileConfig {
	fc := &FileConfig{Processor: cmp.Or(d.Processor, "example"), Store: storeMemory, StorePrefix: "ordo-dev:" + d.Group + ":",
		PostgresTable: "ordo_dev_events", ProcessorConfig: d.config}
	switch {
	case d.RedisURL != "":
		fc.Processor, fc.Store, fc.RedisURL = cmp.Or(d.Processor, "redis-ledger"), storeRedis, d.RedisURL
	case d.PostgresDSN != "":
		fc.Processor, fc.Store, fc.PostgresDSN = cmp.Or(d.Processor, "postgres"), storePostgres, d.PostgresDSN
	}
	if fc.Processor == "example" {
		fc.ExampleWork = d.Work // unless processor_config sets work
	}
	return fc
}

// processors is d.Processors or its default.
func (d *DevCmd) processors() *registry.Registry {
	if d.Processors == nil {
		return builtin.New()
	}
	return d.Processors
}

// checkHostPort accepts host:port with a numeric port (0: any free port).
func checkHostPort(addr string) error {
	_, port, err := net.SplitHostPort(addr)
	if err != nil {
		return errors.New("want host:port")
	}
	if n, err := strconv.Atoi(port); err != nil || n < 0 || n > 65535 {
		return fmt.Errorf("port %q is not a number from 0 to 65535", port)
	}
	return nil
}

// parseLevel parses a log level; its error names no flag or key, the
// caller does.
func parseLevel(s string) (slog.Level, error) {
	var l slog.Level
	if err := l.UnmarshalText([]byte(s)); err != nil {
		return 0, fmt.Errorf("%q: want debug, info, warn or error", s)
	}
	return l, nil
}

// Run runs until ctx ends or Duration passes.
func (d *DevCmd) Run(ctx context.Context) error {
	level, _ := parseLevel(d.LogLevel)
	log := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: level}))
	if d.Duration > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, d.Duration)
		defer cancel()
	}
	if !d.validated {
		if err := d.Validate(); err != nil {
			return usageError{err}
		}
	}
	set := d.set // nil: --topics-dir "", no topics to create

	broker, err := devbroker.Start(devbroker.Options{Addr: d.KafkaAddr})
	if err != nil {
		return err
	}
	defer broker.Close()
	fmt.Fprintf(d.Out, "ordo dev: Kafka-protocol broker on %s (try: kcat -b %s -L)\n", broker.Addr(), broker.Addr())

	if set == nil { // --broker-only --topics-dir "": no topics to create
		fmt.Fprintln(d.Out, "ordo dev: broker only, no topics; Ctrl-C to stop")
		<-ctx.Done()
		return nil
	}
	admCl, err := kgo.NewClient(kgo.SeedBrokers(broker.Addr()))
	if err != nil {
		return err
	}
	specs, tiers := devChain(set, d.Topic, d.Group)
	res, err := topics.Apply(ctx, kadm.NewClient(admCl), specs, false)
	admCl.Close()
	if err != nil {
		return fmt.Errorf("creating topics: %w", err)
	}
	names := make([]string, 0, len(res))
	for _, r := range res {
		names = append(names, r.Topic)
	}
	fmt.Fprintf(d.Out, "ordo dev: topics %s\n", strings.Join(names, ", "))

	if d.BrokerOnly {
		fmt.Fprintln(d.Out, "ordo dev: broker only; Ctrl-C to stop")
		<-ctx.Done()
		return nil
	}

	ordering, _ := ordo.ParseOrdering(d.Ordering)
	be, err := openBackends(ctx, d.spec, true, 10*time.Second, log)
	if err != nil {
		return err
	}
	defer be.Close()
	fc := d.fileConfig()
	proc, err := processorFor(d.processors(), fc, log, be)
	if err != nil {
		return usageError{fmt.Errorf("--processor-config: processor %q: %w", fc.Processor, err)}
	}
	defer closeProcessor(proc, log) // before the store closes, after the drain below
	exampleProc, _ := proc.(*example.Processor)
	if d.Work > 0 && exampleProc == nil {
		proc = withWork(proc, d.Work)
	}
	cons, err := ordo.New(ordo.Config{
		Brokers:             []string{broker.Addr()},
		Group:               d.Group,
		Topics:              []string{d.Topic},
		Processor:           proc,
		Middleware:          be.mws,
		Fencer:              be.fencer,
		ProcessorName:       fc.Processor,
		Ordering:            ordering,
		WorkersPerPartition: d.Workers,
		Logger:              log,
		SessionTimeout:      6 * time.Second,
		RebalanceTimeout:    20 * time.Second,
		RevokeTimeout:       min(d.ShutdownTimeout, 10*time.Second),
		Retry:               ordo.RetryPolicy{MaxAttempts: devInPlaceAttempts, InitialBackoff: 50 * time.Millisecond, MaxBackoff: time.Second, Tiers: tiers},
	})
	if err != nil {
		return err
	}
	// The store's and the breakers' series carry the group, as Ordo's own
	// do (the alerts and the dashboard group by it).
	withGroup := prometheus.WrapRegistererWith(prometheus.Labels{"group": d.Group}, cons.Registry())
	for _, c := range be.collector {
		withGroup.MustRegister(c)
	}
	var ms *metricsServer
	if d.MetricsAddr != "" {
		lc, err := devLag(cons.Registry(), []string{broker.Addr()}, d.Group, d.Topic)
		if err != nil {
			return err
		}
		defer lc.Close()
		if ms, err = serveMetrics(d.MetricsAddr, cons.Registry(), log, httpOpts{ready: cons.Ready, pprof: d.Pprof}); err != nil {
			return err
		}
		defer func() {
			sctx, cancel := context.WithTimeout(context.Background(), time.Second)
			defer cancel()
			ms.Close(sctx)
		}()
		fmt.Fprintf(d.Out, "ordo dev: metrics on http://%s/metrics\n", ms.Addr())
	}
	if err := cons.Start(context.Background()); err != nil { // stop is explicit, below: drain, not cancel
		return err
	}
	where := "in memory"
	if d.spec.redacted != "" {
		where = "on " + d.spec.kind + " at " + d.spec.redacted
	}
	fmt.Fprintf(d.Out, "ordo dev: group %q consuming %q with the %s processor, %s, fenced (%s order, %d workers per partition)\n",
		d.Group, d.Topic, fc.Processor, where, ordering, d.Workers)

	var wg sync.WaitGroup
	gen := &generator{topic: d.Topic, rate: d.Rate, customers: d.Customers, malformedEvery: d.MalformedEvery,
		flakyEvery: d.FlakyEvery, failFirst: devInPlaceAttempts, produced: -1}
	pctx, stopBackground := context.WithCancel(ctx)
	if d.Demo {
		gen.produced = 0
		wg.Go(func() {
			if err := gen.run(pctx, broker.Addr()); err != nil {
				log.Error("demo generator", "err", err)
			}
		})
	}
	wg.Go(func() {
		progress(pctx, d.Out, time.Second, func(el time.Duration) string {
			return fmt.Sprintf("[%s] %s", el, statsLine(cons.Stats(), gen.Produced()))
		})
	})
	<-ctx.Done()
	stopBackground()
	wg.Wait()
	lanes, stopErr := drainStop(cons, d.Out, "ordo dev", d.ShutdownTimeout, "--shutdown-timeout", d.in)
	extra := ""
	if exampleProc != nil {
		extra = fmt.Sprintf(" order-violations=%d", exampleProc.Violations())
	}
	if st, ok := be.fencer.(store.Store); ok {
		s := st.Stats()
		extra += fmt.Sprintf(" store=%s applied=%d duplicates=%d fenced=%d failed-writes=%d", d.spec.kind, s.Applied, s.Duplicates, s.Fenced, s.Errors)
	}
	stopReport(d.Out, "ordo dev", cons.Stats(), lanes, gen.Produced(), extra)
	return stopErr
}

// devInPlaceAttempts are the demo pipeline's in-place calls before retry
// tier 1.
const devInPlaceAttempts = 3

// devChain returns the topics to create: every declared topic and chain,
// as `ordo topics apply` creates them, and the chain of topic for group
// if the file does not declare it, with the group's tier delays.
func devChain(set *topics.Set, topic, group string) ([]topics.TopicSpec, []time.Duration) {
	specs := set.Specs()
	t, ok := set.Lookup(topic)
	if !ok {
		return specs, nil
	}
	// The group's own chain; a group the file does not name (ordo dev
	// --group) gets the first declared group's delays, or a dead-letter
	// topic alone.
	c, ok := t.Chain(group)
	if ok {
		return specs, c.Retry.Delays
	}
	if len(t.Groups) > 0 {
		c = t.Groups[0]
	} else {
		c.DLQ = true
	}
	c.Topic, c.Group = t.Name, group
	specs = append(specs, t.ChainSpecs(c)...)
	return specs, c.Retry.Delays
}

// withWork makes each call of p take at least work first (the demo's
// simulated processing time), honoring ctx.
func withWork(p ordo.Processor, work time.Duration) ordo.Processor {
	return ordo.ProcessorFunc(func(ctx context.Context, r *kgo.Record) error {
		t := time.NewTimer(work)
		select {
		case <-t.C:
		case <-ctx.Done():
			t.Stop()
			return ctx.Err()
		}
		return p.Process(ctx, r)
	})
}
