package dlq_test

import (
	"bytes"
	"errors"
	"fmt"
	"reflect"
	"slices"
	"strconv"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/ordokafka/ordo/pkg/dlq"
)

const twoGroups = `
topics:
  - name: orders
    partitions: 4
    groups:
      - {name: billing, retry: {delays: [1s, 10s]}}
      - {name: audit, retry: {delays: [5s]}}
`

// Two groups read orders: names, listing and redrive never cross, on their
// own DLQs and on a shared foreign one.
func TestTwoGroupsKeptApart(t *testing.T) {
	e := newEnv(t, twoGroups, 4, "legacy-dlt")
	for i := range 3 {
		e.produce(letter("orders.billing.dlq", int32(i), "b"+strconv.Itoa(i), "v", ordoHeaders("orders", int32(i), int64(10+i), ts0, "billing", "permanent", "bad")))
	}
	for i := range 2 {
		e.produce(letter("orders.audit.dlq", int32(i), "a"+strconv.Itoa(i), "v", ordoHeaders("orders", int32(i), int64(20+i), ts0, "audit", "timeout", "slow")))
	}

	for group, want := range map[string]int{"billing": 3, "audit": 2} {
		ls, n, _, err := e.dlq.List(e.ctx, "orders."+group+".dlq", dlq.Filter{Group: group}, 0, false)
		if err != nil || n != want || len(ls) != want {
			t.Fatalf("list %s: %d letters (%d matched), %v; want %d", group, len(ls), n, err, want)
		}
		for _, l := range ls {
			if l.Meta.Group != group {
				t.Fatalf("list %s shows a letter of %s", group, l.Meta.Group)
			}
		}
	}

	rep, err := e.dlq.Redrive(e.ctx, dlq.RedriveOptions{DLQTopic: "orders.billing.dlq", Group: "billing", Execute: true})
	if err != nil || rep.Redriven != 3 {
		t.Fatalf("redrive billing: %+v, %v", rep, err)
	}
	if got := rep.Targets; !reflect.DeepEqual(got, []dlq.Count{{Text: "orders.billing.retry.1", Count: 3}}) {
		t.Fatalf("targets %v", got)
	}
	if n := len(e.readAll("orders.billing.retry.1")); n != 3 {
		t.Fatalf("orders.billing.retry.1 has %d records, want 3", n)
	}
	if n := len(e.readAll("orders.audit.retry.1")); n != 0 {
		t.Fatalf("billing's redrive reached orders.audit.retry.1 (%d records)", n)
	}
	if n := len(e.readAll("orders.audit.dlq")); n != 2 {
		t.Fatalf("orders.audit.dlq has %d records", n)
	}
	if offs, err := e.adm.FetchOffsets(e.ctx, dlq.CursorGroup("audit")); !errors.Is(err, kerr.GroupIDNotFound) && len(offs) != 0 {
		t.Fatalf("audit's cursor moved: %v %v", offs, err)
	}

	// A foreign DLQ that both groups wrote to (Spring names the group).
	for i := range 6 {
		g := []string{"billing", "audit"}[i%2]
		e.produce(letter("legacy-dlt", int32(i%4), "k"+strconv.Itoa(i), "v", springHeaders("orders", int32(i%4), int64(100+i), ts0, g, "X", "boom")))
	}
	rep, err = e.dlq.Redrive(e.ctx, dlq.RedriveOptions{DLQTopic: "legacy-dlt", Group: "billing", Execute: true})
	if err != nil || rep.Redriven != 3 || rep.OtherGroups != 3 {
		t.Fatalf("redrive billing from the shared DLQ: %+v, %v", rep, err)
	}
	rep, err = e.dlq.Redrive(e.ctx, dlq.RedriveOptions{DLQTopic: "legacy-dlt", Group: "audit", Execute: true})
	if err != nil || rep.Redriven != 3 || rep.OtherGroups != 3 {
		t.Fatalf("redrive audit from the shared DLQ: %+v, %v", rep, err)
	}
	for topic, group := range map[string]string{"orders.billing.retry.1": "billing", "orders.audit.retry.1": "audit"} {
		for _, r := range e.readAll(topic) {
			if g, _ := header(r, "kafka_dlt-original-consumer-group"); r.Headers != nil && g != "" && g != group {
				t.Fatalf("%s holds a letter of %s", topic, g)
			}
			if g, _ := header(r, "ordo-group"); g != group {
				t.Fatalf("%s holds a record with ordo-group %q", topic, g)
			}
		}
	}
	// Settled for each group: a second run of either applies nothing.
	for _, g := range []string{"billing", "audit"} {
		rep, err := e.dlq.Redrive(e.ctx, dlq.RedriveOptions{DLQTopic: "legacy-dlt", Group: g, Execute: true})
		if err != nil || rep.Redriven != 0 || rep.Read != 0 {
			t.Fatalf("second redrive of %s: %+v, %v", g, rep, err)
		}
	}
}

const oneGroup = `
topics:
  - name: orders
    partitions: 3
    groups:
      - {name: g, retry: {delays: [1s]}}
`

// The same redrive run again applies nothing twice: filtered and limited
// runs leave the rest for later runs, and each letter reaches the tier
// once, with the headers a tier record needs.
func TestRedriveTwiceAppliesOnce(t *testing.T) {
	e := newEnv(t, oneGroup, 3)
	var sent []*kgo.Record
	for i := range 10 {
		class := []string{"permanent", "timeout"}[i%2]
		hs := append([]kgo.RecordHeader{{Key: "trace", Value: []byte{0, byte(i), 0xff}}, {Key: "ORDO-note", Value: []byte("kept")}},
			ordoHeaders("orders", int32(i%3), int64(i), ts0.Add(time.Duration(i)*time.Minute), "g", class, "e"+strconv.Itoa(i))...)
		r := letter("orders.g.dlq", int32(i%3), "k"+strconv.Itoa(i), "", hs)
		r.Value = []byte{byte(i), 0, 0xfe, 'x'}
		r.Timestamp = ts0.Add(time.Duration(i) * time.Second) // dead-lettered in this order
		sent = append(sent, r)
	}
	e.produce(sent...)
	run := func(f dlq.Filter, limit int) dlq.RedriveReport {
		t.Helper()
		rep, err := e.dlq.Redrive(e.ctx, dlq.RedriveOptions{DLQTopic: "orders.g.dlq", Group: "g", Filter: f, Limit: limit, Execute: true})
		if err != nil {
			t.Fatal(err)
		}
		return rep
	}
	timeouts := dlq.Filter{ErrorClasses: []string{"timeout"}}
	steps := []struct {
		f                          dlq.Filter
		limit, redriven            int
		wantRedriveIDsOfSentIndexs []int
	}{
		{timeouts, 2, 2, []int{1, 3}}, // the oldest two timeouts
		{timeouts, 0, 3, []int{5, 7, 9}},
		{timeouts, 0, 0, nil},
		{dlq.Filter{}, 0, 5, []int{0, 2, 4, 6, 8}},
		{dlq.Filter{}, 0, 0, nil},
	}
	var got []string
	for i, s := range steps {
		before := ids(e.readAll("orders.g.retry.1"))
		rep := run(s.f, s.limit)
		if rep.Redriven != s.redriven || rep.Selected != s.redriven {
			t.Fatalf("step %d: redriven %d of %d selected, want %d: %+v", i, rep.Redriven, rep.Selected, s.redriven, rep)
		}
		if i == 2 && rep.AlreadyRedriven != 4 { // the timeouts above each partition's lowest unsettled offset (all but 1/0)
			t.Fatalf("step %d: already redriven %d", i, rep.AlreadyRedriven)
		}
		after := ids(e.readAll("orders.g.retry.1"))
		var want []string
		for _, j := range s.wantRedriveIDsOfSentIndexs {
			want = append(want, id("orders.g.dlq", sent[j].Partition, sent[j].Offset))
		}
		slices.Sort(want)
		if added := without(after, before); !slices.Equal(added, want) {
			t.Fatalf("step %d: redrove %v, want %v", i, added, want)
		}
		got = after
	}
	if len(got) != 10 || len(slices.Compact(slices.Clone(got))) != 10 {
		t.Fatalf("the tier has %v, want each of the 10 letters once", got)
	}

	// What each redriven record carries.
	byID := make(map[string]*kgo.Record)
	for _, r := range sent {
		byID[id("orders.g.dlq", r.Partition, r.Offset)] = r
	}
	for _, r := range e.readAll("orders.g.retry.1") {
		rid, _ := header(r, "ordo-redrive-id")
		src := byID[rid]
		if !bytes.Equal(r.Key, src.Key) || !bytes.Equal(r.Value, src.Value) {
			t.Fatalf("%s: key/value %q/%q, want %q/%q", rid, r.Key, r.Value, src.Key, src.Value)
		}
		if r.Partition != src.Partition { // the original partition (== the DLQ's here)
			t.Fatalf("%s went to partition %d, want %d", rid, r.Partition, src.Partition)
		}
		for k, want := range map[string]string{"ordo-attempt": "0", "ordo-tier": "1", "ordo-not-before": strconv.FormatInt(e.now.UnixMilli(), 10), "ordo-group": "g"} {
			if v, _ := header(r, k); v != want || headerCount(r, k) != 1 {
				t.Fatalf("%s: %s = %q (x%d), want %q once", rid, k, v, headerCount(r, k), want)
			}
		}
		// Every other header of the letter is kept, byte for byte, in order.
		var kept, want []kgo.RecordHeader
		for _, h := range r.Headers {
			switch h.Key {
			case "ordo-attempt", "ordo-tier", "ordo-not-before", "ordo-redrive-id":
			default:
				kept = append(kept, h)
			}
		}
		for _, h := range src.Headers {
			if h.Key != "ordo-attempt" {
				want = append(want, h)
			}
		}
		if !reflect.DeepEqual(kept, want) {
			t.Fatalf("%s headers:\n got %q\nwant %q", rid, kept, want)
		}
	}

	// New letters after the runs: only they are redriven.
	e.produce(letter("orders.g.dlq", 1, "late", "v", ordoHeaders("orders", 1, 99, ts0, "g", "panic", "p")))
	if rep := run(dlq.Filter{}, 0); rep.Redriven != 1 || rep.Read != 1 {
		t.Fatalf("after a new letter: %+v", rep)
	}
	// The cursor: committed past every letter, nothing left in ranges.
	offs, err := e.adm.FetchOffsetsForTopics(e.ctx, dlq.CursorGroup("g"), "orders.g.dlq")
	if err != nil {
		t.Fatal(err)
	}
	ends, _ := e.adm.ListEndOffsets(e.ctx, "orders.g.dlq")
	ends.Each(func(o kadm.ListedOffset) {
		c, _ := offs.Lookup(o.Topic, o.Partition)
		if c.At != o.Offset {
			t.Errorf("cursor of partition %d at %d, want the end %d (metadata %q)", o.Partition, c.At, o.Offset, c.Metadata)
		}
	})
}

func without(a, b []string) []string {
	var out []string
	for _, x := range a {
		if !slices.Contains(b, x) {
			out = append(out, x)
		}
	}
	return out
}

// A dry run reports and changes nothing.
func TestRedriveDryRun(t *testing.T) {
	e := newEnv(t, oneGroup, 3)
	for i := range 4 {
		r := letter("orders.g.dlq", int32(i%3), "k", "secret-payload", ordoHeaders("orders", int32(i%3), int64(i), ts0, "g", "permanent", "e"))
		r.Timestamp = ts0.Add(-time.Duration(i) * time.Second) // the last produced is the oldest
		e.produce(r)
	}
	rep, err := e.dlq.Redrive(e.ctx, dlq.RedriveOptions{DLQTopic: "orders.g.dlq", Group: "g"})
	if err != nil || rep.Selected != 4 || rep.Redriven != 0 || rep.Execute {
		t.Fatalf("dry run: %+v, %v", rep, err)
	}
	if len(rep.Sample) != 4 || rep.Sample[0].Value != nil || !rep.Sample[0].ValueHidden {
		t.Fatalf("sample %+v", rep.Sample)
	}
	rep, err = e.dlq.Redrive(e.ctx, dlq.RedriveOptions{DLQTopic: "orders.g.dlq", Group: "g", Limit: 2})
	if err != nil || rep.Selected != 2 || len(rep.Sample) != 2 ||
		rep.Sample[0].Meta.Original.Offset != 3 || rep.Sample[1].Meta.Original.Offset != 2 {
		t.Fatalf("dry run with a limit: the oldest two first, got %+v, %v", rep.Sample, err)
	}
	if n := len(e.readAll("orders.g.retry.1")); n != 0 {
		t.Fatalf("a dry run produced %d records", n)
	}
	if offs, err := e.adm.FetchOffsets(e.ctx, dlq.CursorGroup("g")); !errors.Is(err, kerr.GroupIDNotFound) && len(offs) != 0 {
		t.Fatalf("a dry run committed %v", offs)
	}
}

// Into the source topic: refused until the other groups that read it are
// named exactly; then every record lands on its original partition.
func TestRedriveToSourceNamesTheOtherGroups(t *testing.T) {
	e := newEnv(t, `
topics:
  - name: orders
    partitions: 2
    groups:
      - {name: billing}           # no retry tiers
      - {name: audit}
`, 2)
	// audit has committed offsets for orders; billing too (it is the
	// group redriving: not "another" group).
	for _, g := range []string{"audit", "billing"} {
		os := make(kadm.Offsets)
		os.Add(kadm.Offset{Topic: "orders", Partition: 0, At: 0, LeaderEpoch: -1})
		if err := e.adm.CommitAllOffsets(e.ctx, g, os); err != nil {
			t.Fatal(err)
		}
	}
	// search is a live member assigned orders, with nothing committed.
	search, err := kgo.NewClient(kgo.SeedBrokers(e.addrs...), kgo.ConsumerGroup("search"), kgo.ConsumeTopics("orders"),
		kgo.DisableAutoCommit(), kgo.SessionTimeout(6*time.Second))
	if err != nil {
		t.Fatal(err)
	}
	defer search.Close()
	waitAssigned(t, e, search, "search", "orders")

	e.produce(
		letter("orders.billing.dlq", 0, "k0", "v0", ordoHeaders("orders", 1, 5, ts0, "billing", "permanent", "e")),
		letter("orders.billing.dlq", 1, "k1", "v1", ordoHeaders("orders", 0, 6, ts0, "billing", "permanent", "e")),
	)
	opts := dlq.RedriveOptions{DLQTopic: "orders.billing.dlq", Group: "billing"}

	// The default target, billing's first retry tier, does not exist.
	_, err = e.dlq.Redrive(e.ctx, opts)
	var nt *dlq.NoTierError
	if !errors.As(err, &nt) || nt.Missing["orders"] != "orders.billing.retry.1" {
		t.Fatalf("redrive without tiers: %v", err)
	}

	opts.ToSource = true
	rep, err := e.dlq.Redrive(e.ctx, opts)
	if err != nil || !slices.Equal(rep.Reaches, []string{"audit", "search"}) || rep.Selected != 2 {
		t.Fatalf("dry run to source: %+v, %v", rep, err)
	}
	opts.Execute = true
	for _, ack := range [][]string{nil, {"audit"}, {"audit", "search", "ledger"}} {
		opts.AlsoReaches = ack
		_, err := e.dlq.Redrive(e.ctx, opts)
		var re *dlq.ReachError
		if !errors.As(err, &re) || !slices.Equal(re.Reaches, []string{"audit", "search"}) {
			t.Fatalf("acknowledging %v: %v", ack, err)
		}
	}
	if n := len(e.readAll("orders")); n != 0 {
		t.Fatalf("a refused redrive produced %d records", n)
	}
	opts.AlsoReaches = []string{"search", "audit"}
	rep, err = e.dlq.Redrive(e.ctx, opts)
	if err != nil || rep.Redriven != 2 {
		t.Fatalf("acknowledged redrive: %+v, %v", rep, err)
	}
	got := e.readAll("orders")
	if len(got) != 2 {
		t.Fatalf("orders has %d records", len(got))
	}
	for _, r := range got {
		rid, _ := header(r, "ordo-redrive-id")
		want := map[string]struct {
			p   int32
			key string
		}{id("orders.billing.dlq", 0, 0): {1, "k0"}, id("orders.billing.dlq", 1, 0): {0, "k1"}}[rid]
		if r.Partition != want.p || string(r.Key) != want.key {
			t.Fatalf("%s: partition %d key %s; want the original partition %d, key %s", rid, r.Partition, r.Key, want.p, want.key)
		}
		// Into the source, the letter's headers are kept as they are.
		if v, _ := header(r, "ordo-error-class"); v != "permanent" || headerCount(r, "ordo-tier") != 0 {
			t.Fatalf("%s headers %v", rid, r.Headers)
		}
	}
}

func waitAssigned(t *testing.T, e *env, cl *kgo.Client, group, topic string) {
	t.Helper()
	for {
		pctx, cancel := contextWithTimeout(e, 200*time.Millisecond)
		cl.PollFetches(pctx)
		cancel()
		d, err := e.adm.DescribeGroups(e.ctx, group)
		if err == nil {
			if g, ok := d[group]; ok && g.State == "Stable" {
				if _, ok := g.AssignedPartitions()[topic]; ok {
					return
				}
			}
		}
		if e.ctx.Err() != nil {
			t.Fatalf("group %s never got %s: %v", group, topic, d)
		}
	}
}

// Spring and Karafka dead letters are read and redriven: into the tier
// they get Ordo's headers from their own, and lose any ordo- header they
// carried (Ordo did not write those); theirs are kept byte for byte.
func TestForeignFormats(t *testing.T) {
	e := newEnv(t, oneGroup, 3, "orders-dlt")
	spring := springHeaders("orders", 2, 1<<33, ts0, "g", "java.lang.IllegalStateException", "no customer")
	forged := []kgo.RecordHeader{{Key: "ORDO-Attempt", Value: []byte("99")}, {Key: "ordo-original-topic", Value: []byte("payments")}}
	e.produce(
		letter("orders-dlt", 0, "s", "spring-value", append(slices.Clone(forged), spring...)),
		letter("orders-dlt", 1, "k", "karafka-value", karafkaHeaders("orders", 1, 77, "g")),
	)
	ls, _, _, err := e.dlq.List(e.ctx, "orders-dlt", dlq.Filter{}, 0, true)
	if err != nil || len(ls) != 2 {
		t.Fatalf("list: %v, %v", ls, err)
	}
	if m := ls[0].Meta; m.Format != dlq.FormatSpring || m.Original != (dlq.Origin{Topic: "orders", Partition: 2, Offset: 1 << 33, Timestamp: ts0}) ||
		m.Group != "g" || m.Cause != "java.lang.IllegalStateException" || m.Error != "no customer" {
		t.Fatalf("spring letter %+v", m)
	}
	if m := ls[1].Meta; m.Format != dlq.FormatKarafka || m.Original.Partition != 1 || m.Original.Offset != 77 || m.Attempt != 3 {
		t.Fatalf("karafka letter %+v", m)
	}

	rep, err := e.dlq.Redrive(e.ctx, dlq.RedriveOptions{DLQTopic: "orders-dlt", Group: "g", Execute: true})
	if err != nil || rep.Redriven != 2 {
		t.Fatalf("redrive: %+v, %v", rep, err)
	}
	got := e.readAll("orders.g.retry.1")
	if len(got) != 2 {
		t.Fatalf("tier has %d records", len(got))
	}
	for _, r := range got {
		var src []kgo.RecordHeader
		var wantP int32
		want := map[string]string{"ordo-attempt": "0", "ordo-tier": "1", "ordo-group": "g", "ordo-original-topic": "orders"}
		switch string(r.Key) {
		case "s":
			src, wantP = spring, 2
			want["ordo-original-partition"], want["ordo-original-offset"] = "2", strconv.FormatInt(1<<33, 10)
			want["ordo-original-timestamp"] = strconv.FormatInt(ts0.UnixMilli(), 10)
			want["ordo-redrive-id"] = id("orders-dlt", 0, 0)
		case "k":
			src, wantP = karafkaHeaders("orders", 1, 77, "g"), 1
			want["ordo-original-partition"], want["ordo-original-offset"] = "1", "77"
			want["ordo-redrive-id"] = id("orders-dlt", 1, 0)
		}
		if r.Partition != wantP {
			t.Fatalf("%s: partition %d, want the original %d", r.Key, r.Partition, wantP)
		}
		for k, v := range want {
			if got, _ := header(r, k); got != v || headerCount(r, k) != 1 {
				t.Fatalf("%s: %s = %q (x%d), want %q once", r.Key, k, got, headerCount(r, k), v)
			}
		}
		if headerCount(r, "ORDO-Attempt") != 0 {
			t.Fatalf("%s: a forged ordo- header survived: %v", r.Key, r.Headers)
		}
		if !reflect.DeepEqual(r.Headers[:len(src)], src) {
			t.Fatalf("%s: foreign headers not kept byte for byte:\n got %q\nwant %q", r.Key, r.Headers[:len(src)], src)
		}
		if len(r.Headers) != len(src)+len(want)+1 { // + ordo-not-before
			t.Fatalf("%s: %d headers: %q", r.Key, len(r.Headers), r.Headers)
		}
	}
}

// Scans read up to the end offsets of their start, never what arrives
// during the call, and end without waiting at a transaction's marker.
func TestScanEndsAtCallStart(t *testing.T) {
	e := newEnv(t, "", 2, "d")
	for i := range 6 {
		e.produce(letter("d", int32(i%2), "k", "v", ordoHeaders("orders", 0, int64(i), ts0, "g", "permanent", "e")))
	}
	seen := 0
	span, err := e.dlq.Scan(e.ctx, "d", dlq.Filter{}, func(l *dlq.Letter) error {
		seen++
		// More letters arrive while the scan runs.
		e.produce(letter("d", l.Partition, "late", "v", nil))
		return nil
	})
	if err != nil || seen != 6 || span.Total() != 6 {
		t.Fatalf("scan saw %d letters (span %d), %v", seen, span.Total(), err)
	}

	// Transactional dead letters: the commit marker takes the last offset.
	tx, err := kgo.NewClient(kgo.SeedBrokers(e.addrs...), kgo.TransactionalID("t"), kgo.RecordPartitioner(kgo.ManualPartitioner()))
	if err != nil {
		t.Fatal(err)
	}
	defer tx.Close()
	if _, err := e.adm.CreateTopic(e.ctx, 1, 1, nil, "tx-dlq"); err != nil {
		t.Fatal(err)
	}
	if err := tx.BeginTransaction(); err != nil {
		t.Fatal(err)
	}
	if err := tx.ProduceSync(e.ctx, letter("tx-dlq", 0, "k", "v", nil), letter("tx-dlq", 0, "k", "v", nil)).FirstErr(); err != nil {
		t.Fatal(err)
	}
	if err := tx.EndTransaction(e.ctx, kgo.TryCommit); err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	seen = 0
	span, err = e.dlq.Scan(e.ctx, "tx-dlq", dlq.Filter{}, func(*dlq.Letter) error { seen++; return nil })
	if err != nil || seen != 2 || span.Partitions[0].Short {
		t.Fatalf("transactional scan: %d letters, %+v, %v", seen, span, err)
	}
	if took := time.Since(start); took > 2*time.Second {
		t.Errorf("the scan waited %s at the commit marker", took)
	}

	if _, err := e.dlq.Scan(e.ctx, "missing", dlq.Filter{}, func(*dlq.Letter) error { return nil }); !errors.As(err, new(*dlq.TopicError)) {
		t.Fatalf("missing topic: %v", err)
	}
	// DLQ partition and offset ranges narrow what is read.
	if _, err := e.adm.CreateTopic(e.ctx, 3, 1, nil, "r"); err != nil {
		t.Fatal(err)
	}
	for i := range 9 {
		e.produce(letter("r", int32(i%3), "k", "v", nil))
	}
	rs := func(s string) dlq.Ranges { r, _ := dlq.ParseRanges(s); return r }
	span, err = e.dlq.Scan(e.ctx, "r", dlq.Filter{DLQPartitions: rs("1-2"), DLQOffsets: rs("1")}, func(l *dlq.Letter) error {
		if l.Partition == 0 || l.Offset != 1 {
			return fmt.Errorf("read %d/%d", l.Partition, l.Offset)
		}
		return nil
	})
	if err != nil || span.Total() != 2 {
		t.Fatalf("narrowed scan: %+v, %v", span, err)
	}
}

func TestStats(t *testing.T) {
	e := newEnv(t, "", 2, "d")
	e.produce(
		letter("d", 0, "a", "v", ordoHeaders("orders", 3, 1, ts0, "g", "permanent", "bad amount")),
		letter("d", 0, "b", "v", ordoHeaders("orders", 3, 2, ts0.Add(time.Hour), "g", "permanent", "bad amount")),
		letter("d", 1, "c", "v", ordoHeaders("orders", 5, 3, ts0.Add(2*time.Hour), "g", "timeout", "slow")),
		letter("d", 1, "d", "v", karafkaHeaders("orders", 5, 4, "g")),
	)
	st, _, err := e.dlq.Stats(e.ctx, "d", dlq.Filter{})
	if err != nil {
		t.Fatal(err)
	}
	if st.Total != 4 || !reflect.DeepEqual(st.ByErrorClass, map[string]int{"permanent": 2, "timeout": 1, "": 1}) ||
		!reflect.DeepEqual(st.ByOriginalPartition, map[int32]int{3: 2, 5: 2}) ||
		!reflect.DeepEqual(st.ByFormat, map[dlq.Format]int{dlq.FormatOrdo: 3, dlq.FormatKarafka: 1}) ||
		!reflect.DeepEqual(st.TopErrors, []dlq.Count{{Text: "bad amount", Count: 2}, {Text: "slow", Count: 1}}) ||
		!st.OriginalFirst.Equal(ts0) || !st.OriginalLast.Equal(ts0.Add(2*time.Hour)) {
		t.Fatalf("stats %+v", st)
	}
}

// A filtered redrive that would leave more holes than a cursor commit can
// describe stops at that partition and says so; an unfiltered run then
// fills the holes and the cursor compacts.
func TestRedriveCursorFull(t *testing.T) {
	e := newEnv(t, `
topics:
  - {name: orders, partitions: 1, groups: [{name: g, retry: {delays: [1s]}}]}
`, 1)
	for i := range 20 {
		class := []string{"permanent", "timeout"}[i%2]
		e.produce(letter("orders.g.dlq", 0, "k", "v", ordoHeaders("orders", 0, int64(i), ts0, "g", class, "e")))
	}
	small, err := dlq.New(dlq.Config{Opts: []kgo.Opt{kgo.SeedBrokers(e.addrs...)}, MaxCursorBytes: len("ordo-redrive/1:") + len("1.1,2.1,2.1")})
	if err != nil {
		t.Fatal(err)
	}
	defer small.Close()
	rep, err := small.Redrive(e.ctx, dlq.RedriveOptions{DLQTopic: "orders.g.dlq", Group: "g", Execute: true,
		Filter: dlq.Filter{ErrorClasses: []string{"timeout"}}})
	if err != nil || rep.Redriven != 3 || !slices.Equal(rep.CursorFull, []int32{0}) {
		t.Fatalf("filtered redrive with a small cursor: %+v, %v", rep, err)
	}
	rep, err = small.Redrive(e.ctx, dlq.RedriveOptions{DLQTopic: "orders.g.dlq", Group: "g", Execute: true})
	if err != nil || rep.Redriven != 17 || len(rep.CursorFull) != 0 {
		t.Fatalf("unfiltered redrive: %+v, %v", rep, err)
	}
	if got := ids(e.readAll("orders.g.retry.1")); len(got) != 20 || len(slices.Compact(got)) != 20 {
		t.Fatalf("tier has %d records: %v", len(got), got)
	}
	offs, _ := e.adm.FetchOffsetsForTopics(e.ctx, dlq.CursorGroup("g"), "orders.g.dlq")
	if o, _ := offs.Lookup("orders.g.dlq", 0); o.At != 20 || o.Metadata != "ordo-redrive/1:" {
		t.Fatalf("cursor %+v", o)
	}
}
