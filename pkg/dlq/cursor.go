package dlq

import (
	"context"
	"errors"
	"fmt"
	"math"
	"slices"
	"strconv"
	"strings"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
)

// CursorGroup is the consumer group in which a redrive for group keeps its
// cursor: "ordo-redrive.<group>". No member ever joins it; the redrive
// commits to it with kadm.
func CursorGroup(group string) string { return "ordo-redrive." + group }

// A redrive's cursor is, per partition of the dead-letter topic, the set of
// offsets it has settled: redriven (the produce acknowledged), or letters
// of another group, which this group's redrive never takes. It is stored
// as a commit of the cursor group: the committed offset is the lowest
// offset not settled (everything below it is), and the commit metadata
// lists the settled ranges above it, so that a filtered redrive leaves the
// letters it did not select for a later one, and running the same redrive
// again applies nothing twice.
//
// Metadata: "ordo-redrive/1:" then, for each range above the committed
// offset, "<gap>.<length>" in base 36, comma-separated, where gap is the
// distance from the end of the previous range (or from the committed
// offset) to the range's first offset, at least 1.
const cursorPrefix = "ordo-redrive/1:"

// cursor is the settled set of one partition: [0, next) and ranges.
type cursor struct {
	next   int64   // the lowest offset not settled
	ranges []Range // settled, sorted, disjoint, not adjacent, all above next
}

func (c *cursor) has(o int64) bool {
	if o < c.next {
		return true
	}
	_, found := slices.BinarySearchFunc(c.ranges, o, func(r Range, o int64) int {
		switch {
		case r.To < o:
			return -1
		case r.From > o:
			return 1
		}
		return 0
	})
	return found
}

func (c *cursor) clone() *cursor {
	return &cursor{next: c.next, ranges: slices.Clone(c.ranges)}
}

// add settles o.
func (c *cursor) add(o int64) {
	if c.has(o) {
		return
	}
	i, _ := slices.BinarySearchFunc(c.ranges, o, func(r Range, o int64) int { return cmp64(r.From, o) })
	c.ranges = slices.Insert(c.ranges, i, Range{From: o, To: o})
	c.normalize()
}

// floor settles every offset below start (the log start offset: those
// records are gone).
func (c *cursor) floor(start int64) {
	if start > c.next {
		c.next = start
		c.normalize()
	}
}

// normalize merges adjacent and overlapping ranges and folds the ones that
// reach next into it.
func (c *cursor) normalize() {
	out := c.ranges[:0]
	for _, r := range c.ranges {
		if r.To < c.next {
			continue
		}
		r.From = max(r.From, c.next)
		if n := len(out); n > 0 && r.From <= out[n-1].To+1 {
			out[n-1].To = max(out[n-1].To, r.To)
			continue
		}
		out = append(out, r)
	}
	for len(out) > 0 && out[0].From <= c.next {
		c.next = out[0].To + 1
		out = out[1:]
	}
	c.ranges = nil
	if len(out) > 0 {
		c.ranges = slices.Clone(out)
	}
}

func cmp64(a, b int64) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}

// encode returns the cursor's committed offset and metadata.
func (c *cursor) encode() (int64, string) {
	var b strings.Builder
	b.WriteString(cursorPrefix)
	prev := c.next
	for i, r := range c.ranges {
		if i > 0 {
			b.WriteByte(',')
		}
		b.WriteString(strconv.FormatInt(r.From-prev, 36))
		b.WriteByte('.')
		b.WriteString(strconv.FormatInt(r.To-r.From+1, 36))
		prev = r.To + 1
	}
	return c.next, b.String()
}

// decodeCursor reads a committed offset (-1: none) and its metadata. Empty
// metadata, or metadata not written by a redrive, gives the committed
// offset alone; metadata with the redrive's prefix that does not parse is
// an error, for a cursor read wrong would redrive letters twice.
func decodeCursor(committed int64, md string) (cursor, error) {
	c := cursor{next: max(committed, 0)}
	rest, ok := strings.CutPrefix(md, cursorPrefix)
	if !ok || rest == "" {
		return c, nil
	}
	prev := c.next
	for item := range strings.SplitSeq(rest, ",") {
		g, l, ok := strings.Cut(item, ".")
		gap, err1 := strconv.ParseInt(g, 36, 64)
		n, err2 := strconv.ParseInt(l, 36, 64)
		if !ok || err1 != nil || err2 != nil || gap < 1 || n < 1 {
			return cursor{}, fmt.Errorf("bad range %q", item)
		}
		if gap > math.MaxInt64-prev || n-1 > math.MaxInt64-(prev+gap) || prev+gap+n-1 == math.MaxInt64 {
			return cursor{}, fmt.Errorf("range %q overflows", item)
		}
		from := prev + gap
		c.ranges = append(c.ranges, Range{From: from, To: from + n - 1})
		prev = from + n
	}
	return c, nil
}

// loadCursors reads the cursor of every partition of topic from group.
func (c *Client) loadCursors(ctx context.Context, group, topic string) (map[int32]*cursor, error) {
	resp, err := c.adm.FetchOffsetsForTopics(ctx, group, topic)
	if err == nil {
		err = resp.Error()
	}
	if errors.Is(err, kerr.GroupIDNotFound) {
		// No redrive for this group yet.
		return make(map[int32]*cursor), nil
	}
	if errors.Is(err, kerr.UnknownTopicOrPartition) {
		return nil, &TopicError{Topic: topic}
	}
	if err != nil {
		return nil, fmt.Errorf("dlq: reading the redrive cursor (group %s): %w", group, err)
	}
	out := make(map[int32]*cursor)
	var errs []error
	for p, o := range resp[topic] {
		cur, err := decodeCursor(o.At, o.Metadata)
		if err != nil {
			errs = append(errs, fmt.Errorf("dlq: the redrive cursor of %s/%d in group %s cannot be read (%w); "+
				"delete the group to start over, knowing that letters redriven before may be redriven again", topic, p, group, err))
			continue
		}
		out[p] = &cur
	}
	return out, errors.Join(errs...)
}

// commitCursors commits cursors of topic to group.
func (c *Client) commitCursors(ctx context.Context, group, topic string, cs map[int32]*cursor) error {
	os := make(kadm.Offsets)
	for p, cur := range cs {
		at, md := cur.encode()
		os.Add(kadm.Offset{Topic: topic, Partition: p, At: at, LeaderEpoch: -1, Metadata: md})
	}
	if len(os) == 0 {
		return nil
	}
	resp, err := c.adm.CommitOffsets(ctx, group, os)
	if err == nil {
		err = resp.Error()
	}
	if err != nil {
		return fmt.Errorf("dlq: committing the redrive cursor (group %s): %w", group, err)
	}
	return nil
}
