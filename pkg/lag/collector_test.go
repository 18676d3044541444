package lag_test

import (
	"context"
	"fmt"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	dto "github.com/prometheus/client_model/go"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/ordokafka/ordo/pkg/lag"
)

func scrape(t *testing.T, c *lag.Collector) lag.Snapshot {
	t.Helper()
	s, err := c.Scrape(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func find(s lag.Snapshot, group string, p int32) (lag.Partition, bool) {
	for _, r := range s.Partitions {
		if r.Group == group && r.Topic == "t" && r.Partition == p {
			return r, true
		}
	}
	return lag.Partition{}, false
}

// kadmLag is kadm's own computation for group: partition -> lag.
func kadmLag(t *testing.T, adm *kadm.Client, group string) map[int32]int64 {
	t.Helper()
	lags, err := adm.Lag(context.Background(), group)
	if err != nil {
		t.Fatal(err)
	}
	out := map[int32]int64{}
	lags.Each(func(l kadm.DescribedGroupLag) {
		if err := l.Error(); err != nil {
			t.Fatalf("kadm.Lag %s: %v", group, err)
		}
		for _, ml := range l.Lag.Sorted() {
			if ml.Err != nil {
				t.Fatalf("kadm.Lag %s %s/%d: %v", group, ml.Topic, ml.Partition, ml.Err)
			}
			out[ml.Partition] = ml.Lag
		}
	})
	return out
}

func collectorLag(s lag.Snapshot, group string) map[int32]int64 {
	out := map[int32]int64{}
	for _, r := range s.Partitions {
		if r.Group == group {
			out[r.Partition] = r.Lag
		}
	}
	return out
}

func sameLag(t *testing.T, what string, got, want map[int32]int64) {
	t.Helper()
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("%s: collector %v, kadm %v", what, got, want)
	}
}

// The collector's lag in records is kadm.Lag's on a cluster of 3 brokers
// (so several partition leaders) with a known backlog: for a group with
// no member (offsets committed with kadm), and for a group whose plain
// franz-go member consumed everything and committed part of it.
func TestLagEqualsKadm(t *testing.T) {
	_, addrs := cluster(t, 3, 6)
	prod := producer(t, addrs)
	adm := kadm.NewClient(prod)
	now := time.Now()
	for p := range int32(6) {
		produce(t, prod, p, 5*int(p+1), func(int) time.Time { return now })
	}

	// No member: committed with kadm; partition 4 never committed.
	commit(t, adm, "idle", map[int32]int64{0: 2, 1: 0, 2: 10, 3: 20, 5: 7})
	c, err := lag.New(lag.Config{Brokers: addrs, Groups: []string{"idle"}})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	s := scrape(t, c)
	// Partition 4, never committed, lags from its log start, as in kadm.
	want := map[int32]int64{0: 3, 1: 10, 2: 5, 3: 0, 4: 25, 5: 23}
	sameLag(t, "idle, by hand", collectorLag(s, "idle"), want)
	sameLag(t, "idle, kadm", collectorLag(s, "idle"), kadmLag(t, adm, "idle"))
	for _, r := range s.Partitions {
		if r.LagSeconds == nil || (r.Lag == 0) != (*r.LagSeconds == 0) {
			t.Errorf("%s/%d: lag %d, seconds %v", r.Topic, r.Partition, r.Lag, r.LagSeconds)
		}
	}

	// A group that never committed is reported for the topics named:
	// a group scaled to zero before its first commit shows its backlog.
	ct, err := lag.New(lag.Config{Brokers: addrs, Groups: []string{"new"}, Topics: []string{"t"}})
	if err != nil {
		t.Fatal(err)
	}
	defer ct.Close()
	sameLag(t, "new with --topic", collectorLag(scrape(t, ct), "new"), map[int32]int64{0: 5, 1: 10, 2: 15, 3: 20, 4: 25, 5: 30})
	if s := scrape(t, c); len(s.Partitions) != 6 {
		t.Errorf("without a topic named, a group with no commit is not reported: %+v", s)
	}

	// A running member that consumed everything and committed half of
	// each partition but the last.
	member := client(t, addrs, kgo.ConsumerGroup("busy"), kgo.ConsumeTopics("t"), kgo.DisableAutoCommit(),
		kgo.SessionTimeout(6*time.Second))
	got := 0
	waitFor(t, "the member to consume the backlog", func() bool {
		ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
		defer cancel()
		got += member.PollFetches(ctx).NumRecords()
		return got == 105
	})
	offs := map[string]map[int32]kgo.EpochOffset{"t": {}}
	for p := range int32(5) {
		offs["t"][p] = kgo.EpochOffset{Epoch: -1, Offset: int64(5*(p+1)) / 2}
	}
	var cerr error
	member.CommitOffsetsSync(context.Background(), offs, func(_ *kgo.Client, _ *kmsg.OffsetCommitRequest, _ *kmsg.OffsetCommitResponse, err error) { cerr = err })
	if cerr != nil {
		t.Fatal(cerr)
	}
	cm, err := lag.New(lag.Config{Brokers: addrs, Groups: []string{"busy"}, Topics: []string{"t"}})
	if err != nil {
		t.Fatal(err)
	}
	defer cm.Close()
	s = scrape(t, cm)
	want = map[int32]int64{0: 3, 1: 5, 2: 8, 3: 10, 4: 13, 5: 30}
	sameLag(t, "busy, by hand", collectorLag(s, "busy"), want)
	sameLag(t, "busy, kadm", collectorLag(s, "busy"), kadmLag(t, adm, "busy"))
}

// The time lag is the age of the record at the committed offset, on the
// injected clock: it grows while the committed offset is stuck, without a
// second Fetch (the timestamp is cached for that offset), follows a moved
// offset with one Fetch, and is 0 once caught up. A steady scrape costs one
// ListOffsets and one OffsetFetch.
func TestLagSecondsStuckThenCaughtUp(t *testing.T) {
	_, addrs := cluster(t, 1, 1)
	prod := producer(t, addrs)
	adm := kadm.NewClient(prod)
	t0 := time.Now().Add(-time.Hour).Truncate(time.Millisecond)
	produce(t, prod, 0, 10, func(i int) time.Time { return t0.Add(time.Duration(i) * time.Second) })
	commit(t, adm, "g", map[int32]int64{0: 0})

	clock := &fakeClock{now: t0.Add(100 * time.Second)}
	var rc requestCounter
	c, err := lag.New(lag.Config{Brokers: addrs, Groups: []string{"g"}, Clock: clock, KgoOpts: []kgo.Opt{kgo.WithHooks(&rc)}})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	reg := prometheus.NewRegistry()
	reg.MustRegister(c)

	type counts struct{ list, fetchOffsets, fetch int64 }
	count := func() counts {
		return counts{rc.get(kmsg.ListOffsets), rc.get(kmsg.OffsetFetch), rc.get(kmsg.Fetch)}
	}
	step := func(wantLag int64, wantSec float64, wantFetches int64) {
		t.Helper()
		before := count()
		got := gauges(t, reg)
		after := count()
		if r, s := got[lag.MetricLagRecords+`{group="g",partition="0",topic="t"}`], got[lag.MetricLagSeconds+`{group="g",partition="0",topic="t"}`]; r != float64(wantLag) || s != wantSec {
			t.Errorf("at %s: lag %v records %v seconds, want %d and %v", clock.Now().Sub(t0), r, s, wantLag, wantSec)
		}
		if d := (counts{after.list - before.list, after.fetchOffsets - before.fetchOffsets, after.fetch - before.fetch}); d != (counts{1, 1, wantFetches}) {
			t.Errorf("at %s: requests ListOffsets %d, OffsetFetch %d, Fetch %d; want 1, 1, %d", clock.Now().Sub(t0), d.list, d.fetchOffsets, d.fetch, wantFetches)
		}
	}
	step(10, 100, 1) // the record at offset 0 was written at t0
	clock.Add(50 * time.Second)
	step(10, 150, 0) // stuck: older, no Fetch
	clock.Add(50 * time.Second)
	step(10, 200, 0)
	commit(t, adm, "g", map[int32]int64{0: 4})
	step(6, 196, 1) // moved: the record at offset 4, written at t0+4s
	commit(t, adm, "g", map[int32]int64{0: 10})
	step(0, 0, 0) // caught up: no record to read
	clock.Add(time.Hour)
	step(0, 0, 0)
}

// gauges gathers reg and returns every gauge by name{labels}.
func gauges(t *testing.T, reg *prometheus.Registry) map[string]float64 {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]float64{}
	for _, mf := range mfs {
		if mf.GetType() != dto.MetricType_GAUGE {
			continue
		}
		for _, m := range mf.GetMetric() {
			var ls []string
			for _, l := range m.GetLabel() {
				ls = append(ls, fmt.Sprintf("%s=%q", l.GetName(), l.GetValue()))
			}
			out[mf.GetName()+"{"+strings.Join(ls, ",")+"}"] = m.GetGauge().GetValue()
		}
	}
	return out
}

// The statuses on the injected clock with a 1-minute window: STALL for a
// stuck committed offset with lag while a member owns the partition, STOP
// for the same with no member, WARN for a group that commits but falls
// behind, OK for one that keeps up and for the stalled one once it has
// caught up.
func TestStatusStallStopWarn(t *testing.T) {
	_, addrs := cluster(t, 1, 2)
	prod := producer(t, addrs)
	adm := kadm.NewClient(prod)
	now := time.Now()
	ts := func(int) time.Time { return now }
	produce(t, prod, 0, 10, ts)
	produce(t, prod, 1, 10, ts)

	// "stall": a live member owns both partitions and committed 3 of each.
	member := client(t, addrs, kgo.ConsumerGroup("stall"), kgo.ConsumeTopics("t"), kgo.DisableAutoCommit(),
		kgo.SessionTimeout(6*time.Second))
	waitFor(t, "the member to own both partitions", func() bool {
		ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
		defer cancel()
		member.PollFetches(ctx)
		d, err := adm.DescribeGroups(context.Background(), "stall")
		return err == nil && d["stall"].State == "Stable" && len(d.AssignedPartitions()["t"]) == 2
	})
	var cerr error
	member.CommitOffsetsSync(context.Background(), map[string]map[int32]kgo.EpochOffset{"t": {0: {Epoch: -1, Offset: 3}, 1: {Epoch: -1, Offset: 3}}},
		func(_ *kgo.Client, _ *kmsg.OffsetCommitRequest, _ *kmsg.OffsetCommitResponse, err error) { cerr = err })
	if cerr != nil {
		t.Fatal(cerr)
	}
	// "stop": the same offsets, no member.
	commit(t, adm, "stop", map[int32]int64{0: 3, 1: 3})
	// "warn": commits, partition 0 falling behind, partition 1 keeping up.
	warn := map[int32]int64{0: 0, 1: 10}
	commit(t, adm, "warn", warn)

	clock := &fakeClock{now: now}
	c, err := lag.New(lag.Config{Brokers: addrs, Groups: []string{"stall", "stop", "warn"}, Window: time.Minute, Clock: clock})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	reg := prometheus.NewRegistry()
	reg.MustRegister(c)

	ends := map[int32]int64{0: 10, 1: 10}
	for i := range 4 { // at 0, 20, 40 and 60 s
		if i > 0 {
			clock.Add(20 * time.Second)
			produce(t, prod, 0, 10, ts)
			produce(t, prod, 1, 2, ts)
			ends[0] += 10
			ends[1] += 2
			warn[0] += 5
			warn[1] = ends[1]
			commit(t, adm, "warn", warn)
		}
		s := scrape(t, c)
		want := map[string]lag.Status{}
		if i == 3 {
			want = map[string]lag.Status{"stall/0": lag.StatusStall, "stall/1": lag.StatusStall, "stop/0": lag.StatusStop,
				"stop/1": lag.StatusStop, "warn/0": lag.StatusWarn, "warn/1": lag.StatusOK}
		}
		for _, g := range []string{"stall", "stop", "warn"} {
			for p := range int32(2) {
				r, ok := find(s, g, p)
				if !ok {
					t.Fatalf("at %ds: no row for %s/%d in %+v", i*20, g, p, s)
				}
				if w := want[fmt.Sprintf("%s/%d", g, p)]; r.Status != w {
					t.Errorf("at %ds: %s/%d status %v (committed %d, lag %d), want %v", i*20, g, p, r.Status, r.Committed, r.Lag, w)
				}
			}
		}
	}
	got := gauges(t, reg)
	for _, st := range lag.Statuses {
		want := 0.0
		if st == lag.StatusStall {
			want = 1
		}
		k := fmt.Sprintf(`%s{group="stall",partition="0",status=%q,topic="t"}`, lag.MetricStatus, st.Label())
		if v, ok := got[k]; !ok || v != want {
			t.Errorf("%s = %v (present %v), want %v", k, v, ok, want)
		}
	}

	// The stalled group catches up: OK at once.
	member.CommitOffsetsSync(context.Background(), map[string]map[int32]kgo.EpochOffset{"t": {0: {Epoch: -1, Offset: ends[0]}, 1: {Epoch: -1, Offset: ends[1]}}},
		func(_ *kgo.Client, _ *kmsg.OffsetCommitRequest, _ *kmsg.OffsetCommitResponse, err error) { cerr = err })
	if cerr != nil {
		t.Fatal(cerr)
	}
	clock.Add(time.Second)
	s := scrape(t, c)
	for p := range int32(2) {
		if r, _ := find(s, "stall", p); r.Status != lag.StatusOK || r.Lag != 0 || *r.LagSeconds != 0 {
			t.Errorf("after catching up, stall/%d: %+v", p, r)
		}
	}
}

// Every metric's name and help pass client_golang's linter, with series
// present.
func TestMetricsLint(t *testing.T) {
	_, addrs := cluster(t, 1, 1)
	prod := producer(t, addrs)
	produce(t, prod, 0, 3, func(int) time.Time { return time.Now() })
	commit(t, kadm.NewClient(prod), "g", map[int32]int64{0: 1})
	clock := &fakeClock{now: time.Now()}
	c, err := lag.New(lag.Config{Brokers: addrs, Groups: []string{"g"}, Window: time.Second, Clock: clock})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	scrape(t, c)
	clock.Add(2 * time.Second) // a whole window: the status series exist
	problems, err := testutil.CollectAndLint(c)
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range problems {
		t.Errorf("%s: %s", p.Metric, p.Text)
	}
	n, err := testutil.GatherAndCount(func() prometheus.Gatherer {
		r := prometheus.NewRegistry()
		r.MustRegister(c)
		return r
	}(), lag.MetricLagRecords, lag.MetricLagSeconds, lag.MetricStatus, lag.MetricScrapeErrors, lag.MetricScrapeDuration)
	if err != nil {
		t.Fatal(err)
	}
	if want := 1 + 1 + 4 + 6 + 1; n != want {
		t.Errorf("%d series, want %d", n, want)
	}
}

// A broker that never answers: the scrape ends at the scrape timeout,
// counts the failed step and names the broker.
func TestScrapeTimeoutAndErrors(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	done := make(chan struct{})
	defer func() { <-done }()
	defer ln.Close()
	go func() { // accept and say nothing
		defer close(done)
		var conns []net.Conn
		defer func() {
			for _, c := range conns {
				c.Close()
			}
		}()
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			conns = append(conns, c)
		}
	}()
	addr := ln.Addr().String()
	c, err := lag.New(lag.Config{Brokers: []string{addr}, Groups: []string{"g"}, ScrapeTimeout: 300 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	reg := prometheus.NewRegistry()
	reg.MustRegister(c)
	start := time.Now()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	if el := time.Since(start); el > 3*time.Second {
		t.Errorf("scrape took %s with a 300ms timeout", el)
	}
	if v := counterValue(mfs, lag.StageOffsetFetch); v != 1 {
		t.Errorf("offset_fetch errors %v, want 1", v)
	}
	for _, mf := range mfs {
		if n := mf.GetName(); n == lag.MetricLagRecords || n == lag.MetricLagSeconds {
			t.Errorf("%s exported by a failed scrape", n)
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
	defer cancel()
	_, err = c.Scrape(ctx)
	if err == nil || !strings.Contains(err.Error(), "brokers "+addr) || !strings.Contains(err.Error(), `group "g"`) {
		t.Errorf("error %v does not name the broker and the group", err)
	}
}

// counterValue is the scrape error counter of stage in mfs (-1: absent).
func counterValue(mfs []*dto.MetricFamily, stage string) float64 {
	for _, mf := range mfs {
		if mf.GetName() != lag.MetricScrapeErrors {
			continue
		}
		for _, m := range mf.GetMetric() {
			if m.GetLabel()[0].GetValue() == stage {
				return m.GetCounter().GetValue()
			}
		}
	}
	return -1
}

func TestNewNamesFields(t *testing.T) {
	_, err := lag.New(lag.Config{Groups: []string{""}, Topics: []string{" "}, Window: -1, ScrapeTimeout: -1})
	for _, f := range []string{"Config.Brokers", "Config.Groups[0]", "Config.Topics[0]", "Config.Window", "Config.ScrapeTimeout"} {
		if err == nil || !strings.Contains(err.Error(), f) {
			t.Errorf("error %v does not name %s", err, f)
		}
	}
	if _, err := lag.New(lag.Config{Brokers: []string{"a:1"}}); err == nil || !strings.Contains(err.Error(), "Config.Groups") {
		t.Errorf("no groups: %v", err)
	}
}
