package main

import (
	"context"
	"encoding/json"
	"fmt"
	"os/exec"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

var routedRe = regexp.MustCompile(`^ordo_routed_total\{[^}]*target="([a-z0-9-]+)"[^}]*\} ([0-9.e+]+)$`)

// routed scrapes ordo_routed_total by target (tier-<n>, dlq).
func routed(addr string) (map[string]float64, error) { return scrapeSum(addr, routedRe) }

// kcatRecord is one line of `kcat -C -J`.
type kcatRecord struct {
	Topic     string   `json:"topic"`
	Partition int32    `json:"partition"`
	Offset    int64    `json:"offset"`
	TS        int64    `json:"ts"`
	Key       string   `json:"key"`
	Payload   string   `json:"payload"`
	Headers   []string `json:"headers"` // name, value, name, value...
}

func (r kcatRecord) header(name string) string {
	for i := 0; i+1 < len(r.Headers); i += 2 {
		if r.Headers[i] == name {
			return r.Headers[i+1]
		}
	}
	return ""
}

func kcatRead(ctx context.Context, t *testing.T, kcat, broker, topic string) []kcatRecord {
	t.Helper()
	out, err := exec.CommandContext(ctx, kcat, "-C", "-b", broker, "-t", topic, "-e", "-q", "-J").Output()
	if err != nil {
		t.Fatalf("kcat -C -J %s: %v", topic, err)
	}
	var recs []kcatRecord
	for _, line := range strings.Split(strings.TrimSpace(string(out)), "\n") {
		if line == "" {
			continue
		}
		var r kcatRecord
		if err := json.Unmarshal([]byte(line), &r); err != nil {
			t.Fatalf("kcat line %q: %v", line, err)
		}
		recs = append(recs, r)
	}
	return recs
}

// TestDevRetryChainWithKcat drives the retry chain of `ordo dev` from
// outside, with kcat (librdkafka) as the producer and the reader: events
// that fail their first 3 calls (tier 1 applies them) or 4 (tier 2 does),
// malformed ones (dead-lettered at once) and ones "rejected until a fix"
// (dead-lettered, then redriven with `ordo dlq redrive` after the fix and
// applied). It reads each tier and the dead-letter topic with kcat -J and
// checks Ordo's headers, lists the dead letters with `ordo dlq list`, and
// checks that a second redrive applies nothing.
func TestDevRetryChainWithKcat(t *testing.T) {
	kcat := kcatPath(t)
	if testing.Short() {
		t.Skip("end-to-end test: not in -short")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	dev := startDev(ctx, t)
	cmd, bin, kafka, metrics, stdout := dev.cmd, dev.bin, dev.kafka, dev.metrics, &dev.stdout

	const good, tier1, tier2, malformed, rejected = 300, 6, 4, 3, 5
	fixedAt := time.Now().Add(4 * time.Second)
	var in strings.Builder
	line := func(key string, ev map[string]any) {
		v, _ := json.Marshal(ev)
		fmt.Fprintf(&in, "%s|%s\n", key, v)
	}
	for i := range good {
		c := "c-" + strconv.Itoa(i%30)
		line(c, map[string]any{"customer": c, "seq": i/30 + 1, "amount_cents": i})
	}
	for i := range tier1 { // fail 3 calls in place: tier 1 applies them
		c := "f1-" + strconv.Itoa(i)
		line(c, map[string]any{"customer": c, "seq": 1, "amount_cents": 1, "fail_first": 3})
	}
	for i := range tier2 { // fail tier 1's call too: tier 2 applies them
		c := "f2-" + strconv.Itoa(i)
		line(c, map[string]any{"customer": c, "seq": 1, "amount_cents": 1, "fail_first": 4})
	}
	for i := range malformed {
		fmt.Fprintf(&in, "m-%d|{not json\n", i)
	}
	var rejectedKeys []string
	for i := range rejected {
		c := "r-" + strconv.Itoa(i)
		rejectedKeys = append(rejectedKeys, c)
		line(c, map[string]any{"customer": c, "seq": 1, "amount_cents": 1, "reject_until_ms": fixedAt.UnixMilli()})
	}
	prod := exec.CommandContext(ctx, kcat, "-P", "-b", kafka, "-t", "orders", "-K", "|", "-X", "topic.partitioner=murmur2_random")
	prod.Stdin = strings.NewReader(in.String())
	if out, err := prod.CombinedOutput(); err != nil {
		t.Fatalf("kcat produce: %v\n%s", err, out)
	}

	waitMetrics := func(what string, want func(out, rt map[string]float64) bool) (map[string]float64, map[string]float64) {
		t.Helper()
		deadline := time.Now().Add(60 * time.Second)
		for {
			out, err1 := outcomes(metrics)
			rt, err2 := routed(metrics)
			if err1 == nil && err2 == nil && want(out, rt) {
				return out, rt
			}
			if time.Now().After(deadline) {
				t.Fatalf("%s: outcomes %v, routed %v (errors %v, %v)", what, out, rt, err1, err2)
			}
			time.Sleep(50 * time.Millisecond)
		}
	}
	out, rt := waitMetrics("the chain to settle", func(out, rt map[string]float64) bool {
		return out["ok"] == good+tier1+tier2 && rt["dlq"] == malformed+rejected && rt["tier-2"] == tier2
	})
	if rt["tier-1"] != tier1+tier2 || rt["tier-3"] != 0 {
		t.Errorf("routed %v, want tier-1 %d, tier-2 %d, no tier-3", rt, tier1+tier2, tier2)
	}
	if out["dlq"] != malformed+rejected {
		t.Errorf("outcomes %v, want dlq %d", out, malformed+rejected)
	}

	// What kcat reads in each tier and the dead-letter topic.
	t1 := kcatRead(ctx, t, kcat, kafka, "orders.ordo-dev.retry.1")
	t2 := kcatRead(ctx, t, kcat, kafka, "orders.ordo-dev.retry.2")
	dead := kcatRead(ctx, t, kcat, kafka, "orders.ordo-dev.dlq")
	if len(t1) != tier1+tier2 || len(t2) != tier2 || len(dead) != malformed+rejected {
		t.Fatalf("kcat read %d, %d and %d records in retry.1, retry.2 and the dlq; want %d, %d, %d",
			len(t1), len(t2), len(dead), tier1+tier2, tier2, malformed+rejected)
	}
	check := func(r kcatRecord, want map[string]string) {
		t.Helper()
		for k, v := range want {
			if got := r.header(k); got != v {
				t.Errorf("%s/%d@%d key %s: header %s = %q, want %q (headers %v)", r.Topic, r.Partition, r.Offset, r.Key, k, got, v, r.Headers)
			}
		}
		if nb, err := strconv.ParseInt(r.header("ordo-not-before"), 10, 64); r.Topic != "orders.ordo-dev.dlq" && (err != nil || nb < r.TS) {
			t.Errorf("%s key %s: ordo-not-before %q is not a time at or after the record's %d", r.Topic, r.Key, r.header("ordo-not-before"), r.TS)
		}
		if p := r.header("ordo-original-partition"); p != strconv.Itoa(int(r.Partition)) {
			t.Errorf("%s key %s: on partition %d, from partition %s", r.Topic, r.Key, r.Partition, p)
		}
		if _, err := strconv.ParseInt(r.header("ordo-original-offset"), 10, 64); err != nil {
			t.Errorf("%s key %s: ordo-original-offset %q", r.Topic, r.Key, r.header("ordo-original-offset"))
		}
	}
	base := map[string]string{"ordo-original-topic": "orders", "ordo-group": "ordo-dev", "ordo-processor": "example"}
	with := func(m map[string]string) map[string]string {
		for k, v := range base {
			m[k] = v
		}
		return m
	}
	for _, r := range t1 {
		check(r, with(map[string]string{"ordo-tier": "1", "ordo-attempt": "3", "ordo-error-class": "retryable"}))
	}
	for _, r := range t2 {
		check(r, with(map[string]string{"ordo-tier": "2", "ordo-attempt": "4", "ordo-error-class": "retryable"}))
	}
	for _, r := range dead {
		check(r, with(map[string]string{"ordo-attempt": "1", "ordo-error-class": "permanent"}))
		if !strings.HasPrefix(r.Key, "m-") && !strings.HasPrefix(r.Key, "r-") {
			t.Errorf("dead letter with key %s", r.Key)
		}
	}

	// ordo dlq list sees the same letters.
	list, err := exec.CommandContext(ctx, bin, "dlq", "list", "--brokers", kafka, "--topic", "orders", "--group", "ordo-dev").CombinedOutput()
	if err != nil {
		t.Fatalf("ordo dlq list: %v\n%s", err, list)
	}
	for _, k := range append([]string{`"m-0"`}, `"r-0"`) {
		if !strings.Contains(string(list), k) {
			t.Errorf("ordo dlq list lacks %s:\n%s", k, list)
		}
	}
	if n := len(regexp.MustCompile(`(?m)\sordo-dev\s+permanent\s`).FindAllString(string(list), -1)); n != malformed+rejected {
		t.Errorf("ordo dlq list shows %d permanent letters, want %d:\n%s", n, malformed+rejected, list)
	}

	// After the fix: redrive the rejected ones; they are applied.
	time.Sleep(time.Until(fixedAt) + 100*time.Millisecond)
	redrive := func() string {
		t.Helper()
		out, err := exec.CommandContext(ctx, bin, "dlq", "redrive", "--brokers", kafka, "--topic", "orders", "--group", "ordo-dev",
			"--key", strings.Join(rejectedKeys, ","), "--execute").CombinedOutput()
		if err != nil {
			t.Fatalf("ordo dlq redrive: %v\n%s", err, out)
		}
		return string(out)
	}
	first := redrive()
	waitMetrics("the redriven records to be applied", func(out, _ map[string]float64) bool {
		return out["ok"] == good+tier1+tier2+rejected
	})
	second := redrive()
	time.Sleep(2 * time.Second) // tier 1 is due at once: anything redriven twice would run by now
	if out, _ := outcomes(metrics); out["ok"] != good+tier1+tier2+rejected || out["dlq"] != malformed+rejected {
		t.Errorf("after a second redrive: outcomes %v; want ok %d and dlq %d unchanged\nfirst redrive:\n%s\nsecond:\n%s",
			out, good+tier1+tier2+rejected, malformed+rejected, first, second)
	}
	redriven := kcatRead(ctx, t, kcat, kafka, "orders.ordo-dev.retry.1")
	n := 0
	for _, r := range redriven {
		if id := r.header("ordo-redrive-id"); id != "" {
			n++
			if !strings.HasPrefix(id, "orders.ordo-dev.dlq/") || !strings.HasPrefix(r.Key, "r-") {
				t.Errorf("redriven record key %s has ordo-redrive-id %q", r.Key, id)
			}
		}
	}
	if n != rejected {
		t.Errorf("%d redriven records in tier 1, want %d (the second redrive applied nothing)", n, rejected)
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
}
