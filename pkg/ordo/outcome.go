package ordo

import (
	"context"
	"errors"
	"fmt"
	"time"
)

// ErrorClass names why a record failed. It is written to the
// ordo-error-class header of dead-lettered records.
type ErrorClass string

// Error classes.
const (
	ClassRetryable ErrorClass = "retryable" // a plain error: retried, then dead-lettered
	ClassPermanent ErrorClass = "permanent" // Permanent(err): dead-lettered at once
	ClassPanic     ErrorClass = "panic"     // the processor panicked
	ClassTimeout   ErrorClass = "timeout"   // the processor overran Config.ProcessTimeout
	// ClassInterrupted: the record's calls began and never ended, the
	// process died during them (counted by Config.Attempts).
	ClassInterrupted ErrorClass = "interrupted"
)

// ErrInterrupted is the error of a record whose calls began, as
// Config.Attempts counted them, more times than its delivery allows, and
// never ended: its process died during them.
var ErrInterrupted = errors.New("ordo: the record's calls began and never ended (its process died during them)")

// permanentError marks an error that retrying cannot fix.
type permanentError struct{ err error }

func (e *permanentError) Error() string { return "permanent: " + e.err.Error() }
func (e *permanentError) Unwrap() error { return e.err }

// Permanent wraps err to say that retrying the record cannot succeed (a
// malformed payload, a violated invariant). The record goes to the
// dead-letter topic at once, without retries. Permanent(nil) returns nil.
func Permanent(err error) error {
	if err == nil {
		return nil
	}
	return &permanentError{err: err}
}

// retryAfterError asks for a retry after a given delay.
type retryAfterError struct {
	delay time.Duration
	err   error
}

func (e *retryAfterError) Error() string {
	return fmt.Sprintf("retry after %s: %s", e.delay, e.err)
}
func (e *retryAfterError) Unwrap() error { return e.err }

// RetryAfter wraps err to ask that the record be retried no sooner than d
// from now (for example when a downstream answered 429 with Retry-After). It
// counts as an attempt like any other error. RetryAfter(d, nil) returns nil.
func RetryAfter(d time.Duration, err error) error {
	if err == nil {
		return nil
	}
	return &retryAfterError{delay: d, err: err}
}

// holdError asks to keep the record without spending an attempt; delay 0
// means Config.Retry.HoldDelay.
type holdError struct {
	err   error
	delay time.Duration
}

func (e *holdError) Error() string { return "hold: " + e.err.Error() }
func (e *holdError) Unwrap() error { return e.err }

// Hold wraps err to say that the record is fine but cannot be processed now
// (a downstream is known to be down, a circuit breaker is open). The record
// keeps its place and its key stays blocked; it is tried again after
// Config.Retry.HoldDelay and the attempt is not counted, so a held record
// never reaches the dead-letter topic because of an outage. Hold(nil)
// returns nil.
func Hold(err error) error {
	if err == nil {
		return nil
	}
	return &holdError{err: err}
}

// HoldFor is Hold with its own delay: the record is tried again after d,
// without spending an attempt. A rate limiter uses it to send a record back
// until its turn, rather than keep a worker asleep (d <= 0 means
// Config.Retry.HoldDelay). HoldFor(d, nil) returns nil.
func HoldFor(d time.Duration, err error) error {
	if err == nil {
		return nil
	}
	return &holdError{err: err, delay: max(d, 0)}
}

// holdPartitionError asks to keep the record and pause its partition.
// ErrFenced is wrapped by the error of a write rejected for a stale fencing
// token (Config.Fencer): the partition's token moved on. The stores of
// pkg/store return it (store.ErrFenced is this error). A processor returns
// it inside HoldPartition: the record keeps its place and nothing is
// dead-lettered. The engine then asks the group coordinator whether this
// member still owns the partition; if it does (a previous owner's fence
// landed after this member's), the partition takes a new token and the
// held record's next try writes. If not, the record stays held until the
// partition is revoked.
var ErrFenced = errors.New("write fenced: another member owns the partition")

type holdPartitionError struct{ err error }

func (e *holdPartitionError) Error() string { return "hold partition: " + e.err.Error() }
func (e *holdPartitionError) Unwrap() error { return e.err }

// HoldPartition is Hold for the whole partition: the record keeps its place
// without spending an attempt, and its partition starts no other record and
// fetches nothing until this record succeeds (or fails otherwise). It is
// tried again every Config.Retry.HoldDelay: each try is the probe. Use it
// when the cause concerns every record of the partition, such as a circuit
// breaker that is open: the partition waits instead of sending its other
// records to the same outage. HoldPartition(nil) returns nil.
func HoldPartition(err error) error {
	if err == nil {
		return nil
	}
	return &holdPartitionError{err: err}
}

// PanicError is the error a recovered processor panic becomes.
type PanicError struct {
	Value any    // the value passed to panic
	Stack []byte // the goroutine's stack at the panic
}

func (e *PanicError) Error() string { return fmt.Sprintf("processor panic: %v", e.Value) }

// ClassOf returns the class Ordo gives a processor error: permanent for
// Permanent, panic for a recovered panic, timeout for a context deadline,
// retryable otherwise. Use it in a processor's tests.
func ClassOf(err error) ErrorClass { return classify(err) }

// classify names the class of a processor error.
func classify(err error) ErrorClass {
	// errors.AsType, not errors.As: no reflection, on every failed call.
	if _, ok := errors.AsType[*permanentError](err); ok {
		return ClassPermanent
	}
	if _, ok := errors.AsType[*PanicError](err); ok {
		return ClassPanic
	}
	switch {
	case errors.Is(err, ErrInterrupted):
		return ClassInterrupted
	case errors.Is(err, context.DeadlineExceeded):
		return ClassTimeout
	}
	return ClassRetryable
}
