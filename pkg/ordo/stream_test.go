package ordo_test

import (
	"bytes"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"os"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
	"github.com/twmb/franz-go/pkg/sasl/plain"

	"github.com/ordokafka/ordo/pkg/ordo"
)

// TestStreamAndSchedulerProperty mixes everything the two ways of running a
// record (the in-order stream runner and the scheduler) hand records
// between: mostly fast calls (the runner), calls that hang for a few
// milliseconds (the watchdog steals from the runner, the lane goes to slow
// mode, then back), transient failures (a retry on a timer, the key
// diverted), panics (recovered once per chunk in the runner), holds, and
// permanent failures (the dead-letter produce).
// Over random seeds it checks: every record is applied or dead-lettered
// exactly once, records of a key are applied in offset order and never two
// at once, and no commit, at the instant the broker receives it, passes a
// record that is not finished.
func TestStreamAndSchedulerProperty(t *testing.T) {
	seeds := 8
	if testing.Short() {
		seeds = 3
	}
	for seed := range uint64(seeds) {
		t.Run(fmt.Sprintf("seed=%d", seed), func(t *testing.T) {
			t.Parallel()
			rng := rand.New(rand.NewPCG(seed, 7))
			parts := int32(1 + rng.IntN(4))
			nkeys := 5 + rng.IntN(200)
			n := 1500 + rng.IntN(2500)
			workers := 2 + rng.IntN(7)
			slowEvery := 40 + rng.IntN(200)
			c := newCluster(t, parts, "t", "t.g.dlq")
			produce(t, c.ListenAddrs(), "t", n, nkeys, seed)

			led := newLedger()
			finished := sync.Map{} // pk -> true once applied or dead-lettered
			dead := sync.Map{}     // pk -> true for records that will be dead-lettered
			watch := watchCommits(c, func(_ string, p int32, off int64) error {
				for o := off - 1; o >= 0 && o >= off-int64(n); o-- {
					_, ok := finished.Load(pk{p, o})
					if _, d := dead.Load(pk{p, o}); !ok && !d {
						// (A dead letter is finished once its produce is
						// acked, which the processor cannot see; the DLQ
						// commit order has its own test.)
						return fmt.Errorf("commit %d@%d passes unfinished offset %d", p, off, o)
					}
				}
				return nil
			})
			behavior := func(r *kgo.Record) int {
				i, _ := strconv.Atoi(strings.TrimPrefix(string(r.Value), "v"))
				switch {
				case i%97 == 13:
					return 'P' // permanent: dead-lettered
				case i%slowEvery == 0:
					return 'S' // hangs for a few ms
				case i%41 == 7:
					return 'T' // fails its first attempt
				case i%71 == 5:
					return 'H' // held once
				case i%89 == 3:
					return 'X' // panics on its first attempt
				}
				return 'F'
			}
			var holds sync.Map
			proc := ordo.ProcessorFunc(func(ctx context.Context, r *kgo.Record) error {
				info, _ := ordo.InfoFromContext(ctx)
				b := behavior(r)
				led.enter(r, true)
				switch {
				case b == 'P':
					dead.Store(pk{r.Partition, r.Offset}, true)
					led.exit(r, false)
					return ordo.Permanent(errors.New("malformed"))
				case b == 'T' && info.Attempt == 1:
					led.exit(r, false)
					return errors.New("transient")
				case b == 'X' && info.Attempt == 1:
					led.exit(r, false)
					panic("boom")
				case b == 'H':
					if _, again := holds.LoadOrStore(pk{r.Partition, r.Offset}, true); !again {
						led.exit(r, false)
						return ordo.Hold(errors.New("downstream down"))
					}
				case b == 'S':
					select {
					case <-time.After(time.Duration(2+rng2(r.Offset)%3) * time.Millisecond):
					case <-ctx.Done():
						led.exit(r, false)
						return ctx.Err()
					}
				}
				finished.Store(pk{r.Partition, r.Offset}, true)
				led.exit(r, true)
				return nil
			})
			cfg := baseConfig(c.ListenAddrs(), "g", proc, "t")
			cfg.WorkersPerPartition = workers
			cfg.Retry.InitialBackoff = time.Millisecond
			cfg.Retry.MaxBackoff = 5 * time.Millisecond
			cfg.Retry.HoldDelay = 2 * time.Millisecond
			var dlqs atomic.Int64
			cons := startConsumer(t, cfg)
			wantDLQ := 0
			for i := range n {
				if behavior(&kgo.Record{Value: []byte("v" + strconv.Itoa(i))}) == 'P' {
					wantDLQ++
				}
			}
			waitFor(t, 60*time.Second, "every record applied or dead-lettered", func() bool {
				dlqs.Store(int64(metricValue(t, cons.Registry(), "ordo_records_total", "outcome", "dlq")))
				return led.count()+int(dlqs.Load()) == n
			})
			// Dead-lettered records are finished once their produce is acked.
			for _, r := range consumeAll(t, c.ListenAddrs(), "t.g.dlq", wantDLQ) {
				p, _ := strconv.Atoi(headerValue(r, ordo.HeaderOriginalPartition))
				o, _ := strconv.ParseInt(headerValue(r, ordo.HeaderOriginalOffset), 10, 64)
				finished.Store(pk{int32(p), o}, true)
			}
			waitFor(t, 30*time.Second, "the final commits", func() bool {
				for _, l := range cons.Lanes() {
					if l.Committed < 0 || l.Committed != l.Watermark || l.InFlight != 0 {
						return false
					}
				}
				return true
			})
			stalls := metricValue(t, cons.Registry(), "ordo_stream_stalls_total", "", "")
			stop(t, cons)
			if int(dlqs.Load()) != wantDLQ {
				t.Errorf("dead-lettered %d records, want %d", dlqs.Load(), wantDLQ)
			}
			checkLedger(t, led, n-wantDLQ, true)
			watch.assert(t)
			t.Logf("%d partitions, %d keys, %d records, %d workers: %d dead-lettered, %v stalls", parts, nkeys, n, workers, wantDLQ, stalls)
		})
	}
}

func rng2(o int64) int64 { return (o*2654435761 + 11) & 0xffff }

func headerValue(r *kgo.Record, key string) string {
	for _, h := range r.Headers {
		if h.Key == key {
			return string(h.Value)
		}
	}
	return ""
}

// consumeAll reads n records of topic from the start.
func consumeAll(t testing.TB, addrs []string, topic string, n int) []*kgo.Record {
	t.Helper()
	cl, err := kgo.NewClient(kgo.SeedBrokers(addrs...), kgo.ConsumeTopics(topic), kgo.FetchMaxWait(100*time.Millisecond))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	var out []*kgo.Record
	for len(out) < n {
		fs := cl.PollFetches(ctx)
		if ctx.Err() != nil {
			t.Fatalf("read %d of %d records of %s", len(out), n, topic)
		}
		out = append(out, fs.Records()...)
	}
	return out
}

// TestStuckCallIsStolenAndTheLaneComesBack: with a fast processor, one
// call hangs. The watchdog hands the records behind it to the partition's
// other worker (ordo_stream_stalls_total counts it), every other key's
// records finish while it hangs, and once calls are fast again the lane
// leaves slow mode for its in-order runner.
func TestStuckCallIsStolenAndTheLaneComesBack(t *testing.T) {
	c := newCluster(t, 1, "t")
	recs := []*kgo.Record{{Topic: "t", Key: []byte("hang"), Value: []byte("hang")}}
	for i := range 3000 {
		recs = append(recs, &kgo.Record{Topic: "t", Key: []byte("k" + strconv.Itoa(i%50)), Value: []byte("v" + strconv.Itoa(i))})
	}
	produceRecords(t, c.ListenAddrs(), recs...)
	release := newReleaser()
	t.Cleanup(release.Open)
	var done atomic.Int64
	proc := ordo.ProcessorFunc(func(ctx context.Context, r *kgo.Record) error {
		if string(r.Key) == "hang" {
			<-release.ch
		}
		done.Add(1)
		return nil
	})
	cfg := baseConfig(c.ListenAddrs(), "g", proc, "t")
	cfg.WorkersPerPartition = 2
	cons := startConsumer(t, cfg)
	waitFor(t, 30*time.Second, "the other records while one call hangs", func() bool { return done.Load() == 3000 })
	if s := metricValue(t, cons.Registry(), "ordo_stream_stalls_total", "", ""); s < 1 {
		t.Errorf("ordo_stream_stalls_total = %v, want >= 1", s)
	}
	if l := cons.Lanes()[0]; l.Watermark != 0 || l.Keys != 1 {
		t.Errorf("watermark %d, blocked keys %d while a call hangs; want 0 and 1 (the hung key)", l.Watermark, l.Keys)
	}
	release.Open()
	waitFor(t, 30*time.Second, "the hung record", func() bool { return done.Load() == 3001 })
	// Fast calls again: after enough of them the lane returns to its runner.
	more := make([]*kgo.Record, 0, 3000)
	for i := range 3000 {
		more = append(more, &kgo.Record{Topic: "t", Key: []byte("k" + strconv.Itoa(i%50)), Value: []byte("w" + strconv.Itoa(i))})
	}
	produceRecords(t, c.ListenAddrs(), more...)
	waitFor(t, 30*time.Second, "the lane to leave slow mode", func() bool {
		ls := cons.Lanes()
		return done.Load() == 6001 && len(ls) == 1 && !ls[0].Slow
	})
	stop(t, cons)
}

// TestKgoOptsOrdoOwnsAreRefused: options that would replace Ordo's group,
// topics, balancer, commit mode, callbacks or timeouts fail New, each
// named by its index; harmless ones pass.
func TestKgoOptsOrdoOwnsAreRefused(t *testing.T) {
	base := ordo.Config{
		Brokers: []string{"192.0.2.1:9092"}, Group: "g", Topics: []string{"t"},
		Processor: ordo.ProcessorFunc(func(context.Context, *kgo.Record) error { return nil }),
	}
	bad := []struct {
		opt  kgo.Opt
		want string
	}{
		{kgo.ConsumerGroup("other"), "Config.Group"},
		{kgo.ConsumeTopics("x"), "Config.Topics"},
		{kgo.Balancers(kgo.RoundRobinBalancer()), "cooperative-sticky"},
		{kgo.AutoCommitMarks(), "autocommit"},
		{kgo.OnPartitionsRevoked(func(context.Context, *kgo.Client, map[string][]int32) {}), "OnPartitionsRevoked"},
		{kgo.OnPartitionsLost(func(context.Context, *kgo.Client, map[string][]int32) {}), "OnPartitionsLost"},
		{kgo.OnPartitionsAssigned(func(context.Context, *kgo.Client, map[string][]int32) {}), "OnPartitionsAssigned"},
		{kgo.AutoCommitCallback(func(*kgo.Client, *kmsg.OffsetCommitRequest, *kmsg.OffsetCommitResponse, error) {}), "autocommit callback"},
		{kgo.ConsumeRegex(), "regex"},
		{kgo.SessionTimeout(time.Second), "Config.SessionTimeout"},
		{kgo.RebalanceTimeout(time.Minute * 2), "Config.RebalanceTimeout"},
		{kgo.ConsumeStartOffset(kgo.NewOffset().AtEnd()), "Config.Start"},
		{kgo.ConsumeResetOffset(kgo.NoResetOffset()), "Config.OffsetsLost"},
		{kgo.RecordPartitioner(kgo.ManualPartitioner()), "partitioner"},
	}
	for i, b := range bad {
		cfg := base
		cfg.KgoOpts = []kgo.Opt{kgo.ClientID("fine"), b.opt}
		_, err := ordo.New(cfg)
		fes := ordo.FieldErrors(err)
		if len(fes) != 1 || fes[0].Field != "KgoOpts[1]" || !strings.Contains(fes[0].Reason, b.want) {
			t.Errorf("case %d: New = %v; want one error on KgoOpts[1] mentioning %q", i, err, b.want)
		}
	}
	cfg := base
	cfg.KgoOpts = []kgo.Opt{kgo.ClientID("x"), kgo.FetchMaxBytes(1 << 20), kgo.Balancers(kgo.CooperativeStickyBalancer()), kgo.DisableAutoCommit()}
	if _, err := ordo.New(cfg); err != nil {
		t.Errorf("harmless options refused: %v", err)
	}
	// TLS and SASL, the options KgoOpts are documented for: the probe
	// that checks the options must not collide with a TLS dialer.
	cfg.KgoOpts = []kgo.Opt{kgo.DialTLSConfig(&tls.Config{MinVersion: tls.VersionTLS12}), kgo.SASL(plain.Auth{User: "u", Pass: "p"}.AsMechanism())}
	if _, err := ordo.New(cfg); err != nil {
		t.Errorf("TLS and SASL options refused: %v", err)
	}
}

// TestCommittedOffsetAbsentBeforeTheFirstCommit: ordo_committed_offset has
// no series for a partition this member has not committed yet (rather
// than a -1 that reads like an offset), and the committed offset after.
func TestCommittedOffsetAbsentBeforeTheFirstCommit(t *testing.T) {
	c := newCluster(t, 1, "t")
	produceRecords(t, c.ListenAddrs(), &kgo.Record{Topic: "t", Key: []byte("a"), Value: []byte("x")})
	release := newReleaser()
	t.Cleanup(release.Open)
	proc := ordo.ProcessorFunc(func(ctx context.Context, r *kgo.Record) error { <-release.ch; return nil })
	cons := startConsumer(t, baseConfig(c.ListenAddrs(), "g", proc, "t"))
	waitFor(t, 30*time.Second, "the record to be running", func() bool {
		ls := cons.Lanes()
		return len(ls) == 1 && ls[0].InFlight == 1
	})
	mfs, err := cons.Registry().Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() == "ordo_committed_offset" && len(mf.GetMetric()) > 0 {
			t.Errorf("ordo_committed_offset has %d series before any commit", len(mf.GetMetric()))
		}
	}
	release.Open()
	waitFor(t, 30*time.Second, "the commit", func() bool {
		return metricValue(t, cons.Registry(), "ordo_committed_offset", "", "") == 1
	})
	stop(t, cons)
}

// TestBrokerOutageCountedAndLoggedAtABoundedRate: after the broker goes
// away, failed connections are counted per broker, and the warnings they
// cause (Ordo's and franz-go's) stay few however long the outage lasts.
func TestBrokerOutageCountedAndLoggedAtABoundedRate(t *testing.T) {
	c := newCluster(t, 1, "t")
	produceRecords(t, c.ListenAddrs(), &kgo.Record{Topic: "t", Value: []byte("x")})
	var processed atomic.Int64
	proc := ordo.ProcessorFunc(func(context.Context, *kgo.Record) error { processed.Add(1); return nil })
	logs := &logCapture{}
	cfg := baseConfig(c.ListenAddrs(), "g", proc, "t")
	cfg.Logger = slog.New(logs)
	cfg.KgoOpts = append(cfg.KgoOpts, kgo.RetryBackoffFn(func(int) time.Duration { return 20 * time.Millisecond }))
	cons := startConsumer(t, cfg)
	waitFor(t, 30*time.Second, "the record", func() bool { return processed.Load() == 1 })
	c.Close()
	outage := time.Now()
	waitFor(t, 30*time.Second, "failed connections to be counted", func() bool {
		return metricValue(t, cons.Registry(), "ordo_broker_errors_total", "kind", "connect") >= 20
	})
	took := time.Since(outage)
	logs.mu.Lock()
	warnings := 0
	var msgs []string
	for _, r := range logs.recs {
		if r.at.After(outage) && r.level >= slog.LevelWarn {
			warnings++
			msgs = append(msgs, r.msg+" "+r.attrs)
		}
	}
	logs.mu.Unlock()
	// At most one warning per kind per 10 s; a handful of kinds (connect,
	// request, franz-go's own messages) in a window this short.
	if limit := 12 * (1 + int(took/(10*time.Second))); warnings > limit {
		t.Errorf("%d warnings in %s of outage with >= 20 failed connections; want at most %d: %q", warnings, took.Round(time.Millisecond), limit, msgs)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
	defer cancel()
	_ = cons.Stop(ctx) // the broker is gone: the commit and leave fail, within the deadline
}

// TestMetricsLint: every metric Ordo exports passes client_golang's
// linter (names, units, help texts), with series present.
func TestMetricsLint(t *testing.T) {
	c := newCluster(t, 2, "t")
	produce(t, c.ListenAddrs(), "t", 200, 20, 1)
	var n atomic.Int64
	cons := startConsumer(t, baseConfig(c.ListenAddrs(), "g", ordo.ProcessorFunc(func(context.Context, *kgo.Record) error { n.Add(1); return nil }), "t"))
	waitFor(t, 30*time.Second, "the records", func() bool { return n.Load() == 200 })
	problems, err := testutil.GatherAndLint(cons.Registry())
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range problems {
		t.Errorf("%s: %s", p.Metric, p.Text)
	}
	stop(t, cons)
}

// TestEveryMetricIsDocumented: each metric name in metrics.go has a row in
// docs/metrics.md.
func TestEveryMetricIsDocumented(t *testing.T) {
	src, err := os.ReadFile("metrics.go")
	if err != nil {
		t.Fatal(err)
	}
	doc, err := os.ReadFile("../../docs/metrics.md")
	if err != nil {
		t.Fatal(err)
	}
	names := regexp.MustCompile(`"(ordo_[a-z_]+)"`).FindAllSubmatch(src, -1)
	if len(names) < 10 {
		t.Fatalf("found %d metric names in metrics.go", len(names))
	}
	for _, m := range names {
		if !bytes.Contains(doc, []byte("| `"+string(m[1])+"` |")) {
			t.Errorf("docs/metrics.md has no row for %s", m[1])
		}
	}
}
