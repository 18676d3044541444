package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"
	"go.uber.org/goleak"

	"github.com/ordokafka/ordo/pkg/devbroker"
	"github.com/ordokafka/ordo/pkg/ordo"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// syncBuffer collects a process's output for a test to read.
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

// The program lists its processor beside the built-ins.
func TestRegistersBesideTheBuiltins(t *testing.T) {
	var out bytes.Buffer
	code := run(t.Context(), []string{"run", "--brokers", "127.0.0.1:1", "--group", "g", "--topic", "orders",
		"--processor", "big", "--metrics-addr", ""}, &out, &out)
	if want := `"big" is not registered (registered: big-orders, example, log, postgres, redis-ledger, webhook)`; code != 2 || !strings.Contains(out.String(), want) {
		t.Errorf("exit %d:\n%s\nwant 2 and %q", code, out.String(), want)
	}
}

// The example builds into a binary of its own, which runs big-orders as
// `ordo run` would, against a broker: it reports the big orders, dead-
// letters the malformed one, and drains at SIGTERM.
func TestBinaryRunsBigOrders(t *testing.T) {
	bin := filepath.Join(t.TempDir(), "custom-processor")
	if out, err := exec.CommandContext(t.Context(), "go", "build", "-o", bin, ".").CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	dlqTopic := ordo.DefaultNaming.DLQTopic("orders", "audit")
	b, err := devbroker.Start(devbroker.Options{Addr: "127.0.0.1:0", Extra: []kfake.Opt{kfake.SeedTopics(3, "orders", dlqTopic)}})
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	cl, err := kgo.NewClient(kgo.SeedBrokers(b.Addr()), kgo.ConsumeTopics(dlqTopic))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	const orders, big = 30, 6
	for i := range orders {
		cents := int64(100 + i)
		if i%5 == 0 {
			cents = 9000 + int64(i)
		}
		v, _ := json.Marshal(Order{Customer: fmt.Sprintf("c-%d", i%4), AmountCents: cents})
		cl.Produce(t.Context(), &kgo.Record{Topic: "orders", Key: []byte(fmt.Sprintf("c-%d", i%4)), Value: v}, nil)
	}
	malformed := &kgo.Record{Topic: "orders", Key: []byte("c-9"), Value: []byte(`{"customer":"c-9","amount_cents":`)}
	if err := cl.ProduceSync(t.Context(), malformed).FirstErr(); err != nil {
		t.Fatal(err)
	}

	var stdout, stderr syncBuffer
	cmd := exec.CommandContext(t.Context(), bin, "run", "--brokers", b.Addr(), "--group", "audit", "--topic", "orders",
		"--processor", "big-orders", "--processor-config", "{limit_cents: 5000}", "--metrics-addr", "", "--log-level", "info")
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() { _ = cmd.Process.Kill() }()
	for deadline := time.Now().Add(30 * time.Second); strings.Count(stderr.String(), `msg="big order"`) < big; time.Sleep(20 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("%d big orders reported, want %d:\n%s\n%s", strings.Count(stderr.String(), `msg="big order"`), big, stdout.String(), stderr.String())
		}
	}
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	defer cancel()
	fs := cl.PollRecords(ctx, 1)
	if err := fs.Err(); err != nil {
		t.Fatalf("reading %s: %v", dlqTopic, err)
	}
	dl := fs.Records()[0]
	var class, processor string
	for _, h := range dl.Headers {
		switch h.Key {
		case ordo.HeaderErrorClass:
			class = string(h.Value)
		case ordo.HeaderProcessor:
			processor = string(h.Value)
		}
	}
	if class != "permanent" || processor != "big-orders" || string(dl.Key) != "c-9" {
		t.Errorf("dead letter key %q, class %q, processor %q", dl.Key, class, processor)
	}

	if err := cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	if err := cmd.Wait(); err != nil {
		t.Fatalf("exit: %v\n%s\n%s", err, stdout.String(), stderr.String())
	}
	if !strings.Contains(stdout.String(), fmt.Sprintf("processed=%d ", orders)) || !strings.Contains(stdout.String(), "dlq=1 ") {
		t.Errorf("final line:\n%s", stdout.String())
	}
	if strings.Count(stderr.String(), `msg="big order"`) != big {
		t.Errorf("big orders reported %d times, want %d", strings.Count(stderr.String(), `msg="big order"`), big)
	}
}
