package dlq

import (
	"cmp"
	"context"
	"slices"
	"time"
)

// List returns the letters of topic that f matches, in (partition, offset)
// order of the dead-letter topic: at most limit of them (0: all), and how
// many matched in all. Without withPayload, the letters' values are dropped
// as they are read (see Letter.WithoutPayload).
func (c *Client) List(ctx context.Context, topic string, f Filter, limit int, withPayload bool) ([]Letter, int, Span, error) {
	var (
		out     []Letter
		matched int
	)
	trim := func() {
		slices.SortFunc(out, func(a, b Letter) int {
			return cmp.Or(cmp.Compare(a.Partition, b.Partition), cmp.Compare(a.Offset, b.Offset))
		})
		if limit > 0 && len(out) > limit {
			out = out[:limit]
		}
	}
	span, err := c.Scan(ctx, topic, f, func(l *Letter) error {
		matched++
		if !withPayload {
			*l = l.WithoutPayload()
		}
		out = append(out, *l)
		if limit > 0 && len(out) >= 2*limit+64 {
			trim() // memory stays in proportion to limit
		}
		return nil
	})
	trim()
	return out, matched, span, err
}

// Stats summarizes the letters of a dead-letter topic that a filter
// matches.
type Stats struct {
	Topic string `json:"topic"`
	// Total is the number of letters matched.
	Total int `json:"total"`
	// ByErrorClass counts letters per error class ("" when the headers
	// give none).
	ByErrorClass map[string]int `json:"by_error_class"`
	// ByOriginalPartition counts letters per original partition (-1 when
	// the headers do not say).
	ByOriginalPartition map[int32]int `json:"by_original_partition"`
	// ByFormat counts letters per header format.
	ByFormat map[Format]int `json:"by_format"`
	// TopErrors are the most frequent error texts, most frequent first (at
	// most 10; ties in text order).
	TopErrors []Count `json:"top_errors"`
	// OriginalFirst and OriginalLast bound the original records'
	// timestamps (zero when no letter gives one); DeadLetteredFirst and
	// DeadLetteredLast bound the dead-letter records' own timestamps.
	OriginalFirst     time.Time `json:"original_first,omitzero"`
	OriginalLast      time.Time `json:"original_last,omitzero"`
	DeadLetteredFirst time.Time `json:"dead_lettered_first,omitzero"`
	DeadLetteredLast  time.Time `json:"dead_lettered_last,omitzero"`
}

// Count is a text and how many letters have it.
type Count struct {
	Text  string `json:"text"`
	Count int    `json:"count"`
}

// TopErrorsLen is how many error texts Stats keeps.
const TopErrorsLen = 10

// Stats reads topic as Scan does and summarizes the letters f matches.
func (c *Client) Stats(ctx context.Context, topic string, f Filter) (Stats, Span, error) {
	var acc StatsBuilder
	span, err := c.Scan(ctx, topic, f, func(l *Letter) error {
		acc.Add(l)
		return nil
	})
	st := acc.Stats()
	st.Topic = topic
	return st, span, err
}

// StatsBuilder accumulates Stats letter by letter. Its zero value is ready.
type StatsBuilder struct {
	st     Stats
	errors map[string]int
}

// Add counts l.
func (b *StatsBuilder) Add(l *Letter) {
	st := &b.st
	if st.ByErrorClass == nil {
		st.ByErrorClass, st.ByOriginalPartition, st.ByFormat = map[string]int{}, map[int32]int{}, map[Format]int{}
		b.errors = map[string]int{}
	}
	st.Total++
	st.ByErrorClass[l.Meta.ErrorClass]++
	st.ByOriginalPartition[l.Meta.Original.Partition]++
	st.ByFormat[l.Meta.Format]++
	if l.Meta.Error != "" {
		b.errors[l.Meta.Error]++
	}
	widen(&st.OriginalFirst, &st.OriginalLast, l.Meta.Original.Timestamp)
	widen(&st.DeadLetteredFirst, &st.DeadLetteredLast, l.Timestamp)
}

func widen(first, last *time.Time, t time.Time) {
	if t.IsZero() {
		return
	}
	if first.IsZero() || t.Before(*first) {
		*first = t
	}
	if last.IsZero() || t.After(*last) {
		*last = t
	}
}

// Stats returns the summary so far.
func (b *StatsBuilder) Stats() Stats {
	st := b.st
	if st.ByErrorClass == nil {
		st.ByErrorClass, st.ByOriginalPartition, st.ByFormat = map[string]int{}, map[int32]int{}, map[Format]int{}
	}
	st.TopErrors = make([]Count, 0, len(b.errors))
	for text, n := range b.errors {
		st.TopErrors = append(st.TopErrors, Count{Text: text, Count: n})
	}
	slices.SortFunc(st.TopErrors, func(a, b Count) int { return cmp.Or(cmp.Compare(b.Count, a.Count), cmp.Compare(a.Text, b.Text)) })
	if len(st.TopErrors) > TopErrorsLen {
		st.TopErrors = st.TopErrors[:TopErrorsLen]
	}
	return st
}
