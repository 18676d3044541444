package topics

import (
	"maps"
	"strings"
	"time"

	"github.com/ordokafka/ordo/pkg/ordo"
)

// Topic is one declared topic and the chains derived from it, one per
// consumer group that reads it.
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
	// Groups are the consumer groups that read the topic, each with its own
	// retry tiers and dead-letter topic, in declaration order.
	Groups []GroupChain
}

// GroupChain is the retry chain of one consumer group on one topic: its
// retry tiers and its dead-letter topic, named by [ordo.DefaultNaming]
// after the topic and the group, so that two groups reading one topic
// never share failures.
type GroupChain struct {
	// Topic is the declared (source) topic.
	Topic string
	// Group is the consumer group.
	Group string
	// Retry is the chain of retry tiers; it is empty when the group has none.
	Retry RetryChain
	// DLQ reports whether the group has a dead-letter topic for Topic.
	DLQ bool
}

// RetryChain is the ordered list of retry tiers of a group on a topic. Tier
// n (1-based) holds its records for Delays[n-1].
type RetryChain struct {
	Delays []time.Duration
}

// Tiers returns the number of retry tiers.
func (c RetryChain) Tiers() int { return len(c.Delays) }

// Delay returns the delay of tier n (1-based), and false if there is no
// such tier.
func (c RetryChain) Delay(n int) (time.Duration, bool) {
	if n < 1 || n > len(c.Delays) {
		return 0, false
	}
	return c.Delays[n-1], true
}

// RetryTopic returns the name of retry tier n (1-based) of the chain,
// <topic>.<group>.retry.<n>. It does not check that the chain has n tiers.
func (g GroupChain) RetryTopic(n int) string {
	return ordo.DefaultNaming.RetryTopic(g.Topic, g.Group, n)
}

// DLQTopic returns the name of the chain's dead-letter topic,
// <topic>.<group>.dlq, whether or not g.DLQ is set.
func (g GroupChain) DLQTopic() string {
	return ordo.DefaultNaming.DLQTopic(g.Topic, g.Group)
}

// Chain returns the retry chain of group on t, and false if t declares no
// such group. The engine and the CLI use it to find a group's tier delays
// and whether it has a dead-letter topic.
func (t Topic) Chain(group string) (GroupChain, bool) {
	for _, g := range t.Groups {
		if g.Group == group {
			return g, true
		}
	}
	return GroupChain{}, false
}

// Kind says which part of a topic chain a [TopicSpec] is.
type Kind string

// The kinds of topics in a chain.
const (
	KindMain  Kind = "main"  // the declared topic itself
	KindRetry Kind = "retry" // a group's retry tier, <name>.<group>.retry.<n>
	KindDLQ   Kind = "dlq"   // a group's dead-letter topic, <name>.<group>.dlq
)

// TopicSpec is one concrete topic to create: a declared topic, or one of the
// retry tiers or the dead-letter topic of a group that reads it.
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
	// Group is the consumer group whose chain a KindRetry or KindDLQ spec
	// is part of, and "" for KindMain.
	Group string
	// Tier is the 1-based retry tier for KindRetry, and 0 otherwise.
	Tier int
	// Delay is how long records wait in a KindRetry topic, and 0 otherwise.
	Delay time.Duration
}

// Set is the topics declared in one or more files.
type Set struct {
	Topics []Topic
}

// All returns the specs of the topic's chains, in order: the topic itself,
// then for each group, in declaration order, its retry tiers 1..N and its
// DLQ if it has one.
func (t Topic) All() []TopicSpec {
	specs := []TopicSpec{{
		Name:              t.Name,
		Partitions:        t.Partitions,
		ReplicationFactor: t.ReplicationFactor,
		Configs:           cloneConfigs(t.Configs),
		Kind:              KindMain,
		Source:            t.Name,
	}}
	for _, g := range t.Groups {
		specs = append(specs, t.ChainSpecs(g)...)
	}
	return specs
}

// ChainSpecs returns the specs of g's retry tiers 1..N and its DLQ (if it
// has one), with t's partition count, replication factor and derived
// configs. g need not be one of t's declared groups: a tool can build the
// chain of a group the declarations do not name (GroupChain{Topic: t.Name,
// Group: "x", Retry: ..., DLQ: true}).
func (t Topic) ChainSpecs(g GroupChain) []TopicSpec {
	specs := make([]TopicSpec, 0, 1+len(g.Retry.Delays))
	for i, d := range g.Retry.Delays {
		specs = append(specs, TopicSpec{
			Name:              g.RetryTopic(i + 1),
			Partitions:        t.Partitions,
			ReplicationFactor: t.ReplicationFactor,
			Configs:           derivedConfigs(t.Configs),
			Kind:              KindRetry,
			Source:            t.Name,
			Group:             g.Group,
			Tier:              i + 1,
			Delay:             d,
		})
	}
	if g.DLQ {
		specs = append(specs, TopicSpec{
			Name:              g.DLQTopic(),
			Partitions:        t.Partitions,
			ReplicationFactor: t.ReplicationFactor,
			Configs:           derivedConfigs(t.Configs),
			Kind:              KindDLQ,
			Source:            t.Name,
			Group:             g.Group,
		})
	}
	return specs
}

// Specs returns the specs of every declared topic's chains, in declaration
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

// Chain returns the retry chain of group on the declared topic, and false
// if the topic is not declared or does not declare the group.
func (s *Set) Chain(topic, group string) (GroupChain, bool) {
	t, ok := s.Lookup(topic)
	if !ok {
		return GroupChain{}, false
	}
	return t.Chain(group)
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
