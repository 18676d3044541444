package cli

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"
	"go.uber.org/goleak"

	"github.com/ordokafka/ordo/pkg/devbroker"
	"github.com/ordokafka/ordo/pkg/ordo"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

func TestDevValidateNamesFlags(t *testing.T) {
	d := &DevCmd{KafkaAddr: "nope", MetricsAddr: "", TopicsDir: "/does/not/exist", Demo: true, Rate: 0,
		Customers: 1, Ordering: "key", LogLevel: "warn", ShutdownTimeout: time.Second}
	err := d.Validate()
	for _, f := range []string{"--kafka-addr", "--rate", "--topics-dir"} {
		if err == nil || !strings.Contains(err.Error(), f) {
			t.Errorf("error %v does not name %s", err, f)
		}
	}
}

func TestMainUsageExitCode(t *testing.T) {
	var out, errb bytes.Buffer
	if code := Main(context.Background(), []string{"dev", "--no-such-flag"}, &out, &errb); code != 2 {
		t.Errorf("exit code %d for a bad flag, want 2 (stderr %q)", code, errb.String())
	}
	if code := Main(context.Background(), []string{"run"}, &out, &errb); code != 2 || !strings.Contains(errb.String(), "--config") {
		t.Errorf("exit code %d, stderr %q: want 2 naming --config", code, errb.String())
	}
}

func TestTopicsList(t *testing.T) {
	var out bytes.Buffer
	if code := Main(context.Background(), []string{"topics", "list", "--dir", "../../topics"}, &out, &out); code != 0 {
		t.Fatalf("exit %d: %s", code, out.String())
	}
	words := strings.Join(strings.Fields(out.String()), " ")
	for _, line := range []string{
		"orders main -",
		"orders.ordo-dev.retry.1 retry ordo-dev 1 1s",
		"orders.ordo-dev.retry.3 retry ordo-dev 3 30s",
		"orders.ordo-dev.dlq dlq ordo-dev -",
		"orders.orders-ledger.retry.2 retry orders-ledger 2 10m0s",
	} {
		if !strings.Contains(words, line) {
			t.Errorf("topics list lacks %q:\n%s", line, out.String())
		}
	}
	if strings.Contains(out.String(), "orders.dlq") || strings.Contains(out.String(), "orders.retry.") {
		t.Errorf("topics list shows a chain without its group:\n%s", out.String())
	}
}

// TestDevDemoRuns runs `ordo dev --demo` in-process for a few seconds on
// free ports: it must process events, dead-letter the malformed ones, see
// no ordering violation and exit cleanly at --duration.
func TestDevDemoRuns(t *testing.T) {
	var out bytes.Buffer
	d := &DevCmd{KafkaAddr: "127.0.0.1:0", MetricsAddr: "127.0.0.1:0", TopicsDir: "../../topics", Topic: "orders",
		Group: "ordo-dev", Demo: true, Rate: 3000, Customers: 50, MalformedEvery: 100, Work: 0, Duration: 3 * time.Second,
		ShutdownTimeout: 10 * time.Second, Ordering: "key", Workers: 4, LogLevel: "error", Out: &syncWriter{w: &out}}
	if err := d.Validate(); err != nil {
		t.Fatal(err)
	}
	if err := d.Run(context.Background()); err != nil {
		t.Fatal(err)
	}
	s := out.String()
	last := finalLine(s)
	if !strings.Contains(last, "order-violations=0") {
		t.Errorf("final line %q", last)
	}
	if strings.Contains(last, "processed=0 ") || strings.Contains(last, "dlq=0 ") {
		t.Errorf("nothing processed or dead-lettered: %q", last)
	}
	if !strings.Contains(s, "[1s] produced=") {
		t.Errorf("no progress line:\n%s", s)
	}
}

// TestRunAgainstBroker runs `ordo run` with a config file against a broker
// (the embedded one, standing in for Redpanda), feeds it events, and stops
// it by canceling its context as SIGTERM does.
func TestRunAgainstBroker(t *testing.T) {
	b, err := devbroker.Start(devbroker.Options{Addr: "127.0.0.1:0", Extra: []kfake.Opt{kfake.SeedTopics(3, "orders", ordo.DefaultNaming.DLQTopic("orders", "g"))}})
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	p := filepath.Join(t.TempDir(), "ordo.yaml")
	body := "brokers: [" + b.Addr() + "]\ngroup: g\ntopics: [orders]\nprocessor: example\nmetrics_addr: \"\"\nlog_level: error\nsession_timeout: 6s\nshutdown_timeout: 10s\n"
	if err := os.WriteFile(p, []byte(body), 0o600); err != nil {
		t.Fatal(err)
	}
	var out bytes.Buffer
	r := &RunCmd{ConfigPath: p, Out: &syncWriter{w: &out}}
	if err := r.Validate(); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- r.Run(ctx) }()

	cl, err := kgo.NewClient(kgo.SeedBrokers(b.Addr()), kgo.DefaultProduceTopic("orders"))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	for i := 1; i <= 100; i++ {
		v := fmt.Sprintf(`{"customer":"c-%d","seq":%d,"amount_cents":1}`, i%7, (i+6)/7)
		if err := cl.ProduceSync(context.Background(), &kgo.Record{Key: fmt.Appendf(nil, "c-%d", i%7), Value: []byte(v)}).FirstErr(); err != nil {
			t.Fatal(err)
		}
	}
	adm := kadm.NewClient(cl)
	deadline := time.Now().Add(30 * time.Second)
	for {
		offs, err := adm.FetchOffsets(context.Background(), "g")
		total := int64(0)
		if err == nil {
			offs.Each(func(o kadm.OffsetResponse) { total += o.At })
		}
		if total == 100 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("committed %d of 100 (err %v)", total, err)
		}
		time.Sleep(50 * time.Millisecond)
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(out.String(), "ordo run: stopped. processed=100 ") {
		t.Errorf("output:\n%s", out.String())
	}
}

func TestRunConfigEveryKeyMapsToConfig(t *testing.T) {
	p := filepath.Join(t.TempDir(), "all.yaml")
	body := `brokers: [a:1]
group: g
topics: [t]
processor: log
processor_name: ledger
max_in_flight_bytes_per_partition: 1000
max_in_flight_bytes: 5000
max_poll_records: 77
retry: {max_attempts: 3, initial_backoff: 10ms, max_backoff: 1s, hold_delay: 2s}
`
	if err := os.WriteFile(p, []byte(body), 0o600); err != nil {
		t.Fatal(err)
	}
	r := &RunCmd{ConfigPath: p, Out: &bytes.Buffer{}}
	if err := r.Validate(); err != nil {
		t.Fatal(err)
	}
	c := r.cfg
	if c.ProcessorName != "ledger" || c.MaxInFlightBytesPerPartition != 1000 || c.MaxInFlightBytes != 5000 ||
		c.MaxPollRecords != 77 || c.Retry.HoldDelay != 2*time.Second || c.Retry.MaxAttempts != 3 {
		t.Errorf("config %+v", c)
	}
	if *r.fc.MetricsAddr != "127.0.0.1:9100" {
		t.Errorf("metrics_addr default %q, want 127.0.0.1:9100", *r.fc.MetricsAddr)
	}
}
