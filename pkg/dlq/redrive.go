package dlq

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"maps"
	"math/rand/v2"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
	"golang.org/x/time/rate"

	"github.com/ordokafka/ordo/pkg/ordo"
)

// RedriveOptions say what to redrive, where, and how fast.
type RedriveOptions struct {
	// DLQTopic is the dead-letter topic to redrive from. Required.
	DLQTopic string
	// Group is the consumer group the letters are redriven for. Required.
	// It names the default target (the group's first retry tier of each
	// letter's original topic) and the cursor (CursorGroup(Group)); letters
	// that name another group are never redriven (Filter.Group is set to
	// Group).
	Group string
	// Filter selects the letters.
	Filter Filter
	// ToSource redrives into each letter's original topic and partition
	// instead of the group's first retry tier. Every group that reads the
	// topic sees the records again (see Readers).
	ToSource bool
	// AlsoReaches acknowledges, with ToSource and Execute, the groups other
	// than Group that will see the records: it must equal that set exactly,
	// or Redrive returns a *ReachError before producing anything.
	AlsoReaches []string
	// Execute produces. Without it, Redrive is a dry run: it reads, plans
	// and reports, and produces and commits nothing.
	Execute bool
	// Rate bounds the records produced per second; 0: no bound.
	Rate float64
	// Limit redrives at most this many letters, the oldest first (by the
	// time they were dead-lettered); 0: no limit.
	Limit int
	// Progress, if set, is called as letters are read and produced, from
	// the goroutine that called Redrive.
	Progress func(Progress)
}

// Progress is the state of a running redrive.
type Progress struct {
	// Phase is "plan" (reading to select) or "redrive" (producing).
	Phase string
	// Read is the offsets read so far in this phase, of Total.
	Read, Total int64
	// Redriven is the records produced and acknowledged so far.
	Redriven int
}

// RedriveReport says what a redrive did, or in a dry run would do.
type RedriveReport struct {
	DLQTopic    string `json:"dlq_topic"`
	Group       string `json:"group"`
	CursorGroup string `json:"cursor_group"`
	Execute     bool   `json:"execute"`
	ToSource    bool   `json:"to_source"`
	// Read is the letters read after the cursor, up to the end offsets of
	// the call's start.
	Read int `json:"read"`
	// AlreadyRedriven is the letters read that the cursor lists as settled
	// by an earlier redrive; they are skipped. Letters below a partition's
	// committed cursor offset (all settled) are not read at all.
	AlreadyRedriven int `json:"already_redriven"`
	// OtherGroups is the letters that name another consumer group; they
	// are never this group's to redrive.
	OtherGroups int `json:"other_groups"`
	// Unroutable is the letters selected that cannot be redriven because
	// their headers give no original topic.
	Unroutable int `json:"unroutable"`
	// Matched is the letters that match the filter and can be redriven;
	// Selected those of them that Limit keeps: they will be (or, with
	// Execute, were to be) redriven.
	Matched  int `json:"matched"`
	Selected int `json:"selected"`
	// Redriven is the records produced and acknowledged (0 in a dry run).
	Redriven int `json:"redriven"`
	// Targets counts the selected letters per target topic.
	Targets []Count `json:"targets"`
	// Reaches lists, with ToSource, the groups other than Group that read
	// the target topics and will see the records.
	Reaches []string `json:"reaches,omitempty"`
	// CursorFull lists the partitions whose cursor could not hold another
	// settled range: their remaining letters were left for a later run
	// (redrive the letters an earlier filtered run left, e.g. without
	// filters, to compact it).
	CursorFull []int32 `json:"cursor_full,omitempty"`
	// Sample is the first selected letters (at most SampleLen), without
	// their values.
	Sample []Letter `json:"sample"`
	// Span is what was read.
	Span Span `json:"-"`
}

// SampleLen is how many selected letters a RedriveReport shows.
const SampleLen = 20

// NoTierError reports a redrive to a group's first retry tier that does not
// exist: the group has no retry tiers for the topic (or they were not
// created). Redrive into the source topic instead (ToSource), or declare
// and create the tiers.
type NoTierError struct {
	Group string
	// Missing maps each original topic to its missing first tier.
	Missing map[string]string
}

func (e *NoTierError) Error() string {
	var parts []string
	for _, t := range slices.Sorted(maps.Keys(e.Missing)) {
		parts = append(parts, fmt.Sprintf("%s (no topic %s)", t, e.Missing[t]))
	}
	return fmt.Sprintf("group %q has no retry tier for %s: redrive into the source topic instead, or declare the group's retry tiers and create them",
		e.Group, strings.Join(parts, ", "))
}

// ReachError reports a redrive into source topics that other groups read,
// without those groups acknowledged exactly.
type ReachError struct {
	Group  string
	Topics []string // the source topics
	// Reaches are the groups other than Group that read them; Acknowledged
	// what the caller gave.
	Reaches, Acknowledged []string
}

func (e *ReachError) Error() string {
	if len(e.Reaches) == 0 {
		return fmt.Sprintf("no group other than %q reads %s, but %s were acknowledged: acknowledge none",
			e.Group, strings.Join(e.Topics, ", "), strings.Join(e.Acknowledged, ","))
	}
	return fmt.Sprintf("redriving into %s reaches groups %s besides %q: acknowledge exactly these (acknowledged: %s)",
		strings.Join(e.Topics, ", "), strings.Join(e.Reaches, ","), e.Group, orNone(e.Acknowledged))
}

func orNone(s []string) string {
	if len(s) == 0 {
		return "none"
	}
	return strings.Join(s, ",")
}

// pickOrder orders the letters a redrive selects: the oldest dead letters
// first, then by partition and offset. Limit keeps the first ones.
func pickOrder(ta time.Time, pa int32, oa int64, tb time.Time, pb int32, ob int64) int {
	return cmp.Or(ta.Compare(tb), cmp.Compare(pa, pb), cmp.Compare(oa, ob))
}

// keepFirst inserts l into sample, sorted in pick order, and keeps the
// first n.
func keepFirst(sample []Letter, l Letter, n int) []Letter {
	i, _ := slices.BinarySearchFunc(sample, l, func(a, b Letter) int {
		return pickOrder(a.Timestamp, a.Partition, a.Offset, b.Timestamp, b.Partition, b.Offset)
	})
	if i >= n {
		return sample
	}
	sample = slices.Insert(sample, i, l)
	if len(sample) > n {
		sample = sample[:n]
	}
	return sample
}

// selected is one letter the plan chose.
type selected struct {
	partition      int32
	offset         int64
	ts             time.Time
	target, source string
}

// Redrive produces the dead letters of o.DLQTopic that o.Filter selects,
// for o.Group, once: by default into the group's first retry tier of each
// letter's original topic, due at once, so the group's own pipeline runs
// them again and no other group sees them; with o.ToSource into the
// original topic and partition, which every group reading it sees.
//
// Redrive reads the topic up to the end offsets of the call's start,
// twice: to plan (select, count, check that the targets exist and, with
// ToSource, find the groups reached), then, with o.Execute, to produce
// exactly the planned letters. Without o.Execute it stops after the plan
// and changes nothing.
//
// Each produced record keeps the letter's key, value and headers byte for
// byte, and gets ordo-redrive-id: "<dlq topic>/<partition>/<offset>". Into
// a retry tier it also gets ordo-not-before (now: due at once),
// ordo-attempt 0 and ordo-tier 1, replacing the letter's; a Spring or
// Karafka letter gets Ordo's ordo-original-* from its own headers instead
// of any ordo- header it carried (Ordo did not write those and does not
// trust them), and ordo-group if it has none. It goes to the original
// partition when the target has it.
//
// Redriven letters are recorded in a cursor, committed to
// CursorGroup(o.Group) once their produce is acknowledged, so that running
// the same redrive again applies nothing twice. A crash between an
// acknowledged produce and the cursor's commit redrives those letters
// again; the group's store deduplicates them by their original
// coordinates (ordo-original-*). Run one redrive per group at a time.
func (c *Client) Redrive(ctx context.Context, o RedriveOptions) (RedriveReport, error) {
	rep := RedriveReport{DLQTopic: o.DLQTopic, Group: o.Group, CursorGroup: CursorGroup(o.Group), Execute: o.Execute, ToSource: o.ToSource}
	if err := o.validate(); err != nil {
		return rep, err
	}
	f := o.Filter
	f.Group = o.Group

	cursors, err := c.loadCursors(ctx, rep.CursorGroup, o.DLQTopic)
	if err != nil {
		return rep, err
	}
	from := make(map[int32]int64, len(cursors))
	for p, cur := range cursors {
		from[p] = cur.next
	}
	span, err := c.span(ctx, o.DLQTopic, f, from)
	rep.Span = span
	if err != nil {
		return rep, err
	}
	for _, p := range span.Partitions {
		if cursors[p.Partition] == nil {
			cursors[p.Partition] = &cursor{}
		}
		// Records below the log start are gone: nothing left to redrive.
		cursors[p.Partition].floor(p.LogStart)
	}
	progress := func(s *Span, phase string, redriven int) {
		if o.Progress != nil {
			o.Progress(Progress{Phase: phase, Read: s.read(), Total: s.Total(), Redriven: redriven})
		}
	}

	// Plan.
	var (
		picks  []selected
		others = make(map[int32][]int64) // letters of other groups, to settle
	)
	err = c.read(ctx, &span, func(l *Letter) error {
		defer progress(&span, "plan", 0)
		rep.Read++
		switch {
		case cursors[l.Partition].has(l.Offset):
			rep.AlreadyRedriven++
		case f.OtherGroup(l):
			rep.OtherGroups++
			others[l.Partition] = append(others[l.Partition], l.Offset)
		case !f.Match(l):
		case l.Meta.Original.Topic == "":
			rep.Unroutable++
		default:
			picks = append(picks, selected{partition: l.Partition, offset: l.Offset, ts: l.Timestamp,
				target: target(l, o, c.cfg.Naming), source: l.Meta.Original.Topic})
			rep.Sample = keepFirst(rep.Sample, l.WithoutPayload(), SampleLen)
		}
		return nil
	})
	rep.Span = span
	if err != nil {
		return rep, err
	}
	slices.SortFunc(picks, func(a, b selected) int { return pickOrder(a.ts, a.partition, a.offset, b.ts, b.partition, b.offset) })
	rep.Matched = len(picks)
	if o.Limit > 0 && len(picks) > o.Limit {
		picks = picks[:o.Limit]
	}
	rep.Selected = len(picks)
	pick := make(map[int32]map[int64]bool)
	targets := make(map[string]int)
	sources := make(map[string]bool)
	for _, s := range picks {
		if pick[s.partition] == nil {
			pick[s.partition] = make(map[int64]bool)
		}
		pick[s.partition][s.offset] = true
		targets[s.target]++
		sources[s.source] = true
	}
	// The sample holds the first picks in the order Limit keeps them.
	rep.Sample = slices.DeleteFunc(rep.Sample, func(l Letter) bool { return !pick[l.Partition][l.Offset] })
	for _, t := range slices.Sorted(maps.Keys(targets)) {
		rep.Targets = append(rep.Targets, Count{Text: t, Count: targets[t]})
	}

	// Check the targets before producing anything, in a dry run too.
	partitions, err := c.checkTargets(ctx, o, targets, sources)
	if err != nil {
		return rep, err
	}
	if o.ToSource {
		reach := make(map[string]bool)
		for _, t := range slices.Sorted(maps.Keys(sources)) {
			rs, err := c.Readers(ctx, t)
			if err != nil {
				return rep, err
			}
			for _, g := range rs {
				if g != o.Group && g != rep.CursorGroup {
					reach[g] = true
				}
			}
		}
		rep.Reaches = slices.Sorted(maps.Keys(reach))
		if o.Execute {
			ack := dedupe(o.AlsoReaches)
			if !slices.Equal(ack, rep.Reaches) {
				return rep, &ReachError{Group: o.Group, Topics: slices.Sorted(maps.Keys(sources)), Reaches: rep.Reaches, Acknowledged: ack}
			}
		}
	}
	if !o.Execute || (rep.Selected == 0 && len(others) == 0) {
		return rep, nil
	}
	err = c.produce(ctx, o, &rep, span, cursors, others, pick, partitions, progress)
	return rep, err
}

// produce is Redrive's second pass: it reads span again and produces the
// picked letters, committing the cursor as their produces are acknowledged.
func (c *Client) produce(ctx context.Context, o RedriveOptions, rep *RedriveReport, span Span,
	cursors map[int32]*cursor, others map[int32][]int64, pick map[int32]map[int64]bool,
	partitions map[string]int32, progress func(*Span, string, int),
) error {
	for p, offs := range others {
		for _, off := range offs {
			cursors[p].add(off)
		}
	}
	if len(pick) == 0 { // only other groups' letters to settle
		return c.commitCursors(ctx, rep.CursorGroup, o.DLQTopic, cursors)
	}
	var limiter *rate.Limiter
	if o.Rate > 0 {
		limiter = rate.NewLimiter(rate.Limit(o.Rate), 1)
	}
	var (
		mu       sync.Mutex
		acked    = make(map[int32]*cursor, len(cursors)) // what the cursor commits; guarded by mu
		redriven int                                     // guarded by mu
		perr     error                                   // the first failed produce; guarded by mu
		planned  = make(map[int32]*cursor, len(cursors)) // acked plus in flight: bounds the metadata
		full     = make(map[int32]bool)
	)
	for p, cur := range cursors {
		acked[p], planned[p] = cur.clone(), cur.clone()
	}
	commit := func(ctx context.Context) error {
		if err := c.cl.Flush(ctx); err != nil {
			return err
		}
		mu.Lock()
		defer mu.Unlock()
		return c.commitCursors(ctx, rep.CursorGroup, o.DLQTopic, acked)
	}
	now := c.cfg.Now()
	for i := range span.Partitions {
		span.Partitions[i].Next, span.Partitions[i].Short = span.Partitions[i].Start, false
	}
	sinceCommit := 0
	err := c.read(ctx, &span, func(l *Letter) error {
		mu.Lock()
		done, failed := redriven, perr
		mu.Unlock()
		progress(&span, "redrive", done)
		if failed != nil {
			return failed
		}
		if !pick[l.Partition][l.Offset] || full[l.Partition] {
			return nil
		}
		trial := planned[l.Partition].clone()
		trial.add(l.Offset)
		if _, md := trial.encode(); len(md) > c.cfg.MaxCursorBytes {
			full[l.Partition] = true
			return nil
		}
		planned[l.Partition] = trial
		rec := redriveRecord(l, o, c.cfg.Naming, now, partitions)
		if limiter != nil {
			if err := limiter.Wait(ctx); err != nil {
				return err
			}
		}
		p, off := l.Partition, l.Offset
		c.cl.Produce(ctx, rec, func(_ *kgo.Record, err error) {
			mu.Lock()
			defer mu.Unlock()
			if err != nil {
				if perr == nil {
					perr = fmt.Errorf("dlq: producing %s/%d/%d to %s: %w", o.DLQTopic, p, off, rec.Topic, err)
				}
				return
			}
			acked[p].add(off)
			redriven++
		})
		if sinceCommit++; sinceCommit >= c.cfg.CommitEvery {
			sinceCommit = 0
			return commit(ctx)
		}
		return nil
	})
	// What was acknowledged is recorded even when ctx ended: a lost
	// cursor would redrive those letters again.
	fctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 30*time.Second)
	defer cancel()
	cerr := commit(fctx)
	mu.Lock()
	rep.Redriven = redriven
	if err == nil {
		err = perr
	}
	mu.Unlock()
	progress(&span, "redrive", rep.Redriven)
	rep.CursorFull = slices.Sorted(maps.Keys(full))
	return errors.Join(err, cerr)
}

func (o *RedriveOptions) validate() error {
	var errs []error
	if o.DLQTopic == "" {
		errs = append(errs, errors.New("dlq: RedriveOptions.DLQTopic is required"))
	}
	if o.Group == "" {
		errs = append(errs, errors.New("dlq: RedriveOptions.Group is required"))
	}
	if o.Rate < 0 || o.Limit < 0 {
		errs = append(errs, errors.New("dlq: RedriveOptions.Rate and Limit must not be negative"))
	}
	if len(o.AlsoReaches) > 0 && !o.ToSource {
		errs = append(errs, errors.New("dlq: RedriveOptions.AlsoReaches only means something with ToSource"))
	}
	if err := o.Filter.Validate(); err != nil {
		errs = append(errs, err)
	}
	return errors.Join(errs...)
}

// target is the topic a letter is redriven to.
func target(l *Letter, o RedriveOptions, n ordo.Naming) string {
	if o.ToSource {
		return l.Meta.Original.Topic
	}
	return n.RetryTopic(l.Meta.Original.Topic, o.Group, 1)
}

// checkTargets checks that every target topic exists and returns their
// partition counts.
func (c *Client) checkTargets(ctx context.Context, o RedriveOptions, targets map[string]int, sources map[string]bool) (map[string]int32, error) {
	if len(targets) == 0 {
		return nil, nil
	}
	names := slices.Sorted(maps.Keys(targets))
	details, err := c.adm.ListTopics(ctx, names...)
	if err != nil {
		return nil, fmt.Errorf("dlq: describing the target topics: %w", err)
	}
	out := make(map[string]int32, len(names))
	missing := make(map[string]string)
	for _, t := range names {
		d, ok := details[t]
		if !ok || d.Err != nil || len(d.Partitions) == 0 {
			if o.ToSource {
				return nil, fmt.Errorf("dlq: the source topic %s does not exist", t)
			}
			for s := range sources {
				if c.cfg.Naming.RetryTopic(s, o.Group, 1) == t {
					missing[s] = t
				}
			}
			continue
		}
		out[t] = int32(len(d.Partitions)) //nolint:gosec // a partition count fits int32
	}
	if len(missing) > 0 {
		return nil, &NoTierError{Group: o.Group, Missing: missing}
	}
	return out, nil
}

// redriveRecord builds the record a letter is redriven as.
func redriveRecord(l *Letter, o RedriveOptions, n ordo.Naming, now time.Time, partitions map[string]int32) *kgo.Record {
	topic := target(l, o, n)
	reset := map[string]bool{ordo.HeaderRedriveID: true}
	foreign := l.Meta.Format != FormatOrdo
	if !o.ToSource {
		reset[ordo.HeaderAttempt], reset[ordo.HeaderNotBefore], reset[ordo.HeaderTier] = true, true, true
	}
	hs := make([]kgo.RecordHeader, 0, len(l.Headers)+10)
	has := make(map[string]bool, len(l.Headers))
	for _, h := range l.Headers {
		lower := strings.ToLower(h.Key)
		if reset[lower] {
			continue // replaced below, whatever its case
		}
		if !o.ToSource && foreign && strings.HasPrefix(lower, "ordo-") {
			continue // not written by Ordo: not to be trusted on a retry tier
		}
		hs = append(hs, kgo.RecordHeader{Key: h.Key, Value: h.Value})
		has[h.Key] = true
	}
	add := func(k, v string) { hs = append(hs, kgo.RecordHeader{Key: k, Value: []byte(v)}) }
	if !o.ToSource {
		if foreign {
			m := l.Meta.Original
			add(ordo.HeaderOriginalTopic, m.Topic)
			if m.Partition >= 0 {
				add(ordo.HeaderOriginalPartition, strconv.FormatInt(int64(m.Partition), 10))
			}
			if m.Offset >= 0 {
				add(ordo.HeaderOriginalOffset, strconv.FormatInt(m.Offset, 10))
			}
			if !m.Timestamp.IsZero() {
				add(ordo.HeaderOriginalTimestamp, strconv.FormatInt(m.Timestamp.UnixMilli(), 10))
			}
		}
		if !has[ordo.HeaderGroup] {
			add(ordo.HeaderGroup, o.Group)
		}
		add(ordo.HeaderAttempt, "0")
		add(ordo.HeaderNotBefore, strconv.FormatInt(now.UnixMilli(), 10))
		add(ordo.HeaderTier, "1")
	}
	add(ordo.HeaderRedriveID, l.ID())
	return &kgo.Record{
		Topic:     topic,
		Partition: partitionFor(l, partitions[topic]),
		Key:       l.Key,
		Value:     l.Value,
		Headers:   hs,
	}
}

// partitionFor keeps the original partition when the target has it, so
// that a key's records stay on one partition; otherwise it hashes the key
// as Kafka's default partitioner does (murmur2), or picks one at random
// for a record without a key.
func partitionFor(l *Letter, n int32) int32 {
	if n <= 0 {
		return 0
	}
	if p := l.Meta.Original.Partition; p >= 0 && p < n {
		return p
	}
	if l.Key == nil {
		return rand.Int32N(n) //nolint:gosec // spreading keyless records needs no secure randomness
	}
	r := &kgo.Record{Key: l.Key}
	return int32(kgo.StickyKeyPartitioner(nil).ForTopic("").Partition(r, int(n))) //nolint:gosec // below n
}

func dedupe(s []string) []string {
	out := slices.Clone(s)
	slices.Sort(out)
	return slices.Compact(out)
}
