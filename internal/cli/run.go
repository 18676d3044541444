package cli

import (
	"bytes"
	"cmp"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"time"

	"github.com/spf13/cobra"
	"github.com/twmb/franz-go/pkg/kgo"
	"gopkg.in/yaml.v3"

	"github.com/ordokafka/ordo/pkg/ordo"
	"github.com/ordokafka/ordo/processors/example"
	"github.com/ordokafka/ordo/processors/logproc"
)

// FileConfig is the YAML file of `ordo run --config`. Durations are Go
// durations ("500ms", "1m"). Unknown fields are an error.
type FileConfig struct {
	Brokers   []string `yaml:"brokers"`
	Group     string   `yaml:"group"`
	Topics    []string `yaml:"topics"`
	Processor string   `yaml:"processor"` // a built-in processor: example, log
	ClientID  string   `yaml:"client_id"`

	Ordering                string        `yaml:"ordering"`
	WorkersPerPartition     int           `yaml:"workers_per_partition"`
	MaxWorkers              int           `yaml:"max_workers"`
	MaxInFlightPerPartition int           `yaml:"max_in_flight_per_partition"`
	MaxInFlight             int           `yaml:"max_in_flight"`
	MaxInFlightBytesPerPart int64         `yaml:"max_in_flight_bytes_per_partition"`
	MaxInFlightBytes        int64         `yaml:"max_in_flight_bytes"`
	MaxPollRecords          int           `yaml:"max_poll_records"`
	ProcessorName           string        `yaml:"processor_name"`
	ProcessTimeout          time.Duration `yaml:"process_timeout"`
	CommitInterval          time.Duration `yaml:"commit_interval"`
	SessionTimeout          time.Duration `yaml:"session_timeout"`
	RebalanceTimeout        time.Duration `yaml:"rebalance_timeout"`
	RevokeTimeout           time.Duration `yaml:"revoke_timeout"`
	ShutdownTimeout         time.Duration `yaml:"shutdown_timeout"`
	Retry                   struct {
		MaxAttempts    int           `yaml:"max_attempts"`
		InitialBackoff time.Duration `yaml:"initial_backoff"`
		MaxBackoff     time.Duration `yaml:"max_backoff"`
		HoldDelay      time.Duration `yaml:"hold_delay"`
	} `yaml:"retry"`
	// MetricsAddr serves /metrics; absent: 127.0.0.1:9100; "": none.
	MetricsAddr *string `yaml:"metrics_addr"`
	LogLevel    string  `yaml:"log_level"`
	// ExampleWork is the example processor's simulated work per event.
	ExampleWork time.Duration `yaml:"example_work"`
}

// LoadFileConfig reads and strictly decodes a config file.
func LoadFileConfig(path string) (*FileConfig, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	var fc FileConfig
	dec := yaml.NewDecoder(bytes.NewReader(data))
	dec.KnownFields(true)
	if err := dec.Decode(&fc); err != nil && !errors.Is(err, io.EOF) {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	if fc.ShutdownTimeout == 0 {
		fc.ShutdownTimeout = 30 * time.Second
	}
	if fc.LogLevel == "" {
		fc.LogLevel = "info"
	}
	if fc.MetricsAddr == nil {
		def := "127.0.0.1:9100"
		fc.MetricsAddr = &def
	}
	return &fc, nil
}

// processorFor builds a built-in processor by name. The registry is
// explicit: a new processor package adds a case here.
func processorFor(name string, fc *FileConfig, log *slog.Logger) (ordo.Processor, error) {
	switch name {
	case "example":
		return example.New(example.Options{Work: fc.ExampleWork}), nil
	case "log":
		return logproc.New(log), nil
	}
	return nil, fmt.Errorf("processor %q is not built in (have: example, log)", name)
}

// Consumer config from the file; every error names the file's field.
func (fc *FileConfig) consumerConfig(log *slog.Logger) (ordo.Config, error) {
	ordering, err := ordo.ParseOrdering(fc.Ordering)
	if err != nil {
		return ordo.Config{}, fmt.Errorf("ordering: %w", err)
	}
	proc, err := processorFor(fc.Processor, fc, log)
	if err != nil {
		return ordo.Config{}, fmt.Errorf("processor: %w", err)
	}
	cfg := ordo.Config{
		Brokers:                      fc.Brokers,
		Group:                        fc.Group,
		Topics:                       fc.Topics,
		Processor:                    proc,
		ProcessorName:                cmp.Or(fc.ProcessorName, fc.Processor),
		Ordering:                     ordering,
		WorkersPerPartition:          fc.WorkersPerPartition,
		MaxWorkers:                   fc.MaxWorkers,
		MaxInFlightPerPartition:      fc.MaxInFlightPerPartition,
		MaxInFlight:                  fc.MaxInFlight,
		MaxInFlightBytesPerPartition: fc.MaxInFlightBytesPerPart,
		MaxInFlightBytes:             fc.MaxInFlightBytes,
		MaxPollRecords:               fc.MaxPollRecords,
		ProcessTimeout:               fc.ProcessTimeout,
		CommitInterval:               fc.CommitInterval,
		SessionTimeout:               fc.SessionTimeout,
		RebalanceTimeout:             fc.RebalanceTimeout,
		RevokeTimeout:                fc.RevokeTimeout,
		Retry: ordo.RetryPolicy{
			MaxAttempts:    fc.Retry.MaxAttempts,
			InitialBackoff: fc.Retry.InitialBackoff,
			MaxBackoff:     fc.Retry.MaxBackoff,
			HoldDelay:      fc.Retry.HoldDelay,
		},
		Logger: log,
	}
	if fc.ClientID != "" {
		cfg.KgoOpts = append(cfg.KgoOpts, kgo.ClientID(fc.ClientID))
	}
	return cfg, nil
}

// RunCmd is `ordo run --config FILE`: the pipeline of the file against
// real brokers, until SIGINT or SIGTERM.
type RunCmd struct {
	ConfigPath string
	Out        io.Writer

	fc  *FileConfig
	cfg ordo.Config
	log *slog.Logger
}

func newRunCmd(out io.Writer) *cobra.Command {
	r := &RunCmd{Out: out}
	cmd := &cobra.Command{
		Use:   "run --config FILE",
		Short: "Run the pipeline a config file describes, against real brokers",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if err := validated(r.Validate()); err != nil {
				return err
			}
			return r.Run(cmd.Context())
		},
	}
	cmd.Flags().StringVarP(&r.ConfigPath, "config", "c", "", "pipeline config file (YAML); see deploy/ordo.yaml")
	return cmd
}

// Validate loads the file and checks it completely, connecting to nothing.
func (r *RunCmd) Validate() error {
	if r.ConfigPath == "" {
		return errors.New("--config is required")
	}
	fc, err := LoadFileConfig(r.ConfigPath)
	if err != nil {
		return err
	}
	level, err := parseLevel(fc.LogLevel)
	if err != nil {
		return fmt.Errorf("%s: log_level: %w", r.ConfigPath, err)
	}
	r.log = slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: level}))
	cfg, err := fc.consumerConfig(r.log)
	if err != nil {
		return fmt.Errorf("%s: %w", r.ConfigPath, err)
	}
	// ordo.New validates every field; build a throwaway to check now.
	if _, err := ordo.New(cfg); err != nil {
		return fmt.Errorf("%s: %w", r.ConfigPath, err)
	}
	r.fc, r.cfg = fc, cfg
	return nil
}

// Run runs until ctx ends, then stops within the shutdown timeout.
func (r *RunCmd) Run(ctx context.Context) error {
	cons, err := ordo.New(r.cfg)
	if err != nil {
		return err
	}
	if addr := *r.fc.MetricsAddr; addr != "" {
		ms, err := serveMetrics(addr, cons.Registry(), r.log)
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
	if err := cons.Start(context.Background()); err != nil { // stop is explicit, below: drain, not cancel
		return err
	}
	fmt.Fprintf(r.Out, "ordo run: group %q consuming %v from %v\n", r.cfg.Group, r.cfg.Topics, r.cfg.Brokers)
	pctx, stopProgress := context.WithCancel(ctx)
	done := make(chan struct{})
	go func() {
		defer close(done)
		progress(pctx, r.Out, 10*time.Second, func(el time.Duration) string {
			return fmt.Sprintf("[%s] %s", el, statsLine(cons.Stats(), -1))
		})
	}()
	<-ctx.Done()
	stopProgress()
	<-done
	sctx, cancel := context.WithTimeout(context.Background(), r.fc.ShutdownTimeout)
	defer cancel()
	err = cons.Stop(sctx)
	fmt.Fprintf(r.Out, "ordo run: stopped. %s\n", statsLine(cons.Stats(), -1))
	return err
}
