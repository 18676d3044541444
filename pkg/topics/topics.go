package topics

import (
	"maps"
	"strconv"
	"strings"
	"time"
)

// Topic is one declared topic and the chain derived from it.
type Topic struct {
	// Name is the topic's name.
	Name string
	// Partitions is the partition count of the topic and of its derived topics.
	Partitions int32
	// ReplicationFactor is the replication factor of the topic and of its
	// derived topics.
	ReplicationFactor int16
	// Configs are topic configs passed to CreateTopics. It may be nil.
	Configs map[string]string
	// Retry is the chain of retry tiers; it is empty when the topic has none.
	Retry RetryChain
	// DLQ reports whether the topic has a dead-letter topic.
	DLQ bool
}

// RetryChain is the ordered list of retry tiers of a topic. Tier n (1-based)
// is the topic <name>.retry.<n>, whose records wait Delays[n-1].
type RetryChain struct {
	Delays []time.Duration
}

// Tiers returns the number of retry tiers.
func (c RetryChain) Tiers() int { return len(c.Delays) }

// Kind says which part of a topic chain a [TopicSpec] is.
type Kind string

// The kinds of topics in a chain.
const (
	KindMain  Kind = "main"  // the declared topic itself
	KindRetry Kind = "retry" // a retry tier, <name>.retry.<n>
	KindDLQ   Kind = "dlq"   // the dead-letter topic, <name>.dlq
)

// TopicSpec is one concrete topic to create: a declared topic, one of its retry
// tiers or its dead-letter topic.
type TopicSpec struct {
	Name              string
	Partitions        int32
	ReplicationFactor int16
	// Configs are passed to CreateTopics; each spec owns its map.
	Configs map[string]string

	// Kind is the spec's place in its chain.
	Kind Kind
	// Source is the declared topic the spec belongs to (its own name for
	// KindMain).
	Source string
	// Tier is the 1-based retry tier for KindRetry, and 0 otherwise.
	Tier int
	// Delay is how long records wait in a KindRetry topic, and 0 otherwise.
	Delay time.Duration
}

// Set is the topics declared in one or more files.
type Set struct {
	Topics []Topic
}

// RetryTopic returns the name of retry tier n: <name>.retry.<n>. It does not
// check that the topic has n tiers.
func (t Topic) RetryTopic(n int) string {
	return t.Name + ".retry." + strconv.Itoa(n)
}

// DLQTopic returns the name of the dead-letter topic, <name>.dlq, whether or
// not t.DLQ is set.
func (t Topic) DLQTopic() string {
	return t.Name + ".dlq"
}

// All returns the specs of the topic's chain, in order: the topic itself, its
// retry tiers 1..N, then its DLQ if it has one.
func (t Topic) All() []TopicSpec {
	specs := make([]TopicSpec, 0, 2+len(t.Retry.Delays))
	specs = append(specs, TopicSpec{
		Name:              t.Name,
		Partitions:        t.Partitions,
		ReplicationFactor: t.ReplicationFactor,
		Configs:           cloneConfigs(t.Configs),
		Kind:              KindMain,
		Source:            t.Name,
	})
	for i, d := range t.Retry.Delays {
		specs = append(specs, TopicSpec{
			Name:              t.RetryTopic(i + 1),
			Partitions:        t.Partitions,
			ReplicationFactor: t.ReplicationFactor,
			Configs:           derivedConfigs(t.Configs),
			Kind:              KindRetry,
			Source:            t.Name,
			Tier:              i + 1,
			Delay:             d,
		})
	}
	if t.DLQ {
		specs = append(specs, TopicSpec{
			Name:              t.DLQTopic(),
			Partitions:        t.Partitions,
			ReplicationFactor: t.ReplicationFactor,
			Configs:           derivedConfigs(t.Configs),
			Kind:              KindDLQ,
			Source:            t.Name,
		})
	}
	return specs
}

// derivedNames returns the names of the topics derived from t, in order.
func (t Topic) derivedNames() []string {
	names := make([]string, 0, 1+len(t.Retry.Delays))
	for i := range t.Retry.Delays {
		names = append(names, t.RetryTopic(i+1))
	}
	if t.DLQ {
		names = append(names, t.DLQTopic())
	}
	return names
}

// Specs returns the specs of every declared topic's chain, in declaration
// order. It returns nil for a nil Set.
func (s *Set) Specs() []TopicSpec {
	if s == nil {
		return nil
	}
	var specs []TopicSpec
	for _, t := range s.Topics {
		specs = append(specs, t.All()...)
	}
	return specs
}

// Lookup returns the declared topic with the given name. Derived names (retry
// and DLQ topics) are not declared topics and are not found.
func (s *Set) Lookup(name string) (Topic, bool) {
	if s == nil {
		return Topic{}, false
	}
	for _, t := range s.Topics {
		if t.Name == name {
			return t, true
		}
	}
	return Topic{}, false
}

func cloneConfigs(c map[string]string) map[string]string {
	if c == nil {
		return nil
	}
	return maps.Clone(c)
}

// derivedConfigs returns the configs of a retry or DLQ topic: the source's,
// except that compaction is replaced by deletion, because compaction keeps
// only the latest record of a key and would silently drop retried or
// dead-lettered records.
func derivedConfigs(c map[string]string) map[string]string {
	out := cloneConfigs(c)
	if p, ok := out["cleanup.policy"]; ok && strings.Contains(p, "compact") {
		out["cleanup.policy"] = "delete"
	}
	return out
}
