package cli

import (
	"errors"
	"fmt"
	"io"
	"os"
	"slices"
	"strconv"
	"strings"
	"time"

	"golang.org/x/text/language"
	"golang.org/x/text/message"

	"github.com/spf13/cobra"

	"github.com/ordokafka/ordo/pkg/replay"
)

// newReplayCmd is `ordo replay`: reset a group's offsets, copy a range of
// a topic into another.
func newReplayCmd(stdout, stderr io.Writer) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "replay",
		Short: "Rewind a consumer group (reset) or copy a window of a topic into another (copy)",
		Long: `Replay records: move a stopped consumer group's committed offsets with the
verbs of kafka-consumer-groups.sh --reset-offsets (a dry run unless --execute),
or copy a bounded range of a topic into another topic, records unchanged.`,
		Example: `  ordo replay reset --group ordo-dev --topic orders --to-time 2026-03-01T12:00:00Z
  ordo replay copy --from orders --into orders.replay --from-time 2026-03-01T12:00:00Z --to-time 2026-03-01T12:05:00Z`,
	}
	cmd.AddCommand(newReplayResetCmd(stdout, stderr), newReplayCopyCmd(stdout, stderr))
	return cmd
}

// checkBrokers reports an empty --brokers or an empty entry in it.
func checkBrokers(brokers []string) []error {
	var errs []error
	if len(brokers) == 0 {
		errs = append(errs, errors.New("--brokers is required (host:port of a seed broker)"))
	}
	for i, b := range brokers {
		if strings.TrimSpace(b) == "" {
			errs = append(errs, fmt.Errorf("--brokers: entry %d is empty", i+1))
		}
	}
	return errs
}

// parsePartitions parses "0,1,2" and ranges "0-3" into sorted partitions.
func parsePartitions(s string) ([]int32, error) {
	var out []int32
	for f := range strings.SplitSeq(s, ",") {
		f = strings.TrimSpace(f)
		lo, hi, isRange := strings.Cut(f, "-")
		a, err1 := strconv.ParseInt(lo, 10, 32)
		b := a
		var err2 error
		if isRange {
			b, err2 = strconv.ParseInt(hi, 10, 32)
		}
		switch {
		case f == "":
			return nil, errors.New("an empty partition")
		case err1 != nil || err2 != nil || a < 0 || b < 0:
			return nil, fmt.Errorf("%q is not a partition number (or a range like 0-3)", f)
		case b < a:
			return nil, fmt.Errorf("range %q ends before it starts", f)
		case b-a >= 100000:
			return nil, fmt.Errorf("range %q is too wide", f)
		}
		for p := a; p <= b; p++ {
			out = append(out, int32(p))
		}
	}
	slices.Sort(out)
	return slices.Compact(out), nil
}

// parseSelection parses "topic" or "topic:0,1,2" (the Kafka tool's
// --topic syntax; ranges like 0-3 too).
func parseSelection(s string) (replay.Selection, error) {
	topic, parts, has := strings.Cut(s, ":")
	if err := replay.ValidTopic(topic); err != nil {
		return replay.Selection{}, err
	}
	sel := replay.Selection{Topic: topic}
	if !has {
		return sel, nil
	}
	ps, err := parsePartitions(parts)
	if err != nil {
		return replay.Selection{}, fmt.Errorf("topic %s: %w", topic, err)
	}
	sel.Partitions = ps
	return sel, nil
}

// parseTime parses an RFC 3339 time (the zone is required).
func parseTime(s string) (time.Time, error) {
	t, err := time.Parse(time.RFC3339Nano, s)
	if err != nil {
		return time.Time{}, fmt.Errorf("%q is not an RFC 3339 time (e.g. 2026-03-01T12:00:00Z or 2026-03-01T13:00:00+01:00)", s)
	}
	if t.Before(time.Unix(0, 0)) {
		return time.Time{}, fmt.Errorf("%q is before 1970", s)
	}
	return t, nil
}

// parseFlexDuration parses a Go duration ("90m", "1h30m") or an ISO 8601
// one as the Kafka tool takes for --by-duration ("PT1H30M", "P1DT12H").
func parseFlexDuration(s string) (time.Duration, error) {
	if d, err := time.ParseDuration(s); err == nil {
		return d, nil
	}
	if d, ok := parseISODuration(s); ok {
		return d, nil
	}
	return 0, fmt.Errorf("%q is not a duration (e.g. 90m, 2h30m, or ISO 8601 PT1H30M, P1DT12H)", s)
}

// parseISODuration parses java.time.Duration's form: [-]P[nD][T[nH][nM][n[.n]S]].
func parseISODuration(s string) (time.Duration, bool) {
	neg := false
	if rest, ok := strings.CutPrefix(s, "-"); ok {
		neg, s = true, rest
	}
	s = strings.ToUpper(s)
	rest, ok := strings.CutPrefix(s, "P")
	if !ok || rest == "" {
		return 0, false
	}
	datePart, timePart, hasT := strings.Cut(rest, "T")
	if hasT && timePart == "" {
		return 0, false
	}
	var total float64
	take := func(part string, units map[byte]float64, order string) bool {
		for part != "" {
			i := strings.IndexAny(part, order)
			if i <= 0 {
				return false
			}
			n, err := strconv.ParseFloat(part[:i], 64)
			if err != nil || n < 0 || part[i] != 'S' && strings.Contains(part[:i], ".") {
				return false
			}
			u := part[i]
			total += n * units[u]
			order = order[strings.IndexByte(order, u)+1:] // units in order, once each
			part = part[i+1:]
		}
		return true
	}
	if !take(datePart, map[byte]float64{'D': 24 * 3600}, "D") {
		return 0, false
	}
	if !take(timePart, map[byte]float64{'H': 3600, 'M': 60, 'S': 1}, "HMS") {
		return 0, false
	}
	if total*float64(time.Second) > float64(1<<63-1) {
		return 0, false
	}
	d := time.Duration(total * float64(time.Second))
	if neg {
		d = -d
	}
	return d, true
}

// parseRate parses "N/s", "N/m", "N/h" or a bare N (per second) into
// records per second.
func parseRate(s string) (float64, error) {
	num, unit, _ := strings.Cut(strings.TrimSpace(s), "/")
	per := 1.0
	switch unit {
	case "", "s":
	case "m":
		per = 60
	case "h":
		per = 3600
	default:
		return 0, fmt.Errorf("%q: want N/s, N/m or N/h (records per second, minute or hour)", s)
	}
	n, err := strconv.ParseFloat(num, 64)
	if err != nil || n <= 0 || n > 1e9 {
		return 0, fmt.Errorf("%q: want a positive number of records, e.g. 500/s", s)
	}
	return n / per, nil
}

// isTerminal reports whether w is a terminal (a character device).
func isTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	if !ok {
		return false
	}
	st, err := f.Stat()
	return err == nil && st.Mode()&os.ModeCharDevice != 0
}

// group3 writes n with thousands separators: 1234567 -> 1,234,567.
func group3(n int64) string { return message.NewPrinter(language.English).Sprintf("%d", n) }
