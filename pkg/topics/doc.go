// Package topics loads Ordo's declarative topic declarations and applies them
// to a Kafka cluster.
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
//	    retry:                         # optional; the retry tiers, in order
//	      delays: [1s, 10s, 1m]        # -> orders.retry.1, orders.retry.2, orders.retry.3
//	    dlq: true                      # optional, default true -> orders.dlq
//
// Fields:
//
//   - name (required): a legal Kafka topic name: only [a-zA-Z0-9._-], at most
//     249 characters, not "." or "..". Every derived name must fit the same
//     limit.
//   - partitions (required): at least 1. Retry and DLQ topics get the same
//     partition count as the topic they derive from.
//   - replication_factor: at least 1; default 1.
//   - configs: topic configs (string keys and values) given to CreateTopics.
//     Retry and DLQ topics inherit them, except that a compacting
//     cleanup.policy becomes "delete" on them: compaction would drop retried
//     and dead-lettered records that share a key.
//   - retry.delays: Go durations ("500ms", "10s", "1m30s"), each greater than
//     zero and none shorter than the one before it. Tier n is the topic
//     <name>.retry.<n> and holds a record for the n-th delay. If retry is
//     present it must list at least one delay. If configs sets retention.ms,
//     every delay must be shorter than it, or records would expire before
//     they are due.
//   - dlq: whether the topic has a dead-letter topic <name>.dlq; default true.
//
// Decoding is strict: an unknown field, a repeated key or a value of the wrong
// type is an error. Validation errors name the file, the topic and the field,
// for example:
//
//	topics/orders.yaml: topic "orders": partitions must be >= 1, got 0
//
// Across all files, a topic may be declared only once, a declared name must not
// equal a name derived from another declaration (declaring "orders.dlq" while
// "orders" has a DLQ is an error), and no two names may differ only in '.'
// versus '_', which Kafka refuses because they collide in metric names.
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
