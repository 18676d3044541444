package replay

import (
	"bufio"
	"cmp"
	"errors"
	"fmt"
	"io"
	"slices"
	"strconv"
	"strings"
)

// PlanRow is one line of a reset plan in the CSV format of
// kafka-consumer-groups.sh --reset-offsets --export: topic,partition,offset
// for one group, or group,topic,partition,offset when the Kafka tool was
// given several groups.
type PlanRow struct {
	// Group is the group of a four-column row; "" in a three-column one.
	Group     string
	Topic     string
	Partition int32
	Offset    int64
}

// maxPlanErrors bounds the bad lines ReadCSV lists one by one.
const maxPlanErrors = 20

// WriteCSV writes rows as kafka-consumer-groups.sh --export does for one
// group: "topic,partition,offset" and a newline per row, no header, sorted
// by topic and partition. Topic names never need quoting (ValidTopic).
func WriteCSV(w io.Writer, rows []PlanRow) error {
	rows = slices.Clone(rows)
	sortRows(rows)
	var b strings.Builder
	for _, r := range rows {
		if err := ValidTopic(r.Topic); err != nil {
			return fmt.Errorf("plan row %s/%d: %w", r.Topic, r.Partition, err)
		}
		b.WriteString(r.Topic)
		b.WriteByte(',')
		b.WriteString(strconv.FormatInt(int64(r.Partition), 10))
		b.WriteByte(',')
		b.WriteString(strconv.FormatInt(r.Offset, 10))
		b.WriteByte('\n')
	}
	_, err := io.WriteString(w, b.String())
	return err
}

func sortRows(rows []PlanRow) {
	slices.SortFunc(rows, func(a, b PlanRow) int {
		return cmp.Or(cmp.Compare(a.Group, b.Group), cmp.Compare(a.Topic, b.Topic), cmp.Compare(a.Partition, b.Partition))
	})
}

// ReadCSV reads a reset plan as the Kafka tool reads it: one row per line,
// "topic,partition,offset" or "group,topic,partition,offset", no header.
// Blank lines and a carriage return before the newline are ignored. Every
// bad line is reported (up to 20 of them), each with its number; a plan
// that names a partition twice, or no partition at all, is refused.
func ReadCSV(r io.Reader) ([]PlanRow, error) {
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 0, 4096), 1<<20)
	var (
		rows []PlanRow
		errs []error
		bad  int
	)
	seen := map[PlanRow]int{} // offset zeroed: group, topic, partition -> line
	fail := func(err error) {
		bad++
		if bad <= maxPlanErrors {
			errs = append(errs, err)
		}
	}
	line := 0
	for sc.Scan() {
		line++
		text := strings.TrimSuffix(sc.Text(), "\r")
		if strings.TrimSpace(text) == "" {
			continue
		}
		row, err := parseRow(text)
		if err != nil {
			fail(fmt.Errorf("line %d: %w", line, err))
			continue
		}
		k := row
		k.Offset = 0
		if first, dup := seen[k]; dup {
			fail(fmt.Errorf("line %d: %s/%d is already planned on line %d", line, row.Topic, row.Partition, first))
			continue
		}
		seen[k] = line
		rows = append(rows, row)
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("line %d: %w", line+1, err)
	}
	if bad > maxPlanErrors {
		errs = append(errs, fmt.Errorf("and %d more bad lines", bad-maxPlanErrors))
	}
	if len(errs) > 0 {
		return nil, errors.Join(errs...)
	}
	if len(rows) == 0 {
		return nil, errors.New("no rows: want lines of topic,partition,offset")
	}
	return rows, nil
}

func parseRow(text string) (PlanRow, error) {
	f := strings.Split(text, ",")
	var row PlanRow
	switch len(f) {
	case 3:
	case 4:
		row.Group, f = f[0], f[1:]
		if row.Group == "" {
			return row, errors.New("empty group")
		}
	default:
		return row, fmt.Errorf("%d fields, want topic,partition,offset (or group,topic,partition,offset)", len(f))
	}
	var errs []error
	row.Topic = f[0]
	if err := ValidTopic(row.Topic); err != nil {
		errs = append(errs, err)
	}
	p, err := strconv.ParseInt(f[1], 10, 32)
	if err != nil || p < 0 {
		errs = append(errs, fmt.Errorf("partition %q is not a number from 0 to %d", f[1], int32(1<<31-1)))
	}
	row.Partition = int32(p)
	o, err := strconv.ParseInt(f[2], 10, 64)
	if err != nil || o < 0 {
		errs = append(errs, fmt.Errorf("offset %q is not a number >= 0", f[2]))
	}
	row.Offset = o
	if len(errs) > 0 {
		return row, joinInline(errs)
	}
	return row, nil
}

// joinInline joins errs on one line, so that a bad CSV line is one error.
func joinInline(errs []error) error {
	s := make([]string, len(errs))
	for i, e := range errs {
		s[i] = e.Error()
	}
	return errors.New(strings.Join(s, "; "))
}
