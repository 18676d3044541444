// Package lag measures consumer-group lag from the broker, for autoscalers,
// alerts and the `ordo lag` command. It does not import the engine
// (pkg/ordo): it reads only what any Kafka admin client can read, so it
// reports a group whether or not a member runs, including a group scaled to
// zero, and any group, Ordo's or not.
//
// # What it measures
//
// A [Collector] is a prometheus.Collector computed at scrape time. Each
// scrape, for the configured groups (an explicit list, or every group the
// brokers list), it asks the brokers for the groups' committed offsets (one
// OffsetFetch per coordinator, all groups batched) and the end offsets of
// their topics (one ListOffsets per partition leader), and exports per
// partition:
//
//   - ordo_consumer_lag_records{group,topic,partition}: end offset (the high
//     watermark) minus committed offset, 0 if negative; for a partition the
//     group never committed, end offset minus log start offset. Every
//     partition of each topic the group committed to is reported, and of
//     Config.Topics for the groups of Config.Groups. This is the figure
//     kadm.Lag computes.
//   - ordo_consumer_lag_seconds{group,topic,partition}: the age, at the
//     scrape, of the oldest unconsumed record, the one at the committed
//     offset (the log start offset without a commit), from its timestamp;
//     0 when the lag in records is 0 (or the record's timestamp is in the
//     future). Reading that timestamp costs a Fetch; the timestamp is kept
//     per (group, topic, partition, offset), so a partition whose committed
//     offset did not move since the last scrape costs no Fetch, and a
//     caught-up one never does. Steady state (caught up or stuck) is one
//     ListOffsets and one OffsetFetch per scrape.
//   - ordo_consumer_status{group,topic,partition,status}: 1 for the
//     partition's current status (below), 0 for the others; absent until
//     the partition has been watched for a whole window.
//   - ordo_lag_scrape_errors_total{stage}: failed steps of scrapes.
//   - ordo_lag_scrape_duration_seconds: how long the last scrape took.
//
// A scrape is bounded by Config.ScrapeTimeout. What a failed step could not
// measure is absent from that scrape (never a stale or a zero value), and
// the step counts an error.
//
// # Status, in the manner of Burrow
//
// Each partition's status is decided from what the scrapes saw during the
// last Config.Window (W), at the time of the scrape (now). The collector
// remembers, per partition, the time it first saw it, the time its
// committed offset last changed (movedAt: the first scrape that saw the
// current value; a reset backwards is a change too), the last time its lag
// was 0 (caughtUpAt), and samples of its committed offset and lag at
// scrapes at least W/32 apart, back to the last one at or before now - W.
// The rules, in order:
//
//   - unknown (no status series; "-" in `ordo lag`): the partition was
//     first seen less than W ago.
//   - OK: the lag is 0 now, or was 0 at a scrape within the window
//     (caughtUpAt > now - W).
//   - STOP: the committed offset has not changed for W (movedAt <= now - W)
//     with lag > 0 throughout, and no member consumes the partition: the
//     group has no members (Empty, Dead, or unknown to the coordinator), or
//     it is Stable and no member's assignment holds the partition. Nothing
//     will move it: scale up, or restart the consumer.
//   - STALL: the same stuck offset with lag > 0 throughout, while a member
//     owns the partition (or its ownership could not be told: a rebalance
//     in progress, an assignment in a protocol other than the consumer
//     protocol, a failed DescribeGroups). A consumer is there but this
//     partition does not move: a poison record, a held record, a dead
//     letter that cannot be produced.
//   - WARN: the committed offset moved within the window, the lag stayed
//     above 0 throughout, and it grew over the window (lag now minus the
//     lag of the last sample at or before now - W) by more than the
//     largest step of the committed offset between two consecutive
//     samples. A consumer that works but falls behind: scale up. The step
//     is the margin because the lag read from the brokers is a saw-tooth
//     (it grows between two commits of the consumer and drops at each) of
//     at most one step's height: a consumer that keeps up never exceeds
//     it, one whose lag grows by g records a second does once g*W is more
//     than it consumes between two samples.
//   - OK otherwise: moving, and the lag not growing over the window.
//
// Group membership costs a DescribeGroups, asked only for groups with a
// partition that is a STALL or STOP candidate, so a healthy group costs
// none. W should be many commit intervals long (Ordo commits every second
// by default; kgo's autocommit every 5 s), or a partition between two
// commits reads as stuck. The window is measured by the injected clock
// (Config.Clock); tests drive it.
//
// # Invariants
//
//   - One scrape at a time: Collect and Scrape hold Collector.mu for the
//     whole scrape, so a second Prometheus scrape waits for the first (each
//     is bounded by ScrapeTimeout). The per-partition state (the status
//     history and the timestamp cache) is read and written only under mu.
//   - The state of a partition is dropped when a successful scrape of its
//     group no longer reports it, so deleted groups and topics do not grow
//     memory; the history of one partition is at most 34 samples whatever
//     the scrape interval (samples are kept at least W/32 apart).
//   - A cached timestamp belongs to exactly one offset: a committed offset
//     that changed is fetched again, one that did not is never fetched.
//   - No value is exported for a step that failed in this scrape.
//
// Lock order: Collector.mu is the only lock; the Prometheus counter and
// gauge it owns are safe on their own.
package lag
