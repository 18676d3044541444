package replay_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"reflect"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/ordokafka/ordo/pkg/replay"
)

// readAll reads every record of topic from its start to its end now.
func readAll(t *testing.T, c *kfake.Cluster, topic string) []*kgo.Record {
	t.Helper()
	_, adm := newAdmin(t, c)
	ends, err := adm.ListEndOffsets(ctxT(t), topic)
	if err != nil {
		t.Fatal(err)
	}
	want := map[int32]int64{}
	ends.Each(func(o kadm.ListedOffset) {
		if o.Offset > 0 {
			want[o.Partition] = o.Offset
		}
	})
	cl, err := kgo.NewClient(kgo.SeedBrokers(c.ListenAddrs()...), kgo.ConsumeTopics(topic),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()), kgo.FetchMaxWait(50*time.Millisecond))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	var out []*kgo.Record
	ctx := ctxT(t)
	for len(want) > 0 {
		fs := cl.PollFetches(ctx)
		if err := ctx.Err(); err != nil {
			t.Fatalf("reading %s: %v (still to read: %v)", topic, err, want)
		}
		fs.EachRecord(func(r *kgo.Record) {
			out = append(out, r)
			if r.Offset+1 >= want[r.Partition] {
				delete(want, r.Partition)
			}
		})
	}
	return out
}

// copyFixture: src with 3 partitions of 12 records each, covering the
// shapes a copy must keep byte for byte: no key, an empty key, binary
// keys and values, headers with an empty and a null value, an ordo-
// header from outside, a timestamp per record; and an empty dst with 4
// partitions.
func copyFixture(t *testing.T) (*kfake.Cluster, map[string]*kgo.Record) {
	t.Helper()
	c := newCluster(t, 3, "src")
	_, adm := newAdmin(t, c)
	if _, err := adm.CreateTopic(ctxT(t), 4, 1, nil, "dst"); err != nil {
		t.Fatal(err)
	}
	var recs []*kgo.Record
	for p := range int32(3) {
		for o := range 12 {
			r := &kgo.Record{Topic: "src", Partition: p, Timestamp: base.Add(time.Duration(o) * time.Second).Add(time.Duration(p) * time.Millisecond)}
			switch o % 4 {
			case 0:
				r.Key = nil
			case 1:
				r.Key = []byte{}
			default:
				r.Key = []byte{'k', byte('0' + o%3), 0x00, 0xff}
			}
			r.Value = []byte{byte(p), byte(o), 0x80, 0xfe, '"', '\\', '\n'}
			if o == 5 {
				r.Value = nil
			}
			r.Headers = []kgo.RecordHeader{{Key: "h", Value: []byte("v" + strconv.Itoa(o))}, {Key: "empty", Value: []byte{}}, {Key: "null", Value: nil}}
			if o == 7 {
				r.Headers = append(r.Headers, kgo.RecordHeader{Key: "ordo-replay-id", Value: []byte("an earlier copy")})
			}
			recs = append(recs, r)
		}
	}
	produceManual(t, c, recs...)
	bySource := map[string]*kgo.Record{}
	for _, r := range readAll(t, c, "src") {
		bySource[fmt.Sprintf("src/%d/%d", r.Partition, r.Offset)] = r
	}
	return c, bySource
}

// checkCopies compares every target record with its source, field by
// field, and returns how many there are per source partition.
func checkCopies(t *testing.T, got []*kgo.Record, bySource map[string]*kgo.Record, id string, nTarget int) map[int32][]int64 {
	t.Helper()
	copied := map[int32][]int64{}
	keyPart := map[string]int32{}
	lastByKey := map[string]int64{}
	part := kgo.StickyKeyPartitioner(nil).ForTopic("dst")
	for _, r := range got {
		n := len(r.Headers)
		if n < 2 || r.Headers[n-2].Key != replay.HeaderSource || r.Headers[n-1].Key != replay.HeaderID {
			t.Errorf("dst/%d/%d: headers %v do not end with the replay headers", r.Partition, r.Offset, r.Headers)
			continue
		}
		srcID := string(r.Headers[n-2].Value)
		if got := string(r.Headers[n-1].Value); got != id {
			t.Errorf("%s: ordo-replay-id %q, want %q", srcID, got, id)
		}
		src := bySource[srcID]
		if src == nil {
			t.Errorf("dst/%d/%d: source %q is not a source record", r.Partition, r.Offset, srcID)
			continue
		}
		if !bytes.Equal(r.Key, src.Key) || (r.Key == nil) != (src.Key == nil) {
			t.Errorf("%s: key %q (nil %v), want %q (nil %v)", srcID, r.Key, r.Key == nil, src.Key, src.Key == nil)
		}
		if !bytes.Equal(r.Value, src.Value) || (r.Value == nil) != (src.Value == nil) {
			t.Errorf("%s: value %q, want %q", srcID, r.Value, src.Value)
		}
		if !r.Timestamp.Equal(src.Timestamp) {
			t.Errorf("%s: timestamp %s, want %s", srcID, r.Timestamp, src.Timestamp)
		}
		if !reflect.DeepEqual(r.Headers[:n-2], src.Headers) {
			t.Errorf("%s: headers %q, want %q then the replay headers", srcID, r.Headers[:n-2], src.Headers)
		}
		copied[src.Partition] = append(copied[src.Partition], src.Offset)
		if src.Key != nil {
			k := string(src.Key)
			if want := part.Partition(&kgo.Record{Key: src.Key}, nTarget); int32(want) != r.Partition {
				t.Errorf("%s: key %q went to dst/%d; the murmur2 key partitioner says %d", srcID, k, r.Partition, want)
			}
			if p, ok := keyPart[k]; ok && p != r.Partition {
				t.Errorf("key %q in dst/%d and dst/%d", k, p, r.Partition)
			}
			keyPart[k] = r.Partition
			// Records of one key (and source partition) keep their order.
			sk := fmt.Sprintf("%d/%s", src.Partition, k)
			if last, ok := lastByKey[sk]; ok && src.Offset < last {
				t.Errorf("key %q of src/%d: offset %d copied after %d", k, src.Partition, src.Offset, last)
			}
			lastByKey[sk] = src.Offset
		}
	}
	return copied
}

func seq(from, to int64) []int64 {
	var s []int64
	for o := from; o < to; o++ {
		s = append(s, o)
	}
	return s
}

// A range by offset is copied record by record: key (nil and empty kept
// apart), value, headers and timestamp as they were, the two replay
// headers added last, every key in the partition the murmur2 partitioner
// picks and in source order, nothing outside the range.
func TestCopyRangeByOffset(t *testing.T) {
	c, bySource := copyFixture(t)
	var progress []replay.CopyProgress
	var mu sync.Mutex
	res, err := replay.Copy(ctxT(t), replay.CopyConfig{
		Brokers: c.ListenAddrs(), From: "src", Into: "dst", Partitions: []int32{0, 2},
		Start: replay.AtOffset(3), End: replay.AtOffset(10), ID: "test-id",
		Progress: func(p replay.CopyProgress) { mu.Lock(); progress = append(progress, p); mu.Unlock() },
	})
	if err != nil {
		t.Fatal(err)
	}
	if res.Copied != 14 || res.LimitReached || len(res.Ranges) != 2 {
		t.Errorf("result %+v, want 14 copied in 2 ranges", res)
	}
	for _, pc := range res.Partitions {
		if pc.Copied != 7 || pc.LastOffset != 9 {
			t.Errorf("partition %+v, want 7 copied up to offset 9", pc)
		}
	}
	copied := checkCopies(t, readAll(t, c, "dst"), bySource, "test-id", 4)
	want := map[int32][]int64{0: seq(3, 10), 2: seq(3, 10)}
	for p := range want {
		if !reflect.DeepEqual(sorted(copied[p]), want[p]) {
			t.Errorf("src/%d: copied offsets %v, want %v", p, copied[p], want[p])
		}
	}
	if len(copied) != 2 {
		t.Errorf("copied partitions %v, want only 0 and 2", copied)
	}
	mu.Lock()
	defer mu.Unlock()
	last := progress[len(progress)-1]
	if !last.Done || last.Offsets != 14 || last.TotalOffsets != 14 || last.Copied != 14 {
		t.Errorf("last progress %+v, want done at 14 of 14", last)
	}
}

func sorted(s []int64) []int64 {
	out := append([]int64(nil), s...)
	for i := 1; i < len(out); i++ {
		for j := i; j > 0 && out[j] < out[j-1]; j-- {
			out[j], out[j-1] = out[j-1], out[j]
		}
	}
	return out
}

// A range by time is the offsets kadm's ListOffsetsAfterMilli gives for
// its two ends: [first at or after --from-time, first at or after
// --to-time).
func TestCopyRangeByTime(t *testing.T) {
	c, _ := copyFixture(t)
	_, adm := newAdmin(t, c)
	from, to := base.Add(2500*time.Millisecond), base.Add(6*time.Second+time.Millisecond)
	cfg := replay.CopyConfig{Brokers: c.ListenAddrs(), From: "src", Into: "dst", Start: replay.AtTime(from), End: replay.AtTime(to)}
	ranges, err := replay.PlanCopy(ctxT(t), adm, cfg)
	if err != nil {
		t.Fatal(err)
	}
	lf, err := adm.ListOffsetsAfterMilli(ctxT(t), from.UnixMilli(), "src")
	if err != nil {
		t.Fatal(err)
	}
	lt, err := adm.ListOffsetsAfterMilli(ctxT(t), to.UnixMilli(), "src")
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range ranges {
		f, _ := lf.Lookup("src", r.Partition)
		e, _ := lt.Lookup("src", r.Partition)
		// Offset o of partition p is stamped base + o s + p ms: from 2.5 s
		// the first is 3; to 6.001 s it is 7 in partition 0 (offset 6 is
		// at 6.000 s) and 6 in the others (6.001 s, 6.002 s).
		wantTo := int64(6)
		if r.Partition == 0 {
			wantTo = 7
		}
		if r.From != f.Offset || r.To != e.Offset || r.From != 3 || r.To != wantTo || r.Warning != "" {
			t.Errorf("range %+v; kadm says [%d, %d), the seeded data [3, %d)", r, f.Offset, e.Offset, wantTo)
		}
	}
	res, err := replay.Copy(ctxT(t), cfg)
	if err != nil {
		t.Fatal(err)
	}
	if res.Copied != 4+3+3 {
		t.Errorf("copied %d, want 10", res.Copied)
	}
}

// Records lost to DeleteRecords: a range that starts in them starts at
// the new log start, with a warning naming what is gone; a range wholly
// in them copies nothing, also with a warning. An end past the log's end
// is cut to it, with a warning.
func TestCopyPartlyDeletedRange(t *testing.T) {
	c, bySource := copyFixture(t)
	_, adm := newAdmin(t, c)
	del := kadm.Offsets{}
	del.Add(kadm.Offset{Topic: "src", Partition: 0, At: 5})
	del.Add(kadm.Offset{Topic: "src", Partition: 1, At: 11})
	if _, err := adm.DeleteRecords(ctxT(t), del); err != nil {
		t.Fatal(err)
	}
	res, err := replay.Copy(ctxT(t), replay.CopyConfig{Brokers: c.ListenAddrs(), From: "src", Into: "dst",
		Start: replay.AtOffset(2), End: replay.AtOffset(9)})
	if err != nil {
		t.Fatal(err)
	}
	want := map[int32]string{
		0: "src/0: records [2, 5) were deleted (the log starts at 5); copying from 5",
		1: "src/1: records [2, 9) were deleted (the log starts at 11); nothing to copy",
		2: "",
	}
	for _, r := range res.Ranges {
		if r.Warning != want[r.Partition] {
			t.Errorf("src/%d: warning %q, want %q", r.Partition, r.Warning, want[r.Partition])
		}
	}
	copied := checkCopies(t, readAll(t, c, "dst"), bySource, res.ID, 4)
	if got := sorted(copied[0]); !reflect.DeepEqual(got, seq(5, 9)) {
		t.Errorf("src/0: copied %v, want 5..8", got)
	}
	if len(copied[1]) != 0 || len(copied[2]) != 7 {
		t.Errorf("copied %v", copied)
	}
	ranges, err := replay.PlanCopy(ctxT(t), adm, replay.CopyConfig{Brokers: c.ListenAddrs(), From: "src", Into: "dst", Partitions: []int32{2},
		Start: replay.AtOffset(10), End: replay.AtOffset(50)})
	if err != nil {
		t.Fatal(err)
	}
	if r := ranges[0]; r.To != 12 || r.Warning != "src/2: the end offset 50 is past the end 12; stopping at 12" {
		t.Errorf("range %+v", r)
	}
}

// The end is taken when the copy starts: records produced during the copy
// are not copied, and the copy does not wait for more. It joins no group.
func TestCopyStopsAtTheEndTakenAtStart(t *testing.T) {
	c := newCluster(t, 2, "src", "dst")
	seedPartitions(t, c, "src", 30, 30)
	ctx, cancel := context.WithCancel(ctxT(t))
	var wg sync.WaitGroup
	wg.Go(func() { // keeps producing into src while the copy runs
		p, err := kgo.NewClient(kgo.SeedBrokers(c.ListenAddrs()...), kgo.DefaultProduceTopic("src"))
		if err != nil {
			t.Error(err)
			return
		}
		defer p.Close()
		for i := 0; ctx.Err() == nil; i++ {
			_ = p.ProduceSync(ctx, kgo.StringRecord("late-"+strconv.Itoa(i)))
		}
	})
	res, err := replay.Copy(ctxT(t), replay.CopyConfig{Brokers: c.ListenAddrs(), From: "src", Into: "dst", Rate: 200})
	cancel()
	wg.Wait()
	if err != nil {
		t.Fatal(err)
	}
	var planned int64
	for _, r := range res.Ranges {
		planned += r.Len()
	}
	if res.Copied != planned || planned < 60 {
		t.Errorf("copied %d of the %d planned at start", res.Copied, planned)
	}
	for _, r := range readAll(t, c, "dst") {
		if strings.HasPrefix(string(r.Value), "late-") {
			if src := string(r.Headers[len(r.Headers)-2].Value); !inRanges(src, res.Ranges) {
				t.Errorf("copied %s, produced after the start, outside the ranges", src)
			}
		}
	}
	_, adm := newAdmin(t, c)
	groups, err := adm.ListGroups(ctxT(t))
	if err != nil {
		t.Fatal(err)
	}
	if len(groups) != 0 {
		t.Errorf("the copy left groups %v", groups.Groups())
	}
}

func inRanges(src string, ranges []replay.CopyRange) bool {
	var p int32
	var o int64
	if _, err := fmt.Sscanf(src, "src/%d/%d", &p, &o); err != nil {
		return false
	}
	for _, r := range ranges {
		if r.Partition == p && o >= r.From && o < r.To {
			return true
		}
	}
	return false
}

// --limit copies that many records and stops; --rate spaces them.
func TestCopyLimitAndRate(t *testing.T) {
	c := newCluster(t, 2, "src", "dst")
	seedPartitions(t, c, "src", 30, 30)
	res, err := replay.Copy(ctxT(t), replay.CopyConfig{Brokers: c.ListenAddrs(), From: "src", Into: "dst", Limit: 7})
	if err != nil {
		t.Fatal(err)
	}
	if res.Copied != 7 || !res.LimitReached {
		t.Errorf("copied %d (limit reached %v), want 7", res.Copied, res.LimitReached)
	}
	if n := len(readAll(t, c, "dst")); n != 7 {
		t.Errorf("dst holds %d records, want 7", n)
	}

	const rate, n = 50.0, 30
	start := time.Now()
	res, err = replay.Copy(ctxT(t), replay.CopyConfig{Brokers: c.ListenAddrs(), From: "src", Into: "dst", Partitions: []int32{0},
		End: replay.AtOffset(n), Rate: rate})
	took := time.Since(start)
	if err != nil {
		t.Fatal(err)
	}
	// A burst of rate/10 = 5 tokens, then one per 20 ms: at least 0.5 s.
	if minTook := time.Duration(float64(n-rate/10) / rate * float64(time.Second)); res.Copied != n || took < minTook || took > 10*time.Second {
		t.Errorf("copied %d in %s at --rate %g/s; want %d in at least %s", res.Copied, took, rate, n, minTook)
	}
	t.Logf("%d records at %g/s: %s", n, rate, took.Round(time.Millisecond))
}

// Transactions: aborted records are not copied, and a range that ends on
// a commit marker ends (the copy does not wait for a record at the
// marker's offset).
func TestCopyTransactions(t *testing.T) {
	c := newCluster(t, 1, "src", "dst")
	tx, err := kgo.NewClient(kgo.SeedBrokers(c.ListenAddrs()...), kgo.TransactionalID("tx"), kgo.DefaultProduceTopic("src"))
	if err != nil {
		t.Fatal(err)
	}
	defer tx.Close()
	for i, outcome := range []kgo.TransactionEndTry{kgo.TryCommit, kgo.TryAbort, kgo.TryCommit} {
		if err := tx.BeginTransaction(); err != nil {
			t.Fatal(err)
		}
		for j := range 3 {
			if err := tx.ProduceSync(ctxT(t), kgo.StringRecord(fmt.Sprintf("txn%d-%d", i, j))).FirstErr(); err != nil {
				t.Fatal(err)
			}
		}
		if err := tx.EndTransaction(ctxT(t), outcome); err != nil {
			t.Fatal(err)
		}
	}
	res, err := replay.Copy(ctxT(t), replay.CopyConfig{Brokers: c.ListenAddrs(), From: "src", Into: "dst"})
	if err != nil {
		t.Fatal(err)
	}
	var vals []string
	for _, r := range readAll(t, c, "dst") {
		vals = append(vals, string(r.Value))
	}
	if want := "txn0-0 txn0-1 txn0-2 txn2-0 txn2-1 txn2-2"; strings.Join(vals, " ") != want || res.Copied != 6 {
		t.Errorf("copied %d: %v, want %s", res.Copied, vals, want)
	}
	if r := res.Ranges[0]; r.To != 12 { // 3 x (3 records + 1 marker)
		t.Errorf("range %+v, want to 12", r)
	}
}

// Problems are reported at once, before anything is copied.
func TestCopyRefusals(t *testing.T) {
	c := newCluster(t, 2, "src")
	_, adm := newAdmin(t, c)
	_, err := replay.PlanCopy(ctxT(t), adm, replay.CopyConfig{Brokers: c.ListenAddrs(), From: "nope", Into: "dst2"})
	for _, w := range []string{"source topic nope does not exist", "target topic dst2 does not exist"} {
		if err == nil || !strings.Contains(err.Error(), w) {
			t.Errorf("error %v lacks %q", err, w)
		}
	}
	_, err = replay.PlanCopy(ctxT(t), adm, replay.CopyConfig{Brokers: c.ListenAddrs(), From: "src", Into: "src", Partitions: []int32{5}})
	if err == nil || !strings.Contains(err.Error(), "topic src has no partition 5 (it has 2)") {
		t.Errorf("error %v", err)
	}
	_, err = replay.Copy(ctxT(t), replay.CopyConfig{From: "a b", Into: "", Start: replay.AtOffset(5), End: replay.AtOffset(5), Rate: -1, Limit: -1})
	for _, w := range []string{"no brokers", `source topic: topic "a b"`, "target topic: empty topic name", "end offset 5 is not after start offset 5", "rate -1", "limit -1"} {
		if err == nil || !strings.Contains(err.Error(), w) {
			t.Errorf("error %v lacks %q", err, w)
		}
	}
}

// An interrupted copy says what it copied: per partition, a prefix of the
// range up to LastOffset, exactly what the target holds; so a copy can be
// resumed after LastOffset without a gap or a duplicate.
func TestCopyInterrupted(t *testing.T) {
	c := newCluster(t, 2, "src", "dst")
	seedPartitions(t, c, "src", 30, 30)
	ctx, cancel := context.WithCancel(ctxT(t))
	time.AfterFunc(700*time.Millisecond, cancel)
	res, err := replay.Copy(ctx, replay.CopyConfig{Brokers: c.ListenAddrs(), From: "src", Into: "dst", Rate: 30})
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("err %v, want context.Canceled", err)
	}
	if res == nil || res.Copied == 0 || res.Copied >= 60 {
		t.Fatalf("result %+v, want part of the 60 copied", res)
	}
	got := map[int32][]int64{}
	for _, r := range readAll(t, c, "dst") {
		var p int32
		var o int64
		if _, err := fmt.Sscanf(string(r.Headers[len(r.Headers)-2].Value), "src/%d/%d", &p, &o); err != nil {
			t.Fatal(err)
		}
		got[p] = append(got[p], o)
	}
	var n int64
	for _, pc := range res.Partitions {
		want := seq(0, pc.LastOffset+1)
		if s := sorted(got[pc.Partition]); !reflect.DeepEqual(s, want) || pc.Copied != int64(len(want)) {
			t.Errorf("src/%d: the target holds %v; the result says %d copied up to %d", pc.Partition, s, pc.Copied, pc.LastOffset)
		}
		n += int64(len(got[pc.Partition]))
	}
	if n != res.Copied {
		t.Errorf("the target holds %d, the result says %d", n, res.Copied)
	}
	t.Logf("interrupted after %d of 60", res.Copied)
}
