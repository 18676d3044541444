package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"

	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// kcatPath finds kcat. Without it the test skips, unless
// ORDO_E2E_REQUIRE_KCAT is set (CI sets it): then it fails.
func kcatPath(t *testing.T) string {
	p, err := exec.LookPath("kcat")
	if err != nil {
		if os.Getenv("ORDO_E2E_REQUIRE_KCAT") != "" {
			t.Fatal("kcat not found and ORDO_E2E_REQUIRE_KCAT is set: apt-get install kcat")
		}
		t.Skip("kcat not found: apt-get install kcat (set ORDO_E2E_REQUIRE_KCAT=1 to make this a failure)")
	}
	return p
}

func freeAddr(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

// syncBuffer is an io.Writer safe for a process's output and a test reader.
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

var outcomeRe = regexp.MustCompile(`^ordo_records_total\{[^}]*outcome="([a-z]+)"[^}]*\} ([0-9.e+]+)$`)

// outcomes scrapes ordo dev's /metrics and sums ordo_records_total by outcome.
func outcomes(addr string) (map[string]float64, error) { return scrapeSum(addr, outcomeRe) }

// scrapeSum scrapes /metrics at addr and sums the values of the lines re
// matches by its first group (re's second group is the value).
func scrapeSum(addr string, re *regexp.Regexp) (map[string]float64, error) {
	resp, err := http.Get("http://" + addr + "/metrics")
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	out := map[string]float64{}
	sc := bufio.NewScanner(resp.Body)
	for sc.Scan() {
		if m := re.FindStringSubmatch(sc.Text()); m != nil {
			v, _ := strconv.ParseFloat(m[2], 64)
			out[m[1]] += v
		}
	}
	return out, sc.Err()
}

// TestDevWithKcat drives `ordo dev` as a user would: build the binary, start
// it, produce keyed events with kcat (librdkafka: a real, independent Kafka
// client), and check through /metrics that every event was processed, the
// malformed ones dead-lettered, then read the dead letters back with kcat
// and stop ordo with SIGTERM.
func TestDevWithKcat(t *testing.T) {
	kcat := kcatPath(t)
	if testing.Short() {
		t.Skip("end-to-end test: not in -short")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	dev := startDev(ctx, t)
	cmd, kafka, metrics, stdout := dev.cmd, dev.kafka, dev.metrics, &dev.stdout

	// 2,000 events over 100 customers, in order per customer, plus 5
	// malformed ones. kcat -K: splits key and value at the first colon.
	const good, bad = 2000, 5
	var in strings.Builder
	seq := map[string]int{}
	for i := range good {
		c := "c-" + strconv.Itoa(i%100)
		seq[c]++
		v, _ := json.Marshal(map[string]any{"customer": c, "seq": seq[c], "amount_cents": i})
		fmt.Fprintf(&in, "%s|%s\n", c, v)
		if i%400 == 0 {
			fmt.Fprintf(&in, "%s|{not json\n", c)
		}
	}
	prod := exec.CommandContext(ctx, kcat, "-P", "-b", kafka, "-t", "orders", "-K", "|",
		"-X", "topic.partitioner=murmur2_random")
	prod.Stdin = strings.NewReader(in.String())
	if out, err := prod.CombinedOutput(); err != nil {
		t.Fatalf("kcat produce: %v\n%s", err, out)
	}

	var got map[string]float64
	deadline := time.Now().Add(60 * time.Second)
	for {
		var err error
		got, err = outcomes(metrics)
		if err == nil && got["ok"] == good && got["dlq"] == bad {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("outcomes %v (err %v), want ok=%d dlq=%d", got, err, good, bad)
		}
		time.Sleep(50 * time.Millisecond)
	}

	// Read the dead letters back with kcat: headers must say why.
	cons := exec.CommandContext(ctx, kcat, "-C", "-b", kafka, "-t", "orders.ordo-dev.dlq", "-e", "-q",
		"-f", "%k\t%h\n")
	out, err := cons.Output()
	if err != nil {
		t.Fatalf("kcat consume: %v", err)
	}
	lines := strings.Split(strings.TrimSpace(string(out)), "\n")
	if len(lines) != bad {
		t.Fatalf("read %d dead letters, want %d:\n%s", len(lines), bad, out)
	}
	for _, l := range lines {
		for _, h := range []string{"ordo-error-class=permanent", "ordo-original-topic=orders", "ordo-group=ordo-dev", "ordo-processor=example", "ordo-error=permanent: malformed event"} {
			if !strings.Contains(l, h) {
				t.Errorf("dead letter %q lacks header %s", l, h)
			}
		}
	}

	if err := cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	if err := cmd.Wait(); err != nil {
		t.Fatalf("ordo dev exit after SIGTERM: %v", err)
	}
	if !strings.Contains(stdout.String(), "order-violations=0") {
		t.Errorf("final line lacks order-violations=0:\n%s", lastLines(stdout.String(), 3))
	}
	if !strings.Contains(stdout.String(), "processed=") {
		t.Error("no progress line printed")
	}
}

// buildOrdo builds this package's binary into a test directory.
func buildOrdo(t *testing.T) string {
	t.Helper()
	bin := filepath.Join(t.TempDir(), "ordo")
	if out, err := exec.Command("go", "build", "-o", bin, ".").CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	return bin
}

// devProcess is `ordo dev`, built from this package, running on free
// ports with the repository's topics.
type devProcess struct {
	cmd                 *exec.Cmd
	bin, kafka, metrics string
	stdout, stderr      syncBuffer
}

// startDev builds ordo and starts `ordo dev` (no demo producer, no work
// per event), until ctx ends, and waits for its pipeline to consume. At
// the test's end it is killed, and its output's last lines are logged if
// the test failed.
func startDev(ctx context.Context, t *testing.T) *devProcess {
	t.Helper()
	d := &devProcess{bin: buildOrdo(t), kafka: freeAddr(t), metrics: freeAddr(t)}
	d.cmd = exec.CommandContext(ctx, d.bin, "dev", "--kafka-addr", d.kafka, "--metrics-addr", d.metrics,
		"--topics-dir", "../../topics", "--work", "0", "--shutdown-timeout", "10s")
	d.cmd.Stdout, d.cmd.Stderr = &d.stdout, &d.stderr
	if err := d.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = d.cmd.Process.Kill()
		if t.Failed() {
			t.Logf("ordo dev stdout:\n%s\nstderr:\n%s", lastLines(d.stdout.String(), 20), lastLines(d.stderr.String(), 20))
		}
	})
	deadline := time.Now().Add(30 * time.Second)
	for !strings.Contains(d.stdout.String(), "consuming") {
		if time.Now().After(deadline) {
			t.Fatal("ordo dev did not start its pipeline")
		}
		time.Sleep(20 * time.Millisecond)
	}
	return d
}

func lastLines(s string, n int) string {
	ls := strings.Split(strings.TrimSpace(s), "\n")
	if len(ls) > n {
		ls = ls[len(ls)-n:]
	}
	return strings.Join(ls, "\n")
}
