package cli

import (
	"context"
	"fmt"
	"os"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/ordokafka/ordo/pkg/devbroker"
	"github.com/ordokafka/ordo/pkg/ordo"
)

// finalLine returns the "stopped." line of a command's output.
func finalLine(out string) string {
	for _, l := range strings.Split(out, "\n") {
		if strings.Contains(l, ": stopped. ") {
			return l
		}
	}
	return ""
}

var inFlightRe = regexp.MustCompile(`in-flight=(\d+)`)

// devUnderSignals starts `ordo dev --demo` through MainSignals with a
// signal channel the test feeds (no real signal reaches the test process),
// processing records that take an hour each (the example processor's work
// honors cancellation), and waits until records are running.
func devUnderSignals(t *testing.T, shutdownTimeout string) (sigs chan os.Signal, out, errb *syncBuffer, code <-chan int) {
	t.Helper()
	sigs = make(chan os.Signal, 2)
	out, errb = &syncBuffer{}, &syncBuffer{}
	c := make(chan int, 1)
	go func() {
		c <- MainSignals(context.Background(), []string{"dev", "--demo", "--kafka-addr", "127.0.0.1:0", "--metrics-addr", "",
			"--topics-dir", "../../topics", "--work", "1h", "--rate", "500", "--shutdown-timeout", shutdownTimeout,
			"--log-level", "error"}, out, errb, sigs)
	}()
	for deadline := time.Now().Add(20 * time.Second); ; time.Sleep(20 * time.Millisecond) {
		if m := inFlightRe.FindAllStringSubmatch(out.String(), -1); len(m) > 0 {
			if n, _ := strconv.Atoi(m[len(m)-1][1]); n > 0 {
				break
			}
		}
		if time.Now().After(deadline) {
			sigs <- syscall.SIGINT
			sigs <- syscall.SIGINT
			<-c
			t.Fatalf("no record in flight:\n%s\n%s", out.String(), errb.String())
		}
	}
	return sigs, out, errb, c
}

// The first signal drains and says so; the drain waits for running
// records; a second signal cancels them and stops at once, with exit 1, the
// figures at the moment of stop and a warning naming what was abandoned.
func TestDevSecondSignalStopsNow(t *testing.T) {
	sigs, out, errb, code := devUnderSignals(t, "1m")
	sigs <- syscall.SIGINT
	for deadline := time.Now().Add(5 * time.Second); !strings.Contains(out.String(),
		"ordo dev: draining: finishing running records and committing; press Ctrl-C again to stop now"); time.Sleep(10 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("no draining line after the first signal:\n%s", out.String())
		}
	}
	select {
	case c := <-code:
		t.Fatalf("exited (%d) during the drain, with records running:\n%s", c, out.String())
	case <-time.After(500 * time.Millisecond):
	}
	start := time.Now()
	sigs <- syscall.SIGTERM
	var c int
	select {
	case c = <-code:
	case <-time.After(15 * time.Second):
		t.Fatalf("did not stop after the second signal:\n%s", out.String())
	}
	if took := time.Since(start); took > 5*time.Second {
		t.Errorf("took %s to stop after the second signal", took)
	}
	if c != 1 {
		t.Errorf("exit %d, want 1", c)
	}
	o := out.String()
	if !strings.Contains(o, "ordo dev: second interrupt: canceling running records and stopping now") {
		t.Errorf("no second-interrupt line:\n%s", o)
	}
	checkAbandoned(t, o, errb.String(), "ordo: stopped at the second interrupt: abandoned ")
}

// A drain that times out is a warning naming what was abandoned, and
// exit 1.
func TestDevDrainTimeoutWarnsAndFails(t *testing.T) {
	sigs, out, errb, code := devUnderSignals(t, "1s")
	start := time.Now()
	sigs <- syscall.SIGINT
	var c int
	select {
	case c = <-code:
	case <-time.After(15 * time.Second):
		t.Fatalf("did not stop after --shutdown-timeout:\n%s", out.String())
	}
	if took := time.Since(start); took < time.Second/2 || took > 6*time.Second {
		t.Errorf("stopped %s after the signal, want about --shutdown-timeout (1s)", took)
	}
	if c != 1 {
		t.Errorf("exit %d, want 1", c)
	}
	checkAbandoned(t, out.String(), errb.String(), "ordo: the drain timed out after 1s (--shutdown-timeout): abandoned ")
}

// checkAbandoned checks the final line and the partition lines show the
// records in flight at the stop, and the error names them.
func checkAbandoned(t *testing.T, out, errs, want string) {
	t.Helper()
	last := finalLine(out)
	m := inFlightRe.FindStringSubmatch(last)
	if len(m) < 2 || m[1] == "0" {
		t.Errorf("final line %q: want the records in flight at the stop", last)
	}
	// Every partition with records in flight: the source topic's and the
	// retry tiers' (a tier record may be waiting or running at the stop).
	parts := regexp.MustCompile(`(?m)^  (orders(?:\.[\w-]+)*/\d+): in-flight (\d+)`).FindAllStringSubmatch(out, -1)
	if len(parts) == 0 {
		t.Fatalf("no partition line:\n%s", out)
	}
	if !strings.Contains(errs, want) {
		t.Fatalf("stderr %q lacks %q", errs, want)
	}
	total := 0
	for _, p := range parts {
		n, _ := strconv.Atoi(p[2])
		total += n
		if n > 0 && !strings.Contains(errs, p[1]) {
			t.Errorf("warning does not name %s: %s", p[1], errs)
		}
	}
	if len(m) == 2 && strconv.Itoa(total) != m[1] {
		t.Errorf("partition lines sum to %d in flight, final line says %s", total, m[1])
	}
	if !strings.Contains(errs, fmt.Sprintf("abandoned %d unfinished record", total)) {
		t.Errorf("warning %q does not count %d records", errs, total)
	}
	if !strings.Contains(errs, "the group will deliver them again") {
		t.Errorf("warning %q", errs)
	}
}

// A clean stop: one signal, the drain finishes, exit 0, the figures at the
// stop.
func TestDevSignalCleanDrain(t *testing.T) {
	sigs := make(chan os.Signal, 1)
	var out, errb syncBuffer
	code := make(chan int, 1)
	go func() {
		code <- MainSignals(context.Background(), []string{"dev", "--demo", "--kafka-addr", "127.0.0.1:0", "--metrics-addr", "",
			"--topics-dir", "../../topics", "--work", "0", "--rate", "2000", "--log-level", "error"}, &out, &errb, sigs)
	}()
	for deadline := time.Now().Add(20 * time.Second); !strings.Contains(out.String(), "[1s] produced="); time.Sleep(20 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("no progress:\n%s", out.String())
		}
	}
	sigs <- syscall.SIGINT
	if c := <-code; c != 0 {
		t.Fatalf("exit %d; stderr %s", c, errb.String())
	}
	o := out.String()
	last := finalLine(o)
	// in-flight may not be 0: records fetched but not started when the
	// drain began are not run (they stay uncommitted); each is on its
	// partition's line.
	if !strings.Contains(o, "draining:") || !strings.Contains(last, "order-violations=0") || errb.String() != "" {
		t.Errorf("output:\n%s\nstderr:\n%s", lastN(o, 5), errb.String())
	}
	m := inFlightRe.FindStringSubmatch(last)
	total := 0
	for _, p := range regexp.MustCompile(`(?m)^  orders[.a-z0-9-]*/\d+: in-flight (\d+)`).FindAllStringSubmatch(o, -1) {
		n, _ := strconv.Atoi(p[1])
		total += n
	}
	if len(m) != 2 || m[1] != strconv.Itoa(total) {
		t.Errorf("final line %q, partition lines sum to %d in flight", last, total)
	}
	if strings.Contains(last, "processed=0 ") || strings.Contains(last, "paused=0/0") {
		t.Errorf("final line %q: want the figures at the moment of stop", last)
	}
}

func lastN(s string, n int) string {
	ls := strings.Split(strings.TrimSpace(s), "\n")
	return strings.Join(ls[max(0, len(ls)-n):], "\n")
}

// The stop report: totals from the lanes as Stop left them, a line for
// each partition with records in flight or lag.
func TestStopReport(t *testing.T) {
	lanes := []ordo.LaneSnapshot{
		{Topic: "orders", Partition: 0, Watermark: 100, Committed: 100, HighWatermark: 100},
		{Topic: "orders", Partition: 3, InFlight: 12, Running: 3, Watermark: 1234, Committed: 1234, HighWatermark: 1274, Paused: true},
		{Topic: "orders", Partition: 7, Watermark: 50, Committed: 40, HighWatermark: 60},
		{Topic: "orders", Partition: 9, InFlight: 1, Watermark: -1, Committed: -1, HighWatermark: -1},
		{Topic: "orders.g.retry.1", Partition: 0, Tier: 1, InFlight: 2, Watermark: 5, Committed: 5, HighWatermark: 7, Paused: true, PauseReason: "not_due"},
	}
	var b strings.Builder
	stopReport(&b, "ordo dev", ordo.Stats{Processed: 5000, Errors: 2, Tiered: 3, DeadLettered: 1}, lanes, 6000, " order-violations=0")
	want := "ordo dev: stopped. produced=6000 processed=5000 failed=2 tiered=3 waiting=2 dlq=1 in-flight=15 lag=52 paused=1/5 order-violations=0\n" +
		"  orders/3: in-flight 12 (3 running), lag 40, committed 1234\n" +
		"  orders/7: in-flight 0, lag 10, committed 40\n" +
		"  orders/9: in-flight 1, lag 0, committed none\n" +
		"  orders.g.retry.1/0: in-flight 2, lag 2, committed 5\n"
	if b.String() != want {
		t.Errorf("report:\n%s\nwant:\n%s", b.String(), want)
	}
	lanes = lanes[:4]
	if got := abandoned(lanes); got != "abandoned 13 unfinished records (3 of them running) in orders/3, orders/9; "+
		"they were not committed and the group will deliver them again" {
		t.Errorf("abandoned: %s", got)
	}
	if got := abandoned(lanes[3:]); got != "abandoned 1 unfinished record in orders/9; they were not committed and the group will deliver them again" {
		t.Errorf("abandoned: %s", got)
	}
	if got := abandoned(lanes[:1]); got != "no record was left unfinished" {
		t.Errorf("abandoned: %s", got)
	}
}

// runUnderSignals runs `ordo run` (the example processor, whose records
// take an hour each) with env, against a kfake broker, its interrupts fed
// from the returned channel as MainSignals feeds them, and waits until
// records are running.
func runUnderSignals(t *testing.T, env ...string) (sigs chan os.Signal, out *syncBuffer, runErr <-chan error) {
	t.Helper()
	b, err := devbroker.Start(devbroker.Options{Addr: "127.0.0.1:0", Extra: []kfake.Opt{kfake.SeedTopics(3, "orders", ordo.DefaultNaming.DLQTopic("orders", "g"))}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(b.Close)
	out = &syncBuffer{}
	r := &RunCmd{Out: out, Err: out, Environ: func() []string { return append(env, "ORDO_EXAMPLE_WORK=1h") },
		progressEvery: 100 * time.Millisecond}
	cmd := newRunCommand(r)
	if err := cmd.ParseFlags([]string{"--brokers", b.Addr(), "--group", "g", "--topic", "orders", "--processor", "example",
		"--metrics-addr", "", "--log-level", "error"}); err != nil {
		t.Fatal(err)
	}
	if err := r.Validate(); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancelCause(context.Background())
	r.in = newInterrupts(cancel)
	sigs, done, watched := make(chan os.Signal, 2), make(chan struct{}), make(chan struct{})
	go func() { defer close(watched); r.in.watch(sigs, done) }()
	errc := make(chan error, 1)
	go func() { errc <- r.Run(ctx) }()
	t.Cleanup(func() {
		close(done)
		<-watched
		cancel(nil)
	})

	cl, err := kgo.NewClient(kgo.SeedBrokers(b.Addr()), kgo.DefaultProduceTopic("orders"))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	for i := range 30 {
		v := fmt.Sprintf(`{"customer":"c-%d","seq":1,"amount_cents":1}`, i)
		if err := cl.ProduceSync(context.Background(), &kgo.Record{Key: fmt.Appendf(nil, "c-%d", i), Value: []byte(v)}).FirstErr(); err != nil {
			t.Fatal(err)
		}
	}
	for deadline := time.Now().Add(20 * time.Second); ; time.Sleep(20 * time.Millisecond) {
		if m := inFlightRe.FindAllStringSubmatch(out.String(), -1); len(m) > 0 && m[len(m)-1][1] != "0" {
			break
		}
		if time.Now().After(deadline) {
			sigs <- syscall.SIGTERM
			sigs <- syscall.SIGTERM
			<-errc
			t.Fatalf("no record in flight:\n%s", out.String())
		}
	}
	return sigs, out, errc
}

// ordo run under signals: the first drains (records take an hour, so the
// drain waits), the second cancels them and stops, with an error (exit 1),
// the figures at the stop and the abandoned records named.
func TestRunSecondSignalStopsNow(t *testing.T) {
	sigs, out, runErr := runUnderSignals(t)
	sigs <- syscall.SIGTERM
	for deadline := time.Now().Add(5 * time.Second); !strings.Contains(out.String(),
		"ordo run: draining: finishing running records and committing; press Ctrl-C again to stop now"); time.Sleep(10 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("no draining line:\n%s", out.String())
		}
	}
	select {
	case err := <-runErr:
		t.Fatalf("returned (%v) during the drain, with records running", err)
	case <-time.After(300 * time.Millisecond):
	}
	sigs <- syscall.SIGTERM
	var err error
	select {
	case err = <-runErr:
	case <-time.After(10 * time.Second):
		t.Fatal("did not stop after the second signal")
	}
	if err == nil {
		t.Fatal("Run returned nil after abandoning records")
	}
	checkAbandoned(t, out.String(), "ordo: "+err.Error(), "ordo: stopped at the second interrupt: abandoned ")
}

// ordo run's drain timeout: an error naming the setting as the user set
// it and what was abandoned.
func TestRunDrainTimeoutNamesTheSetting(t *testing.T) {
	sigs, out, runErr := runUnderSignals(t, "ORDO_SHUTDOWN_TIMEOUT=1s")
	start := time.Now()
	sigs <- syscall.SIGINT
	var err error
	select {
	case err = <-runErr:
	case <-time.After(10 * time.Second):
		t.Fatal("did not stop after shutdown_timeout")
	}
	if took := time.Since(start); took < time.Second/2 || took > 6*time.Second {
		t.Errorf("stopped %s after the signal, want about 1s", took)
	}
	if err == nil {
		t.Fatal("Run returned nil after abandoning records")
	}
	checkAbandoned(t, out.String(), "ordo: "+err.Error(), "ordo: the drain timed out after 1s (ORDO_SHUTDOWN_TIMEOUT): abandoned ")
}
