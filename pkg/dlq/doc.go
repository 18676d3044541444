// Package dlq reads and redrives dead-letter topics: Ordo's own, and those
// of Spring Kafka and Karafka.
//
// # Reading
//
// [Decode] reads a dead letter's metadata (where the failed record came
// from, which group failed it, why) from its headers, in any of three
// formats: Ordo's ordo- headers (text), Spring Kafka's kafka_dlt- headers
// (partition, offset and timestamp as big-endian binary, as
// DeadLetterPublishingRecoverer writes them) and Karafka's source_ headers
// (text). Header values come from outside: Decode never fails, it reports
// unreadable values in [Meta].Problems.
//
// [Client.Scan], [Client.List] and [Client.Stats] read a dead-letter topic
// from its start offsets to its end offsets taken when the call begins,
// without a consumer group: they commit nothing and never wait for new
// records. A [Filter] selects letters by the original record's timestamp
// (not the time it was dead-lettered), error class, key, consumer group,
// original topic, and partition and offset ranges of either the original
// record or the dead-letter record.
//
// # Redriving
//
// [Client.Redrive] produces selected dead letters again, for one consumer
// group, once. By default a letter goes to the group's own first retry
// tier of its original topic (ordo.DefaultNaming: <topic>.<group>.retry.1),
// due at once, so that only that group runs it again; into the source
// topic (RedriveOptions.ToSource) it reaches every group that reads the
// topic, and Redrive refuses to produce until the caller names those
// groups exactly ([Client.Readers] finds them). A redrive is a dry run
// unless RedriveOptions.Execute is set.
//
// Redriven letters are recorded in a cursor committed to the group
// [CursorGroup] ("ordo-redrive.<group>"), so a second run of the same
// redrive applies nothing twice; the store's deduplication on the original
// coordinates (the ordo-original-* headers every redriven record carries)
// covers the letters a crash redrives again before their cursor commit.
//
// The command line on top of this package is `ordo dlq`
// (internal/cli), described in docs/dead-letters.md.
package dlq
