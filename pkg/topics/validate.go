package topics

import (
	"errors"
	"fmt"
	"maps"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/ordokafka/ordo/pkg/ordo"
)

// MaxNameLen is the longest topic name Kafka accepts.
const MaxNameLen = 249

// ValidationError is one problem with one field of one declared topic.
type ValidationError struct {
	File  string // file the declaration is in
	Index int    // position of the declaration in its file, from 0, across documents
	Topic string // the declared name; empty if the declaration has none
	Field string // the field, e.g. "partitions", "groups[0].retry.delays[1]", `configs["retention.ms"]`
	Msg   string // what is wrong, e.g. "must be >= 1, got 0"
}

func (e *ValidationError) Error() string {
	who := fmt.Sprintf("topic %q", e.Topic)
	if e.Topic == "" {
		who = fmt.Sprintf("topics[%d]", e.Index)
	}
	return fmt.Sprintf("%s: %s: %s %s", e.File, who, e.Field, e.Msg)
}

// build validates declarations, alone and together, and returns their Set.
func build(decls []decl) (*Set, error) {
	var errs []error
	set := &Set{Topics: make([]Topic, 0, len(decls))}
	for _, d := range decls {
		t, es := d.topic()
		errs = append(errs, es...)
		set.Topics = append(set.Topics, t)
	}
	errs = append(errs, crossCheck(decls, set.Topics)...)
	if len(errs) > 0 {
		return nil, errors.Join(errs...)
	}
	return set, nil
}

func (d decl) fail(field, format string, args ...any) error {
	return &ValidationError{
		File:  d.file,
		Index: d.index,
		Topic: d.raw.Name,
		Field: field,
		Msg:   fmt.Sprintf(format, args...),
	}
}

// topic converts a declaration into a Topic, applying defaults, and reports
// every invalid field. The Topic is meaningful for cross-checks even when
// some fields are invalid.
func (d decl) topic() (Topic, []error) {
	r := d.raw
	var errs []error
	t := Topic{Name: r.Name, ReplicationFactor: 1}

	nameOK := nameProblem(r.Name) == ""
	if msg := nameProblem(r.Name); msg != "" {
		errs = append(errs, d.fail("name", "%s", msg))
	}

	switch {
	case r.Partitions == nil:
		errs = append(errs, d.fail("partitions", "is required (>= 1)"))
	case *r.Partitions < 1:
		errs = append(errs, d.fail("partitions", "must be >= 1, got %d", *r.Partitions))
	default:
		t.Partitions = *r.Partitions
	}

	if r.ReplicationFactor != nil {
		if *r.ReplicationFactor < 1 {
			errs = append(errs, d.fail("replication_factor", "must be >= 1, got %d", *r.ReplicationFactor))
		} else {
			t.ReplicationFactor = *r.ReplicationFactor
		}
	}

	if len(r.Configs) > 0 {
		t.Configs = maps.Clone(r.Configs)
		for _, k := range slices.Sorted(maps.Keys(r.Configs)) {
			switch {
			case strings.TrimSpace(k) == "":
				errs = append(errs, d.fail("configs", "has an empty key"))
			case r.Configs[k] == "":
				errs = append(errs, d.fail(fmt.Sprintf("configs[%q]", k), "must not be empty"))
			}
		}
	}

	// The format before retry chains belonged to a group.
	if !r.OldRetry.IsZero() {
		errs = append(errs, d.fail("retry", "is no longer a topic field: retry tiers belong to a consumer group; "+
			"move it under groups, e.g. groups: [{name: <group>, retry: {delays: [1s, 5s]}}], "+
			"which gives %s (see topics/README.md)", ordo.DefaultNaming.RetryTopic(r.Name, "<group>", 1)))
	}
	if !r.OldDLQ.IsZero() {
		errs = append(errs, d.fail("dlq", "is no longer a topic field: a dead-letter topic belongs to a consumer group; "+
			"move it under groups, e.g. groups: [{name: <group>, dlq: true}], "+
			"which gives %s (see topics/README.md)", ordo.DefaultNaming.DLQTopic(r.Name, "<group>")))
	}

	seen := make(map[string]int, len(r.Groups))
	for i, g := range r.Groups {
		field := fmt.Sprintf("groups[%d]", i)
		gc := GroupChain{Topic: r.Name, Group: g.Name, DLQ: true}
		if g.DLQ != nil {
			gc.DLQ = *g.DLQ
		}
		if g.Retry != nil {
			gc.Retry.Delays = make([]time.Duration, len(g.Retry.Delays))
			errs = append(errs, d.delays(field+".retry.delays", g.Retry.Delays, gc.Retry.Delays)...)
		}
		switch j, dup := seen[g.Name]; {
		case g.Name == "":
			errs = append(errs, d.fail(field+".name", "is required (the consumer group that reads the topic)"))
		case dup:
			errs = append(errs, d.fail(field+".name", "%q is already declared for this topic (groups[%d])", g.Name, j))
		default:
			seen[g.Name] = i
			if nameOK {
				// A group name that Kafka accepts may still make an illegal
				// topic name: report the first derived name that fails.
				for _, s := range (Topic{Name: r.Name}).ChainSpecs(gc) {
					if p := ordo.TopicNameProblem(s.Name); p != "" {
						errs = append(errs, d.fail(field+".name", "%q gives %s %q, which %s", g.Name, kindWord(s), s.Name, p))
						break
					}
				}
			}
			t.Groups = append(t.Groups, gc)
		}
	}
	return t, errs
}

// delays parses and checks the delays raw (at field, e.g.
// "groups[0].retry.delays") into out, which has one slot per delay.
func (d decl) delays(field string, raw []string, out []time.Duration) []error {
	if len(raw) == 0 {
		return []error{d.fail(field, "must list at least one delay (omit retry for a group without retry tiers)")}
	}
	var errs []error
	retention, hasRetention := retentionMs(d.raw.Configs)
	var prev time.Duration // last valid delay; 0 if none yet
	prevIdx := -1
	for i, s := range raw {
		f := fmt.Sprintf("%s[%d]", field, i)
		v, err := time.ParseDuration(strings.TrimSpace(s))
		switch {
		case err != nil:
			errs = append(errs, d.fail(f, "is not a duration: %q (use a Go duration such as 500ms, 10s or 1m)", s))
			continue
		case v <= 0:
			errs = append(errs, d.fail(f, "must be > 0, got %s", s))
			continue
		case prevIdx >= 0 && v < prev:
			errs = append(errs, d.fail(f, "must not be shorter than %s[%d] (%s), got %s", field, prevIdx, prev, v))
		}
		if hasRetention && v >= retention {
			errs = append(errs, d.fail(f, "%s is not shorter than configs retention.ms (%s): records would expire before they are due", v, retention))
		}
		out[i] = v
		prev, prevIdx = v, i
	}
	return errs
}

// retentionMs returns the retention.ms config as a duration, if it is set to
// a finite, parseable value. Unparseable values are left to the broker.
func retentionMs(configs map[string]string) (time.Duration, bool) {
	v, ok := configs["retention.ms"]
	if !ok {
		return 0, false
	}
	ms, err := strconv.ParseInt(strings.TrimSpace(v), 10, 64)
	if err != nil || ms < 0 || ms > int64(time.Duration(1<<63-1)/time.Millisecond) {
		return 0, false
	}
	return time.Duration(ms) * time.Millisecond, true
}

// nameProblem returns why name is not a legal Kafka topic name, or "".
func nameProblem(name string) string {
	switch {
	case name == "":
		return "is required"
	case len(name) > MaxNameLen:
		return fmt.Sprintf("must be at most %d characters, got %d", MaxNameLen, len(name))
	case name == "." || name == "..":
		return `must not be "." or ".."`
	}
	for i, c := range name {
		if !legalNameChar(c) {
			return fmt.Sprintf("has illegal character %q at byte %d (only [a-zA-Z0-9._-] are allowed)", c, i)
		}
	}
	return ""
}

func legalNameChar(c rune) bool {
	return c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' ||
		c == '.' || c == '_' || c == '-'
}

// crossCheck reports duplicate declarations, declared names that equal a
// derived name, derived names that two chains share, and names that differ
// only in '.' versus '_'.
func crossCheck(decls []decl, ts []Topic) []error {
	var errs []error

	declared := make(map[string]int, len(ts)) // name -> first declaration
	for i, t := range ts {
		if t.Name == "" {
			continue
		}
		if j, dup := declared[t.Name]; dup {
			where := decls[j].file
			if where == decls[i].file {
				where = fmt.Sprintf("this file (topics[%d])", decls[j].index)
			}
			errs = append(errs, decls[i].fail("name", "is already declared in %s", where))
			continue
		}
		declared[t.Name] = i
	}
	first := func(i int, t Topic) bool {
		j, ok := declared[t.Name]
		return ok && j == i // named, and not a duplicate reported above
	}

	type owner struct {
		decl int
		spec TopicSpec
	}
	derived := make(map[string]owner)
	for i, t := range ts {
		if !first(i, t) {
			continue
		}
		for _, s := range t.All()[1:] {
			if j, ok := declared[s.Name]; ok {
				errs = append(errs, decls[j].fail("name", "collides with the %s of topic %q declared in %s", describe(s), t.Name, decls[i].file))
				continue
			}
			if o, ok := derived[s.Name]; ok {
				errs = append(errs, decls[i].fail(groupField(t, s.Group), "%q gives %s %q, which is also the %s of topic %q declared in %s",
					s.Group, kindWord(s), s.Name, describe(o.spec), o.spec.Source, decls[o.decl].file))
				continue
			}
			derived[s.Name] = owner{decl: i, spec: s}
		}
	}

	// Kafka refuses to create a topic whose name equals an existing one once
	// '.' is replaced by '_', because both map to the same metric names.
	seen := make(map[string]owner)
	for i, t := range ts {
		if !first(i, t) {
			continue
		}
		for _, s := range t.All() {
			key := strings.ReplaceAll(s.Name, ".", "_")
			o, ok := seen[key]
			if !ok {
				seen[key] = owner{decl: i, spec: s}
				continue
			}
			if o.spec.Name == s.Name {
				continue // an exact collision, reported above
			}
			field, what := "name", "collides"
			if s.Kind != KindMain {
				field, what = groupField(t, s.Group), "gives "+label(s)+", which collides"
			}
			errs = append(errs, decls[i].fail(field, "%s with %s declared in %s: Kafka refuses names that differ only in '.' and '_'",
				what, label(o.spec), decls[o.decl].file))
		}
	}
	return errs
}

// groupField names the field of group's declaration in t, e.g.
// "groups[1].name".
func groupField(t Topic, group string) string {
	for i, g := range t.Groups {
		if g.Group == group {
			return fmt.Sprintf("groups[%d].name", i)
		}
	}
	return "groups"
}

// kindWord names a derived spec's place in its chain: "retry topic 2",
// "DLQ topic".
func kindWord(s TopicSpec) string {
	if s.Kind == KindRetry {
		return fmt.Sprintf("retry topic %d", s.Tier)
	}
	return "DLQ topic"
}

func describe(s TopicSpec) string {
	switch s.Kind {
	case KindRetry:
		return fmt.Sprintf("retry topic %d of group %q", s.Tier, s.Group)
	case KindDLQ:
		return fmt.Sprintf("DLQ topic of group %q", s.Group)
	default:
		return "topic"
	}
}

func label(s TopicSpec) string {
	switch s.Kind {
	case KindRetry:
		return fmt.Sprintf("retry topic %q of group %q on topic %q", s.Name, s.Group, s.Source)
	case KindDLQ:
		return fmt.Sprintf("DLQ topic %q of group %q on topic %q", s.Name, s.Group, s.Source)
	default:
		return fmt.Sprintf("topic %q", s.Name)
	}
}
