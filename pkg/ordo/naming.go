package ordo

import (
	"fmt"
	"strconv"
	"strings"
)

// The retry chain of a source topic belongs to one consumer group: its
// retry tiers and its dead-letter topic are named after the topic and the
// group, so that two groups reading one topic never consume, count or
// redrive each other's failures.
//
// Names come from templates with the placeholders {topic}, {group} and
// {n} (the tier, from 1):
//
//	DefaultRetryTopicTemplate  {topic}.{group}.retry.{n}   orders.ledger.retry.1
//	DefaultDLQTopicTemplate    {topic}.{group}.dlq         orders.ledger.dlq
//
// `ordo topics apply` creates them from topics/ with the default templates.
const (
	DefaultRetryTopicTemplate = "{topic}.{group}.retry.{n}"
	DefaultDLQTopicTemplate   = "{topic}.{group}.dlq"
)

// Naming names the topics of a group's retry chains.
type Naming struct {
	// RetryTemplate names retry tier n of a topic. It must contain {n}.
	// Default DefaultRetryTopicTemplate.
	RetryTemplate string
	// DLQTemplate names the dead-letter topic of a topic. Default
	// DefaultDLQTopicTemplate.
	DLQTemplate string
}

// DefaultNaming is the naming of `ordo topics apply` and of a Config that
// sets no template.
var DefaultNaming = Naming{RetryTemplate: DefaultRetryTopicTemplate, DLQTemplate: DefaultDLQTopicTemplate}

func (n Naming) withDefaults() Naming {
	if n.RetryTemplate == "" {
		n.RetryTemplate = DefaultRetryTopicTemplate
	}
	if n.DLQTemplate == "" {
		n.DLQTemplate = DefaultDLQTopicTemplate
	}
	return n
}

// RetryTopic is the name of retry tier n (from 1) of topic for group.
func (n Naming) RetryTopic(topic, group string, tier int) string {
	n = n.withDefaults()
	return fill(n.RetryTemplate, topic, group, tier)
}

// DLQTopic is the name of the dead-letter topic of topic for group.
func (n Naming) DLQTopic(topic, group string) string {
	n = n.withDefaults()
	return fill(n.DLQTemplate, topic, group, 0)
}

func fill(tmpl, topic, group string, tier int) string {
	return strings.NewReplacer("{topic}", topic, "{group}", group, "{n}", strconv.Itoa(tier)).Replace(tmpl)
}

// check reports why the naming cannot name the chains of group's topics:
// an unknown placeholder, a retry template without {n}, or a derived name
// Kafka would refuse.
func (n Naming) check(group string, topics []string, tiers int) []string {
	n = n.withDefaults()
	var out []string
	for _, t := range []struct{ name, tmpl string }{{"RetryTemplate", n.RetryTemplate}, {"DLQTemplate", n.DLQTemplate}} {
		rest := strings.NewReplacer("{topic}", "", "{group}", "", "{n}", "").Replace(t.tmpl)
		if strings.ContainsAny(rest, "{}") {
			out = append(out, fmt.Sprintf("%s %q has an unknown placeholder (have {topic}, {group}, {n})", t.name, t.tmpl))
		}
	}
	if tiers > 0 && !strings.Contains(n.RetryTemplate, "{n}") {
		out = append(out, fmt.Sprintf("RetryTemplate %q must contain {n}: each tier needs a topic of its own", n.RetryTemplate))
	}
	if len(out) > 0 {
		return out
	}
	for _, topic := range topics {
		names := []string{n.DLQTopic(topic, group)}
		for i := 1; i <= tiers; i++ {
			names = append(names, n.RetryTopic(topic, group, i))
		}
		for _, name := range names {
			if p := TopicNameProblem(name); p != "" {
				out = append(out, fmt.Sprintf("derived topic %q %s (group %q, topic %q)", name, p, group, topic))
			}
		}
	}
	return out
}

// TopicNameProblem says why Kafka would refuse name as a topic name, or ""
// if it would not.
func TopicNameProblem(name string) string {
	switch {
	case name == "":
		return "is empty"
	case name == "." || name == "..":
		return "is . or .."
	case len(name) > 249:
		return fmt.Sprintf("is %d characters long, more than 249", len(name))
	}
	for _, c := range name {
		legal := c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '.' || c == '_' || c == '-'
		if !legal {
			return fmt.Sprintf("has %q: only a-z A-Z 0-9 . _ - are allowed", c)
		}
	}
	return ""
}
