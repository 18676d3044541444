package ordo

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
)

// Where partitions start, and what happens to offsets lost to retention.
//
// Both are decided once per assignment, in kgo's AdjustFetchOffsetsFn
// (after the group's committed offsets are fetched, before fetching
// begins): a source partition with no commit starts at Config.Start; a
// partition whose commit is below its log start (retention deleted records
// this group never read) is logged, counted in ordo_offsets_lost_total and
// moved per Config.OffsetsLost. Retry-tier partitions always start at their
// log start and never skip to the end: their records are retries owed.
// While consuming, a lane that finds its next fetch begins above the offset
// it expected, with the log start above it too, counts the gap the same
// way (franz-go resumes such a partition at its log start).

// Start is where a source partition with no committed offset begins. The
// zero value is StartEarliest.
type Start struct {
	kind   startKind
	offset int64
	time   time.Time
}

type startKind uint8

const (
	startEarliest startKind = iota
	startLatest
	startTime
	startOffset
)

// StartEarliest starts at the log start: every record still in the log is
// processed. The default.
func StartEarliest() Start { return Start{} }

// StartLatest starts at the log end: only records produced after the
// partition is assigned are processed.
func StartLatest() Start { return Start{kind: startLatest} }

// StartAtTime starts at the first record whose timestamp is at or after t,
// or at the log end if there is none (as `ordo replay reset --to-time`).
func StartAtTime(t time.Time) Start { return Start{kind: startTime, time: t} }

// StartAtOffset starts every source partition at offset n, kept within the
// log's bounds.
func StartAtOffset(n int64) Start { return Start{kind: startOffset, offset: n} }

// ParseStart parses "earliest", "latest", an RFC 3339 time or an offset.
func ParseStart(s string) (Start, error) {
	switch strings.ToLower(strings.TrimSpace(s)) {
	case "", "earliest":
		return StartEarliest(), nil
	case "latest":
		return StartLatest(), nil
	}
	if n, err := strconv.ParseInt(s, 10, 64); err == nil {
		if n < 0 {
			return Start{}, fmt.Errorf("start offset %d is negative", n)
		}
		return StartAtOffset(n), nil
	}
	if t, err := time.Parse(time.RFC3339Nano, s); err == nil {
		return StartAtTime(t), nil
	}
	return Start{}, fmt.Errorf("start %q is not earliest, latest, an RFC 3339 time (2026-11-30T07:00:00Z) or an offset", s)
}

// String returns the form ParseStart reads.
func (s Start) String() string {
	switch s.kind {
	case startLatest:
		return "latest"
	case startTime:
		return s.time.UTC().Format(time.RFC3339Nano)
	case startOffset:
		return strconv.FormatInt(s.offset, 10)
	}
	return "earliest"
}

func (s Start) kgo() kgo.Offset {
	switch s.kind {
	case startLatest:
		return kgo.NewOffset().AtEnd()
	case startTime:
		return kgo.NewOffset().AfterMilli(s.time.UnixMilli())
	case startOffset:
		return kgo.NewOffset().At(s.offset)
	}
	return kgo.NewOffset().AtStart()
}

// LostPolicy is what a partition does when its committed offset is below
// its log start: the records between were deleted by retention before the
// group read them.
type LostPolicy string

const (
	// LostEarliest resumes at the log start: every record still in the log
	// is processed. The default.
	LostEarliest LostPolicy = "earliest"
	// LostLatest resumes source partitions at the log end, skipping what
	// is left of the backlog too. Retry tiers still resume at their log
	// start.
	LostLatest LostPolicy = "latest"
	// LostFail stops the consumer with an *OffsetsLostError; the partition
	// is not consumed, so that an operator decides (`ordo replay reset`).
	LostFail LostPolicy = "fail"
)

// OffsetsLostError is the error the consumer stops with when
// Config.OffsetsLost is LostFail and a partition's committed offset (or
// the offset it was consuming at) is below the log start.
type OffsetsLostError struct {
	Topic     string
	Partition int32
	// Committed is the offset the partition was to resume at.
	Committed int64
	// LogStart is the partition's log start offset, or -1 if unknown.
	LogStart int64
}

func (e *OffsetsLostError) Error() string {
	lost := fmt.Sprintf("the records from offset %d on", e.Committed)
	if e.LogStart > e.Committed && e.Committed >= 0 {
		lost = fmt.Sprintf("%d records (offsets %d to %d)", e.LogStart-e.Committed, e.Committed, e.LogStart-1)
	}
	return fmt.Sprintf("ordo: %s/%d: %s were deleted by retention before this group read them; Config.OffsetsLost is %q, so the consumer stopped: move the group on with `ordo replay reset --to-earliest` (or --to-latest) and start it again",
		e.Topic, e.Partition, lost, LostFail)
}

// adjustOffsets is kgo's AdjustFetchOffsetsFn: it applies Config.Start to
// source partitions with no commit, and Config.OffsetsLost to partitions
// whose commit retention has overtaken. A partition left out of the map is
// not consumed (LostFail; the consumer is stopping).
func (c *Consumer) adjustOffsets(ctx context.Context, offsets map[string]map[int32]kgo.Offset) (map[string]map[int32]kgo.Offset, error) {
	var listed, clamped []string
	committed := map[tp]int64{}
	for topic, parts := range offsets {
		for p, o := range parts {
			at := o.EpochOffset().Offset
			switch {
			case at >= 0:
				committed[tp{topic, p}] = at
				c.setFetchNext(topic, p, at)
				listed = append(listed, topic)
			case c.roles[topic].tier == 0:
				// No commit: kgo passes its start offset (the log start),
				// Ordo's applies to source topics.
				parts[p] = c.cfg.Start.kgo()
				if c.cfg.Start.kind == startOffset {
					listed = append(listed, topic)
					clamped = append(clamped, topic)
				}
			}
		}
	}
	if len(listed) == 0 {
		return offsets, nil
	}
	// The group may assign before NewClient returns.
	select {
	case <-c.clReady:
	case <-ctx.Done():
		return offsets, nil
	}
	cl := c.admCl.Load()
	lctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	adm := kadm.NewClient(cl)
	starts, err := adm.ListStartOffsets(lctx, dedupe(listed)...)
	if err == nil {
		err = starts.Error()
	}
	var ends kadm.ListedOffsets
	if err == nil && len(clamped) > 0 {
		if ends, err = adm.ListEndOffsets(lctx, dedupe(clamped)...); err == nil {
			err = ends.Error()
		}
	}
	if err != nil {
		// franz-go's own reset still applies on the first fetch (to the
		// log start, or a fatal fetch error with LostFail), and the lane
		// counts the gap.
		c.cfg.Logger.Warn("listing log offsets to check commits against retention; the first fetch will check instead", "err", err)
		return offsets, nil
	}
	for topic, parts := range offsets {
		for p := range parts {
			s, ok := starts.Lookup(topic, p)
			if !ok {
				continue
			}
			at, ok := committed[tp{topic, p}]
			if !ok {
				if e, ok := ends.Lookup(topic, p); ok && c.cfg.Start.kind == startOffset {
					// StartAtOffset, kept within the log's bounds.
					parts[p] = kgo.NewOffset().At(max(s.Offset, min(c.cfg.Start.offset, e.Offset)))
				}
				continue
			}
			if s.Offset <= at {
				continue
			}
			c.offsetsLost(topic, p, at, s.Offset, "at assignment")
			switch {
			case c.cfg.OffsetsLost == LostFail:
				delete(parts, p)
				c.fail(&OffsetsLostError{Topic: topic, Partition: p, Committed: at, LogStart: s.Offset})
			case c.cfg.OffsetsLost == LostLatest && c.roles[topic].tier == 0:
				parts[p] = kgo.NewOffset().AtEnd()
				c.setFetchNext(topic, p, -1)
			default:
				parts[p] = kgo.NewOffset().At(s.Offset).WithEpoch(-1)
				c.setFetchNext(topic, p, s.Offset)
			}
		}
	}
	return offsets, nil
}

// setFetchNext records the offset a lane's next fetched record should be
// at (-1: unknown), for the lane to see a gap that retention made.
func (c *Consumer) setFetchNext(topic string, p int32, at int64) {
	c.mu.RLock()
	l := c.lanes[tp{topic, p}]
	c.mu.RUnlock()
	if l != nil {
		l.fetchNext.Store(at)
	}
}

// checkFetchGap runs on the poll goroutine before a lane takes fetched
// records: a first record above the expected offset, with the log start
// above it too, means retention deleted the records between before they
// were read.
func (c *Consumer) checkFetchGap(l *lane, p *kgo.FetchTopicPartition) {
	first, last := p.Records[0].Offset, p.Records[len(p.Records)-1].Offset
	if next := l.fetchNext.Load(); next >= 0 && first > next && p.LogStartOffset > next {
		c.offsetsLost(p.Topic, p.Partition, next, min(first, p.LogStartOffset), "while consuming")
	}
	l.fetchNext.Store(last + 1)
}

// offsetsLost logs and counts the offsets [from, to) lost to retention.
func (c *Consumer) offsetsLost(topic string, p int32, from, to int64, when string) {
	c.metrics.topic(topic).offsetsLost.Add(float64(to - from))
	resume := "resuming at the log start"
	switch {
	case c.cfg.OffsetsLost == LostFail:
		resume = "stopping (Config.OffsetsLost is fail)"
	case c.cfg.OffsetsLost == LostLatest && c.roles[topic].tier == 0 && when == "at assignment":
		resume = "resuming at the log end (Config.OffsetsLost is latest)"
	}
	c.cfg.Logger.Error("records were deleted by retention before this group read them; "+resume,
		"topic", topic, "partition", p, "from", from, "log_start", to, "lost", to-from, "found", when, "policy", string(c.cfg.OffsetsLost))
}

// fetchLost handles a fetch error: with LostFail, franz-go does not reset
// an out-of-range offset but returns OFFSET_OUT_OF_RANGE, and the
// consumer stops. It runs on the poll goroutine, which has nothing left
// to do: it asks for the log start to say what was lost.
func (c *Consumer) fetchLost(topic string, p int32, err error) bool {
	if c.cfg.OffsetsLost != LostFail || !errors.Is(err, kerr.OffsetOutOfRange) {
		return false
	}
	// The error comes back on every poll until the consumer has stopped:
	// the first one counts.
	c.mu.RLock()
	l := c.lanes[tp{topic, p}]
	c.mu.RUnlock()
	if l == nil || l.fetchNext.Load() == lostMark {
		return true
	}
	next := l.fetchNext.Swap(lostMark)
	logStart := int64(-1)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	if starts, err := kadm.NewClient(c.admCl.Load()).ListStartOffsets(ctx, topic); err == nil {
		if s, ok := starts.Lookup(topic, p); ok && s.Err == nil {
			logStart = s.Offset
		}
	}
	if next >= 0 && logStart > next {
		c.offsetsLost(topic, p, next, logStart, "while consuming")
	}
	c.fail(&OffsetsLostError{Topic: topic, Partition: p, Committed: next, LogStart: logStart})
	return true
}

// lostMark is a lane's fetchNext once its loss was reported.
const lostMark = -2

// fail stops the consumer with err, once; Run and Stop return it.
func (c *Consumer) fail(err error) {
	c.failOnce.Do(func() {
		c.failMu.Lock()
		c.failErr = err
		c.failMu.Unlock()
		c.cfg.Logger.Error("stopping the consumer", "err", err)
		go func() {
			ctx, cancel := context.WithTimeout(context.Background(), c.cfg.ShutdownTimeout)
			defer cancel()
			_ = c.stop(ctx, false, false)
		}()
	})
}

func (c *Consumer) failure() error {
	c.failMu.Lock()
	defer c.failMu.Unlock()
	return c.failErr
}

func dedupe(s []string) []string {
	seen := make(map[string]bool, len(s))
	out := s[:0]
	for _, v := range s {
		if !seen[v] {
			seen[v] = true
			out = append(out, v)
		}
	}
	return out
}
