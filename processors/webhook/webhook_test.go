package webhook_test

import (
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/ordokafka/ordo/internal/kfaketest"
	"github.com/ordokafka/ordo/pkg/guard"
	"github.com/ordokafka/ordo/pkg/ordo"
	"github.com/ordokafka/ordo/processors/webhook"
)

// TestStatuses: 2xx delivers; 429 and 5xx are retryable; other 4xx are
// permanent; no answer is retryable. Each request carries the record's
// value, its Idempotency-Key and its content type.
func TestStatuses(t *testing.T) {
	var mu sync.Mutex
	var got []string
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		mu.Lock()
		got = append(got, r.Method+" "+r.Header.Get("Idempotency-Key")+" "+r.Header.Get("Content-Type")+" "+string(body))
		mu.Unlock()
		code, _ := strconv.Atoi(string(body))
		w.WriteHeader(code)
		_, _ = w.Write([]byte("reason"))
	}))
	defer srv.Close()
	p, err := webhook.New(webhook.Options{URL: srv.URL, ContentType: "text/plain"})
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		code int
		want ordo.ErrorClass // "" for nil
	}{
		{200, ""}, {204, ""}, {400, ordo.ClassPermanent}, {404, ordo.ClassPermanent}, {409, ordo.ClassPermanent},
		{429, ordo.ClassRetryable}, {500, ordo.ClassRetryable}, {503, ordo.ClassRetryable},
	} {
		r := &kgo.Record{Topic: "t", Partition: 1, Offset: int64(tc.code), Value: []byte(strconv.Itoa(tc.code))}
		err := p.Process(context.Background(), r)
		switch {
		case tc.want == "" && err != nil:
			t.Errorf("%d: %v, want nil", tc.code, err)
		case tc.want != "" && (err == nil || ordo.ClassOf(err) != tc.want):
			t.Errorf("%d: %v, want class %s", tc.code, err, tc.want)
		}
	}
	mu.Lock()
	if want := "POST at:t/1/200 text/plain 200"; got[0] != want {
		t.Errorf("request %q, want %q", got[0], want)
	}
	mu.Unlock()
	r := &kgo.Record{Topic: "t", Value: []byte("x"), Headers: []kgo.RecordHeader{{Key: "event-id", Value: []byte("e-1")}, {Key: "content-type", Value: []byte("application/json")}}}
	srv.Config.Handler = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("Idempotency-Key") != "id:e-1" || r.Header.Get("Content-Type") != "application/json" {
			w.WriteHeader(400)
		}
	})
	if err := p.Process(context.Background(), r); err != nil {
		t.Errorf("event-id and content-type headers: %v", err)
	}
	down, _ := webhook.New(webhook.Options{URL: "http://127.0.0.1:1/hook", Timeout: time.Second})
	if err := down.Process(context.Background(), r); err == nil || ordo.ClassOf(err) != ordo.ClassRetryable {
		t.Errorf("no answer: %v, want retryable", err)
	}
}

// TestPasswordNeverPrinted: neither a bad URL's error nor a failed
// request's names the password of the URL.
func TestPasswordNeverPrinted(t *testing.T) {
	if _, err := webhook.New(webhook.Options{URL: "ftp://user:s3cret@example.com/x"}); err == nil || strings.Contains(err.Error(), "s3cret") {
		t.Errorf("New: %v", err)
	}
	p, err := webhook.New(webhook.Options{URL: "http://user:s3cret@127.0.0.1:1/x", Timeout: time.Second})
	if err != nil {
		t.Fatal(err)
	}
	err = p.Process(context.Background(), &kgo.Record{Topic: "t"})
	if err == nil || strings.Contains(err.Error(), "s3cret") {
		t.Errorf("Process: %v", err)
	}
}

// TestRetryAfterHonoured: a 429 with Retry-After: 1 is retried one second
// later (through the engine), not after the backoff.
func TestRetryAfterHonoured(t *testing.T) {
	var mu sync.Mutex
	seen := map[string][]time.Time{}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		id := r.Header.Get("Idempotency-Key")
		mu.Lock()
		defer mu.Unlock()
		seen[id] = append(seen[id], time.Now())
		if len(seen[id]) == 1 {
			w.Header().Set("Retry-After", "1")
			w.WriteHeader(http.StatusTooManyRequests)
		}
	}))
	defer srv.Close()
	c := kfaketest.Cluster(t, 1, "t", "t.dlq")
	kfaketest.Produce(t, c.ListenAddrs(), "t", 5, 5, false)
	p, _ := webhook.New(webhook.Options{URL: srv.URL})
	cfg := kfaketest.Config(c.ListenAddrs(), "g", p, "t")
	cfg.Retry.InitialBackoff = 10 * time.Millisecond
	cons := kfaketest.Start(t, cfg)
	kfaketest.WaitFor(t, 10*time.Second, "5 deliveries after the 429s", func() bool {
		mu.Lock()
		defer mu.Unlock()
		n := 0
		for _, ts := range seen {
			if len(ts) == 2 {
				n++
			}
		}
		return n == 5
	})
	kfaketest.Stop(t, cons)
	mu.Lock()
	defer mu.Unlock()
	for id, ts := range seen {
		if gap := ts[1].Sub(ts[0]); gap < time.Second || gap > 1500*time.Millisecond {
			t.Errorf("%s retried after %s, want 1s (Retry-After)", id, gap)
		}
	}
}

// outageFor is how long the endpoint answers 503 in TestOutageHoldsNoDLQ:
// the 30 s, or 5 s with -short.
func outageFor() time.Duration {
	if testing.Short() {
		return 5 * time.Second
	}
	return 30 * time.Second
}

// TestOutageHoldsNoDLQ: the endpoint answers 503 for a while. The breaker
// opens (a few requests reach the endpoint meanwhile: the probes), no
// record is dead-lettered although MaxAttempts is 3, and every record is
// delivered once the endpoint recovers.
func TestOutageHoldsNoDLQ(t *testing.T) {
	t.Parallel()
	outage := outageFor()
	const n = 400
	var down atomic.Bool
	var ok, refused atomic.Int64
	var mu sync.Mutex
	delivered := map[string]int{}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if down.Load() {
			refused.Add(1)
			w.WriteHeader(http.StatusServiceUnavailable)
			return
		}
		ok.Add(1)
		mu.Lock()
		delivered[r.Header.Get("Idempotency-Key")]++
		mu.Unlock()
	}))
	defer srv.Close()
	count := func() int { mu.Lock(); defer mu.Unlock(); return len(delivered) }

	reg := prometheus.NewRegistry()
	bs, _ := guard.NewBreakers(reg)
	var opened atomic.Int32
	br, _ := bs.New(guard.BreakerOptions{Name: "hook", Failures: 5, OpenFor: 500 * time.Millisecond,
		OnStateChange: func(_ string, _, to guard.State) {
			if to == guard.Open {
				opened.Add(1)
			}
		}})
	p, _ := webhook.New(webhook.Options{URL: srv.URL, Breaker: br, Timeout: time.Second})

	c := kfaketest.Cluster(t, 4, "t", "t.dlq")
	kfaketest.Produce(t, c.ListenAddrs(), "t", n/4, 20, false)
	cfg := kfaketest.Config(c.ListenAddrs(), "g", p, "t")
	cfg.Retry.MaxAttempts = 3
	cfg.Retry.InitialBackoff = 20 * time.Millisecond
	cfg.Retry.HoldDelay = 100 * time.Millisecond
	cons := kfaketest.Start(t, cfg)
	kfaketest.WaitFor(t, 10*time.Second, "the first records", func() bool { return count() == n/4 })

	down.Store(true)
	start := time.Now()
	kfaketest.ProduceFrom(t, c.ListenAddrs(), "t", n/4, 3*n/4, 20, false)
	kfaketest.WaitFor(t, outage, "the breaker to open", func() bool { return br.State() == guard.Open })
	openedAfter := time.Since(start)
	time.Sleep(outage - time.Since(start))
	refusedDuring := refused.Load()
	down.Store(false)
	kfaketest.WaitFor(t, 20*time.Second, "every record after the recovery", func() bool { return count() == n })
	recovered := time.Since(start) - outage
	kfaketest.Stop(t, cons)
	if d := kfaketest.Metric(t, cons.Registry(), "ordo_records_total", "outcome", "dlq"); d != 0 {
		t.Errorf("%v records dead-lettered", d)
	}
	if kfaketest.Metric(t, reg, "ordo_breaker_state", "name", "hook") != 0 {
		t.Error("the breaker metric is not back to closed")
	}
	t.Logf("%d records; 503 for %s: breaker open after %s, opened %d times, %d requests refused during the outage (the failures that opened it and the probes); all delivered %s after recovery",
		n, outage, openedAfter.Round(time.Millisecond), opened.Load(), refusedDuring, recovered.Round(time.Millisecond))
}
