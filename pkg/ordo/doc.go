// Package ordo runs a Processor across a Kafka consumer group: in order per
// key, in parallel across keys, committing an offset only when every record
// below it is done, retrying failures without stalling other keys and
// dead-lettering what cannot succeed.
//
// # The processor
//
// A Processor is one method, Process(ctx, *kgo.Record) error; ProcessorFunc
// adapts a function. Returning nil means the record's effect is durably
// applied. An error is retried with exponential backoff and jitter, its key
// waiting on a timer while other keys run, and after Config.Retry.MaxAttempts
// calls the record is produced to its dead-letter topic ("<topic>.dlq") with
// headers saying where it came from and why it failed. Permanent skips the
// retries, RetryAfter picks the delay, Hold waits without spending an attempt.
// A panic is recovered into a *PanicError.
//
// # Guarantees
//
// The offset committed for a partition is always its lowest unfinished
// offset: never past a record that is running, waiting for a retry or
// waiting for its dead-letter produce to be acknowledged. Records of one key
// run one at a time in offset order (OrderKey, the default); OrderPartition
// and OrderUnordered are the other modes. On a cooperative revoke, running
// records get Config.RevokeTimeout to finish before the watermark is
// committed and the partition released; a lost partition's work is canceled
// and nothing is committed for it. A partition holding more unfinished
// records or bytes than its budget is paused until it drains.
//
// # Lifecycle
//
// New validates the Config (errors name the field) without connecting;
// Start joins the group; Stop stops fetching, drains, commits and leaves;
// StopAndCancel cancels running records first; Stopped reports the end.
//
// Metrics (ordo_*) go to a Prometheus registry the Consumer owns
// (Consumer.Registry) unless Config.Registerer is set. Lanes returns a
// snapshot of every partition; Stats returns totals.
//
// The design, with the offset tracker and the rebalance protocol, is in
// docs/design.md of the repository.
package ordo
