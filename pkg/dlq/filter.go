package dlq

import (
	"errors"
	"fmt"
	"math"
	"slices"
	"strconv"
	"strings"
	"time"
)

// Range is an inclusive range of partitions or offsets.
type Range struct {
	From, To int64 // From <= To; To is math.MaxInt64 for an open end
}

// Ranges is a union of ranges. An empty Ranges matches everything.
type Ranges []Range

// ParseRanges parses a comma-separated list of numbers and inclusive
// ranges: "3", "3-7", "100-" (100 and above), "-50" (0 to 50),
// "0,4-6". Numbers are non-negative. The empty string is an empty Ranges.
func ParseRanges(s string) (Ranges, error) {
	if strings.TrimSpace(s) == "" {
		return nil, nil
	}
	var rs Ranges
	for part := range strings.SplitSeq(s, ",") {
		part = strings.TrimSpace(part)
		lo, hi, isRange := strings.Cut(part, "-")
		var r Range
		var err error
		switch {
		case part == "" || part == "-":
			return nil, fmt.Errorf("%q: empty range in %q", part, s)
		case !isRange:
			r.From, err = nonNegative(lo)
			r.To = r.From
		default:
			r.From, r.To = 0, math.MaxInt64
			if lo != "" {
				if r.From, err = nonNegative(lo); err != nil {
					break
				}
			}
			if hi != "" {
				r.To, err = nonNegative(hi)
			}
		}
		if err != nil {
			return nil, fmt.Errorf("%q: %w", part, err)
		}
		if r.From > r.To {
			return nil, fmt.Errorf("%q: %d is above %d", part, r.From, r.To)
		}
		rs = append(rs, r)
	}
	return rs, nil
}

func nonNegative(s string) (int64, error) {
	n, err := strconv.ParseInt(strings.TrimSpace(s), 10, 64)
	if err != nil || n < 0 {
		return 0, fmt.Errorf("%q is not a non-negative number", s)
	}
	return n, nil
}

// Contains reports whether v is in one of the ranges, or rs is empty.
func (rs Ranges) Contains(v int64) bool {
	if len(rs) == 0 {
		return true
	}
	for _, r := range rs {
		if v >= r.From && v <= r.To {
			return true
		}
	}
	return false
}

// bounds returns the lowest and highest value rs can contain.
func (rs Ranges) bounds() (lo, hi int64) {
	if len(rs) == 0 {
		return 0, math.MaxInt64
	}
	lo, hi = math.MaxInt64, 0
	for _, r := range rs {
		lo, hi = min(lo, r.From), max(hi, r.To)
	}
	return lo, hi
}

// String formats rs as ParseRanges reads it.
func (rs Ranges) String() string {
	parts := make([]string, 0, len(rs))
	for _, r := range rs {
		switch {
		case r.From == r.To:
			parts = append(parts, itoa(r.From))
		case r.To == math.MaxInt64:
			parts = append(parts, itoa(r.From)+"-")
		default:
			parts = append(parts, itoa(r.From)+"-"+itoa(r.To))
		}
	}
	return strings.Join(parts, ",")
}

// Filter selects dead letters. Its zero value selects every one; each set
// field narrows the selection, and a letter must match all of them.
type Filter struct {
	// Since and Until bound the ORIGINAL record's timestamp (as the
	// headers say), not the time it was dead-lettered: Since <= t < Until.
	// A letter whose headers give no original timestamp (Karafka's) does
	// not match while either is set.
	Since, Until time.Time
	// ErrorClasses matches letters whose error class (Ordo's class, or
	// Spring's exception or cause class name) is one of them.
	ErrorClasses []string
	// Keys matches letters whose key is exactly one of them.
	Keys []string
	// Group matches letters of that consumer group, and letters whose
	// headers name no group. A letter that names another group never
	// matches: one group never redrives another's failures.
	Group string
	// OriginalTopic matches letters whose original topic is this one.
	OriginalTopic string
	// Partitions and Offsets are ranges of the ORIGINAL record's partition
	// and offset (as the headers say); a letter whose headers do not give
	// them does not match while they are set.
	Partitions, Offsets Ranges
	// DLQPartitions and DLQOffsets are ranges of the dead-letter record's
	// own partition and offset on the dead-letter topic. A scan reads only
	// those.
	DLQPartitions, DLQOffsets Ranges
}

// Validate reports contradictory fields.
func (f Filter) Validate() error {
	var errs []error
	if !f.Since.IsZero() && !f.Until.IsZero() && !f.Since.Before(f.Until) {
		errs = append(errs, fmt.Errorf("since (%s) must be before until (%s)", f.Since.Format(time.RFC3339), f.Until.Format(time.RFC3339)))
	}
	for _, r := range slices.Concat(f.Partitions, f.DLQPartitions) {
		if r.From > math.MaxInt32 {
			errs = append(errs, fmt.Errorf("partition %d is out of range", r.From))
		}
	}
	return errors.Join(errs...)
}

// OtherGroup reports whether l names a consumer group other than
// f.Group (always false when f.Group is "").
func (f Filter) OtherGroup(l *Letter) bool {
	return f.Group != "" && l.Meta.Group != "" && l.Meta.Group != f.Group
}

// Match reports whether l is selected.
func (f Filter) Match(l *Letter) bool {
	m := &l.Meta
	switch {
	case f.OtherGroup(l):
		return false
	case !f.DLQPartitions.Contains(int64(l.Partition)) || !f.DLQOffsets.Contains(l.Offset):
		return false
	case f.OriginalTopic != "" && m.Original.Topic != f.OriginalTopic:
		return false
	case len(f.Partitions) > 0 && (m.Original.Partition < 0 || !f.Partitions.Contains(int64(m.Original.Partition))):
		return false
	case len(f.Offsets) > 0 && (m.Original.Offset < 0 || !f.Offsets.Contains(m.Original.Offset)):
		return false
	}
	if !f.Since.IsZero() || !f.Until.IsZero() {
		ts := m.Original.Timestamp
		if ts.IsZero() || !f.Since.IsZero() && ts.Before(f.Since) || !f.Until.IsZero() && !ts.Before(f.Until) {
			return false
		}
	}
	if len(f.ErrorClasses) > 0 && !slices.ContainsFunc(f.ErrorClasses, func(c string) bool {
		return c != "" && (c == m.ErrorClass || c == m.Cause)
	}) {
		return false
	}
	if len(f.Keys) > 0 && !slices.Contains(f.Keys, string(l.Key)) {
		return false
	}
	return true
}
