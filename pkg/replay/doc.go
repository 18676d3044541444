// Package replay moves a consumer group back (or forward) in its topics and
// copies bounded ranges of a topic into another: what `ordo replay reset`
// and `ordo replay copy` do, for programs that want the same without the
// command line.
//
// A reset follows kafka-consumer-groups.sh --reset-offsets: a [Verb] picks
// each partition's new offset (an offset, a time, a duration back from now,
// a shift, the log's start or end, or a CSV plan in the Kafka tool's
// format), [PlanReset] computes the plan without changing anything, and
// [ExecuteReset] commits it, refusing while the group has active members.
// Offsets outside a partition's log are clamped to its bounds, with a
// warning. Every partition the reset commits gets empty commit metadata:
// an Ordo offset map left by an earlier commit (records finished above the
// committed offset, which the next owner skips) must not survive a rewind,
// or the next owner would skip records the reset asked it to run again.
//
// A copy ([Copy]) reads a range of each partition of one topic, by offset
// or by time, and produces every record into another topic with its key,
// value, headers and timestamp unchanged, plus the headers
// ordo-replay-source (topic/partition/offset) and ordo-replay-id. One
// producer writes the records of a source partition in order, and the
// target partition is chosen by franz-go's default (Kafka-compatible
// murmur2) key partitioner, so the records of a key keep their order and
// one partition. A copy joins no group and commits nothing; it stops at the
// end offsets it took when it started.
package replay
