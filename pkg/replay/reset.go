package replay

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"math"
	"slices"
	"sort"
	"strings"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
)

// Verb says how a reset picks each partition's new offset. The verbs are
// those of kafka-consumer-groups.sh --reset-offsets (and rpk group seek).
type Verb int

const (
	// ToOffset moves every partition to Target.Offset.
	ToOffset Verb = iota + 1
	// ToTime moves to the first offset whose timestamp is at or after
	// Target.Time, as the broker's time index answers (kadm's
	// ListOffsetsAfterMilli); a partition with no such record goes to its
	// log end.
	ToTime
	// ByDuration is ToTime at the plan's now minus Target.Duration.
	ByDuration
	// ShiftBy moves every partition by Target.Shift from its committed
	// offset (a negative shift rewinds). A partition with no committed
	// offset cannot be shifted.
	ShiftBy
	// ToEarliest moves to the log start offset.
	ToEarliest
	// ToLatest moves to the log end offset (the high watermark).
	ToLatest
	// FromPlan moves each partition of Target.Plan to its row's offset.
	FromPlan
)

// String names the verb as its flag does.
func (v Verb) String() string {
	switch v {
	case ToOffset:
		return "to-offset"
	case ToTime:
		return "to-time"
	case ByDuration:
		return "by-duration"
	case ShiftBy:
		return "shift-by"
	case ToEarliest:
		return "to-earliest"
	case ToLatest:
		return "to-latest"
	case FromPlan:
		return "from-file"
	}
	return fmt.Sprintf("Verb(%d)", int(v))
}

// Target is a verb and its argument.
type Target struct {
	Verb Verb
	// Offset is ToOffset's offset, >= 0.
	Offset int64
	// Shift is ShiftBy's delta, either sign.
	Shift int64
	// Time is ToTime's time.
	Time time.Time
	// Duration is ByDuration's distance back from now, > 0.
	Duration time.Duration
	// Plan is FromPlan's rows (see ReadCSV). Rows of another group than
	// the request's are refused.
	Plan []PlanRow
}

// Selection is a topic and some of its partitions.
type Selection struct {
	Topic string
	// Partitions are the partitions chosen; nil: all of the topic's.
	Partitions []int32
}

// ResetRequest asks for a reset plan.
type ResetRequest struct {
	// Group is the consumer group to reset. Required.
	Group string
	// Topics are the partitions to reset. Required, except with FromPlan,
	// where the plan names them; if set with FromPlan, the plan may only
	// name partitions selected here.
	Topics []Selection
	// Target says where to move them.
	Target Target
	// Now is ByDuration's now. Default: time.Now().
	Now time.Time
}

// PartitionReset is one partition's line of a plan.
type PartitionReset struct {
	Topic     string
	Partition int32
	// Current is the group's committed offset; -1 if it has none.
	Current int64
	// CurrentMetadata is the committed offset's metadata (an Ordo offset
	// map, or what another client wrote); the reset replaces it with "".
	CurrentMetadata string
	// Requested is what the verb asked for, before clamping.
	Requested int64
	// New is the offset the reset commits: Requested within
	// [LogStart, LogEnd].
	New int64
	// LogStart and LogEnd are the partition's log start offset and high
	// watermark when the plan was made.
	LogStart, LogEnd int64
	// Warning says why New differs from Requested ("" if it does not).
	Warning string
}

// Lag is the number of records the group has to consume after the reset.
func (p PartitionReset) Lag() int64 { return p.LogEnd - p.New }

// CurrentLag is the group's lag before the reset; -1 without a committed
// offset.
func (p PartitionReset) CurrentLag() int64 {
	if p.Current < 0 {
		return -1
	}
	return max(0, p.LogEnd-p.Current)
}

// ResetPlan is what a reset will commit.
type ResetPlan struct {
	Group  string
	Target Target
	// Partitions are sorted by topic and partition.
	Partitions []PartitionReset
}

// Warnings are the plan's clamping warnings, one per clamped partition.
func (p *ResetPlan) Warnings() []string {
	var w []string
	for _, pr := range p.Partitions {
		if pr.Warning != "" {
			w = append(w, pr.Warning)
		}
	}
	return w
}

// Rows are the plan as CSV rows (WriteCSV writes them as the Kafka tool's
// --export does).
func (p *ResetPlan) Rows() []PlanRow {
	rows := make([]PlanRow, len(p.Partitions))
	for i, pr := range p.Partitions {
		rows[i] = PlanRow{Topic: pr.Topic, Partition: pr.Partition, Offset: pr.New}
	}
	return rows
}

// PlanReset computes a reset plan: for each selected partition the
// committed offset, the new one and the log's bounds. It changes nothing.
// Every problem found (a missing topic or partition, a partition with no
// committed offset to shift from, a plan row of another group) is
// reported at once.
func PlanReset(ctx context.Context, adm *kadm.Client, req ResetRequest) (*ResetPlan, error) {
	sel, err := selection(req)
	if err := errors.Join(checkRequest(req), err); err != nil {
		return nil, err
	}
	topics := make([]string, 0, len(sel))
	for t := range sel {
		topics = append(topics, t)
	}
	sort.Strings(topics)

	details, err := adm.ListTopics(ctx, topics...)
	if err != nil {
		return nil, fmt.Errorf("listing topics %s: %w", strings.Join(topics, ","), err)
	}
	parts, err := resolvePartitions(sel, details)
	if err != nil {
		return nil, err
	}
	starts, err := adm.ListStartOffsets(ctx, topics...)
	if err != nil {
		return nil, fmt.Errorf("listing log start offsets: %w", err)
	}
	ends, err := adm.ListEndOffsets(ctx, topics...)
	if err != nil {
		return nil, fmt.Errorf("listing log end offsets: %w", err)
	}
	committed, err := adm.FetchOffsets(ctx, req.Group)
	if err != nil && !errors.Is(err, kerr.GroupIDNotFound) {
		return nil, fmt.Errorf("fetching the committed offsets of group %q: %w", req.Group, err)
	}
	var byTime kadm.ListedOffsets
	switch req.Target.Verb {
	case ToTime, ByDuration:
		at := req.Target.Time
		if req.Target.Verb == ByDuration {
			now := req.Now
			if now.IsZero() {
				now = time.Now()
			}
			at = now.Add(-req.Target.Duration)
		}
		// A negative timestamp means "latest" or "earliest" to a broker:
		// before 1970 is the start of any log.
		ms := max(at.UnixMilli(), 0)
		if byTime, err = adm.ListOffsetsAfterMilli(ctx, ms, topics...); err != nil {
			return nil, fmt.Errorf("listing offsets by time (%s): %w", at.UTC().Format(time.RFC3339Nano), err)
		}
	}
	planned := map[tpKey]int64{}
	for _, r := range req.Target.Plan {
		planned[tpKey{r.Topic, r.Partition}] = r.Offset
	}

	plan := &ResetPlan{Group: req.Group, Target: req.Target}
	var errs []error
	for _, k := range parts {
		pr := PartitionReset{Topic: k.topic, Partition: k.partition, Current: -1}
		s, ok := starts.Lookup(k.topic, k.partition)
		e, ok2 := ends.Lookup(k.topic, k.partition)
		switch {
		case !ok || !ok2:
			errs = append(errs, fmt.Errorf("%s: the broker listed no log bounds", k))
			continue
		case s.Err != nil:
			errs = append(errs, fmt.Errorf("%s: log start offset: %w", k, s.Err))
			continue
		case e.Err != nil:
			errs = append(errs, fmt.Errorf("%s: log end offset: %w", k, e.Err))
			continue
		}
		pr.LogStart, pr.LogEnd = s.Offset, e.Offset
		if c, ok := committed.Lookup(k.topic, k.partition); ok {
			if c.Err != nil {
				errs = append(errs, fmt.Errorf("%s: committed offset: %w", k, c.Err))
				continue
			}
			if c.At >= 0 {
				pr.Current, pr.CurrentMetadata = c.At, c.Metadata
			}
		}
		switch req.Target.Verb {
		case ToOffset:
			pr.Requested = req.Target.Offset
		case ShiftBy:
			if pr.Current < 0 {
				errs = append(errs, fmt.Errorf("%s: group %q has no committed offset to shift from (use --to-offset, --to-time or --to-earliest for it)", k, req.Group))
				continue
			}
			pr.Requested = addClamped(pr.Current, req.Target.Shift)
		case ToEarliest:
			pr.Requested = pr.LogStart
		case ToLatest:
			pr.Requested = pr.LogEnd
		case ToTime, ByDuration:
			o, ok := byTime.Lookup(k.topic, k.partition)
			if !ok || o.Err != nil {
				errs = append(errs, fmt.Errorf("%s: offset by time: %w", k, cmp.Or(o.Err, errors.New("not listed"))))
				continue
			}
			pr.Requested = o.Offset
		case FromPlan:
			pr.Requested = planned[k]
		}
		pr.New = pr.Requested
		switch {
		case pr.Requested < pr.LogStart:
			pr.New = pr.LogStart
			pr.Warning = fmt.Sprintf("%s: offset %d is before the log start %d (records deleted or expired); using %d", k, pr.Requested, pr.LogStart, pr.LogStart)
		case pr.Requested > pr.LogEnd:
			pr.New = pr.LogEnd
			pr.Warning = fmt.Sprintf("%s: offset %d is past the log end %d; using %d", k, pr.Requested, pr.LogEnd, pr.LogEnd)
		}
		plan.Partitions = append(plan.Partitions, pr)
	}
	if len(errs) > 0 {
		return nil, errors.Join(errs...)
	}
	return plan, nil
}

// checkRequest checks what needs no broker.
func checkRequest(req ResetRequest) error {
	var errs []error
	if strings.TrimSpace(req.Group) == "" {
		errs = append(errs, errors.New("no group"))
	}
	t := req.Target
	switch t.Verb {
	case ToOffset:
		if t.Offset < 0 {
			errs = append(errs, fmt.Errorf("offset %d is negative", t.Offset))
		}
	case ByDuration:
		if t.Duration <= 0 {
			errs = append(errs, fmt.Errorf("duration %s is not positive", t.Duration))
		}
	case ToTime:
		if t.Time.IsZero() {
			errs = append(errs, errors.New("no time"))
		}
	case FromPlan:
		if len(t.Plan) == 0 {
			errs = append(errs, errors.New("an empty plan"))
		}
		for _, r := range t.Plan {
			if r.Group != "" && r.Group != req.Group {
				errs = append(errs, fmt.Errorf("the plan has a row of group %q (%s/%d), not of %q", r.Group, r.Topic, r.Partition, req.Group))
			}
			if r.Offset < 0 {
				errs = append(errs, fmt.Errorf("the plan's offset for %s/%d is negative", r.Topic, r.Partition))
			}
		}
	case ShiftBy, ToEarliest, ToLatest:
	default:
		errs = append(errs, fmt.Errorf("unknown verb %d", int(t.Verb)))
	}
	if t.Verb != FromPlan && len(req.Topics) == 0 {
		errs = append(errs, errors.New("no topic"))
	}
	for _, s := range req.Topics {
		if err := ValidTopic(s.Topic); err != nil {
			errs = append(errs, err)
		}
		for _, p := range s.Partitions {
			if p < 0 {
				errs = append(errs, fmt.Errorf("topic %s: partition %d is negative", s.Topic, p))
			}
		}
	}
	return errors.Join(errs...)
}

type tpKey struct {
	topic     string
	partition int32
}

func (k tpKey) String() string { return fmt.Sprintf("%s/%d", k.topic, k.partition) }

// selection returns the partitions asked for, per topic (nil: all). With
// a plan, they are the plan's rows, which must lie within req.Topics if
// that is set.
func selection(req ResetRequest) (map[string][]int32, error) {
	sel := map[string][]int32{}
	for _, s := range req.Topics {
		if s.Partitions == nil {
			sel[s.Topic] = nil
			continue
		}
		if ps, ok := sel[s.Topic]; ok && ps == nil {
			continue // all already
		}
		sel[s.Topic] = append(sel[s.Topic], s.Partitions...)
	}
	if req.Target.Verb != FromPlan {
		return sel, nil
	}
	fromPlan := map[string][]int32{}
	var errs []error
	for _, r := range req.Target.Plan {
		if len(req.Topics) > 0 {
			ps, ok := sel[r.Topic]
			if !ok || ps != nil && !slices.Contains(ps, r.Partition) {
				errs = append(errs, fmt.Errorf("the plan names %s/%d, which the selected topics do not include", r.Topic, r.Partition))
				continue
			}
		}
		fromPlan[r.Topic] = append(fromPlan[r.Topic], r.Partition)
	}
	return fromPlan, errors.Join(errs...)
}

// resolvePartitions expands "all" and checks that every topic and
// partition exists; it returns the partitions sorted.
func resolvePartitions(sel map[string][]int32, details kadm.TopicDetails) ([]tpKey, error) {
	var out []tpKey
	var errs []error
	for topic, ps := range sel {
		d, ok := details[topic]
		if !ok || d.Err != nil {
			why := "does not exist"
			if ok && !errors.Is(d.Err, kerr.UnknownTopicOrPartition) {
				why = d.Err.Error()
			}
			errs = append(errs, fmt.Errorf("topic %s %s", topic, why))
			continue
		}
		if ps == nil {
			for p := range d.Partitions {
				out = append(out, tpKey{topic, p})
			}
			continue
		}
		for _, p := range ps {
			if _, ok := d.Partitions[p]; !ok {
				errs = append(errs, fmt.Errorf("topic %s has no partition %d (it has %d)", topic, p, len(d.Partitions)))
				continue
			}
			out = append(out, tpKey{topic, p})
		}
	}
	slices.SortFunc(out, func(a, b tpKey) int {
		return cmp.Or(cmp.Compare(a.topic, b.topic), cmp.Compare(a.partition, b.partition))
	})
	out = slices.Compact(out)
	if len(errs) > 0 {
		slices.SortFunc(errs, func(a, b error) int { return cmp.Compare(a.Error(), b.Error()) })
		return nil, errors.Join(errs...)
	}
	return out, nil
}

// addClamped is a+b, saturated at the int64 bounds.
func addClamped(a, b int64) int64 {
	switch {
	case b > 0 && a > math.MaxInt64-b:
		return math.MaxInt64
	case b < 0 && a < math.MinInt64-b:
		return math.MinInt64
	}
	return a + b
}

// Member is an active member of a group.
type Member struct {
	ID         string
	InstanceID string // "" without static membership
	ClientID   string
	Host       string
}

func (m Member) String() string {
	s := m.ID
	if m.InstanceID != "" {
		s += " (instance " + m.InstanceID + ")"
	}
	return fmt.Sprintf("%s (client %s, host %s)", s, m.ClientID, strings.TrimPrefix(m.Host, "/"))
}

// ActiveGroupError is the refusal to reset a group that has members: they
// would commit their own positions over the reset, and the broker refuses
// a commit from outside a non-empty group anyway.
type ActiveGroupError struct {
	Group   string
	State   string
	Members []Member
}

func (e *ActiveGroupError) Error() string {
	names := make([]string, len(e.Members))
	for i, m := range e.Members {
		names[i] = m.String()
	}
	n := "members"
	if len(e.Members) == 1 {
		n = "member"
	}
	return fmt.Sprintf("group %q has %d active %s (state %s): %s; stop them (or wait for their session timeout) and run again",
		e.Group, len(e.Members), n, e.State, strings.Join(names, ", "))
}

// CheckInactive returns an *ActiveGroupError if group has members or is
// rebalancing; a group that does not exist, or is Empty or Dead, is
// inactive. It asks DescribeGroups, and for a KIP-848 group (which
// DescribeGroups shows with a state and no members)
// DescribeConsumerGroups, so that the error can name the members.
func CheckInactive(ctx context.Context, adm *kadm.Client, group string) error {
	ds, err := adm.DescribeGroups(ctx, group)
	if err != nil {
		return fmt.Errorf("describing group %q: %w", group, err)
	}
	g, err := ds.On(group, nil)
	if errors.Is(err, kerr.GroupIDNotFound) || errors.Is(g.Err, kerr.GroupIDNotFound) {
		return nil
	}
	if g.Err != nil {
		return fmt.Errorf("describing group %q: %w", group, g.Err)
	}
	ae := &ActiveGroupError{Group: group, State: g.State}
	for _, m := range g.Members {
		ae.Members = append(ae.Members, Member{ID: m.MemberID, InstanceID: derefOr(m.InstanceID), ClientID: m.ClientID, Host: m.ClientHost})
	}
	if len(ae.Members) == 0 && !idle(g.State) {
		cgs, err := adm.DescribeConsumerGroups(ctx, group)
		if cg, ok := cgs[group]; err == nil && ok && cg.Err == nil {
			ae.State = cg.State
			for _, m := range cg.Members {
				ae.Members = append(ae.Members, Member{ID: m.MemberID, InstanceID: derefOr(m.InstanceID), ClientID: m.ClientID, Host: m.ClientHost})
			}
		}
	}
	if len(ae.Members) == 0 && idle(ae.State) {
		return nil
	}
	return ae
}

func idle(state string) bool { return state == "Empty" || state == "Dead" || state == "" }

func derefOr(s *string) string {
	if s == nil {
		return ""
	}
	return *s
}

// ExecuteReset commits plan: each partition's New offset, with empty
// commit metadata, so that no offset map of an earlier commit (an Ordo
// owner's list of records finished above its committed offset) can make
// the next owner skip records the reset asked to run again. Every
// partition of the plan is committed, also one whose offset does not
// change: its map is cleared all the same. It first checks that the group
// is inactive (CheckInactive). Partitions the broker refuses are
// reported, each with the broker's error.
func ExecuteReset(ctx context.Context, adm *kadm.Client, plan *ResetPlan) error {
	if err := CheckInactive(ctx, adm, plan.Group); err != nil {
		return err
	}
	offs := kadm.Offsets{}
	for _, pr := range plan.Partitions {
		offs.Add(kadm.Offset{Topic: pr.Topic, Partition: pr.Partition, At: pr.New, LeaderEpoch: -1, Metadata: ""})
	}
	resps, err := adm.CommitOffsets(ctx, plan.Group, offs)
	if err != nil {
		return fmt.Errorf("committing the reset of group %q: %w", plan.Group, err)
	}
	var errs []error
	for _, pr := range plan.Partitions {
		r, ok := resps.Lookup(pr.Topic, pr.Partition)
		switch {
		case !ok:
			errs = append(errs, fmt.Errorf("%s/%d: the broker did not answer for it", pr.Topic, pr.Partition))
		case r.Err != nil:
			hint := ""
			if errors.Is(r.Err, kerr.UnknownMemberID) || errors.Is(r.Err, kerr.IllegalGeneration) || errors.Is(r.Err, kerr.RebalanceInProgress) {
				hint = " (a member joined the group after the check?)"
			}
			errs = append(errs, fmt.Errorf("%s/%d: the broker refused the commit: %w%s", pr.Topic, pr.Partition, r.Err, hint))
		}
	}
	return errors.Join(errs...)
}
