package ordo

import (
	"context"
	"errors"
	"fmt"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/twmb/franz-go/pkg/kgo"
)

// validConfig is a minimal valid config. The broker address is in
// TEST-NET-1 (RFC 5737): nothing answers there.
func validConfig() Config {
	return Config{
		Brokers: []string{"192.0.2.1:9092"},
		Group:   "g",
		Topics:  []string{"orders"},
		Processor: ProcessorFunc(func(context.Context, *kgo.Record) error {
			return nil
		}),
	}
}

func TestConfigValidation(t *testing.T) {
	passthrough := func(p Processor) Processor { return p }
	cases := []struct {
		name  string
		mod   func(*Config)
		field string // the error must contain "Config.<field> "
		lines int    // number of joined errors; 0: do not check
	}{
		{"brokers missing", func(c *Config) { c.Brokers = nil }, "Brokers", 1},
		{"brokers empty slice", func(c *Config) { c.Brokers = []string{} }, "Brokers", 1},
		{"empty broker", func(c *Config) { c.Brokers = []string{"a:1", ""} }, "Brokers[1]", 1},
		{"blank broker", func(c *Config) { c.Brokers = []string{"a:1", "  "} }, "Brokers[1]", 1},
		{"group missing", func(c *Config) { c.Group = "" }, "Group", 1},
		{"topics missing", func(c *Config) { c.Topics = nil }, "Topics", 1},
		{"duplicate topic", func(c *Config) { c.Topics = []string{"a", "a"} }, "Topics[1]", 1},
		{"empty topic", func(c *Config) { c.Topics = []string{"a", ""} }, "Topics[1]", 1},
		{"processor nil", func(c *Config) { c.Processor = nil }, "Processor", 1},
		{"middleware nil", func(c *Config) { c.Middleware = []Middleware{nil, passthrough} }, "Middleware[0]", 1},
		{"middleware nil later", func(c *Config) { c.Middleware = []Middleware{passthrough, nil} }, "Middleware[1]", 1},
		{"ordering 7", func(c *Config) { c.Ordering = 7 }, "Ordering", 1},
		{"offsets lost policy", func(c *Config) { c.OffsetsLost = "skip" }, "OffsetsLost", 1},
		{"negative start offset", func(c *Config) { c.Start = StartAtOffset(-3) }, "Start", 1},
		{"ordering -1", func(c *Config) { c.Ordering = -1 }, "Ordering", 1},
		{"negative WorkersPerPartition", func(c *Config) { c.WorkersPerPartition = -1 }, "WorkersPerPartition", 1},
		{"negative MaxWorkers", func(c *Config) { c.MaxWorkers = -1 }, "MaxWorkers", 1},
		{"negative MaxInFlightPerPartition", func(c *Config) { c.MaxInFlightPerPartition = -1 }, "MaxInFlightPerPartition", 1},
		{"negative MaxInFlightBytesPerPartition", func(c *Config) { c.MaxInFlightBytesPerPartition = -1 }, "MaxInFlightBytesPerPartition", 1},
		{"negative MaxInFlight", func(c *Config) { c.MaxInFlight = -1 }, "MaxInFlight", 1},
		{"negative MaxInFlightBytes", func(c *Config) { c.MaxInFlightBytes = -1 }, "MaxInFlightBytes", 1},
		{"negative MaxAttempts", func(c *Config) { c.Retry.MaxAttempts = -1 }, "Retry.MaxAttempts", 1},
		{"negative MaxPollRecords", func(c *Config) { c.MaxPollRecords = -1 }, "MaxPollRecords", 1},
		{"negative ProcessTimeout", func(c *Config) { c.ProcessTimeout = -time.Second }, "ProcessTimeout", 1},
		{"negative InitialBackoff", func(c *Config) { c.Retry.InitialBackoff = -time.Second }, "Retry.InitialBackoff", 1},
		{"negative MaxBackoff", func(c *Config) { c.Retry.MaxBackoff = -time.Second }, "Retry.MaxBackoff", 0},
		{"negative HoldDelay", func(c *Config) { c.Retry.HoldDelay = -time.Second }, "Retry.HoldDelay", 1},
		{"negative CommitInterval", func(c *Config) { c.CommitInterval = -time.Second }, "CommitInterval", 1},
		{"negative SessionTimeout", func(c *Config) { c.SessionTimeout = -time.Second }, "SessionTimeout", 1},
		{"negative RebalanceTimeout", func(c *Config) { c.RebalanceTimeout = -time.Second }, "RebalanceTimeout", 0},
		{"negative RevokeTimeout", func(c *Config) { c.RevokeTimeout = -time.Second }, "RevokeTimeout", 1},
		{"MaxBackoff below InitialBackoff", func(c *Config) {
			c.Retry.InitialBackoff, c.Retry.MaxBackoff = 2*time.Second, time.Second
		}, "Retry.MaxBackoff", 1},
		{"MaxBackoff below default InitialBackoff", func(c *Config) { c.Retry.MaxBackoff = 50 * time.Millisecond }, "Retry.MaxBackoff", 1},
		{"InitialBackoff above default MaxBackoff", func(c *Config) { c.Retry.InitialBackoff = time.Minute }, "Retry.MaxBackoff", 1},
		{"MaxInFlight below per partition", func(c *Config) {
			c.MaxInFlight, c.MaxInFlightPerPartition = 10, 11
		}, "MaxInFlight", 1},
		{"MaxInFlight below default per partition", func(c *Config) { c.MaxInFlight = 5 }, "MaxInFlight", 1},
		{"MaxInFlightBytes below per partition", func(c *Config) {
			c.MaxInFlightBytes, c.MaxInFlightBytesPerPartition = 10, 11
		}, "MaxInFlightBytes", 1},
		{"RevokeTimeout equal to RebalanceTimeout", func(c *Config) {
			c.RevokeTimeout, c.RebalanceTimeout = 30*time.Second, 30*time.Second
		}, "RevokeTimeout", 1},
		{"RevokeTimeout above RebalanceTimeout", func(c *Config) {
			c.RevokeTimeout, c.RebalanceTimeout = 31*time.Second, 30*time.Second
		}, "RevokeTimeout", 1},
		{"RevokeTimeout above default RebalanceTimeout", func(c *Config) { c.RevokeTimeout = 2 * time.Minute }, "RevokeTimeout", 1},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			cfg := validConfig()
			c.mod(&cfg)
			cons, err := New(cfg)
			if err == nil {
				t.Fatal("New succeeded, want an error")
			}
			if cons != nil {
				t.Fatal("New returned a consumer with its error")
			}
			want := "Config." + c.field + " "
			if !strings.Contains(err.Error(), want) {
				t.Fatalf("error %q does not name %q", err, want)
			}
			if !strings.HasPrefix(err.Error(), "ordo: ") {
				t.Fatalf("error %q lacks the ordo: prefix", err)
			}
			if n := len(joined(err)); c.lines > 0 && n != c.lines {
				t.Fatalf("%d errors, want %d: %v", n, c.lines, err)
			}
			// validate agrees with New.
			if verr := cfg.withDefaults().validate(); verr == nil || verr.Error() != err.Error() {
				t.Fatalf("validate() = %v, New() = %v", verr, err)
			}
		})
	}

	// Edge values that are valid.
	valid := []struct {
		name string
		mod  func(*Config)
	}{
		{"minimal", func(*Config) {}},
		{"ordering partition", func(c *Config) { c.Ordering = OrderPartition }},
		{"ordering unordered", func(c *Config) { c.Ordering = OrderUnordered }},
		{"several topics", func(c *Config) { c.Topics = []string{"a", "b", "c"} }},
		{"MaxBackoff equal to InitialBackoff", func(c *Config) { c.Retry.InitialBackoff, c.Retry.MaxBackoff = time.Second, time.Second }},
		{"MaxInFlight equal to per partition", func(c *Config) { c.MaxInFlight, c.MaxInFlightPerPartition = 100, 100 }},
		{"RevokeTimeout just below RebalanceTimeout", func(c *Config) {
			c.RevokeTimeout, c.RebalanceTimeout = 30*time.Second-1, 30*time.Second
		}},
		{"short RebalanceTimeout", func(c *Config) { c.RebalanceTimeout = 10 * time.Second }},
		{"middleware", func(c *Config) { c.Middleware = []Middleware{Recover} }},
	}
	for _, v := range valid {
		t.Run("valid/"+v.name, func(t *testing.T) {
			cfg := validConfig()
			v.mod(&cfg)
			if _, err := New(cfg); err != nil {
				t.Fatalf("New: %v", err)
			}
		})
	}
}

// joined returns the errors an errors.Join error holds, or err itself.
func joined(err error) []error {
	if j, ok := err.(interface{ Unwrap() []error }); ok {
		return j.Unwrap()
	}
	return []error{err}
}

func TestConfigAllErrorsReported(t *testing.T) {
	_, err := New(Config{})
	if err == nil {
		t.Fatal("New(Config{}) succeeded")
	}
	for _, f := range []string{"Brokers", "Group", "Topics", "Processor"} {
		if !strings.Contains(err.Error(), "Config."+f+" ") {
			t.Errorf("error does not name Config.%s: %v", f, err)
		}
	}
	if n := len(joined(err)); n != 4 {
		t.Errorf("%d errors, want 4: %v", n, err)
	}

	cfg := validConfig()
	cfg.Brokers = nil
	cfg.Ordering = 7
	cfg.WorkersPerPartition = -1
	cfg.CommitInterval = -time.Second
	cfg.RevokeTimeout = 2 * time.Minute
	cfg.Middleware = []Middleware{nil}
	_, err = New(cfg)
	if err == nil {
		t.Fatal("New succeeded with six faults")
	}
	for _, f := range []string{"Brokers", "Ordering", "WorkersPerPartition", "CommitInterval", "RevokeTimeout", "Middleware[0]"} {
		if !strings.Contains(err.Error(), "Config."+f+" ") {
			t.Errorf("error does not name Config.%s: %v", f, err)
		}
	}
	if n := len(joined(err)); n != 6 {
		t.Errorf("%d errors, want 6: %v", n, err)
	}
}

func TestConfigDefaults(t *testing.T) {
	d := validConfig().withDefaults()
	ints := []struct {
		name      string
		got, want int64
	}{
		{"WorkersPerPartition", int64(d.WorkersPerPartition), DefaultWorkersPerPartition},
		{"MaxWorkers", int64(d.MaxWorkers), DefaultMaxWorkers},
		{"MaxInFlightPerPartition", int64(d.MaxInFlightPerPartition), DefaultMaxInFlightPerPartition},
		{"MaxInFlightBytesPerPartition", d.MaxInFlightBytesPerPartition, DefaultMaxInFlightBytesPerPartition},
		{"MaxInFlight", int64(d.MaxInFlight), DefaultMaxInFlight},
		{"MaxInFlightBytes", d.MaxInFlightBytes, DefaultMaxInFlightBytes},
		{"Retry.MaxAttempts", int64(d.Retry.MaxAttempts), DefaultMaxAttempts},
		{"MaxPollRecords", int64(d.MaxPollRecords), DefaultMaxPollRecords},
		{"Ordering", int64(d.Ordering), int64(OrderKey)},
	}
	for _, i := range ints {
		if i.got != i.want {
			t.Errorf("default %s = %d, want %d", i.name, i.got, i.want)
		}
	}
	durs := []struct {
		name      string
		got, want time.Duration
	}{
		{"Retry.InitialBackoff", d.Retry.InitialBackoff, DefaultInitialBackoff},
		{"Retry.MaxBackoff", d.Retry.MaxBackoff, DefaultMaxBackoff},
		{"Retry.HoldDelay", d.Retry.HoldDelay, DefaultHoldDelay},
		{"CommitInterval", d.CommitInterval, DefaultCommitInterval},
		{"SessionTimeout", d.SessionTimeout, DefaultSessionTimeout},
		{"RebalanceTimeout", d.RebalanceTimeout, DefaultRebalanceTimeout},
		{"RevokeTimeout", d.RevokeTimeout, DefaultRevokeTimeout},
		{"ProcessTimeout", d.ProcessTimeout, 0},
	}
	for _, x := range durs {
		if x.got != x.want {
			t.Errorf("default %s = %v, want %v", x.name, x.got, x.want)
		}
	}
	// The documented values of the constants themselves.
	if DefaultWorkersPerPartition != 4 || DefaultMaxWorkers != 256 || DefaultMaxInFlightPerPartition != 10000 ||
		DefaultMaxInFlightBytesPerPartition != 16<<20 || DefaultMaxInFlight != 100000 || DefaultMaxInFlightBytes != 256<<20 ||
		DefaultMaxAttempts != 5 || DefaultInitialBackoff != 100*time.Millisecond || DefaultMaxBackoff != 10*time.Second ||
		DefaultHoldDelay != time.Second || DefaultCommitInterval != time.Second || DefaultSessionTimeout != 45*time.Second ||
		DefaultRebalanceTimeout != 60*time.Second || DefaultRevokeTimeout != 20*time.Second || DefaultMaxPollRecords != 10000 ||
		DefaultProcessorName != "processor" {
		t.Error("a Default* constant differs from the value documented on its Config field")
	}
	if d.ProcessorName != DefaultProcessorName {
		t.Errorf("default ProcessorName = %q", d.ProcessorName)
	}
	if d.Naming.DLQTopic("orders", "g") != "orders.g.dlq" || d.Naming.RetryTopic("orders", "g", 2) != "orders.g.retry.2" {
		t.Errorf("default naming: %q, %q", d.Naming.DLQTopic("orders", "g"), d.Naming.RetryTopic("orders", "g", 2))
	}
	if d.Retry.TierAttempts != DefaultTierAttempts || len(d.Retry.Tiers) != 0 {
		t.Errorf("default tiers %v, tier attempts %d", d.Retry.Tiers, d.Retry.TierAttempts)
	}
	if d.Logger == nil {
		t.Error("default Logger is nil")
	}
	if _, ok := d.Clock.(wallClock); !ok {
		t.Errorf("default Clock = %T, want wallClock", d.Clock)
	}
	if d.Registerer != nil || d.OnCommit != nil || d.KgoOpts != nil || d.Middleware != nil {
		t.Error("withDefaults set a field that has no default")
	}
	if err := d.validate(); err != nil {
		t.Errorf("defaulted minimal config does not validate: %v", err)
	}

	// RevokeTimeout = min(20s, RebalanceTimeout/2) unless set.
	revoke := []struct {
		rebalance, revoke, want time.Duration
	}{
		{0, 0, 20 * time.Second},
		{30 * time.Second, 0, 15 * time.Second},
		{40 * time.Second, 0, 20 * time.Second},
		{41 * time.Second, 0, 20 * time.Second},
		{100 * time.Second, 0, 20 * time.Second},
		{10 * time.Second, 0, 5 * time.Second},
		{10 * time.Second, 3 * time.Second, 3 * time.Second},
		{0, 50 * time.Second, 50 * time.Second},
	}
	for _, r := range revoke {
		c := validConfig()
		c.RebalanceTimeout, c.RevokeTimeout = r.rebalance, r.revoke
		if got := c.withDefaults().RevokeTimeout; got != r.want {
			t.Errorf("RebalanceTimeout %v RevokeTimeout %v: defaulted RevokeTimeout = %v, want %v", r.rebalance, r.revoke, got, r.want)
		}
	}

	// Set fields are kept.
	c := validConfig()
	c.WorkersPerPartition = 3
	c.MaxInFlightBytes = 1 << 30
	c.Retry = RetryPolicy{MaxAttempts: 9, InitialBackoff: time.Millisecond, MaxBackoff: time.Minute, HoldDelay: time.Hour, Tiers: []time.Duration{time.Second}, TierAttempts: 2}
	c.ProcessorName = "billing"
	c.Naming = Naming{DLQTemplate: "dead.{topic}"}
	c = c.withDefaults()
	r := c.Retry
	if c.WorkersPerPartition != 3 || c.MaxInFlightBytes != 1<<30 || c.ProcessorName != "billing" ||
		r.MaxAttempts != 9 || r.InitialBackoff != time.Millisecond || r.MaxBackoff != time.Minute || r.HoldDelay != time.Hour ||
		len(r.Tiers) != 1 || r.TierAttempts != 2 || c.Naming.DLQTopic("x", "g") != "dead.x" || c.Naming.RetryTopic("x", "g", 1) != "x.g.retry.1" {
		t.Errorf("withDefaults overwrote a set field: %+v", c)
	}

	// New stores the defaulted config.
	cons, err := New(validConfig())
	if err != nil {
		t.Fatal(err)
	}
	if cons.cfg.MaxWorkers != DefaultMaxWorkers || cons.cfg.RevokeTimeout != DefaultRevokeTimeout || cap(cons.sem) != DefaultMaxWorkers {
		t.Errorf("New did not apply the defaults: MaxWorkers %d RevokeTimeout %v sem %d",
			cons.cfg.MaxWorkers, cons.cfg.RevokeTimeout, cap(cons.sem))
	}
}

func TestConfigRegistry(t *testing.T) {
	cons, err := New(validConfig())
	if err != nil {
		t.Fatal(err)
	}
	if cons.Registry() == nil {
		t.Fatal("Registry() is nil with no Registerer: the consumer must own one")
	}
	reg := prometheus.NewRegistry()
	cfg := validConfig()
	cfg.Registerer = reg
	cons, err = New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	if cons.Registry() != nil {
		t.Fatal("Registry() is not nil with a Registerer")
	}
}

func TestParseOrdering(t *testing.T) {
	for _, o := range []Ordering{OrderKey, OrderPartition, OrderUnordered} {
		got, err := ParseOrdering(o.String())
		if err != nil || got != o {
			t.Errorf("ParseOrdering(%q) = %v, %v; want %v", o.String(), got, err, o)
		}
	}
	for s, want := range map[string]Ordering{
		"":            OrderKey,
		"KEY":         OrderKey,
		" partition ": OrderPartition, //nolint:gocritic // mapKey: the spaces are the test

		"Unordered": OrderUnordered,
	} {
		got, err := ParseOrdering(s)
		if err != nil || got != want {
			t.Errorf("ParseOrdering(%q) = %v, %v; want %v", s, got, err, want)
		}
	}
	for _, s := range []string{"keys", "bogus", "partitioned", "0"} {
		if _, err := ParseOrdering(s); err == nil || !strings.Contains(err.Error(), s) {
			t.Errorf("ParseOrdering(%q) error = %v, want one quoting the input", s, err)
		}
	}
	if got := Ordering(7).String(); got != "Ordering(7)" {
		t.Errorf("Ordering(7).String() = %q", got)
	}
}

// TestConfigNewNeverConnects: New validates and builds, but dials nothing,
// so an unreachable broker does not slow it down or fail it.
func TestConfigNewNeverConnects(t *testing.T) {
	cfg := validConfig()
	cfg.Brokers = []string{"192.0.2.1:9092", "unresolvable.invalid:9092"}
	start := time.Now()
	cons, err := New(cfg)
	if err != nil {
		t.Fatalf("New with an unreachable broker: %v", err)
	}
	if el := time.Since(start); el > 2*time.Second {
		t.Fatalf("New took %v: it must not connect", el)
	}
	if cons.Client() != nil {
		t.Fatal("Client() is not nil before Start")
	}
	// Stopping a consumer that never started is a no-op that closes Stopped.
	if err := cons.Stop(context.Background()); err != nil {
		t.Fatalf("Stop before Start: %v", err)
	}
	select {
	case <-cons.Stopped():
	default:
		t.Fatal("Stopped() not closed after Stop of an unstarted consumer")
	}
	if err := cons.StopAndCancel(context.Background()); err != nil {
		t.Fatalf("second stop: %v", err)
	}
}

func TestFieldErrors(t *testing.T) {
	cfg := validConfig()
	cfg.WorkersPerPartition = -1
	cfg.Retry.MaxAttempts = -2
	_, err := New(cfg)
	fes := FieldErrors(fmt.Errorf("wrapped: %w", err))
	if len(fes) != 2 {
		t.Fatalf("FieldErrors = %v, want 2", fes)
	}
	if fes[0].Field != "WorkersPerPartition" || fes[1].Field != "Retry.MaxAttempts" {
		t.Errorf("fields %q, %q", fes[0].Field, fes[1].Field)
	}
	if !strings.Contains(fes[1].Reason, "-2") {
		t.Errorf("reason %q does not give the value", fes[1].Reason)
	}
	if FieldErrors(nil) != nil || FieldErrors(errors.New("x")) != nil {
		t.Error("FieldErrors of a non-config error is not empty")
	}
}

// TestStartFailsWhenNoBrokerAnswers: a refused address and one that never
// answers both fail Start within ConnectTimeout plus a small constant, and
// the error names the brokers.
func TestStartFailsWhenNoBrokerAnswers(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0") // accepts, never answers
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	var conns []net.Conn
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			conns = append(conns, c)
		}
	}()
	refused, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	refusedAddr := refused.Addr().String()
	refused.Close()
	for _, addr := range []string{refusedAddr, ln.Addr().String()} {
		cfg := validConfig()
		cfg.Brokers = []string{addr}
		cfg.ConnectTimeout = 700 * time.Millisecond
		c, err := New(cfg)
		if err != nil {
			t.Fatal(err)
		}
		start := time.Now()
		err = c.Start(context.Background())
		took := time.Since(start)
		if err == nil {
			t.Fatalf("Start against %s succeeded", addr)
		}
		if !strings.Contains(err.Error(), addr) || !strings.Contains(err.Error(), "ConnectTimeout") {
			t.Errorf("error does not name the broker and the setting: %v", err)
		}
		var ce *ConnectError
		if !errors.As(err, &ce) || len(ce.Brokers) != 1 || ce.Brokers[0] != addr || ce.Timeout != cfg.ConnectTimeout {
			t.Errorf("error is not a *ConnectError for %s: %#v", addr, err)
		}
		if took > 3*time.Second {
			t.Errorf("Start took %s with a 700ms ConnectTimeout", took)
		}
	}
}
