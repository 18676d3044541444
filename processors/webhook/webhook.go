// Package webhook is a processor that POSTs each record's value to an HTTP
// endpoint, with a timeout, an optional circuit breaker and an optional rate
// limit (pkg/guard).
//
// What each answer means:
//
//   - 2xx: delivered.
//   - 429 and 5xx: retryable; a Retry-After header (seconds or an HTTP
//     date) sets the delay (ordo.RetryAfter). They count against the
//     breaker: while it is open the records wait, their partitions paused,
//     and nothing goes to the dead-letter topic.
//   - any other status (other 4xx, an unfollowed 3xx): permanent, to the
//     dead-letter topic at once.
//   - no answer (a refused connection, the timeout): retryable.
//
// Delivery is at least once: a record whose answer was lost is posted
// again. Each request carries an Idempotency-Key header (the record's dedup
// key: its event-id header, else its origin topic/partition/offset) so that
// the receiver can drop the repeats.
package webhook

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/ordokafka/ordo/pkg/guard"
	"github.com/ordokafka/ordo/pkg/ordo"
	"github.com/ordokafka/ordo/pkg/store"
)

// Defaults.
const (
	DefaultTimeout     = 10 * time.Second
	DefaultContentType = "application/octet-stream"
	// MaxRetryAfter caps the delay a Retry-After header may ask for.
	MaxRetryAfter = time.Hour
)

// Options configure a Processor.
type Options struct {
	// URL is the endpoint, http or https. Required.
	URL string
	// Client sends the requests. Default: a new http.Client.
	Client *http.Client
	// Timeout bounds each request, answer included. Default 10s.
	Timeout time.Duration
	// ContentType is the Content-Type of the requests, unless the record
	// has a content-type header. Default application/octet-stream.
	ContentType string
	// Header is added to every request.
	Header http.Header
	// Breaker, if set, guards the endpoint (see guard.Breaker.Do).
	Breaker *guard.Breaker
	// Limiter, if set, limits the requests' rate (see guard.Limiter).
	Limiter *guard.Limiter
	// Keys derives the Idempotency-Key. Default: the "event-id" header,
	// else the record's origin.
	Keys store.Keys
	// Now is the clock, for Retry-After dates. Default time.Now.
	Now func() time.Time
}

// Processor posts records. It is safe for concurrent use.
type Processor struct {
	opts Options
}

// CheckURL reports whether s is a URL the processor accepts. Its error
// never contains the URL's password.
func CheckURL(s string) error {
	u, err := url.Parse(s)
	if err != nil {
		return errors.New("not a URL")
	}
	if u.Scheme != "http" && u.Scheme != "https" {
		return fmt.Errorf("want an http or https URL, got scheme %q", u.Scheme)
	}
	if u.Host == "" {
		return errors.New("the URL has no host")
	}
	return nil
}

// New returns a Processor.
func New(opts Options) (*Processor, error) {
	if err := CheckURL(opts.URL); err != nil {
		return nil, fmt.Errorf("webhook: Options.URL: %w", err)
	}
	if opts.Timeout < 0 {
		return nil, fmt.Errorf("webhook: Options.Timeout must not be negative, got %s", opts.Timeout)
	}
	if opts.Client == nil {
		opts.Client = &http.Client{}
	}
	if opts.Timeout == 0 {
		opts.Timeout = DefaultTimeout
	}
	if opts.ContentType == "" {
		opts.ContentType = DefaultContentType
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	return &Processor{opts: opts}, nil
}

// Process implements ordo.Processor.
func (p *Processor) Process(ctx context.Context, r *kgo.Record) error {
	call := func(ctx context.Context) error {
		if p.opts.Limiter != nil {
			if err := p.opts.Limiter.TakeFor(r); err != nil {
				return err
			}
		}
		return p.post(ctx, r)
	}
	if p.opts.Breaker != nil {
		return p.opts.Breaker.Do(ctx, call)
	}
	return call(ctx)
}

// StatusError is an answer other than 2xx.
type StatusError struct {
	Status int
	Body   string // the start of the answer's body
}

func (e *StatusError) Error() string {
	if e.Body == "" {
		return fmt.Sprintf("webhook: %d %s", e.Status, http.StatusText(e.Status))
	}
	return fmt.Sprintf("webhook: %d %s: %s", e.Status, http.StatusText(e.Status), e.Body)
}

func (p *Processor) post(ctx context.Context, r *kgo.Record) error {
	ctx, cancel := context.WithTimeout(ctx, p.opts.Timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, p.opts.URL, bytes.NewReader(r.Value))
	if err != nil {
		return ordo.Permanent(err)
	}
	for k, vs := range p.opts.Header {
		for _, v := range vs {
			req.Header.Add(k, v)
		}
	}
	ct := p.opts.ContentType
	for _, h := range r.Headers {
		if http.CanonicalHeaderKey(h.Key) == "Content-Type" && len(h.Value) > 0 {
			ct = string(h.Value)
		}
	}
	req.Header.Set("Content-Type", ct)
	req.Header.Set("Idempotency-Key", p.opts.Keys.Key(ctx, r))
	resp, err := p.opts.Client.Do(req)
	if err != nil {
		// The url.Error names the URL: keep its password out.
		var uerr *url.Error
		if errors.As(err, &uerr) {
			return fmt.Errorf("webhook: POST %s: %w", redacted(p.opts.URL), uerr.Err)
		}
		return fmt.Errorf("webhook: POST: %w", err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(io.LimitReader(resp.Body, 256))
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 1<<20)) // let the connection be reused
	if resp.StatusCode >= 200 && resp.StatusCode < 300 {
		return nil
	}
	serr := &StatusError{Status: resp.StatusCode, Body: string(bytes.TrimSpace(body))}
	if resp.StatusCode == http.StatusTooManyRequests || resp.StatusCode >= 500 {
		if d, ok := retryAfter(resp.Header.Get("Retry-After"), p.opts.Now()); ok {
			return ordo.RetryAfter(d, serr)
		}
		return serr
	}
	return ordo.Permanent(serr)
}

// retryAfter parses a Retry-After value: seconds, or an HTTP date.
func retryAfter(v string, now time.Time) (time.Duration, bool) {
	if v == "" {
		return 0, false
	}
	if s, err := strconv.Atoi(v); err == nil && s >= 0 {
		return min(time.Duration(s)*time.Second, MaxRetryAfter), true
	}
	if t, err := http.ParseTime(v); err == nil {
		return min(max(t.Sub(now), 0), MaxRetryAfter), true
	}
	return 0, false
}

func redacted(s string) string {
	u, err := url.Parse(s)
	if err != nil {
		return "(unparsable URL)"
	}
	return u.Redacted()
}
