package cli

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"maps"
	"os"
	"slices"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/spf13/cobra"
	"github.com/spf13/pflag"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/ordokafka/ordo/pkg/ordo"
	"github.com/ordokafka/ordo/pkg/registry"
	"github.com/ordokafka/ordo/pkg/store"
	"github.com/ordokafka/ordo/processors/builtin"
)

// storeProcessors are the built-in processors that write through the store
// (or the breaker and rate limit) the command opens from its keys (store,
// redis_url, postgres_dsn, webhook_url...): the command builds them itself,
// once the store is open. Every other processor comes from the binary's
// registry.
var storeProcessors = []string{"postgres", "redis-ledger", "webhook"}

// isStoreProcessor reports whether name is one of storeProcessors (and not
// a processor of procs registered under the same name).
func isStoreProcessor(procs *registry.Registry, name string) bool {
	return !procs.Has(name) && slices.Contains(storeProcessors, name)
}

// processorFor builds the processor fc names: one of the binary's registry
// procs (cmd/ordo registers the built-ins, a team's own binary its own
// processors beside them), with fc's processor_config section, or one of
// storeProcessors on the opened backends be (with be nil, in Validate
// before anything connects, a stand-in that is never run). example_work is
// the example processor's work, kept from before processor_config.
func processorFor(procs *registry.Registry, fc *FileConfig, log *slog.Logger, be *backends) (ordo.Processor, error) {
	if isStoreProcessor(procs, fc.Processor) {
		if be == nil {
			return ordo.ProcessorFunc(func(context.Context, *kgo.Record) error { return errors.New("not opened") }), nil
		}
		return be.processor(fc.Processor, fc)
	}
	config := fc.ProcessorConfig
	if fc.Processor == "example" && fc.ExampleWork != 0 {
		if _, set := config["work"]; !set {
			config = maps.Clone(config)
			if config == nil {
				config = map[string]any{}
			}
			config["work"] = fc.ExampleWork.String()
		}
	}
	p, err := procs.Build(registry.NewSetup(fc.Processor, config, log))
	if nr := (*registry.NotRegisteredError)(nil); errors.As(err, &nr) {
		return nil, &registry.NotRegisteredError{Name: nr.Name, Registered: processorNames(procs)}
	}
	return p, err
}

// processorNames are the processors ordo run and ordo dev know: those of
// procs and storeProcessors, sorted.
func processorNames(procs *registry.Registry) []string {
	names := append(procs.Names(), storeProcessors...)
	slices.Sort(names)
	return slices.Compact(names)
}

// registered lists processorNames for a message.
func registered(procs *registry.Registry) string {
	return "registered: " + strings.Join(processorNames(procs), ", ")
}

// closeProcessor calls p's Close method, if it has one, once the consumer
// has stopped; its error is logged.
func closeProcessor(p ordo.Processor, log *slog.Logger) {
	if c, ok := p.(interface{ Close() error }); ok {
		if err := c.Close(); err != nil {
			log.Error("closing the processor", "err", err)
		}
	}
}

// consumerConfig is the ordo.Config of fc. It does not check it: ordo.New
// does, and RunCmd.Validate names its errors as the user wrote them.
func (fc *FileConfig) consumerConfig(proc ordo.Processor, ordering ordo.Ordering, start ordo.Start, log *slog.Logger) ordo.Config {
	cfg := ordo.Config{
		Brokers:                      fc.Brokers,
		Group:                        fc.Group,
		Topics:                       fc.Topics,
		Processor:                    proc,
		ProcessorName:                cmp.Or(fc.ProcessorName, fc.Processor),
		Ordering:                     ordering,
		Start:                        start,
		OffsetsLost:                  ordo.LostPolicy(fc.OffsetsLost),
		WorkersPerPartition:          fc.WorkersPerPartition,
		MaxWorkers:                   fc.MaxWorkers,
		MaxInFlightPerPartition:      fc.MaxInFlightPerPartition,
		MaxInFlight:                  fc.MaxInFlight,
		MaxInFlightBytesPerPartition: fc.MaxInFlightBytesPerPart,
		MaxInFlightBytes:             fc.MaxInFlightBytes,
		MaxPollRecords:               fc.MaxPollRecords,
		MaxTrackedSpan:               fc.MaxTrackedSpan,
		MaxOffsetMapBytes:            fc.MaxOffsetMapBytes,
		ProcessTimeout:               fc.ProcessTimeout,
		CommitInterval:               fc.CommitInterval,
		ConnectTimeout:               fc.ConnectTimeout,
		SessionTimeout:               fc.SessionTimeout,
		RebalanceTimeout:             fc.RebalanceTimeout,
		RevokeTimeout:                fc.RevokeTimeout,
		ShutdownTimeout:              fc.ShutdownTimeout,
		Retry: ordo.RetryPolicy{
			MaxAttempts:    fc.Retry.MaxAttempts,
			InitialBackoff: fc.Retry.InitialBackoff,
			MaxBackoff:     fc.Retry.MaxBackoff,
			HoldDelay:      fc.Retry.HoldDelay,
			Tiers:          fc.Retry.Tiers,
			TierAttempts:   fc.Retry.TierAttempts,
		},
		Logger: log,
	}
	if fc.ClientID != "" {
		cfg.KgoOpts = append(cfg.KgoOpts, kgo.ClientID(fc.ClientID))
	}
	if fc.InstanceID != "" {
		cfg.KgoOpts = append(cfg.KgoOpts, kgo.InstanceID(fc.InstanceID))
	}
	return cfg
}

// RunCmd is `ordo run`: the pipeline its configuration describes (a YAML
// file, ORDO_* variables and flags, in that order of precedence) against
// real brokers, until SIGINT or SIGTERM.
type RunCmd struct {
	ConfigPath string
	Out        io.Writer
	// Err receives warnings and the logs. Default os.Stderr.
	Err io.Writer
	// Environ returns the environment. Default os.Environ.
	Environ func() []string

	flags *pflag.FlagSet // the command's flags; nil: none set
	in    *interrupts    // a signal during the drain stops at once; nil: none
	// progressEvery is the interval of progress lines; 0: 10s.
	progressEvery time.Duration
	rc            *runConfig
	conn          *connection
	fc            *FileConfig
	cfg           ordo.Config
	spec          *storeSpec
	// Processors are the processors `processor` may name, beside
	// storeProcessors. Default (nil): the built-in ones, processors/builtin.
	Processors *registry.Registry
	log        *slog.Logger
}

func newRunCmd(out, errw io.Writer, in *interrupts, procs *registry.Registry) *cobra.Command {
	return newRunCommand(&RunCmd{Out: out, Err: errw, in: in, Processors: procs})
}

// processors is r.Processors or its default.
func (r *RunCmd) processors() *registry.Registry {
	if r.Processors == nil {
		return builtin.New()
	}
	return r.Processors
}

// newRunCommand binds r to a new `ordo run` command and its flags.
func newRunCommand(r *RunCmd) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "run [--config FILE] [flags]",
		Short: "Run the pipeline a config file, ORDO_* variables and flags describe, against real brokers",
		Long: `Run a pipeline against real brokers until SIGINT or SIGTERM, then drain and
commit within shutdown_timeout.

Its configuration has three layers, each overriding the one before: the YAML
file of --config (optional), the environment (ORDO_ and the key path
upper-cased, "." as "_": ORDO_BROKERS=a:9092,b:9092, ORDO_RETRY_MAX_ATTEMPTS=3),
then the flags below. Every key is listed in docs/configuration.md. All bad
values are reported at once, each named as written (file key, variable or
flag), before anything connects.`,
		Example: `  # Against the Redpanda of docker compose, as the file says:
  ordo run --config deploy/ordo.yaml
  # Beside ordo dev (broker 127.0.0.1:9092, metrics :9100 taken):
  ordo run --config deploy/ordo.yaml --brokers 127.0.0.1:9092 --metrics-addr 127.0.0.1:9101
  # No file: the environment and flags give everything.
  ORDO_RETRY_MAX_ATTEMPTS=3 ordo run --brokers b1:9092,b2:9092 --group ledger --topic orders --processor log`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if err := validated(r.Validate()); err != nil {
				return err
			}
			return r.Run(cmd.Context())
		},
	}
	f := cmd.Flags()
	f.StringVarP(&r.ConfigPath, "config", "c", "", "pipeline config file (YAML); see deploy/ordo.yaml")
	f.StringSlice("brokers", nil, "seed brokers, host:port (repeat or comma-separate); key brokers")
	f.String("group", "", "consumer group; key group")
	f.StringSlice("topic", nil, "topic to consume (repeat or comma-separate); key topics")
	f.String("processor", "", "processor to run ("+registered(r.processors())+"); key processor")
	f.String("processor-config", "", `the processor's options, a YAML mapping ('{work: 2ms}'); key processor_config`)
	f.String("store", "", "idempotency store: memory, redis, postgres; key store")
	f.String("redis-url", "", "Redis of store redis: redis://[:password@]host:port[/db]; key redis_url")
	f.String("postgres-dsn", "", "PostgreSQL of store postgres: postgres://user[:password]@host:port/db; key postgres_dsn")
	f.String("webhook-url", "", "endpoint of processor webhook; key webhook_url")
	f.String("start", "", "where partitions with no committed offset begin: earliest (default), latest, an RFC 3339 time or an offset; key start")
	f.String("offsets-lost", "", "when retention deleted records past the committed offset: earliest (default: resume at the log start), latest, fail; key offsets_lost")
	f.String("metrics-addr", defaultMetricsAddr, `address of the Prometheus /metrics endpoint ("": none); key metrics_addr`)
	f.String("log-level", defaultLogLevel, "log level: debug, info, warn, error; key log_level")
	f.Bool("pprof", false, "serve net/http/pprof under /debug/pprof/ on the metrics address; key pprof")
	addConnFlags(f, nil, true)
	r.flags = f
	return cmd
}

// Validate loads the configuration and checks all of it, connecting to
// nothing and listening on nothing. Every bad value is reported, each named
// as the user wrote it.
func (r *RunCmd) Validate() error {
	environ := os.Environ
	if r.Environ != nil {
		environ = r.Environ
	}
	errw := r.Err
	if errw == nil {
		errw = os.Stderr
	}
	rc, err := loadRunConfig(r.ConfigPath, environ(), r.flags)
	if err != nil {
		return err
	}
	switch len(rc.unknownEnv) {
	case 0:
	case 1:
		fmt.Fprintf(errw, "ordo run: ignoring %s: not a configuration key (see docs/configuration.md)\n", rc.unknownEnv[0])
	default:
		fmt.Fprintf(errw, "ordo run: ignoring %s: not configuration keys (see docs/configuration.md)\n", strings.Join(rc.unknownEnv, ", "))
	}
	fc := &rc.fc
	if fc.LogLevel == "" {
		fc.LogLevel = defaultLogLevel
	}
	if fc.MetricsAddr == nil {
		def := defaultMetricsAddr
		fc.MetricsAddr = &def
	}

	// What the loader found (unknown keys, unreadable values); the
	// command's own checks; then ordo.New's, each only for keys not already
	// found wrong.
	errs := rc.errs
	reported := maps.Clone(rc.bad)
	bad := func(key, format string, args ...any) {
		if !reported[key] {
			errs = append(errs, rc.errorf(key, -1, format, args...))
			reported[key] = true
		}
	}
	level, err := parseLevel(fc.LogLevel)
	if err != nil {
		bad("log_level", "%v", err)
	}
	if addr := *fc.MetricsAddr; addr != "" {
		if err := checkHostPort(addr); err != nil {
			bad("metrics_addr", "%q: %v (or \"\" to serve no metrics)", addr, err)
		}
	}
	if fc.ExampleWork < 0 {
		bad("example_work", "must not be negative, got %s", fc.ExampleWork)
	}
	ordering, err := ordo.ParseOrdering(fc.Ordering)
	if err != nil {
		bad("ordering", "%q: want key, partition or unordered", fc.Ordering)
	}
	start, err := ordo.ParseStart(fc.Start)
	if err != nil {
		bad("start", "%v", err)
	}
	r.log = slog.New(slog.NewTextHandler(errw, &slog.HandlerOptions{Level: level}))
	var proc ordo.Processor
	var unregistered *registry.NotRegisteredError
	switch {
	case fc.Processor == "":
		bad("processor", "is required (%s)", registered(r.processors()))
	case reported["processor_config"]:
		reported["processor"] = true // no processor to build: ordo.New's "is required" would mislead
	default:
		proc, err = processorFor(r.processors(), fc, r.log, nil)
		switch {
		case errors.As(err, &unregistered):
			bad("processor", "%v", err)
		case err != nil:
			bad("processor_config", "processor %q: %v", fc.Processor, err)
			reported["processor"] = true
		}
	}
	spec := fc.checkStore(bad)
	conn, connErrs := fc.connection(rc, reported)
	errs = append(errs, connErrs...)
	r.conn = conn
	cfg := fc.consumerConfig(proc, ordering, start, r.log)
	cfg.KgoOpts = append(cfg.KgoOpts, conn.opts()...)
	// ordo.New validates every field without connecting; build a
	// throwaway to check now.
	if _, err := ordo.New(cfg); err != nil {
		errs = append(errs, rc.fieldErrors(err, reported)...)
	}
	if len(errs) > 0 {
		return errors.Join(errs...)
	}
	if fc.ShutdownTimeout == 0 {
		fc.ShutdownTimeout = ordo.DefaultShutdownTimeout
	}
	if fc.ConnectTimeout == 0 {
		fc.ConnectTimeout = ordo.DefaultConnectTimeout
	}
	r.rc, r.fc, r.cfg, r.spec = rc, fc, cfg, spec
	return nil
}

// Run runs until ctx ends (the first SIGINT or SIGTERM), then drains and
// commits within shutdown_timeout; a second signal stops at once. A drain
// that did not finish is an error naming what it abandoned.
func (r *RunCmd) Run(ctx context.Context) error {
	be, err := openBackends(ctx, r.spec, false, r.fc.ConnectTimeout, r.log)
	if err != nil {
		return err
	}
	defer be.Close() // after the consumer stopped: its last writes go through the store
	cfg := r.cfg
	if isStoreProcessor(r.processors(), r.fc.Processor) { // Validate built a stand-in
		if cfg.Processor, err = processorFor(r.processors(), r.fc, r.log, be); err != nil {
			return err
		}
	}
	defer closeProcessor(cfg.Processor, r.log) // before the store closes, after the stop below
	cfg.Fencer = be.fencer
	if be.attempts != nil {
		cfg.Attempts = be.attempts
	}
	cfg.Middleware = append(cfg.Middleware, be.mws...)
	cons, err := ordo.New(cfg)
	if err != nil {
		return err
	}
	// The store's and the breakers' series carry the group, as Ordo's own
	// do (the alerts and the dashboard group by it).
	withGroup := prometheus.WrapRegistererWith(prometheus.Labels{"group": r.cfg.Group}, cons.Registry())
	for _, c := range be.collector {
		withGroup.MustRegister(c)
	}
	if r.spec.kind != storeNone {
		where := ""
		if r.spec.redacted != "" {
			where = " at " + r.spec.redacted
		}
		fmt.Fprintf(r.Out, "ordo run: store %s%s\n", r.spec.kind, where)
	}
	if addr := *r.fc.MetricsAddr; addr != "" {
		ms, err := serveMetrics(addr, cons.Registry(), r.log, httpOpts{ready: cons.Ready, pprof: r.fc.Pprof})
		if err != nil {
			return err
		}
		defer func() {
			sctx, cancel := context.WithTimeout(context.Background(), time.Second)
			defer cancel()
			ms.Close(sctx)
		}()
		fmt.Fprintf(r.Out, "ordo run: metrics on http://%s/metrics\n", ms.Addr())
	}
	if err := waitFor(ctx, r.cfg.Brokers, r.fc.ConnectTimeout, r.rc.name("connect_timeout", -1), r.conn, r.cfg.KgoOpts); err != nil {
		if ctx.Err() != nil {
			fmt.Fprintln(r.Out, "ordo run: interrupted before the brokers answered; nothing to drain")
			return nil
		}
		return err
	}
	missing, err := missingTopics(ctx, r.cfg, r.fc.ConnectTimeout)
	switch {
	case ctx.Err() != nil:
		fmt.Fprintln(r.Out, "ordo run: interrupted before start; nothing to drain")
		return nil
	case err != nil:
		return fmt.Errorf("listing the pipeline's topics: %w", err)
	case len(missing) > 0:
		return fmt.Errorf("the brokers have no topic %s: create the topics of group %q (its retry tiers and dead-letter topic, declared under the group in topics/) with `ordo topics apply`, or set retry.tiers to the delays the group declares there",
			strings.Join(missing, ", "), r.cfg.Group)
	}
	if err := cons.Start(context.Background()); err != nil { // stop is explicit, below: drain, not cancel
		return err
	}
	fmt.Fprintf(r.Out, "ordo run: group %q consuming %v from %v\n", r.cfg.Group, r.cfg.Topics, r.cfg.Brokers)
	pctx, stopProgress := context.WithCancel(ctx)
	done := make(chan struct{})
	go func() {
		defer close(done)
		progress(pctx, r.Out, cmp.Or(r.progressEvery, 10*time.Second), func(el time.Duration) string {
			return fmt.Sprintf("[%s] %s", el, statsLine(cons.Stats(), -1))
		})
	}()
	select {
	case <-ctx.Done():
	case <-cons.Stopped(): // it stopped itself (offsets_lost: fail); Stop returns why
	}
	stopProgress()
	<-done
	lanes, err := drainStop(cons, r.Out, "ordo run", r.fc.ShutdownTimeout, r.rc.name("shutdown_timeout", -1), r.in)
	extra := ""
	if st, ok := be.fencer.(store.Store); ok {
		s := st.Stats()
		extra = fmt.Sprintf(" store=%s applied=%d duplicates=%d fenced=%d failed-writes=%d", r.spec.kind, s.Applied, s.Duplicates, s.Fenced, s.Errors)
	}
	stopReport(r.Out, "ordo run", cons.Stats(), lanes, -1, extra)
	return err
}
