package ordo

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"os"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/twmb/franz-go/pkg/kgo"
)

// Ordering says which records of a partition may run concurrently.
type Ordering int

const (
	// OrderKey (the default) runs records of one key one at a time, in
	// offset order, and records of different keys in parallel. Records
	// without a key are independent of each other.
	OrderKey Ordering = iota
	// OrderPartition runs the records of a partition one at a time, in
	// offset order: Kafka's classic consumer semantics.
	OrderPartition
	// OrderUnordered runs any records in parallel. Commits are still never
	// past an unfinished record.
	OrderUnordered
)

func (o Ordering) String() string {
	switch o {
	case OrderKey:
		return "key"
	case OrderPartition:
		return "partition"
	case OrderUnordered:
		return "unordered"
	}
	return fmt.Sprintf("Ordering(%d)", int(o))
}

// ParseOrdering parses "key", "partition" or "unordered".
func ParseOrdering(s string) (Ordering, error) {
	switch strings.ToLower(strings.TrimSpace(s)) {
	case "key", "":
		return OrderKey, nil
	case "partition":
		return OrderPartition, nil
	case "unordered":
		return OrderUnordered, nil
	}
	return 0, fmt.Errorf("ordering must be one of key, partition, unordered; got %q", s)
}

// RetryPolicy says how a failing record is retried: first in place, a few
// times, on a timer (its key waits while every other key keeps running; no
// worker sleeps); then, if Tiers are set, through the group's retry topics,
// one per delay (the record leaves its key's order: later records of the
// key go on); then to the dead-letter topic.
type RetryPolicy struct {
	// MaxAttempts is the number of processor calls a record gets in place,
	// the first included, before it moves on to retry tier 1 or, without
	// tiers, to the dead-letter topic. Default 5.
	MaxAttempts int
	// InitialBackoff is the delay before the first in-place retry; each
	// further retry doubles it, up to MaxBackoff, with jitter. Default
	// 100ms.
	InitialBackoff time.Duration
	// MaxBackoff caps the backoff; it is also how often a dead-letter or
	// retry-tier produce that failed is tried again. Default 10s.
	MaxBackoff time.Duration
	// HoldDelay is the delay before a record that returned a Hold error is
	// tried again. Default 1s.
	HoldDelay time.Duration
	// Tiers are the delays of the group's retry topics, in order: a record
	// that used its in-place attempts goes to tier 1, where it runs again
	// no sooner than Tiers[0] after it failed; if it fails there too, to
	// tier 2, and so on, then to the dead-letter topic. The tier topics are
	// named by Config.Naming and created by `ordo topics apply`. Each delay
	// > 0, none shorter than the one before. Default none: in place, then
	// the dead-letter topic.
	Tiers []time.Duration
	// TierAttempts is the number of calls a record gets on each retry-tier
	// delivery before it moves on. Default 1.
	TierAttempts int
}

// backoff returns the un-jittered delay after the given failed attempt
// (1-based): InitialBackoff * 2^(attempt-1), capped at MaxBackoff.
func (rp RetryPolicy) backoff(attempt int) time.Duration {
	if attempt < 1 {
		attempt = 1
	}
	exp := math.Pow(2, float64(attempt-1))
	d := float64(rp.InitialBackoff) * exp
	// >=: float64(MaxInt64) rounds up to 2^63, which would overflow.
	if d >= float64(rp.MaxBackoff) || math.IsInf(d, 0) {
		return rp.MaxBackoff
	}
	return time.Duration(d)
}

// Config configures a Consumer. The zero value of every field but Brokers,
// Group, Topics and Processor means "use the default" stated on the field.
type Config struct {
	// Brokers are the seed brokers, host:port. Required.
	Brokers []string
	// Group is the consumer group. Required.
	Group string
	// Topics are the topics to consume. Required.
	Topics []string
	// Processor handles each record. Required.
	Processor Processor
	// Middleware wraps Processor; Middleware[0] is outermost. Ordo itself
	// always installs Recover outside of them.
	Middleware []Middleware
	// ProcessorName names the processor in the ordo-processor header of
	// dead-lettered records and in logs. Default "processor".
	ProcessorName string

	// Ordering is the ordering mode. Default OrderKey.
	Ordering Ordering
	// WorkersPerPartition bounds the concurrent processor calls of one
	// partition. Default 4: workers share the lane's lock, so for fast
	// processors a few do more than many (a no-op processor consumed about
	// 20% faster with 4 per partition than with 16); raise it for
	// processors that wait on I/O (Parallel Consumer's volume test uses
	// 100). OrderPartition always runs one at a time.
	WorkersPerPartition int
	// MaxWorkers bounds the concurrent processor calls of the whole
	// consumer, across partitions. Default 256.
	MaxWorkers int

	// MaxInFlightPerPartition is the most unfinished records (received but
	// not yet committed-safe) a partition may hold before its fetching is
	// paused. Default 10000. A retry tier's partition holds at most 1,000
	// (or this, if lower): its records mostly wait for their due time.
	MaxInFlightPerPartition int
	// MaxInFlightBytesPerPartition is the same bound in bytes of key and
	// value. Default 16 MiB.
	MaxInFlightBytesPerPartition int64
	// MaxInFlight bounds unfinished records across all partitions. Default
	// 100000.
	MaxInFlight int
	// MaxInFlightBytes bounds their bytes. Default 256 MiB.
	MaxInFlightBytes int64
	// MaxTrackedSpan bounds the offsets a partition tracks: from its
	// oldest unfinished record to its newest received one. One stuck
	// record (a Hold, a slow call) with many finished records behind it
	// reaches this bound, and the partition pauses until the stuck record
	// finishes. The tracker costs 32 bytes per offset in the span. Default
	// 100000; at most 1000000.
	MaxTrackedSpan int
	// MaxOffsetMapBytes is the largest offset map Ordo writes into a
	// commit's metadata (the records finished above the committed offset,
	// which the next owner skips). Set it to your brokers'
	// offset.metadata.max.bytes if that is below Kafka's default of 4096; a
	// partition whose finished records would not fit a map pauses rather
	// than leaving any out. Default 4096; at least 256.
	MaxOffsetMapBytes int

	// ProcessTimeout bounds one processor call through its context; an
	// overrun counts as a failed attempt of class "timeout". Default 0: no
	// per-call deadline (a context deadline costs about a microsecond per
	// record; set one when the processor calls out over the network).
	ProcessTimeout time.Duration
	// Retry is the retry policy: in place, then retry tiers, then the
	// dead-letter topic. Defaults on its fields.
	Retry RetryPolicy
	// Naming names the retry and dead-letter topics of the group's source
	// topics. Default DefaultNaming: "<topic>.<group>.retry.<n>" and
	// "<topic>.<group>.dlq", as `ordo topics apply` creates them.
	Naming Naming
	// Attempts, if set, counts the calls of a record durably before they
	// are made (and their end after), so that a record that kills its
	// process on every delivery (a crash, os.Exit) still moves on to the
	// next tier and the dead-letter topic after its in-place attempts
	// (class interrupted) instead of looping forever. Only calls that ran
	// alone count (see AttemptStore): a record whose call was cut short by
	// another's crash is not blamed, and the record that crashed first
	// beside others needs one crash more. It costs two store round trips
	// per call, and the in-order runner: the lane's records run through its
	// scheduler. pkg/store/redisstore's NewAttempts implements it (`ordo run`: count_attempts). Default nil.
	Attempts AttemptStore

	// Start is where a source partition with no committed offset begins:
	// StartEarliest (the default), StartLatest, StartAtTime or
	// StartAtOffset. It applies only while the group has no commit for
	// the partition: once it has one (after a run, or `ordo replay
	// reset`), the commit wins. Retry tiers always start at their log
	// start.
	Start Start
	// OffsetsLost is what a partition does when its committed offset is
	// below its log start, the records between deleted by retention before
	// the group read them: LostEarliest (the default) resumes at the log
	// start, LostLatest at the log end (source topics only), LostFail stops
	// the consumer with an *OffsetsLostError. Every loss is logged at error
	// level and counted in ordo_offsets_lost_total. A member that falls
	// below the log start while consuming always resumes at the log start
	// (or stops, with LostFail).
	OffsetsLost LostPolicy

	// CommitInterval is how often each partition's watermark (its lowest
	// unfinished offset) is committed. Default 1s. Ordo also commits on
	// revoke and on stop.
	CommitInterval time.Duration
	// ConnectTimeout bounds how long Start waits for a seed broker to
	// answer before it fails, naming the brokers it tried. Default 30s.
	ConnectTimeout time.Duration
	// SessionTimeout is the group session timeout. Default 45s.
	SessionTimeout time.Duration
	// RebalanceTimeout is the group rebalance timeout. Default 60s.
	RebalanceTimeout time.Duration
	// RevokeTimeout bounds how long a revoked partition's in-flight records
	// may take to finish before their contexts are canceled and the
	// watermark is committed without them. It must be below
	// RebalanceTimeout. Default 20s, or RebalanceTimeout/2 if that is less.
	RevokeTimeout time.Duration
	// ShutdownTimeout is how long Run's graceful stop may take. Default 30s.
	ShutdownTimeout time.Duration
	// StallAfter is how long a partition's lowest unfinished offset may
	// stay put, with records unfinished, before Consumer.Ready reports the
	// partition stalled. Default 5m.
	StallAfter time.Duration
	// MaxPollRecords bounds the records taken from the client per poll.
	// Default 10000.
	MaxPollRecords int

	// Registerer receives Ordo's metrics. Default: a new registry owned by
	// the consumer, returned by Consumer.Registry. Ordo never uses the
	// global Prometheus registry.
	Registerer prometheus.Registerer
	// Logger receives the engine's logs. Default: warnings and errors as
	// text on standard error (a dead-letter topic that cannot be written to
	// must not go unnoticed).
	Logger *slog.Logger
	// Clock is the time source. Default: the wall clock.
	Clock Clock
	// Fencer, if set, hands out a fencing token every time a partition is
	// assigned to this consumer: the lane runs nothing until it has one,
	// and every call's RecordInfo.Token carries it, so that a store can
	// reject the writes of a member that lost the partition to another
	// (pkg/store's stores implement it). Default nil: no token.
	Fencer Fencer
	// OnCommit, if set, is called after each successful commit with what
	// was committed. It is a seam for tests and for audit; it runs on the
	// committing goroutine and must be quick.
	OnCommit func(CommitEvent)
	// KgoOpts are passed to kgo.NewClient after Ordo's own options, for
	// TLS, SASL, client ID, fetch sizes and the rest of franz-go's knobs.
	// Ordo's own defaults come first, so these replace them:
	// kgo.FetchMaxWait(DefaultFetchMaxWait) and, for the retry and
	// dead-letter copies the client produces,
	// kgo.ProducerLinger(DefaultCopyLinger). New refuses the options Ordo sets itself because its guarantees rest
	// on them: a group or topics (use Group, Topics), autocommit, another
	// balancer than cooperative-sticky, rebalance callbacks,
	// AdjustFetchOffsetsFn, the start and reset offsets (use Start,
	// OffsetsLost), and the session and rebalance timeouts (use
	// SessionTimeout, RebalanceTimeout).
	KgoOpts []kgo.Opt
}

// AttemptStore counts durably the calls of a record that began and never
// ended: calls its process died in (see Config.Attempts). A crash kills
// every call in flight, so a call only counts against its record when it
// ran alone in its process: a record whose earlier call began and never
// ended runs alone (the consumer's other calls wait), and if it kills the
// process again, it alone did.
type AttemptStore interface {
	// Begin is called before each call of the record identified by key
	// (its group, origin and tier); alone says the call runs alone in its
	// process. It returns how many earlier calls of the record ran alone
	// and never ended, and whether any earlier call began and never ended.
	Begin(ctx context.Context, key string, alone bool) (crashedAlone int, crashed bool, err error)
	// End records that the record's call ended, whatever its result: the
	// record is out of any crash loop, and its counts can go.
	End(ctx context.Context, key string) error
}

// Fencer hands out fencing tokens: a number, per group and partition, that
// grows every time the partition is assigned to a member. A store that
// remembers the highest token it has seen for a partition can then reject a
// write that carries a lower one: the write of a member that lost the
// partition (a session timeout, a processor slower than the rebalance
// timeout) and does not know it yet.
type Fencer interface {
	Fence(ctx context.Context, group, topic string, partition int32) (token int64, err error)
}

// CommitEvent describes one successful commit.
type CommitEvent struct {
	// Reason is "periodic", "revoke" or "stop".
	Reason string
	// Offsets are the committed offsets: for each partition, its lowest
	// unfinished offset at the time of the commit.
	Offsets map[string]map[int32]int64
}

// Defaults.
const (
	DefaultWorkersPerPartition          = 4
	DefaultMaxWorkers                   = 256
	DefaultMaxInFlightPerPartition      = 10000
	DefaultMaxInFlightBytesPerPartition = 16 << 20
	DefaultMaxInFlight                  = 100000
	DefaultMaxInFlightBytes             = 256 << 20
	DefaultMaxTrackedSpan               = 100000
	DefaultMaxOffsetMapBytes            = 4096
	DefaultMaxAttempts                  = 5
	DefaultInitialBackoff               = 100 * time.Millisecond
	DefaultMaxBackoff                   = 10 * time.Second
	DefaultHoldDelay                    = time.Second
	DefaultTierAttempts                 = 1
	DefaultCommitInterval               = time.Second
	DefaultConnectTimeout               = 30 * time.Second
	DefaultSessionTimeout               = 45 * time.Second
	DefaultRebalanceTimeout             = 60 * time.Second
	DefaultRevokeTimeout                = 20 * time.Second
	DefaultMaxPollRecords               = 10000
	DefaultStallAfter                   = 5 * time.Minute
	DefaultFetchMaxWait                 = 100 * time.Millisecond // kgo.FetchMaxWait unless KgoOpts sets it
	DefaultCopyLinger                   = 50 * time.Millisecond  // kgo.ProducerLinger of the retry and dead-letter copies unless KgoOpts sets it
	DefaultShutdownTimeout              = 30 * time.Second
	DefaultProcessorName                = "processor"
)

// withDefaults returns a copy of c with every zero field set to its default.
func (c Config) withDefaults() Config {
	setInt := func(v *int, d int) {
		if *v == 0 {
			*v = d
		}
	}
	setI64 := func(v *int64, d int64) {
		if *v == 0 {
			*v = d
		}
	}
	setDur := func(v *time.Duration, d time.Duration) {
		if *v == 0 {
			*v = d
		}
	}
	if c.ProcessorName == "" {
		c.ProcessorName = DefaultProcessorName
	}
	setInt(&c.WorkersPerPartition, DefaultWorkersPerPartition)
	setInt(&c.MaxWorkers, DefaultMaxWorkers)
	setInt(&c.MaxInFlightPerPartition, DefaultMaxInFlightPerPartition)
	setI64(&c.MaxInFlightBytesPerPartition, DefaultMaxInFlightBytesPerPartition)
	setInt(&c.MaxInFlight, DefaultMaxInFlight)
	setI64(&c.MaxInFlightBytes, DefaultMaxInFlightBytes)
	setInt(&c.MaxTrackedSpan, DefaultMaxTrackedSpan)
	setInt(&c.MaxOffsetMapBytes, DefaultMaxOffsetMapBytes)
	setInt(&c.Retry.MaxAttempts, DefaultMaxAttempts)
	setDur(&c.Retry.InitialBackoff, DefaultInitialBackoff)
	setDur(&c.Retry.MaxBackoff, DefaultMaxBackoff)
	setDur(&c.Retry.HoldDelay, DefaultHoldDelay)
	setInt(&c.Retry.TierAttempts, DefaultTierAttempts)
	setDur(&c.CommitInterval, DefaultCommitInterval)
	setDur(&c.ConnectTimeout, DefaultConnectTimeout)
	setDur(&c.SessionTimeout, DefaultSessionTimeout)
	setDur(&c.RebalanceTimeout, DefaultRebalanceTimeout)
	if c.RevokeTimeout == 0 && c.RebalanceTimeout > 0 {
		c.RevokeTimeout = min(DefaultRevokeTimeout, c.RebalanceTimeout/2)
	}
	setInt(&c.MaxPollRecords, DefaultMaxPollRecords)
	setDur(&c.StallAfter, DefaultStallAfter)
	setDur(&c.ShutdownTimeout, DefaultShutdownTimeout)
	c.Naming = c.Naming.withDefaults()
	if c.OffsetsLost == "" {
		c.OffsetsLost = LostEarliest
	}
	if c.Logger == nil {
		c.Logger = slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
	}
	if c.Clock == nil {
		c.Clock = wallClock{}
	}
	return c
}

// FieldError is one invalid Config field. New returns every FieldError of
// a config at once, joined with errors.Join; a program that reads its
// config from a file can map Field back to the key the user wrote.
type FieldError struct {
	// Field is the field's path in Config: "WorkersPerPartition",
	// "Retry.MaxAttempts", "Topics[1]".
	Field string
	// Reason says what is wrong, in words: "must be > 0, got -1".
	Reason string
}

func (e *FieldError) Error() string { return "ordo: Config." + e.Field + " " + e.Reason }

// FieldErrors returns the FieldErrors in err (as New returns them), in
// order; nil if there are none.
func FieldErrors(err error) []*FieldError {
	var out []*FieldError
	var walk func(error)
	walk = func(err error) {
		if err == nil {
			return
		}
		// The walk unwraps by itself: errors.As would find only the first.
		if fe, ok := err.(*FieldError); ok { //nolint:errorlint // see above
			out = append(out, fe)
			return
		}
		switch u := err.(type) { //nolint:errorlint // see above
		case interface{ Unwrap() []error }:
			for _, e := range u.Unwrap() {
				walk(e)
			}
		case interface{ Unwrap() error }:
			walk(u.Unwrap())
		}
	}
	walk(err)
	return out
}

// validate checks a defaulted config. Every error is a *FieldError.
func (c Config) validate() error {
	var errs []error
	bad := func(field, format string, args ...any) {
		errs = append(errs, &FieldError{Field: field, Reason: fmt.Sprintf(format, args...)})
	}
	if len(c.Brokers) == 0 {
		bad("Brokers", "is required (host:port of at least one seed broker)")
	}
	for i, b := range c.Brokers {
		if strings.TrimSpace(b) == "" {
			bad(fmt.Sprintf("Brokers[%d]", i), "is empty")
		}
	}
	if c.Group == "" {
		bad("Group", "is required")
	}
	if len(c.Topics) == 0 {
		bad("Topics", "is required (at least one topic)")
	}
	seen := map[string]bool{}
	for i, t := range c.Topics {
		switch {
		case strings.TrimSpace(t) == "":
			bad(fmt.Sprintf("Topics[%d]", i), "is empty")
		case seen[t]:
			bad(fmt.Sprintf("Topics[%d]", i), "repeats topic %q", t)
		}
		seen[t] = true
	}
	if c.Processor == nil {
		bad("Processor", "is required")
	}
	for i, m := range c.Middleware {
		if m == nil {
			bad(fmt.Sprintf("Middleware[%d]", i), "is nil")
		}
	}
	if c.Ordering < OrderKey || c.Ordering > OrderUnordered {
		bad("Ordering", "must be OrderKey, OrderPartition or OrderUnordered, got %d", int(c.Ordering))
	}
	positive := func(field string, v int64) {
		if v < 0 {
			bad(field, "must be > 0, got %d", v)
		}
	}
	positive("WorkersPerPartition", int64(c.WorkersPerPartition))
	positive("MaxWorkers", int64(c.MaxWorkers))
	positive("MaxInFlightPerPartition", int64(c.MaxInFlightPerPartition))
	positive("MaxInFlightBytesPerPartition", c.MaxInFlightBytesPerPartition)
	positive("MaxInFlight", int64(c.MaxInFlight))
	positive("MaxInFlightBytes", c.MaxInFlightBytes)
	positive("Retry.MaxAttempts", int64(c.Retry.MaxAttempts))
	positive("Retry.TierAttempts", int64(c.Retry.TierAttempts))
	for i, d := range c.Retry.Tiers {
		switch {
		case d <= 0:
			bad(fmt.Sprintf("Retry.Tiers[%d]", i), "must be > 0, got %s", d)
		case i > 0 && d < c.Retry.Tiers[i-1]:
			bad(fmt.Sprintf("Retry.Tiers[%d]", i), "(%s) must not be shorter than Retry.Tiers[%d] (%s)", d, i-1, c.Retry.Tiers[i-1])
		}
	}
	for _, p := range c.Naming.check(c.Group, c.Topics, len(c.Retry.Tiers)) {
		bad("Naming", "%s", p)
	}
	positive("MaxPollRecords", int64(c.MaxPollRecords))
	positive("MaxTrackedSpan", int64(c.MaxTrackedSpan))
	if c.MaxTrackedSpan > 1_000_000 {
		bad("MaxTrackedSpan", "must be at most 1000000, got %d", c.MaxTrackedSpan)
	}
	if c.MaxOffsetMapBytes < 256 && c.MaxOffsetMapBytes != 0 {
		bad("MaxOffsetMapBytes", "must be at least 256, got %d", c.MaxOffsetMapBytes)
	}
	switch c.OffsetsLost {
	case LostEarliest, LostLatest, LostFail:
	default:
		bad("OffsetsLost", "must be %q, %q or %q, got %q", LostEarliest, LostLatest, LostFail, string(c.OffsetsLost))
	}
	if c.Start.kind == startOffset && c.Start.offset < 0 {
		bad("Start", "offset must not be negative, got %d", c.Start.offset)
	}
	errs = append(errs, checkKgoOpts(c.KgoOpts)...)
	durs := []struct {
		name string
		d    time.Duration
	}{
		{"ProcessTimeout", c.ProcessTimeout},
		{"Retry.InitialBackoff", c.Retry.InitialBackoff},
		{"Retry.MaxBackoff", c.Retry.MaxBackoff},
		{"Retry.HoldDelay", c.Retry.HoldDelay},
		{"CommitInterval", c.CommitInterval},
		{"ConnectTimeout", c.ConnectTimeout},
		{"SessionTimeout", c.SessionTimeout},
		{"RebalanceTimeout", c.RebalanceTimeout},
		{"RevokeTimeout", c.RevokeTimeout},
		{"ShutdownTimeout", c.ShutdownTimeout},
		{"StallAfter", c.StallAfter},
	}
	for _, d := range durs {
		if d.d < 0 {
			bad(d.name, "must not be negative, got %s", d.d)
		}
	}
	if c.Retry.MaxBackoff < c.Retry.InitialBackoff {
		bad("Retry.MaxBackoff", "(%s) must be >= Retry.InitialBackoff (%s)", c.Retry.MaxBackoff, c.Retry.InitialBackoff)
	}
	if c.MaxInFlight < c.MaxInFlightPerPartition && c.MaxInFlight > 0 {
		bad("MaxInFlight", "(%d) must be >= MaxInFlightPerPartition (%d)", c.MaxInFlight, c.MaxInFlightPerPartition)
	}
	if c.MaxInFlightBytes < c.MaxInFlightBytesPerPartition && c.MaxInFlightBytes > 0 {
		bad("MaxInFlightBytes", "(%d) must be >= MaxInFlightBytesPerPartition (%d)", c.MaxInFlightBytes, c.MaxInFlightBytesPerPartition)
	}
	if c.RevokeTimeout >= c.RebalanceTimeout {
		bad("RevokeTimeout", "(%s) must be below RebalanceTimeout (%s): the drain must finish before the group gives up on this member", c.RevokeTimeout, c.RebalanceTimeout)
	}
	return errors.Join(errs...)
}
