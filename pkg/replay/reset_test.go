package replay_test

import (
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/ordokafka/ordo/pkg/replay"
)

// resetFixture: topic t with 3 partitions of 10, 20 and 30 records
// (offset o stamped base+o s), records 0..3 of t/2 deleted, and group g
// committed at t/0=3 (with an offset map as metadata) and t/1=15; t/2 has
// no commit.
func resetFixture(t *testing.T) (*kadm.Client, func(...replay.Selection) replay.ResetRequest) {
	t.Helper()
	c := newCluster(t, 3, "t")
	_, adm := newAdmin(t, c)
	seedPartitions(t, c, "t", 10, 20, 30)
	del := kadm.Offsets{}
	del.Add(kadm.Offset{Topic: "t", Partition: 2, At: 4})
	if _, err := adm.DeleteRecords(ctxT(t), del); err != nil {
		t.Fatal(err)
	}
	commit(t, adm, "g",
		kadm.Offset{Topic: "t", Partition: 0, At: 3, Metadata: "ordo2:3:AQIB"},
		kadm.Offset{Topic: "t", Partition: 1, At: 15})
	req := func(sel ...replay.Selection) replay.ResetRequest {
		if sel == nil {
			sel = []replay.Selection{{Topic: "t"}}
		}
		return replay.ResetRequest{Group: "g", Topics: sel}
	}
	return adm, req
}

// Each verb's plan equals what kadm's listings give on kfake (and what
// the seeded timestamps predict), clamped to the log's bounds, with the
// group's committed offsets and the lag after the reset.
func TestPlanVerbsMatchKadm(t *testing.T) {
	adm, req := resetFixture(t)
	ctx := ctxT(t)
	starts, err := adm.ListStartOffsets(ctx, "t")
	if err != nil {
		t.Fatal(err)
	}
	ends, err := adm.ListEndOffsets(ctx, "t")
	if err != nil {
		t.Fatal(err)
	}
	afterMilli := func(at time.Time) map[int32]int64 {
		l, err := adm.ListOffsetsAfterMilli(ctx, at.UnixMilli(), "t")
		if err != nil {
			t.Fatal(err)
		}
		out := map[int32]int64{}
		l.Each(func(o kadm.ListedOffset) { out[o.Partition] = o.Offset })
		return out
	}
	listed := func(l kadm.ListedOffsets) map[int32]int64 {
		out := map[int32]int64{}
		l.Each(func(o kadm.ListedOffset) { out[o.Partition] = o.Offset })
		return out
	}
	clamp := func(m map[int32]int64) map[int32]int64 {
		out := map[int32]int64{}
		for p, o := range m {
			s, _ := starts.Lookup("t", p)
			e, _ := ends.Lookup("t", p)
			out[p] = min(max(o, s.Offset), e.Offset)
		}
		return out
	}
	all := func(o int64) map[int32]int64 { return map[int32]int64{0: o, 1: o, 2: o} }
	now := base.Add(10 * time.Second)

	cases := []struct {
		name   string
		target replay.Target
		sel    []replay.Selection
		kadm   map[int32]int64 // from kadm's listings, clamped
		seeded map[int32]int64 // what the seeded data predicts
		warn   []int32         // partitions whose offset was clamped
	}{
		{"to-earliest", replay.Target{Verb: replay.ToEarliest}, nil, listed(starts), map[int32]int64{0: 0, 1: 0, 2: 4}, nil},
		{"to-latest", replay.Target{Verb: replay.ToLatest}, nil, listed(ends), map[int32]int64{0: 10, 1: 20, 2: 30}, nil},
		{"to-time on a record", replay.Target{Verb: replay.ToTime, Time: base.Add(5 * time.Second)}, nil, afterMilli(base.Add(5 * time.Second)), all(5), nil},
		{"to-time between records", replay.Target{Verb: replay.ToTime, Time: base.Add(5500 * time.Millisecond)}, nil, afterMilli(base.Add(5500 * time.Millisecond)), all(6), nil},
		{"to-time into deleted records", replay.Target{Verb: replay.ToTime, Time: base.Add(time.Second)}, nil, afterMilli(base.Add(time.Second)), map[int32]int64{0: 1, 1: 1, 2: 4}, nil},
		{"to-time before every record", replay.Target{Verb: replay.ToTime, Time: base.Add(-time.Hour)}, nil, afterMilli(base.Add(-time.Hour)), map[int32]int64{0: 0, 1: 0, 2: 4}, nil},
		{"to-time after every record", replay.Target{Verb: replay.ToTime, Time: base.Add(time.Hour)}, nil, afterMilli(base.Add(time.Hour)), map[int32]int64{0: 10, 1: 20, 2: 30}, nil},
		{"by-duration", replay.Target{Verb: replay.ByDuration, Duration: 2 * time.Second}, nil, afterMilli(now.Add(-2 * time.Second)), all(8), nil},
		{"by-duration not positive", replay.Target{Verb: replay.ByDuration, Duration: -5 * time.Second}, nil, nil, nil, nil}, // refused: not positive
		{"to-offset", replay.Target{Verb: replay.ToOffset, Offset: 12}, nil, clamp(all(12)), map[int32]int64{0: 10, 1: 12, 2: 12}, []int32{0}},
		{"to-offset into deleted records", replay.Target{Verb: replay.ToOffset, Offset: 2}, nil, clamp(all(2)), map[int32]int64{0: 2, 1: 2, 2: 4}, []int32{2}},
		{"shift-by back", replay.Target{Verb: replay.ShiftBy, Shift: -5}, []replay.Selection{{Topic: "t", Partitions: []int32{0, 1}}},
			clamp(map[int32]int64{0: 3 - 5, 1: 15 - 5}), map[int32]int64{0: 0, 1: 10}, []int32{0}},
		{"shift-by forward", replay.Target{Verb: replay.ShiftBy, Shift: 4}, []replay.Selection{{Topic: "t", Partitions: []int32{0, 1}}},
			clamp(map[int32]int64{0: 3 + 4, 1: 15 + 4}), map[int32]int64{0: 7, 1: 19}, nil},
		{"from-file", replay.Target{Verb: replay.FromPlan, Plan: []replay.PlanRow{{Topic: "t", Partition: 0, Offset: 2}, {Topic: "t", Partition: 2, Offset: 25}}}, []replay.Selection{},
			clamp(map[int32]int64{0: 2, 2: 25}), map[int32]int64{0: 2, 2: 25}, nil},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			r := req(tc.sel...)
			r.Target, r.Now = tc.target, now
			plan, err := replay.PlanReset(ctx, adm, r)
			if tc.kadm == nil {
				if err == nil || !strings.Contains(err.Error(), "not positive") {
					t.Fatalf("err %v, want a refusal of the duration", err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if len(plan.Partitions) != len(tc.kadm) {
				t.Fatalf("planned %d partitions, want %d: %+v", len(plan.Partitions), len(tc.kadm), plan.Partitions)
			}
			current := map[int32]int64{0: 3, 1: 15, 2: -1}
			for _, pr := range plan.Partitions {
				p := pr.Partition
				if pr.New != tc.kadm[p] || pr.New != tc.seeded[p] {
					t.Errorf("t/%d: new offset %d; kadm says %d, the seeded data %d", p, pr.New, tc.kadm[p], tc.seeded[p])
				}
				s, _ := starts.Lookup("t", p)
				e, _ := ends.Lookup("t", p)
				if pr.LogStart != s.Offset || pr.LogEnd != e.Offset {
					t.Errorf("t/%d: log [%d, %d), kadm [%d, %d)", p, pr.LogStart, pr.LogEnd, s.Offset, e.Offset)
				}
				if pr.Current != current[p] {
					t.Errorf("t/%d: current %d, want %d", p, pr.Current, current[p])
				}
				if pr.Lag() != e.Offset-pr.New {
					t.Errorf("t/%d: lag %d, want %d", p, pr.Lag(), e.Offset-pr.New)
				}
				wantWarn := false
				for _, w := range tc.warn {
					wantWarn = wantWarn || w == p
				}
				if (pr.Warning != "") != wantWarn {
					t.Errorf("t/%d: warning %q, want one: %v", p, pr.Warning, wantWarn)
				}
			}
		})
	}
}

// Clamping warns once per partition, naming it, the asked offset, the
// bound and what is used instead.
func TestPlanClampWarns(t *testing.T) {
	adm, req := resetFixture(t)
	r := req()
	r.Target = replay.Target{Verb: replay.ToOffset, Offset: 25}
	plan, err := replay.PlanReset(ctxT(t), adm, r)
	if err != nil {
		t.Fatal(err)
	}
	w := plan.Warnings()
	want := []string{
		"t/0: offset 25 is past the log end 10; using 10",
		"t/1: offset 25 is past the log end 20; using 20",
	}
	if strings.Join(w, "\n") != strings.Join(want, "\n") {
		t.Errorf("warnings\n%s\nwant\n%s", strings.Join(w, "\n"), strings.Join(want, "\n"))
	}
	r.Target = replay.Target{Verb: replay.ToOffset, Offset: 1}
	r.Topics = []replay.Selection{{Topic: "t", Partitions: []int32{2}}}
	plan, err = replay.PlanReset(ctxT(t), adm, r)
	if err != nil {
		t.Fatal(err)
	}
	if w := plan.Warnings(); len(w) != 1 || w[0] != "t/2: offset 1 is before the log start 4 (records deleted or expired); using 4" {
		t.Errorf("warnings %q", w)
	}
}

// Every problem of a request is reported at once: missing topics and
// partitions, partitions with nothing to shift from, plan rows of another
// group or outside the selection.
func TestPlanErrorsAllAtOnce(t *testing.T) {
	adm, req := resetFixture(t)
	r := req(replay.Selection{Topic: "nope"}, replay.Selection{Topic: "t", Partitions: []int32{0, 7}})
	r.Target = replay.Target{Verb: replay.ToEarliest}
	_, err := replay.PlanReset(ctxT(t), adm, r)
	for _, w := range []string{"topic nope does not exist", "topic t has no partition 7 (it has 3)"} {
		if err == nil || !strings.Contains(err.Error(), w) {
			t.Errorf("error %v lacks %q", err, w)
		}
	}
	r = req()
	r.Target = replay.Target{Verb: replay.ShiftBy, Shift: -1}
	_, err = replay.PlanReset(ctxT(t), adm, r)
	if err == nil || !strings.Contains(err.Error(), `t/2: group "g" has no committed offset to shift from`) {
		t.Errorf("shift without a commit: %v", err)
	}
	r = req(replay.Selection{Topic: "t", Partitions: []int32{0}})
	r.Target = replay.Target{Verb: replay.FromPlan, Plan: []replay.PlanRow{{Group: "other", Topic: "t", Partition: 0, Offset: 1}, {Topic: "t", Partition: 1, Offset: 1}}}
	_, err = replay.PlanReset(ctxT(t), adm, r)
	for _, w := range []string{`a row of group "other"`, "the plan names t/1, which the selected topics do not include"} {
		if err == nil || !strings.Contains(err.Error(), w) {
			t.Errorf("error %v lacks %q", err, w)
		}
	}
}

// Executing a plan commits every planned partition with empty metadata,
// the one whose offset does not change included (its offset map goes);
// partitions outside the plan keep their commit and metadata.
func TestExecuteResetClearsMetadata(t *testing.T) {
	adm, req := resetFixture(t)
	ctx := ctxT(t)
	commit(t, adm, "g", kadm.Offset{Topic: "t", Partition: 1, At: 15, Metadata: "ordo2:15:AQIB"})
	r := req(replay.Selection{Topic: "t", Partitions: []int32{0, 2}})
	r.Target = replay.Target{Verb: replay.ToOffset, Offset: 3} // t/0 stays at 3, t/2 (no commit, starts at 4) goes to 4
	plan, err := replay.PlanReset(ctx, adm, r)
	if err != nil {
		t.Fatal(err)
	}
	if plan.Partitions[0].CurrentMetadata != "ordo2:3:AQIB" {
		t.Fatalf("the fixture's offset map is not in the plan: %+v", plan.Partitions[0])
	}
	if err := replay.ExecuteReset(ctx, adm, plan); err != nil {
		t.Fatal(err)
	}
	got, err := adm.FetchOffsets(ctx, "g")
	if err != nil {
		t.Fatal(err)
	}
	for _, w := range []struct {
		p      int32
		at     int64
		meta   string
		reason string
	}{{0, 3, "", "planned, offset unchanged"}, {1, 15, "ordo2:15:AQIB", "not planned"}, {2, 4, "", "planned, clamped to the log start"}} {
		o, ok := got.Lookup("t", w.p)
		if !ok || o.At != w.at || o.Metadata != w.meta {
			t.Errorf("t/%d (%s): committed %d %q, want %d %q", w.p, w.reason, o.At, o.Metadata, w.at, w.meta)
		}
	}
}

// A reset refuses while the group has a member, naming it (member id,
// client id, host), and commits nothing; once the member left, it commits.
func TestExecuteRefusesActiveGroup(t *testing.T) {
	c := newCluster(t, 2, "t")
	_, adm := newAdmin(t, c)
	seedPartitions(t, c, "t", 5, 5)
	commit(t, adm, "g", kadm.Offset{Topic: "t", Partition: 0, At: 5}, kadm.Offset{Topic: "t", Partition: 1, At: 5})
	member, err := kgo.NewClient(kgo.SeedBrokers(c.ListenAddrs()...), kgo.ConsumerGroup("g"), kgo.ConsumeTopics("t"),
		kgo.ClientID("replay-test-member"), kgo.SessionTimeout(time.Second), kgo.HeartbeatInterval(100*time.Millisecond))
	if err != nil {
		t.Fatal(err)
	}
	pollDone := make(chan struct{})
	go func() {
		defer close(pollDone)
		for {
			if fs := member.PollFetches(ctxT(t)); fs.IsClientClosed() {
				return
			}
		}
	}()
	var memberID string
	waitFor(t, 10*time.Second, "the member to join", func() bool {
		memberID, _ = member.GroupMetadata()
		d, err := adm.DescribeGroups(ctxT(t), "g")
		return err == nil && memberID != "" && d["g"].State == "Stable"
	})
	plan, err := replay.PlanReset(ctxT(t), adm, replay.ResetRequest{Group: "g", Topics: []replay.Selection{{Topic: "t"}}, Target: replay.Target{Verb: replay.ToEarliest}})
	if err != nil {
		t.Fatal(err)
	}
	err = replay.ExecuteReset(ctxT(t), adm, plan)
	var ae *replay.ActiveGroupError
	if !errors.As(err, &ae) {
		t.Fatalf("err %v, want an *ActiveGroupError", err)
	}
	if len(ae.Members) != 1 || ae.Members[0].ID != memberID || ae.Members[0].ClientID != "replay-test-member" || ae.State != "Stable" {
		t.Errorf("refusal %+v, want member %s of client replay-test-member", ae, memberID)
	}
	for _, w := range []string{`group "g" has 1 active member (state Stable)`, memberID, "client replay-test-member", "127.0.0.1"} {
		if !strings.Contains(err.Error(), w) {
			t.Errorf("error %q lacks %q", err, w)
		}
	}
	got, err := adm.FetchOffsets(ctxT(t), "g")
	if err != nil {
		t.Fatal(err)
	}
	if o, _ := got.Lookup("t", 0); o.At != 5 {
		t.Errorf("the refused reset committed t/0 at %d", o.At)
	}

	member.Close()
	<-pollDone
	waitFor(t, 10*time.Second, "the group to empty", func() bool {
		d, err := adm.DescribeGroups(ctxT(t), "g")
		return err == nil && d["g"].State == "Empty"
	})
	if err := replay.ExecuteReset(ctxT(t), adm, plan); err != nil {
		t.Fatalf("reset of the empty group: %v", err)
	}
	got, _ = adm.FetchOffsets(ctxT(t), "g")
	if o, _ := got.Lookup("t", 0); o.At != 0 {
		t.Errorf("t/0 committed at %d after the reset, want 0", o.At)
	}
}

// After DeleteRecords, --to-earliest lands at the new log start (kadm's
// ListStartOffsets), and a group consumer resumes there: the first record
// it reads is the first that survived.
func TestResetToEarliestAfterDeleteRecords(t *testing.T) {
	c := newCluster(t, 1, "t")
	_, adm := newAdmin(t, c)
	seedPartitions(t, c, "t", 10)
	commit(t, adm, "g", kadm.Offset{Topic: "t", Partition: 0, At: 2, Metadata: "ordo2:2:AQIB"})
	del := kadm.Offsets{}
	del.Add(kadm.Offset{Topic: "t", Partition: 0, At: 6})
	if _, err := adm.DeleteRecords(ctxT(t), del); err != nil {
		t.Fatal(err)
	}
	starts, err := adm.ListStartOffsets(ctxT(t), "t")
	if err != nil {
		t.Fatal(err)
	}
	if s, _ := starts.Lookup("t", 0); s.Offset != 6 {
		t.Fatalf("log start %d after DeleteRecords, want 6", s.Offset)
	}
	plan, err := replay.PlanReset(ctxT(t), adm, replay.ResetRequest{Group: "g", Topics: []replay.Selection{{Topic: "t"}}, Target: replay.Target{Verb: replay.ToEarliest}})
	if err != nil {
		t.Fatal(err)
	}
	if pr := plan.Partitions[0]; pr.New != 6 || pr.Current != 2 || pr.Warning != "" || pr.Lag() != 4 {
		t.Fatalf("plan %+v, want 2 -> 6 (lag 4) without a warning", pr)
	}
	if err := replay.ExecuteReset(ctxT(t), adm, plan); err != nil {
		t.Fatal(err)
	}
	cons, err := kgo.NewClient(kgo.SeedBrokers(c.ListenAddrs()...), kgo.ConsumerGroup("g"), kgo.ConsumeTopics("t"),
		kgo.DisableAutoCommit(), kgo.SessionTimeout(time.Second), kgo.HeartbeatInterval(100*time.Millisecond), kgo.ConsumeResetOffset(kgo.NewOffset().AtEnd()))
	if err != nil {
		t.Fatal(err)
	}
	defer cons.Close()
	fs := cons.PollRecords(ctxT(t), 1)
	if err := fs.Err0(); err != nil {
		t.Fatal(err)
	}
	if recs := fs.Records(); len(recs) != 1 || recs[0].Offset != 6 || string(recs[0].Value) != "t/0/6" {
		t.Errorf("first record after the reset: %v, want offset 6", recs)
	}
}

// A KIP-848 group (kgo.ServerSideBalancer), which DescribeGroups shows as
// Stable with no members, is refused too, its member named (from
// DescribeConsumerGroups).
func TestExecuteRefusesActiveKIP848Group(t *testing.T) {
	c := newCluster(t, 2, "t")
	_, adm := newAdmin(t, c)
	seedPartitions(t, c, "t", 5, 5)
	member, err := kgo.NewClient(kgo.SeedBrokers(c.ListenAddrs()...), kgo.ConsumerGroup("g"), kgo.ConsumeTopics("t"),
		kgo.ServerSideBalancer(), kgo.ClientID("next-gen-member"))
	if err != nil {
		t.Fatal(err)
	}
	pollDone := make(chan struct{})
	go func() {
		defer close(pollDone)
		for !member.PollFetches(ctxT(t)).IsClientClosed() {
		}
	}()
	defer func() { member.Close(); <-pollDone }()
	waitFor(t, 10*time.Second, "the member to join", func() bool {
		d, err := adm.DescribeConsumerGroups(ctxT(t), "g")
		return err == nil && len(d["g"].Members) == 1
	})
	plan, err := replay.PlanReset(ctxT(t), adm, replay.ResetRequest{Group: "g", Topics: []replay.Selection{{Topic: "t"}}, Target: replay.Target{Verb: replay.ToEarliest}})
	if err != nil {
		t.Fatal(err)
	}
	err = replay.ExecuteReset(ctxT(t), adm, plan)
	var ae *replay.ActiveGroupError
	if !errors.As(err, &ae) || len(ae.Members) != 1 || ae.Members[0].ClientID != "next-gen-member" {
		t.Fatalf("err %v, want an *ActiveGroupError naming next-gen-member", err)
	}
}
