package cli

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/ordokafka/ordo/pkg/devbroker"
	"github.com/ordokafka/ordo/pkg/lag"
)

// lagBroker starts an embedded broker with topic "t" of 3 partitions, a
// backlog of 10, 20 and 30 records, and group "g" committed at 4, 20 and
// nothing (no member runs).
func lagBroker(t *testing.T) (*devbroker.Broker, *kadm.Client) {
	t.Helper()
	b, err := devbroker.Start(devbroker.Options{Addr: "127.0.0.1:0", Extra: []kfake.Opt{kfake.SeedTopics(3, "t")}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(b.Close)
	cl, err := kgo.NewClient(kgo.SeedBrokers(b.Addr()), kgo.RecordPartitioner(kgo.ManualPartitioner()))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(cl.Close)
	for p := range int32(3) {
		for i := range 10 * int(p+1) {
			if err := cl.ProduceSync(context.Background(), &kgo.Record{Topic: "t", Partition: p, Value: fmt.Appendf(nil, "%d", i)}).FirstErr(); err != nil {
				t.Fatal(err)
			}
		}
	}
	adm := kadm.NewClient(cl)
	var os kadm.Offsets
	os.AddOffset("t", 0, 4, -1)
	os.AddOffset("t", 1, 20, -1)
	if err := adm.CommitAllOffsets(context.Background(), "g", os); err != nil {
		t.Fatal(err)
	}
	return b, adm
}

type lagJSON struct {
	At         time.Time       `json:"at"`
	Partitions []lag.Partition `json:"partitions"`
	Errors     []string        `json:"errors"`
}

// Every flag of ordo lag and ordo lag serve is checked before anything
// connects or listens, all errors at once, each named as its flag (exit 2).
func TestLagFlagsAllErrorsAtOnce(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	cases := []struct {
		args []string
		want []string
	}{
		{[]string{"lag"}, []string{"--brokers is required", "--group is required (or --all-groups)"}},
		{[]string{"lag", "--brokers", ln.Addr().String() + ",nope", "--group", ",", "--topic", " ", "--window", "0s",
			"--timeout", "-1s", "--interval", "0s"},
			[]string{`--brokers entry 2 "nope"`, "--group entry 1 is empty", "--topic entry 1 is empty", "--window must be > 0",
				"--timeout must be > 0", "--interval must be > 0"}},
		{[]string{"lag", "--brokers", ln.Addr().String(), "--group", "g", "--watch", "--interval", "5m", "--window", "1m"},
			[]string{"--interval 5m0s is longer than --window 1m0s"}},
		{[]string{"lag", "serve", "--brokers", ln.Addr().String(), "--addr", "x", "--log-level", "loud", "--window", "-1s"},
			[]string{"--group is required", `--addr "x"`, "--log-level", "--window must be > 0"}},
	}
	for _, tc := range cases {
		var out, errb bytes.Buffer
		if code := Main(context.Background(), tc.args, &out, &errb); code != 2 {
			t.Errorf("%v: exit %d, want 2; stderr %q", tc.args, code, errb.String())
		}
		for _, w := range tc.want {
			if !strings.Contains(errb.String(), w) {
				t.Errorf("%v: stderr lacks %q:\n%s", tc.args, w, errb.String())
			}
		}
		if out.Len() != 0 {
			t.Errorf("%v: printed %q", tc.args, out.String())
		}
	}
	_ = ln.(*net.TCPListener).SetDeadline(time.Now().Add(50 * time.Millisecond))
	if c, err := ln.Accept(); err == nil {
		c.Close()
		t.Error("something connected to --brokers")
	}
}

// An unreachable broker: exit 1, the error names the broker.
func TestLagNamesTheBroker(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close() // nothing listens there now
	var out, errb bytes.Buffer
	if code := Main(context.Background(), []string{"lag", "--brokers", addr, "--group", "g", "--timeout", "500ms"}, &out, &errb); code != 1 {
		t.Fatalf("exit %d, want 1; stderr %q", code, errb.String())
	}
	if !strings.Contains(errb.String(), "no broker of "+addr+" answered within 500ms (--timeout)") {
		t.Errorf("stderr does not name the broker %s: %q", addr, errb.String())
	}
}

// ordo lag's table and JSON agree with the known backlog, for a group
// with no member; the partition never committed lags from its log start.
func TestLagTableAndJSON(t *testing.T) {
	b, _ := lagBroker(t)
	var out, errb bytes.Buffer
	if code := Main(context.Background(), []string{"lag", "--brokers", b.Addr(), "--group", "g", "--json"}, &out, &errb); code != 0 {
		t.Fatalf("exit %d: %s", code, errb.String())
	}
	var j lagJSON
	if err := json.Unmarshal(out.Bytes(), &j); err != nil {
		t.Fatalf("%v: %s", err, out.String())
	}
	got := ""
	for _, p := range j.Partitions {
		got += fmt.Sprintf("%s/%s/%d c=%d e=%d l=%d s=%v; ", p.Group, p.Topic, p.Partition, p.Committed, p.End, p.Lag, p.Status)
		if p.LagSeconds == nil || (p.Lag == 0) != (*p.LagSeconds == 0) {
			t.Errorf("%d: seconds %v for lag %d", p.Partition, p.LagSeconds, p.Lag)
		}
	}
	if want := "g/t/0 c=4 e=10 l=6 s=-; g/t/1 c=20 e=20 l=0 s=-; g/t/2 c=-1 e=30 l=30 s=-; "; got != want {
		t.Errorf("json:\n got %s\nwant %s", got, want)
	}

	out.Reset()
	if code := Main(context.Background(), []string{"lag", "--brokers", b.Addr(), "--group", "g"}, &out, &errb); code != 0 {
		t.Fatalf("exit %d: %s", code, errb.String())
	}
	lines := strings.Split(strings.TrimSpace(out.String()), "\n")
	if len(lines) != 5 || !strings.Contains(lines[0], "GROUP") || !strings.Contains(lines[0], "STATUS") {
		t.Fatalf("table:\n%s", out.String())
	}
	for i, w := range [][]string{{"g", "t", "0", "4", "10", "6"}, {"g", "t", "1", "20", "20", "0", "0.0s"}, {"g", "t", "2", "-", "30", "30"}, {"g", "t", "total", "36"}} {
		f := strings.Fields(lines[i+1])
		if len(f) < len(w) || strings.Join(f[:len(w)], " ") != strings.Join(w, " ") {
			t.Errorf("line %d %q, want it to start with %q", i+1, lines[i+1], w)
		}
	}
}

// ordo lag serve reports a group with no member running, and serves
// /healthz, /readyz and (only with --pprof) /debug/pprof/.
func TestLagServeReportsAGroupWithNoMember(t *testing.T) {
	b, _ := lagBroker(t)
	for _, pprofOn := range []bool{false, true} {
		s := &LagServeCmd{Brokers: []string{b.Addr()}, Groups: []string{"g"}, Addr: "127.0.0.1:0", Window: time.Minute,
			ScrapeTimeout: 5 * time.Second, LogLevel: "error", Pprof: pprofOn, Out: io.Discard}
		if err := s.Validate(); err != nil {
			t.Fatal(err)
		}
		addrc := make(chan string, 1)
		s.ready = func(a string) { addrc <- a }
		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan error, 1)
		go func() { done <- s.Run(ctx, io.Discard) }()
		addr := <-addrc
		metrics := get(t, "http://"+addr+"/metrics", 200)
		for _, w := range []string{`ordo_consumer_lag_records{group="g",partition="0",topic="t"} 6`,
			`ordo_consumer_lag_records{group="g",partition="1",topic="t"} 0`,
			`ordo_consumer_lag_records{group="g",partition="2",topic="t"} 30`,
			`ordo_consumer_lag_seconds{group="g",partition="1",topic="t"} 0`,
			`ordo_lag_scrape_errors_total{stage="offset_fetch"} 0`} {
			if !strings.Contains(metrics, w) {
				t.Errorf("/metrics lacks %q", w)
			}
		}
		get(t, "http://"+addr+"/healthz", 200)
		get(t, "http://"+addr+"/readyz", 200)
		want := 404
		if pprofOn {
			want = 200
		}
		get(t, "http://"+addr+"/debug/pprof/", want)
		cancel()
		if err := <-done; err != nil {
			t.Fatal(err)
		}
	}
}

func get(t *testing.T, url string, want int) string {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != want {
		t.Errorf("GET %s: %d, want %d: %s", url, resp.StatusCode, want, body)
	}
	return string(body)
}

// /readyz answers 503 with the readiness error's text, 200 without one.
func TestReadyzAnswersTheReadyFunc(t *testing.T) {
	var readyErr error
	srv := httptest.NewServer(metricsMux(prometheus.NewRegistry(), httpOpts{ready: func() error { return readyErr }}))
	defer srv.Close()
	readyErr = fmt.Errorf(`ordo: not in group "g" yet`)
	if body := get(t, srv.URL+"/readyz", 503); !strings.Contains(body, `not in group "g" yet`) {
		t.Errorf("503 body %q", body)
	}
	readyErr = nil
	get(t, srv.URL+"/readyz", 200)
	get(t, srv.URL+"/healthz", 200)
	get(t, srv.URL+"/debug/pprof/", 404)
}

var metricsLine = regexp.MustCompile(`ordo dev: metrics on http://(\S+)/metrics`)

// sumSeries sums the samples of name for group in a /metrics body.
func sumSeries(body, name, group string) (float64, int) {
	var sum float64
	n := 0
	for line := range strings.SplitSeq(body, "\n") {
		if !strings.HasPrefix(line, name+"{") || !strings.Contains(line, `group="`+group+`"`) {
			continue
		}
		v, err := strconv.ParseFloat(line[strings.LastIndexByte(line, ' ')+1:], 64)
		if err == nil {
			sum += v
			n++
		}
	}
	return sum, n
}

// `ordo dev --demo` with slow processing: the group's lag from the broker
// moves in /metrics, /readyz turns 200 once the consumer is in its group,
// and `ordo lag --watch --json` against the dev broker sees the same lag
// moving.
func TestDevDemoShowsLagMoving(t *testing.T) {
	var out syncBuffer
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	done := make(chan int, 1)
	go func() {
		done <- Main(ctx, []string{"dev", "--demo", "--kafka-addr", "127.0.0.1:0", "--metrics-addr", "127.0.0.1:0",
			"--topics-dir", "../../topics", "--group", "demo", "--rate", "400", "--work", "20ms", "--workers", "1",
			"--ordering", "partition", "--log-level", "error", "--shutdown-timeout", "5s"}, &out, &out)
	}()
	defer func() {
		cancel()
		<-done
	}()
	var broker, maddr string
	waitUntil(t, 15*time.Second, "ordo dev to start", func() bool {
		s := out.String()
		if m := brokerLine.FindStringSubmatch(s); m != nil {
			broker = m[1]
		}
		if m := metricsLine.FindStringSubmatch(s); m != nil {
			maddr = m[1]
		}
		return broker != "" && maddr != ""
	})
	waitUntil(t, 20*time.Second, "/readyz 200", func() bool {
		resp, err := http.Get("http://" + maddr + "/readyz")
		if err != nil {
			return false
		}
		resp.Body.Close()
		return resp.StatusCode == 200
	})
	var seen []float64
	waitUntil(t, 20*time.Second, "the group's lag to move in /metrics", func() bool {
		v, n := sumSeries(get(t, "http://"+maddr+"/metrics", 200), "ordo_consumer_lag_records", "demo")
		if n > 0 && (len(seen) == 0 || v != seen[len(seen)-1]) {
			seen = append(seen, v)
		}
		time.Sleep(200 * time.Millisecond)
		return len(seen) >= 3 && seen[len(seen)-1] > 0
	})
	if _, n := sumSeries(get(t, "http://"+maddr+"/metrics", 200), "ordo_consumer_lag_seconds", "demo"); n == 0 {
		t.Error("no ordo_consumer_lag_seconds for the demo group")
	}

	var lagOut syncBuffer
	lctx, lcancel := context.WithTimeout(context.Background(), 3*time.Second)
	defer lcancel()
	if code := Main(lctx, []string{"lag", "--brokers", broker, "--group", "demo", "--topic", "orders", "--watch", "--json", "--interval", "500ms", "--window", "10s"}, &lagOut, &lagOut); code != 0 {
		t.Fatalf("ordo lag --watch exit %d: %s", code, lagOut.String())
	}
	var totals []int64
	for line := range strings.SplitSeq(strings.TrimSpace(lagOut.String()), "\n") {
		var j lagJSON
		if err := json.Unmarshal([]byte(line), &j); err != nil {
			t.Fatalf("%v: %q", err, line)
		}
		var sum int64
		for _, p := range j.Partitions {
			sum += p.Lag
		}
		if len(j.Partitions) == 0 || len(j.Errors) > 0 {
			t.Errorf("scrape %+v\n%s", j, lagOut.String())
		}
		totals = append(totals, sum)
	}
	moved := false
	for i := 1; i < len(totals); i++ {
		moved = moved || totals[i] != totals[0]
	}
	if len(totals) < 4 || !moved {
		t.Errorf("ordo lag --watch saw %v: want at least 4 scrapes with the lag moving", totals)
	}
}

func waitUntil(t *testing.T, d time.Duration, what string, cond func() bool) {
	t.Helper()
	for deadline := time.Now().Add(d); !cond(); time.Sleep(50 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %s waiting for %s", d, what)
		}
	}
}

// pythonKafka finds /usr/bin/python3 with confluent_kafka. Without it the
// test skips, unless ORDO_E2E_REQUIRE_PYKAFKA is set (CI sets it): then it
// fails.
func pythonKafka(t *testing.T) string {
	const py = "/usr/bin/python3"
	if err := exec.Command(py, "-c", "import confluent_kafka").Run(); err != nil {
		if os.Getenv("ORDO_E2E_REQUIRE_PYKAFKA") != "" {
			t.Fatalf("%s cannot import confluent_kafka (%v) and ORDO_E2E_REQUIRE_PYKAFKA is set: apt-get install python3-confluent-kafka", py, err)
		}
		t.Skipf("%s cannot import confluent_kafka (%v): apt-get install python3-confluent-kafka (set ORDO_E2E_REQUIRE_PYKAFKA=1 to make this a failure)", py, err)
	}
	return py
}

type pyLag struct {
	Partitions []struct {
		Topic     string `json:"topic"`
		Partition int32  `json:"partition"`
		Committed int64  `json:"committed"`
		Low       int64  `json:"low"`
		High      int64  `json:"high"`
		Lag       int64  `json:"lag"`
	} `json:"partitions"`
}

// `ordo lag --json` against librdkafka's figures (python3-confluent-kafka,
// an independent client) for the same group: committed offsets, high
// watermarks and lag per partition, for a group with no member and for a
// group with a plain franz-go member that committed part of its backlog.
func TestLagMatchesAnIndependentClient(t *testing.T) {
	py := pythonKafka(t)
	b, _ := lagBroker(t)

	member, err := kgo.NewClient(kgo.SeedBrokers(b.Addr()), kgo.ConsumerGroup("live"), kgo.ConsumeTopics("t"),
		kgo.DisableAutoCommit(), kgo.SessionTimeout(6*time.Second))
	if err != nil {
		t.Fatal(err)
	}
	defer member.Close()
	got := 0
	waitUntil(t, 15*time.Second, "the member to consume the backlog", func() bool {
		ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
		defer cancel()
		got += member.PollFetches(ctx).NumRecords()
		return got == 60
	})
	var cerr error
	member.CommitOffsetsSync(context.Background(), map[string]map[int32]kgo.EpochOffset{"t": {0: {Epoch: -1, Offset: 7}, 2: {Epoch: -1, Offset: 11}}},
		func(_ *kgo.Client, _ *kmsg.OffsetCommitRequest, _ *kmsg.OffsetCommitResponse, err error) { cerr = err })
	if cerr != nil {
		t.Fatal(cerr)
	}

	for _, group := range []string{"g", "live"} {
		var out, errb bytes.Buffer
		if code := Main(context.Background(), []string{"lag", "--brokers", b.Addr(), "--group", group, "--topic", "t", "--json"}, &out, &errb); code != 0 {
			t.Fatalf("ordo lag exit %d: %s", code, errb.String())
		}
		var ours lagJSON
		if err := json.Unmarshal(out.Bytes(), &ours); err != nil {
			t.Fatal(err)
		}
		pyOut, err := exec.Command(py, "testdata/pylag.py", b.Addr(), group, "t").CombinedOutput()
		if err != nil {
			t.Fatalf("pylag.py: %v\n%s", err, pyOut)
		}
		var theirs pyLag
		if err := json.Unmarshal(pyOut, &theirs); err != nil {
			t.Fatalf("%v: %s", err, pyOut)
		}
		var a, bb []string
		for _, p := range ours.Partitions {
			a = append(a, fmt.Sprintf("%s/%d committed=%d end=%d lag=%d", p.Topic, p.Partition, p.Committed, p.End, p.Lag))
		}
		for _, p := range theirs.Partitions {
			bb = append(bb, fmt.Sprintf("%s/%d committed=%d end=%d lag=%d", p.Topic, p.Partition, p.Committed, p.High, p.Lag))
		}
		if strings.Join(a, "\n") != strings.Join(bb, "\n") || len(a) != 3 {
			t.Errorf("group %s:\nordo lag:\n%s\nconfluent-kafka:\n%s", group, strings.Join(a, "\n"), strings.Join(bb, "\n"))
		} else {
			t.Logf("group %s, ordo lag and confluent-kafka agree:\n%s", group, strings.Join(a, "\n"))
		}
	}
}
