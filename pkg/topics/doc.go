// Package topics loads Ordo's declarative topic declarations and applies them
// to a Kafka cluster: each declared topic, and for each consumer group that
// reads it, the group's retry tiers and dead-letter topic.
//
// # Files
//
// Declarations live in a directory (the repository's topics/ folder), one or
// more YAML files ending in .yaml or .yml. Other files, such as a README, and
// subdirectories are ignored. Files are read in lexical order; a file may hold
// several YAML documents separated by "---". Each document looks like this:
//
//	topics:
//	  - name: orders
//	    partitions: 12
//	    replication_factor: 1          # optional, default 1
//	    configs:                       # optional, passed as-is to CreateTopics
//	      retention.ms: "604800000"
//	    groups:                        # optional; each group that reads the topic gets its own chain
//	      - name: ledger               # the consumer group
//	        retry:                     # optional; the group's retry tiers, in order
//	          delays: [1s, 10s, 1m]    # -> orders.ledger.retry.1, .retry.2, .retry.3
//	        dlq: true                  # optional, default true -> orders.ledger.dlq
//
// Fields:
//
//   - name (required): a legal Kafka topic name: only [a-zA-Z0-9._-], at most
//     249 characters, not "." or "..".
//   - partitions (required): at least 1. Retry and DLQ topics get the same
//     partition count as the topic they derive from.
//   - replication_factor: at least 1; default 1.
//   - configs: topic configs (string keys and values) given to CreateTopics.
//     Retry and DLQ topics inherit them, except that a compacting
//     cleanup.policy becomes "delete" on them: compaction would drop retried
//     and dead-lettered records that share a key.
//   - groups: the consumer groups that read the topic. Retry tiers and the
//     dead-letter topic belong to one group, so that two groups reading one
//     topic never consume, count or redrive each other's failures. Their
//     names come from [ordo.DefaultNaming]: <topic>.<group>.retry.<n> and
//     <topic>.<group>.dlq. A group name must be unique within the topic,
//     and every name derived from it must be a legal topic name (a group
//     name with '/' or ':' is legal for Kafka groups but not in a topic
//     name, and is an error naming the group).
//   - groups[].retry.delays: Go durations ("500ms", "10s", "1m30s"), each
//     greater than zero and none shorter than the one before it. Tier n
//     holds a record for the n-th delay. If retry is present it must list at
//     least one delay. If configs sets retention.ms, every delay must be
//     shorter than it, or records would expire before they are due.
//   - groups[].dlq: whether the group has a dead-letter topic; default true.
//
// The keys retry and dlq directly on a topic are the format before chains
// belonged to a group; they are an error that says how to move them under
// groups. [Topic.Chain] (or [Set.Chain]) finds a group's chain: its tier
// delays, its topic names and whether it has a DLQ.
//
// Decoding is strict: an unknown field, a repeated key or a value of the wrong
// type is an error. Validation errors name the file, the topic and the field,
// for example:
//
//	topics/orders.yaml: topic "orders": partitions must be >= 1, got 0
//
// Across all files, a topic may be declared only once, a declared name must not
// equal a derived name (declaring "orders.ledger.dlq" while group ledger on
// "orders" has a DLQ is an error), two chains must not derive the same name
// (topic "a" with group "b.c" and topic "a.b" with group "c" both give
// "a.b.c.dlq"), and no two names may differ only in '.' versus '_', which
// Kafka refuses because they collide in metric names.
//
// # Applying
//
// [Apply] creates the topics that are missing and never changes an existing
// one. A topic that exists with the declared partition count is reported as
// "exists"; one with a different count is an error (a [*PartitionMismatchError])
// that names both counts, because adding partitions remaps keys to partitions
// and is a decision for a person, and Kafka cannot remove partitions at all.
// With dryRun, Apply creates nothing: it asks the broker to validate each
// creation (CreateTopics with ValidateOnly) and reports "create".
package topics
