package cli

import (
	"bytes"
	"context"
	"io"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/ordokafka/ordo/pkg/devbroker"
)

// replayBroker starts an embedded broker with topic orders (3 partitions,
// 10 records each, offset o stamped replayBase + o s) and an empty
// orders.replay (3 partitions).
func replayBroker(t *testing.T) (*devbroker.Broker, *kadm.Client) {
	t.Helper()
	b, err := devbroker.Start(devbroker.Options{Addr: "127.0.0.1:0", Extra: []kfake.Opt{kfake.SeedTopics(3, "orders", "orders.replay")}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(b.Close)
	cl, err := kgo.NewClient(kgo.SeedBrokers(b.Addr()), kgo.RecordPartitioner(kgo.ManualPartitioner()))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(cl.Close)
	var recs []*kgo.Record
	for p := range int32(3) {
		for o := range 10 {
			recs = append(recs, &kgo.Record{Topic: "orders", Partition: p, Key: []byte{'c', byte('0' + o%4)},
				Value: []byte{'v', byte('0' + p), byte('0' + o)}, Timestamp: replayBase.Add(time.Duration(o) * time.Second)})
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := cl.ProduceSync(ctx, recs...).FirstErr(); err != nil {
		t.Fatal(err)
	}
	return b, kadm.NewClient(cl)
}

var replayBase = time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)

func run(args ...string) (code int, stdout, stderr string) {
	var out, errb bytes.Buffer
	code = Main(context.Background(), args, &out, &errb)
	return code, out.String(), errb.String()
}

func committed(t *testing.T, adm *kadm.Client, group string) map[int32]kadm.OffsetResponse {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	offs, err := adm.FetchOffsets(ctx, group)
	if err != nil {
		t.Fatal(err)
	}
	out := map[int32]kadm.OffsetResponse{}
	offs.Each(func(o kadm.OffsetResponse) { out[o.Partition] = o })
	return out
}

func commitAt(t *testing.T, adm *kadm.Client, group string, at map[int32]int64, meta string) {
	t.Helper()
	offs := kadm.Offsets{}
	for p, o := range at {
		offs.Add(kadm.Offset{Topic: "orders", Partition: p, At: o, LeaderEpoch: -1, Metadata: meta})
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	resps, err := adm.CommitOffsets(ctx, group, offs)
	if err == nil {
		err = resps.Error()
	}
	if err != nil {
		t.Fatal(err)
	}
}

// Every bad flag of replay reset and replay copy is reported at once,
// named as its flag, with exit 2, before anything connects: the broker
// address is a listener the test holds, and nothing may dial it.
func TestReplayFlagsAllAtOnceBeforeConnecting(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	addr := ln.Addr().String()
	cases := []struct {
		name string
		args []string
		want []string
	}{
		{"reset: no verb, no group, no topic", []string{"replay", "reset", "--brokers", addr},
			[]string{"--group is required", "one of --to-offset, --to-time, --by-duration, --shift-by, --to-earliest, --to-latest or --from-file is required", "--topic is required"}},
		{"reset: every value bad", []string{"replay", "reset", "--brokers", addr + ",", "--group", "g", "--topic", "orders:x", "--topic", "a/b",
			"--to-offset", "-3", "--to-time", "noon", "--by-duration", "0s", "--shift-by", "1.5", "--to-earliest", "--to-latest",
			"--from-file", "/does/not/exist.csv", "--export", "/does/not/plan.csv", "--timeout", "0s", "--connect-timeout", "-1s"},
			[]string{"--brokers: entry 2 is empty", `--topic "orders:x": topic orders: "x" is not a partition number`, `--topic "a/b"`,
				`--to-offset "-3": want an offset >= 0`, `--to-time "noon" is not an RFC 3339 time`, `--by-duration "0s": want a duration > 0`,
				`--shift-by "1.5"`, "--from-file /does/not/exist.csv: open", "--export /does/not/plan.csv: the directory /does/not does not exist",
				"--to-offset, --to-time, --by-duration, --shift-by, --to-earliest, --to-latest, --from-file are exclusive",
				"--timeout must be > 0", "--connect-timeout must be > 0"}},
		{"copy: every value bad", []string{"replay", "copy", "--brokers", addr, "--into", "bad topic", "--partitions", "1,,2",
			"--from-offset", "9", "--to-offset", "4", "--from-time", "2026-03-01", "--to-time", "2026-03-01T11:00:00Z", "--rate", "0/s",
			"--limit", "-2", "--id", "a b", "--progress", "sometimes", "--connect-timeout", "0s"},
			[]string{"--from is required", `--into topic "bad topic"`, `--partitions "1,,2": an empty partition`,
				"--from-offset and --from-time are exclusive", "--to-offset 4 must be after --from-offset 9",
				`--from-time "2026-03-01" is not an RFC 3339 time`, `--rate "0/s": want a positive number`, "--limit must be >= 0",
				`--id "a b"`, `--progress "sometimes"`, "--connect-timeout must be > 0"}},
		{"copy: times out of order", []string{"replay", "copy", "--brokers", addr, "--from", "a", "--into", "b",
			"--from-time", "2026-03-01T12:00:00Z", "--to-time", "2026-03-01T11:00:00Z"},
			[]string{"--to-time 2026-03-01T11:00:00Z must be after --from-time 2026-03-01T12:00:00Z"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			code, out, errb := run(tc.args...)
			if code != 2 {
				t.Fatalf("exit %d, want 2; stderr %q", code, errb)
			}
			for _, w := range tc.want {
				if !strings.Contains(errb, w) {
					t.Errorf("stderr lacks %q:\n%s", w, errb)
				}
			}
			if out != "" {
				t.Errorf("printed before failing: %q", out)
			}
		})
	}
	_ = ln.(*net.TCPListener).SetDeadline(time.Now().Add(50 * time.Millisecond))
	if c, err := ln.Accept(); err == nil {
		c.Close()
		t.Error("something connected to --brokers")
	}
}

// An unreachable broker fails within --connect-timeout, naming it and
// what to check.
func TestReplayUnreachableBrokerIsNamed(t *testing.T) {
	silent := newSilentBroker(t).ln.Addr().String()
	refused := refusedAddr(t)
	for name, args := range map[string][]string{
		"reset refused": {"replay", "reset", "--brokers", refused, "--group", "g", "--topic", "orders", "--to-earliest", "--connect-timeout", "1s"},
		"reset silent":  {"replay", "reset", "--brokers", silent, "--group", "g", "--topic", "orders", "--to-earliest", "--connect-timeout", "1s"},
		"copy refused":  {"replay", "copy", "--brokers", refused, "--from", "orders", "--into", "x", "--connect-timeout", "1s"},
		"copy silent":   {"replay", "copy", "--brokers", silent, "--from", "orders", "--into", "x", "--connect-timeout", "1s"},
	} {
		t.Run(name, func(t *testing.T) {
			start := time.Now()
			code, _, errb := run(args...)
			if code != 1 {
				t.Fatalf("exit %d, want 1; stderr %q", code, errb)
			}
			if took := time.Since(start); took > 5*time.Second {
				t.Errorf("took %s, want about --connect-timeout (1s)", took)
			}
			addr := args[3]
			for _, w := range []string{"no broker of " + addr + " answered within 1s (--connect-timeout)", "check that"} {
				if !strings.Contains(errb, w) {
					t.Errorf("stderr lacks %q: %s", w, errb)
				}
			}
		})
	}
}

// A dry run prints the plan (committed, new, lag) and commits nothing;
// --export writes the Kafka tool's CSV; --execute commits it with empty
// metadata; --from-file reads the exported plan back.
func TestReplayResetDryRunExportExecuteFromFile(t *testing.T) {
	b, adm := replayBroker(t)
	commitAt(t, adm, "g", map[int32]int64{0: 10, 1: 10}, "ordo2:10:AQIB")
	plan := filepath.Join(t.TempDir(), "plan.csv")
	code, out, errb := run("replay", "reset", "--brokers", b.Addr(), "--group", "g", "--topic", "orders",
		"--to-time", replayBase.Add(4*time.Second).Format(time.RFC3339), "--export", plan)
	if code != 0 {
		t.Fatalf("exit %d: %s", code, errb)
	}
	for _, w := range []string{
		"ordo replay reset: group g, --to-time 2026-03-01T12:00:04Z: dry run, nothing committed (add --execute to commit)",
		"TOPIC   PARTITION  CURRENT-OFFSET  NEW-OFFSET  MOVE  LOG-START  LOG-END  LAG-NOW  LAG-AFTER",
		"orders  0          10              4           -6    0          10       0        6",
		"orders  2          -               4           -     0          10       -        6",
		"3 partitions (1 without a committed offset); lag 0 -> 18 records",
		"plan written to " + plan + " (3 rows: topic,partition,offset)",
	} {
		if !strings.Contains(out, w) {
			t.Errorf("output lacks %q:\n%s", w, out)
		}
	}
	if c := committed(t, adm, "g"); c[0].At != 10 || c[0].Metadata != "ordo2:10:AQIB" {
		t.Errorf("the dry run committed: %+v", c[0])
	}
	body, err := os.ReadFile(plan)
	if err != nil {
		t.Fatal(err)
	}
	if string(body) != "orders,0,4\norders,1,4\norders,2,4\n" {
		t.Errorf("exported %q", body)
	}

	code, out, errb = run("replay", "reset", "--brokers", b.Addr(), "--group", "g", "--from-file", plan, "--execute")
	if code != 0 {
		t.Fatalf("exit %d: %s", code, errb)
	}
	if !strings.Contains(out, "committed 3 partitions of group g (with empty commit metadata)") {
		t.Errorf("output:\n%s", out)
	}
	for p, o := range committed(t, adm, "g") {
		if o.At != 4 || o.Metadata != "" {
			t.Errorf("orders/%d committed at %d with %q, want 4 and no metadata", p, o.At, o.Metadata)
		}
	}
}

// Clamping warns per partition on stderr; the plan uses the bound.
func TestReplayResetClampWarns(t *testing.T) {
	b, _ := replayBroker(t)
	code, out, errb := run("replay", "reset", "--brokers", b.Addr(), "--group", "g", "--topic", "orders:0,2", "--to-offset", "500")
	if code != 0 {
		t.Fatalf("exit %d: %s", code, errb)
	}
	for _, p := range []string{"0", "2"} {
		if w := "ordo replay reset: warning: orders/" + p + ": offset 500 is past the log end 10; using 10"; !strings.Contains(errb, w) {
			t.Errorf("stderr lacks %q:\n%s", w, errb)
		}
	}
	if strings.Contains(errb, "orders/1") || strings.Count(out, "\norders ") != 2 {
		t.Errorf("planned more than orders:0,2:\n%s\n%s", out, errb)
	}
}

// With a member in the group, a dry run says --execute will refuse, and
// --execute refuses with exit 1, naming the member; nothing is committed.
func TestReplayResetRefusesActiveGroup(t *testing.T) {
	b, adm := replayBroker(t)
	commitAt(t, adm, "g", map[int32]int64{0: 10, 1: 10, 2: 10}, "")
	member, err := kgo.NewClient(kgo.SeedBrokers(b.Addr()), kgo.ConsumerGroup("g"), kgo.ConsumeTopics("orders"),
		kgo.ClientID("billing-worker"), kgo.SessionTimeout(time.Second), kgo.HeartbeatInterval(100*time.Millisecond))
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	go func() {
		defer close(done)
		for !member.PollFetches(context.Background()).IsClientClosed() {
		}
	}()
	defer func() { member.Close(); <-done }()
	deadline := time.Now().Add(10 * time.Second)
	for {
		id, _ := member.GroupMetadata()
		d, err := adm.DescribeGroups(context.Background(), "g")
		if err == nil && id != "" && d["g"].State == "Stable" {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the member did not join")
		}
		time.Sleep(20 * time.Millisecond)
	}
	id, _ := member.GroupMetadata()
	args := []string{"replay", "reset", "--brokers", b.Addr(), "--group", "g", "--topic", "orders", "--to-earliest"}
	code, _, errb := run(args...)
	if code != 0 || !strings.Contains(errb, "note: --execute will refuse now: group \"g\" has 1 active member (state Stable): "+id+" (client billing-worker, host 127.0.0.1") {
		t.Errorf("dry run: exit %d, stderr:\n%s", code, errb)
	}
	code, _, errb = run(append(args, "--execute")...)
	if code != 1 || !strings.Contains(errb, id) || !strings.Contains(errb, "client billing-worker") || !strings.Contains(errb, "stop them") {
		t.Errorf("--execute: exit %d, stderr:\n%s", code, errb)
	}
	for p, o := range committed(t, adm, "g") {
		if o.At != 10 {
			t.Errorf("orders/%d moved to %d by a refused reset", p, o.At)
		}
	}
}

// The progress display: lines when not on a terminal, a bar redrawn in
// place on one (auto picks by the writer), nothing with none.
func TestReplayCopyProgressModes(t *testing.T) {
	b, _ := replayBroker(t)
	for _, tc := range []struct {
		mode, want, not string
		tty             bool
	}{
		{"auto", "ordo replay copy: [", "\r[", false},
		{"auto", "\r[==============================] 100%  30/30  30 copied", "ordo replay copy: [", true},
		{"none", "", "30 copied", true},
	} {
		var out, errb bytes.Buffer
		c := &ReplayCopyCmd{Brokers: []string{b.Addr()}, From: "orders", Into: "orders.replay", Progress: tc.mode, Rate: "20/s",
			ConnectTimeout: 5 * time.Second, Out: &out, Err: &errb, terminal: func(io.Writer) bool { return tc.tty }}
		if err := c.Validate(); err != nil {
			t.Fatal(err)
		}
		if err := c.Run(context.Background()); err != nil {
			t.Fatal(err)
		}
		if !strings.Contains(errb.String(), tc.want) || tc.not != "" && strings.Contains(errb.String(), tc.not) {
			t.Errorf("--progress %s (terminal %v): stderr %q, want %q and not %q", tc.mode, tc.tty, errb.String(), tc.want, tc.not)
		}
	}
}

// Ctrl-C during a copy: the summary, then exit 1 with what is left per
// partition as flags to resume with.
func TestReplayCopyInterruptedSaysWhatIsLeft(t *testing.T) {
	b, _ := replayBroker(t)
	ctx, cancel := context.WithCancel(context.Background())
	time.AfterFunc(700*time.Millisecond, cancel)
	var out, errb bytes.Buffer
	code := Main(ctx, []string{"replay", "copy", "--brokers", b.Addr(), "--from", "orders", "--into", "orders.replay",
		"--partitions", "0,1", "--rate", "20/s", "--progress", "none"}, &out, &errb)
	if code != 1 {
		t.Fatalf("exit %d, want 1; stderr %q", code, errb.String())
	}
	for _, w := range []string{"ordo: interrupted; copied ", " records before it; what is left, per partition: --partitions ", " --from-offset ", " --to-offset 10"} {
		if !strings.Contains(errb.String(), w) {
			t.Errorf("stderr lacks %q:\n%s", w, errb.String())
		}
	}
	if !strings.Contains(out.String(), "ordo replay copy: stopped after copying ") {
		t.Errorf("no summary:\n%s", out.String())
	}
	t.Logf("%s%s", out.String(), errb.String())
}
