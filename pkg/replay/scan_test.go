package replay_test

import (
	"context"
	"errors"
	"fmt"
	"reflect"
	"strings"
	"sync"
	"testing"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/ordokafka/ordo/pkg/replay"
)

// scanAll runs Scan and returns the offsets handed to fn per topic/partition,
// in the order fn saw them.
func scanAll(t *testing.T, brokers []string, ranges ...replay.ScanRange) (map[string][]int64, []replay.ScannedRange) {
	t.Helper()
	var mu sync.Mutex
	got := map[string][]int64{}
	res, err := replay.Scan(ctxT(t), replay.ScanConfig{Brokers: brokers, Ranges: ranges}, func(r *kgo.Record) error {
		mu.Lock()
		defer mu.Unlock()
		if r.Attrs.IsControl() {
			t.Errorf("a transaction marker was handed to fn: %s/%d/%d", r.Topic, r.Partition, r.Offset)
		}
		k := fmt.Sprintf("%s/%d", r.Topic, r.Partition)
		got[k] = append(got[k], r.Offset)
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return got, res
}

// Each range is read exactly, in offset order: from its first offset up
// to, not including, its end; an end past the log end stops there with a
// warning; an empty range reads nothing; ranges of two topics at once.
func TestScanRangesEndExactly(t *testing.T) {
	c := newCluster(t, 3, "src", "other")
	seedPartitions(t, c, "src", 20, 20, 20)
	seedPartitions(t, c, "other", 4)
	got, res := scanAll(t, c.ListenAddrs(),
		replay.ScanRange{Topic: "src", Partition: 2, From: 19, To: 25},
		replay.ScanRange{Topic: "src", Partition: 0, From: 5, To: 12},
		replay.ScanRange{Topic: "src", Partition: 1, From: 0, To: 20},
		replay.ScanRange{Topic: "other", Partition: 0, From: 3, To: 3},
		replay.ScanRange{Topic: "other", Partition: 1, From: 0, To: 1},
	)
	want := map[string][]int64{"src/0": seq(5, 12), "src/1": seq(0, 20), "src/2": {19}}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("read %v, want %v", got, want)
	}
	type row struct {
		tp          string
		from, to, n int64
		start, end  int64
		warning     string
	}
	var rows []row
	for _, r := range res {
		rows = append(rows, row{fmt.Sprintf("%s/%d", r.Topic, r.Partition), r.From, r.To, r.Records, r.LogStart, r.LogEnd, r.Warning})
	}
	wantRows := []row{
		{"other/0", 3, 3, 0, 0, 4, ""},
		{"other/1", 0, 0, 0, 0, 0, "other/1: the end 1 is past the log end 0; stopping at 0"},
		{"src/0", 5, 12, 7, 0, 20, ""},
		{"src/1", 0, 20, 20, 0, 20, ""},
		{"src/2", 19, 20, 1, 0, 20, "src/2: the end 25 is past the log end 20; stopping at 20"},
	}
	if !reflect.DeepEqual(rows, wantRows) {
		t.Errorf("ranges\n%v\nwant\n%v", rows, wantRows)
	}
}

// Transactions: the records of committed, aborted and open transactions
// are all read (Ordo's consumers read uncommitted records and apply them
// all), the markers are not, and a range whose last offset is a marker
// ends there instead of waiting for a record past it.
func TestScanTransactions(t *testing.T) {
	c := newCluster(t, 1, "src")
	tx, err := kgo.NewClient(kgo.SeedBrokers(c.ListenAddrs()...), kgo.TransactionalID("tx"), kgo.DefaultProduceTopic("src"))
	if err != nil {
		t.Fatal(err)
	}
	defer tx.Close()
	produce := func(n int, end *kgo.TransactionEndTry) {
		if err := tx.BeginTransaction(); err != nil {
			t.Fatal(err)
		}
		for i := range n {
			if err := tx.ProduceSync(ctxT(t), kgo.StringRecord(fmt.Sprint(i))).FirstErr(); err != nil {
				t.Fatal(err)
			}
		}
		if end != nil {
			if err := tx.EndTransaction(ctxT(t), *end); err != nil {
				t.Fatal(err)
			}
		}
	}
	commit, abort := kgo.TryCommit, kgo.TryAbort
	produce(3, &commit) // 0-2, marker 3
	produce(3, &abort)  // 4-6, marker 7
	produce(3, &commit) // 8-10, marker 11
	produce(2, nil)     // 12-13, open
	for _, tc := range []struct {
		from, to int64
		want     []int64
	}{
		{0, 4, []int64{0, 1, 2}},                              // ends on a commit marker
		{4, 8, []int64{4, 5, 6}},                              // an aborted transaction and its marker
		{2, 12, []int64{2, 4, 5, 6, 8, 9, 10}},                // across markers, ending on one
		{0, 100, []int64{0, 1, 2, 4, 5, 6, 8, 9, 10, 12, 13}}, // to the high watermark, the open transaction included
		{3, 4, nil}, // a marker alone
	} {
		got, res := scanAll(t, c.ListenAddrs(), replay.ScanRange{Topic: "src", Partition: 0, From: tc.from, To: tc.to})
		if !reflect.DeepEqual(got["src/0"], tc.want) || res[0].Records != int64(len(tc.want)) {
			t.Errorf("[%d, %d): read %v (%d), want %v", tc.from, tc.to, got["src/0"], res[0].Records, tc.want)
		}
	}
}

// A range partly deleted (DeleteRecords) starts at the log start with a
// warning; one wholly deleted reads nothing and says so.
func TestScanDeletedRanges(t *testing.T) {
	c := newCluster(t, 2, "src")
	seedPartitions(t, c, "src", 12, 12)
	_, adm := newAdmin(t, c)
	del := kadm.Offsets{}
	del.Add(kadm.Offset{Topic: "src", Partition: 0, At: 5})
	del.Add(kadm.Offset{Topic: "src", Partition: 1, At: 11})
	if _, err := adm.DeleteRecords(ctxT(t), del); err != nil {
		t.Fatal(err)
	}
	got, res := scanAll(t, c.ListenAddrs(),
		replay.ScanRange{Topic: "src", Partition: 0, From: 2, To: 9},
		replay.ScanRange{Topic: "src", Partition: 1, From: 2, To: 9})
	if !reflect.DeepEqual(got["src/0"], seq(5, 9)) || len(got["src/1"]) != 0 {
		t.Errorf("read %v", got)
	}
	want := []string{
		"src/0: records [2, 5) were deleted (the log starts at 5); reading from 5",
		"src/1: records [2, 9) were deleted (the log starts at 11); nothing to read",
	}
	for i, r := range res {
		if r.Warning != want[i] || r.Asked.From != 2 || r.Asked.To != 9 {
			t.Errorf("range %d: %+v, want warning %q", i, r, want[i])
		}
	}
}

// Bad ranges are reported at once, before anything is read; fn's error
// stops the scan and is returned as it is, with the counts so far.
func TestScanErrors(t *testing.T) {
	c := newCluster(t, 2, "src")
	seedPartitions(t, c, "src", 10, 10)
	_, err := replay.Scan(ctxT(t), replay.ScanConfig{Ranges: []replay.ScanRange{
		{Topic: "a b", To: 1}, {Topic: "src", Partition: -1}, {Topic: "src", From: -2}, {Topic: "x", To: 1}, {Topic: "x", To: 2},
	}}, nil)
	for _, w := range []string{"no brokers", `topic "a b"`, "src/-1: the partition is negative", "src/0: offset -2 is negative", "x/0: more than one range"} {
		if err == nil || !strings.Contains(err.Error(), w) {
			t.Errorf("error %v lacks %q", err, w)
		}
	}
	_, err = replay.Scan(ctxT(t), replay.ScanConfig{Brokers: c.ListenAddrs(), Ranges: []replay.ScanRange{
		{Topic: "nope", To: 1}, {Topic: "src", Partition: 7, To: 1},
	}}, nil)
	for _, w := range []string{"topic nope does not exist", "topic src has no partition 7 (it has 2)"} {
		if err == nil || !strings.Contains(err.Error(), w) {
			t.Errorf("error %v lacks %q", err, w)
		}
	}
	boom := errors.New("boom")
	n := 0
	res, err := replay.Scan(ctxT(t), replay.ScanConfig{Brokers: c.ListenAddrs(), Ranges: []replay.ScanRange{{Topic: "src", Partition: 1, From: 0, To: 10}}},
		func(r *kgo.Record) error {
			if n++; r.Offset == 4 {
				return boom
			}
			return nil
		})
	if !errors.Is(err, boom) || n != 5 || res[0].Records != 4 {
		t.Errorf("fn failing at offset 4: %v after %d calls, %d counted; want boom after 5, 4 counted", err, n, res[0].Records)
	}
	ctx, cancel := context.WithCancel(ctxT(t))
	cancel()
	if _, err := replay.Scan(ctx, replay.ScanConfig{Brokers: c.ListenAddrs(), Ranges: []replay.ScanRange{{Topic: "src", To: 10}}},
		func(*kgo.Record) error { return nil }); !errors.Is(err, context.Canceled) {
		t.Errorf("canceled: %v", err)
	}
}
