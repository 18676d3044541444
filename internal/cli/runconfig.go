package cli

import (
	"errors"
	"fmt"
	"math"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/knadh/koanf/parsers/yaml"
	"github.com/knadh/koanf/providers/env/v2"
	"github.com/knadh/koanf/providers/file"
	"github.com/knadh/koanf/providers/posflag"
	"github.com/knadh/koanf/v2"
	"github.com/spf13/pflag"
	yaml3 "gopkg.in/yaml.v3"

	"github.com/ordokafka/ordo/pkg/ordo"
)

// FileConfig is the configuration of `ordo run`, whatever layer each value
// came from: the YAML file of --config, then the ORDO_* environment, then
// the flags, each overriding the one before (see runKeys). Durations are Go
// durations ("500ms", "1m"). A zero value means the default.
type FileConfig struct {
	Brokers   []string
	Group     string
	Topics    []string
	Processor string // a registered processor: example, log, or the binary's own
	// ProcessorConfig is the processor's own options (processor_config),
	// handed to its factory (registry.Setup.Decode); nil when absent.
	ProcessorConfig map[string]any
	ClientID        string
	// InstanceID makes the member static (kgo.InstanceID): a restart
	// within the session timeout gets its partitions back without a
	// rebalance.
	InstanceID string
	// TLS and SASL are the connection's security (keys tls.* and sasl.*,
	// and the flags of connFlagDefs; see security.go).
	TLS  TLSOptions
	SASL SASLOptions

	Ordering string
	// Start is where partitions with no commit begin: earliest, latest,
	// an RFC 3339 time or an offset (ordo.ParseStart).
	Start string
	// OffsetsLost is earliest, latest or fail (ordo.LostPolicy).
	OffsetsLost             string
	WorkersPerPartition     int
	MaxWorkers              int
	MaxInFlightPerPartition int
	MaxInFlight             int
	MaxInFlightBytesPerPart int64
	MaxInFlightBytes        int64
	MaxPollRecords          int
	MaxTrackedSpan          int
	MaxOffsetMapBytes       int
	ProcessorName           string
	ProcessTimeout          time.Duration
	CommitInterval          time.Duration
	ConnectTimeout          time.Duration
	SessionTimeout          time.Duration
	RebalanceTimeout        time.Duration
	RevokeTimeout           time.Duration
	ShutdownTimeout         time.Duration
	Retry                   struct {
		MaxAttempts    int
		InitialBackoff time.Duration
		MaxBackoff     time.Duration
		HoldDelay      time.Duration
		// Tiers are the delays of the group's retry tiers (topics
		// <topic>.<group>.retry.<n>, as `ordo topics apply` creates them
		// from the group's chain in topics/).
		Tiers        []time.Duration
		TierAttempts int
	}
	// MetricsAddr serves /metrics; absent: 127.0.0.1:9100; "": none.
	MetricsAddr *string
	// Pprof serves net/http/pprof on the metrics address; default false.
	Pprof    bool
	LogLevel string
	// ExampleWork is the example processor's simulated work per event.
	ExampleWork time.Duration

	// Store is the idempotency store: memory, redis or postgres ("": the
	// processor's default).
	Store         string
	RedisURL      string
	PostgresDSN   string
	StorePrefix   string
	PostgresTable string
	DedupHeader   string
	DedupTTL      time.Duration
	// CountAttempts counts each call in the Redis store before it runs
	// (ordo.Config.Attempts): a record that kills the process moves on.
	CountAttempts  bool
	WebhookURL     string
	WebhookTimeout time.Duration
	Breaker        struct {
		Failures int
		OpenFor  time.Duration
		Probes   int
	}
	RateLimit struct {
		PerSecond float64
		Burst     int
	}
}

// Defaults of the command's own keys (ordo.Config's are ordo's).
const (
	defaultMetricsAddr = "127.0.0.1:9100"
	defaultLogLevel    = "info"
	envPrefix          = "ORDO_"
)

// runKey is one key of `ordo run`'s configuration. This table is the one
// place that relates the names a user writes (the YAML key path, its
// environment variable, its flag) to the ordo.Config field it sets, both
// ways: values go in through it, and ordo's FieldErrors come back out
// through it, so that no error names a Go field.
type runKey struct {
	key   string // YAML key path: "retry.max_attempts"
	field string // ordo.Config field path: "Retry.MaxAttempts"; "" for the command's own keys
	flag  string // flag name without "--"; "" when the key has no flag
	// ptr points into a FileConfig at the key's value; its type says how
	// the value is read (see decodeValue).
	ptr func(*FileConfig) any
}

// env is the key's environment variable: ORDO_ and the key path upper-cased,
// "." and every other non-alphanumeric character replaced by "_"
// (retry.max_attempts -> ORDO_RETRY_MAX_ATTEMPTS).
func (k runKey) env() string {
	return envPrefix + strings.ToUpper(strings.Map(func(r rune) rune {
		if r >= 'a' && r <= 'z' || r >= '0' && r <= '9' {
			return r
		}
		return '_'
	}, k.key))
}

var runKeys = []runKey{
	{"brokers", "Brokers", "brokers", func(c *FileConfig) any { return &c.Brokers }},
	{"group", "Group", "group", func(c *FileConfig) any { return &c.Group }},
	{"topics", "Topics", "topic", func(c *FileConfig) any { return &c.Topics }},
	{"processor", "Processor", "processor", func(c *FileConfig) any { return &c.Processor }},
	{"processor_config", "", "processor-config", func(c *FileConfig) any { return &c.ProcessorConfig }},
	{"client_id", "", "", func(c *FileConfig) any { return &c.ClientID }},
	{"instance_id", "", "", func(c *FileConfig) any { return &c.InstanceID }},
	{"tls.enabled", "", "tls", func(c *FileConfig) any { return &c.TLS.Enabled }},
	{"tls.ca_file", "", "tls-ca", func(c *FileConfig) any { return &c.TLS.CAFile }},
	{"tls.cert_file", "", "tls-cert", func(c *FileConfig) any { return &c.TLS.CertFile }},
	{"tls.key_file", "", "tls-key", func(c *FileConfig) any { return &c.TLS.KeyFile }},
	{"tls.server_name", "", "tls-server-name", func(c *FileConfig) any { return &c.TLS.ServerName }},
	{"tls.insecure_skip_verify", "", "tls-insecure-skip-verify", func(c *FileConfig) any { return &c.TLS.InsecureSkipVerify }},
	{"sasl.mechanism", "", "sasl-mechanism", func(c *FileConfig) any { return &c.SASL.Mechanism }},
	{"sasl.user", "", "sasl-user", func(c *FileConfig) any { return &c.SASL.User }},
	{"sasl.password", "", "", func(c *FileConfig) any { return &c.SASL.Password }}, // ORDO_SASL_PASSWORD only (secretKeys)
	{"sasl.password_file", "", "sasl-password-file", func(c *FileConfig) any { return &c.SASL.PasswordFile }},
	{"sasl.token", "", "", func(c *FileConfig) any { return &c.SASL.Token }}, // ORDO_SASL_TOKEN only (secretKeys)
	{"sasl.token_file", "", "sasl-token-file", func(c *FileConfig) any { return &c.SASL.TokenFile }},
	{"ordering", "Ordering", "", func(c *FileConfig) any { return &c.Ordering }},
	{"start", "Start", "start", func(c *FileConfig) any { return &c.Start }},
	{"offsets_lost", "OffsetsLost", "offsets-lost", func(c *FileConfig) any { return &c.OffsetsLost }},
	{"workers_per_partition", "WorkersPerPartition", "", func(c *FileConfig) any { return &c.WorkersPerPartition }},
	{"max_workers", "MaxWorkers", "", func(c *FileConfig) any { return &c.MaxWorkers }},
	{"max_in_flight_per_partition", "MaxInFlightPerPartition", "", func(c *FileConfig) any { return &c.MaxInFlightPerPartition }},
	{"max_in_flight", "MaxInFlight", "", func(c *FileConfig) any { return &c.MaxInFlight }},
	{"max_in_flight_bytes_per_partition", "MaxInFlightBytesPerPartition", "", func(c *FileConfig) any { return &c.MaxInFlightBytesPerPart }},
	{"max_in_flight_bytes", "MaxInFlightBytes", "", func(c *FileConfig) any { return &c.MaxInFlightBytes }},
	{"max_poll_records", "MaxPollRecords", "", func(c *FileConfig) any { return &c.MaxPollRecords }},
	{"max_tracked_span", "MaxTrackedSpan", "", func(c *FileConfig) any { return &c.MaxTrackedSpan }},
	{"max_offset_map_bytes", "MaxOffsetMapBytes", "", func(c *FileConfig) any { return &c.MaxOffsetMapBytes }},
	{"processor_name", "ProcessorName", "", func(c *FileConfig) any { return &c.ProcessorName }},
	{"process_timeout", "ProcessTimeout", "", func(c *FileConfig) any { return &c.ProcessTimeout }},
	{"commit_interval", "CommitInterval", "", func(c *FileConfig) any { return &c.CommitInterval }},
	{"connect_timeout", "ConnectTimeout", "", func(c *FileConfig) any { return &c.ConnectTimeout }},
	{"session_timeout", "SessionTimeout", "", func(c *FileConfig) any { return &c.SessionTimeout }},
	{"rebalance_timeout", "RebalanceTimeout", "", func(c *FileConfig) any { return &c.RebalanceTimeout }},
	{"revoke_timeout", "RevokeTimeout", "", func(c *FileConfig) any { return &c.RevokeTimeout }},
	{"shutdown_timeout", "ShutdownTimeout", "", func(c *FileConfig) any { return &c.ShutdownTimeout }},
	{"retry.max_attempts", "Retry.MaxAttempts", "", func(c *FileConfig) any { return &c.Retry.MaxAttempts }},
	{"retry.initial_backoff", "Retry.InitialBackoff", "", func(c *FileConfig) any { return &c.Retry.InitialBackoff }},
	{"retry.max_backoff", "Retry.MaxBackoff", "", func(c *FileConfig) any { return &c.Retry.MaxBackoff }},
	{"retry.hold_delay", "Retry.HoldDelay", "", func(c *FileConfig) any { return &c.Retry.HoldDelay }},
	{"retry.tiers", "Retry.Tiers", "", func(c *FileConfig) any { return &c.Retry.Tiers }},
	{"retry.tier_attempts", "Retry.TierAttempts", "", func(c *FileConfig) any { return &c.Retry.TierAttempts }},
	{"metrics_addr", "", "metrics-addr", func(c *FileConfig) any { return &c.MetricsAddr }},
	{"pprof", "", "pprof", func(c *FileConfig) any { return &c.Pprof }},
	{"log_level", "", "log-level", func(c *FileConfig) any { return &c.LogLevel }},
	{"example_work", "", "", func(c *FileConfig) any { return &c.ExampleWork }},
	{"store", "", "store", func(c *FileConfig) any { return &c.Store }},
	{"redis_url", "", "redis-url", func(c *FileConfig) any { return &c.RedisURL }},
	{"postgres_dsn", "", "postgres-dsn", func(c *FileConfig) any { return &c.PostgresDSN }},
	{"store_prefix", "", "", func(c *FileConfig) any { return &c.StorePrefix }},
	{"postgres_table", "", "", func(c *FileConfig) any { return &c.PostgresTable }},
	{"dedup_header", "", "", func(c *FileConfig) any { return &c.DedupHeader }},
	{"dedup_ttl", "", "", func(c *FileConfig) any { return &c.DedupTTL }},
	{"count_attempts", "", "", func(c *FileConfig) any { return &c.CountAttempts }},
	{"webhook_url", "", "webhook-url", func(c *FileConfig) any { return &c.WebhookURL }},
	{"webhook_timeout", "", "", func(c *FileConfig) any { return &c.WebhookTimeout }},
	{"breaker.failures", "", "", func(c *FileConfig) any { return &c.Breaker.Failures }},
	{"breaker.open_for", "", "", func(c *FileConfig) any { return &c.Breaker.OpenFor }},
	{"breaker.probes", "", "", func(c *FileConfig) any { return &c.Breaker.Probes }},
	{"rate_limit.per_second", "", "", func(c *FileConfig) any { return &c.RateLimit.PerSecond }},
	{"rate_limit.burst", "", "", func(c *FileConfig) any { return &c.RateLimit.Burst }},
}

// keyByName, keyByField, keyByEnv and keyByFlag index runKeys.
var keyByName, keyByField, keyByEnv, keyByFlag = func() (byName, byField, byEnv, byFlag map[string]runKey) {
	byName, byField, byEnv, byFlag = map[string]runKey{}, map[string]runKey{}, map[string]runKey{}, map[string]runKey{}
	for _, k := range runKeys {
		byName[k.key] = k
		byEnv[k.env()] = k
		if k.field != "" {
			byField[k.field] = k
		}
		if k.flag != "" {
			byFlag[k.flag] = k
		}
	}
	return byName, byField, byEnv, byFlag
}()

// layer is where a value came from.
type layer int

const (
	fromDefault layer = iota
	fromFile
	fromEnv
	fromFlag
)

// runConfig is a loaded configuration and, for each key set by a layer,
// where its value came from, so that an error names it as the user wrote it.
type runConfig struct {
	fc     FileConfig
	path   string
	origin map[string]layer
	// unknownEnv are ORDO_* variables that name no key (names only: their
	// values are never printed).
	unknownEnv []string
	// errs are the unknown keys and unreadable values; bad holds the keys
	// whose value could not be read (left at their zero value).
	errs []error
	bad  map[string]bool
}

// name is how the user wrote key: its path in the file, its environment
// variable or its flag. idx >= 0 names one entry of a list.
func (rc *runConfig) name(key string, idx int) string {
	k := keyByName[key]
	switch rc.origin[key] {
	case fromFile:
		if idx >= 0 {
			return fmt.Sprintf("%s: %s[%d]", rc.path, key, idx)
		}
		return rc.path + ": " + key
	case fromEnv:
		if idx >= 0 {
			return fmt.Sprintf("%s entry %d", k.env(), idx+1)
		}
		return k.env()
	case fromFlag:
		if idx >= 0 {
			return fmt.Sprintf("--%s entry %d", k.flag, idx+1)
		}
		return "--" + k.flag
	}
	if idx >= 0 {
		return fmt.Sprintf("%s[%d]", key, idx)
	}
	return key
}

// errorf returns an error about key (entry idx, or -1 for the whole key),
// named as the user wrote it. A key no layer set is named with the ways to
// set it.
func (rc *runConfig) errorf(key string, idx int, format string, args ...any) error {
	msg := rc.name(key, idx) + ": " + fmt.Sprintf(format, args...)
	if rc.origin[key] == fromDefault {
		k := keyByName[key]
		ways := "in the --config file or with " + k.env()
		if k.flag != "" {
			ways += " or --" + k.flag
		}
		msg += " (set " + key + " " + ways + ")"
	}
	return errors.New(msg)
}

// loadRunConfig reads the layers through koanf: the YAML file at path (if
// path is not ""), the ORDO_* variables of environ, and the flags of fs that
// were set (fs may be nil), each overriding the one before. An unreadable
// file is the error it returns; unknown file keys and values of the wrong
// type are in rc.errs, all of them, each naming the key as the user wrote
// it (a key whose value could not be read is in rc.bad). It checks no
// value's range: that is RunCmd.Validate's, with ordo.New's checks.
func loadRunConfig(path string, environ []string, fs *pflag.FlagSet) (*runConfig, error) {
	rc := &runConfig{path: path, origin: map[string]layer{}, bad: map[string]bool{}}
	var errs []error

	fileK := koanf.New(".")
	if path != "" {
		if err := fileK.Load(file.Provider(path), yaml.Parser()); err != nil {
			return nil, fmt.Errorf("%s: %w", path, err)
		}
		for _, key := range fileK.Keys() {
			if _, ok := keyByName[key]; ok {
				continue
			}
			if m, ok := fileK.Get(key).(map[string]any); ok && len(m) == 0 {
				continue // an empty section: "retry: {}"
			}
			if underKey(key) {
				continue // "group: {a: 1}": reported as group's wrong type, below
			}
			errs = append(errs, unknownKey(path, key))
		}
	}

	envK := koanf.New(".")
	err := envK.Load(env.Provider(".", env.Opt{
		Prefix:      envPrefix,
		EnvironFunc: func() []string { return environ },
		TransformFunc: func(name, value string) (string, any) {
			k, ok := keyByEnv[name]
			if !ok {
				// The test suite's own variables (ORDO_TEST_*, ORDO_E2E_*)
				// are not a typo of a key.
				if !strings.HasPrefix(name, "ORDO_TEST_") && !strings.HasPrefix(name, "ORDO_E2E_") {
					rc.unknownEnv = append(rc.unknownEnv, name)
				}
				return "", nil
			}
			return k.key, value
		},
	}), nil)
	if err != nil {
		return nil, fmt.Errorf("environment: %w", err)
	}
	slices.Sort(rc.unknownEnv)

	flagK := koanf.New(".")
	if fs != nil {
		// Without a koanf to consult, posflag takes only the flags set.
		err := flagK.Load(posflag.ProviderWithFlag(fs, ".", nil, func(f *pflag.Flag) (string, any) {
			k, ok := keyByFlag[f.Name]
			if !ok {
				return "", nil
			}
			return k.key, posflag.FlagVal(fs, f)
		}), nil)
		if err != nil {
			return nil, fmt.Errorf("flags: %w", err)
		}
	}

	all := koanf.New(".")
	for _, l := range []*koanf.Koanf{fileK, envK, flagK} {
		if err := all.Merge(l); err != nil {
			return nil, err
		}
	}
	for _, k := range runKeys {
		switch {
		case flagK.Exists(k.key):
			rc.origin[k.key] = fromFlag
		case envK.Exists(k.key):
			rc.origin[k.key] = fromEnv
		case fileK.Exists(k.key):
			rc.origin[k.key] = fromFile
		default:
			continue
		}
		if err := decodeValue(all.Get(k.key), k.ptr(&rc.fc)); err != nil {
			errs = append(errs, rc.errorf(k.key, -1, "%v", err))
			rc.bad[k.key] = true
		}
	}
	rc.errs = errs
	return rc, nil
}

// underKey reports whether key is inside the value of a key (a mapping
// written where a value belongs).
func underKey(key string) bool {
	for i := range len(key) {
		if key[i] == '.' {
			if _, ok := keyByName[key[:i]]; ok {
				return true
			}
		}
	}
	return false
}

// unknownKey names a file key that is not in runKeys, and the key meant if
// it looks like one.
func unknownKey(path, key string) error {
	var children []string
	for _, k := range runKeys {
		if strings.HasPrefix(k.key, key+".") {
			children = append(children, strings.TrimPrefix(k.key, key+"."))
		}
	}
	if children != nil { // "retry: 3": a section written as a value
		return fmt.Errorf("%s: %s: want a mapping of %s", path, key, strings.Join(children, ", "))
	}
	msg := fmt.Sprintf("%s: unknown key %q", path, key)
	last := key[strings.LastIndex(key, ".")+1:]
	for _, k := range runKeys {
		if len(last) >= 4 && strings.Contains(k.key, last) {
			return fmt.Errorf("%s (did you mean %s?)", msg, k.key)
		}
	}
	return errors.New(msg + " (the keys are listed in docs/configuration.md)")
}

// decodeValue reads v (from YAML, the environment or a flag) into dst, a
// pointer into FileConfig: *string, *secret, **string (a string whose absence
// differs from ""), *[]string (a YAML list or a comma-separated string),
// *int, *int64, *float64, *bool, *time.Duration (a Go duration with its
// unit) or *[]time.Duration (a list of them, like *[]string). A YAML null
// leaves dst as it is.
func decodeValue(v, dst any) error {
	if v == nil {
		return nil
	}
	var err error
	switch dst := dst.(type) {
	case *string:
		*dst, err = scalar(v)
	case *secret:
		var s string
		s, err = scalar(v) // its errors never show the value
		*dst = secret(s)
	case **string:
		var s string
		if s, err = scalar(v); err == nil {
			*dst = &s
		}
	case *[]string:
		*dst, err = list(v)
	case *int:
		var n int64
		if n, err = integer(v); err == nil {
			*dst = int(n)
		}
	case *int64:
		*dst, err = integer(v)
	case *time.Duration:
		*dst, err = duration(v)
	case *[]time.Duration:
		var items []string
		if items, err = list(v); err == nil {
			out := make([]time.Duration, 0, len(items))
			for i, it := range items {
				d, derr := duration(strings.TrimSpace(it))
				if derr != nil {
					return fmt.Errorf("entry %d: %w", i+1, derr)
				}
				out = append(out, d)
			}
			*dst = out
		}
	case *bool:
		*dst, err = boolean(v)
	case *float64:
		*dst, err = number(v)
	case *map[string]any:
		*dst, err = mapping(v)
	default:
		err = fmt.Errorf("internal error: runKeys has no decoder for %T", dst) // caught by TestRunConfigEveryKeyFromFileAndEnv
	}
	return err
}

// mapping reads a YAML mapping: from the file, or, from a variable or a
// flag, its YAML text ('{work: 2ms}'; "" is an empty mapping).
func mapping(v any) (map[string]any, error) {
	switch v := v.(type) {
	case map[string]any:
		return v, nil
	case string:
		var m map[string]any
		if err := yaml3.Unmarshal([]byte(v), &m); err != nil {
			return nil, fmt.Errorf("want a YAML mapping ('{key: value}'), got %q", v)
		}
		if m == nil {
			m = map[string]any{}
		}
		return m, nil
	}
	return nil, fmt.Errorf("want a mapping of the processor's options, got %v", v)
}

func scalar(v any) (string, error) {
	switch v := v.(type) {
	case string:
		return v, nil
	case time.Time:
		// YAML reads an unquoted timestamp (start: 2026-11-30T07:00:00Z)
		// as a time: give back the RFC 3339 form the user wrote.
		return v.Format(time.RFC3339Nano), nil
	case map[string]any, []any, []string:
		return "", errors.New("want a single value, got a list or a mapping")
	default:
		return fmt.Sprint(v), nil
	}
}

// list reads a YAML list of strings, or a comma-separated string (the
// environment; a flag's value is already a list).
func list(v any) ([]string, error) {
	switch v := v.(type) {
	case []string:
		return v, nil
	case []any:
		out := make([]string, 0, len(v))
		for i, e := range v {
			s, err := scalar(e)
			if err != nil || e == nil {
				return nil, fmt.Errorf("entry %d: want a string", i+1)
			}
			out = append(out, s)
		}
		return out, nil
	case string:
		if strings.TrimSpace(v) == "" {
			return []string{}, nil
		}
		parts := strings.Split(v, ",")
		for i := range parts {
			parts[i] = strings.TrimSpace(parts[i])
		}
		return parts, nil
	case map[string]any:
		return nil, errors.New("want a list, got a mapping")
	}
	return []string{fmt.Sprint(v)}, nil
}

func integer(v any) (int64, error) {
	switch v := v.(type) {
	case int:
		return int64(v), nil
	case int64:
		return v, nil
	case uint64:
		if v > math.MaxInt64 {
			return 0, fmt.Errorf("%d is too large", v)
		}
		return int64(v), nil
	case float64:
		if v != math.Trunc(v) || math.Abs(v) > math.MaxInt64 {
			return 0, fmt.Errorf("want an integer, got %v", v)
		}
		return int64(v), nil
	case string:
		s := strings.TrimSpace(v)
		if s == "" {
			return 0, nil // an empty variable: the default
		}
		n, err := strconv.ParseInt(s, 10, 64)
		if err != nil {
			return 0, fmt.Errorf("want an integer, got %q", v)
		}
		return n, nil
	}
	return 0, fmt.Errorf("want an integer, got %v", v)
}

// boolean reads true or false (YAML), or a string strconv.ParseBool takes
// (the environment: 1, true, false, ...; "" is false).
func boolean(v any) (bool, error) {
	switch v := v.(type) {
	case bool:
		return v, nil
	case string:
		s := strings.TrimSpace(v)
		if s == "" {
			return false, nil
		}
		b, err := strconv.ParseBool(s)
		if err != nil {
			return false, fmt.Errorf("want true or false, got %q", v)
		}
		return b, nil
	}
	return false, fmt.Errorf("want true or false, got %v", v)
}

func number(v any) (float64, error) {
	switch v := v.(type) {
	case int:
		return float64(v), nil
	case int64:
		return float64(v), nil
	case uint64:
		return float64(v), nil
	case float64:
		return v, nil
	case string:
		s := strings.TrimSpace(v)
		if s == "" {
			return 0, nil
		}
		f, err := strconv.ParseFloat(s, 64)
		if err != nil || math.IsNaN(f) || math.IsInf(f, 0) {
			return 0, fmt.Errorf("want a number, got %q", v)
		}
		return f, nil
	}
	return 0, fmt.Errorf("want a number, got %v", v)
}

func duration(v any) (time.Duration, error) {
	switch v := v.(type) {
	case time.Duration:
		return v, nil
	case int, int64, uint64, float64:
		if n, err := integer(v); err == nil && n == 0 {
			return 0, nil
		}
		return 0, fmt.Errorf("want a duration with its unit, such as 500ms or 1m; got %v", v)
	case string:
		s := strings.TrimSpace(v)
		if s == "" || s == "0" {
			return 0, nil
		}
		d, err := time.ParseDuration(s)
		if err != nil {
			return 0, fmt.Errorf("want a duration with its unit, such as 500ms or 1m; got %q", v)
		}
		return d, nil
	}
	return 0, fmt.Errorf("want a duration with its unit, such as 500ms or 1m; got %v", v)
}

// goField matches what may be an ordo.Config field path in a FieldError's
// reason: "RebalanceTimeout", "Retry.InitialBackoff".
var goField = regexp.MustCompile(`\b[A-Z][A-Za-z]*(?:\.[A-Z][A-Za-z]*)*\b`)

// fieldIndex splits "Topics[1]" into "Topics" and 1 (-1 without an index).
var fieldIndex = regexp.MustCompile(`^(.*)\[(\d+)\]$`)

// fieldErrors translates ordo.New's FieldErrors into errors named as the
// user wrote each key, through runKeys, skipping keys in skip (already
// reported). Other errors are returned as they are.
func (rc *runConfig) fieldErrors(err error, skip map[string]bool) []error {
	fes := ordo.FieldErrors(err)
	if len(fes) == 0 {
		if err != nil {
			return []error{err}
		}
		return nil
	}
	var out []error
	for _, fe := range fes {
		field, idx := fe.Field, -1
		if m := fieldIndex.FindStringSubmatch(field); m != nil {
			field = m[1]
			idx, _ = strconv.Atoi(m[2])
		}
		k, ok := keyByField[field]
		if !ok { // a field this command does not set: cannot happen
			out = append(out, fe)
			continue
		}
		if skip[k.key] {
			continue
		}
		reason := goField.ReplaceAllStringFunc(fe.Reason, func(s string) string {
			if k, ok := keyByField[s]; ok {
				return k.key
			}
			return s
		})
		out = append(out, rc.errorf(k.key, idx, "%s", reason))
	}
	return out
}
