package ordocli_test

import (
	"bytes"
	"context"
	"errors"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/ordokafka/ordo/pkg/devbroker"
	"github.com/ordokafka/ordo/pkg/ordo"
	"github.com/ordokafka/ordo/pkg/ordocli"
	"github.com/ordokafka/ordo/pkg/registry"
	"github.com/ordokafka/ordo/processors/builtin"
)

// counter is a processor of the test's own, registered beside the
// built-ins: it counts records and remembers its options and its Close.
type counter struct {
	prefix string
	n      atomic.Int64
	closed atomic.Bool
}

func (c *counter) Process(_ context.Context, r *kgo.Record) error {
	if !strings.HasPrefix(string(r.Value), c.prefix) {
		return ordo.Permanent(errors.New("no prefix"))
	}
	c.n.Add(1)
	return nil
}

func (c *counter) Close() error { c.closed.Store(true); return nil }

// counterFactory registers a counter and hands it back through got.
func counterFactory(got chan<- *counter) registry.Factory {
	return func(s registry.Setup) (ordo.Processor, error) {
		var o struct {
			Prefix string `yaml:"prefix"`
		}
		if err := s.Decode(&o); err != nil {
			return nil, err
		}
		c := &counter{prefix: o.Prefix}
		got <- c
		return c, nil
	}
}

// syncBuffer is a bytes.Buffer safe for the command's goroutines.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// `ordo run --processor count` runs the program's own processor, with its
// --processor-config, against a broker, and closes it after the drain.
func TestRunFindsARegisteredProcessor(t *testing.T) {
	b, err := devbroker.Start(devbroker.Options{Addr: "127.0.0.1:0", Extra: []kfake.Opt{
		kfake.SeedTopics(2, "events", ordo.DefaultNaming.DLQTopic("events", "g")),
	}})
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	cl, err := kgo.NewClient(kgo.SeedBrokers(b.Addr()))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	const n = 50
	for i := range n {
		if err := cl.ProduceSync(t.Context(), &kgo.Record{Topic: "events", Key: []byte{byte(i % 7)}, Value: []byte("ev-" + string(rune('a'+i%26)))}).FirstErr(); err != nil {
			t.Fatal(err)
		}
	}

	got := make(chan *counter, 1)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var out, errb syncBuffer
	code := make(chan int, 1)
	go func() {
		code <- ordocli.Main(ctx, []string{"run", "--brokers", b.Addr(), "--group", "g", "--topic", "events",
			"--processor", "count", "--processor-config", "{prefix: ev-}", "--metrics-addr", "", "--log-level", "error"},
			&out, &errb, ordocli.WithProcessors(builtin.New()), ordocli.WithProcessor("count", counterFactory(got)))
	}()
	var c *counter
	select {
	case c = <-got:
	case rc := <-code:
		t.Fatalf("exit %d before building the processor:\n%s%s", rc, out.String(), errb.String())
	}
	for deadline := time.Now().Add(20 * time.Second); c.n.Load() < n; time.Sleep(10 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("%d of %d records processed:\n%s%s", c.n.Load(), n, out.String(), errb.String())
		}
	}
	cancel()
	if rc := <-code; rc != 0 {
		t.Fatalf("exit %d:\n%s%s", rc, out.String(), errb.String())
	}
	if !c.closed.Load() {
		t.Error("the processor was not closed after the stop")
	}
	if !strings.Contains(out.String(), "processed=50 ") {
		t.Errorf("final line lacks processed=50:\n%s", out.String())
	}
}

// An unknown name is a usage error that lists what the binary registers,
// built-ins and the program's own.
func TestUnknownProcessorListsTheRegisteredOnes(t *testing.T) {
	var out, errb bytes.Buffer
	rc := ordocli.Main(t.Context(), []string{"run", "--brokers", "127.0.0.1:1", "--group", "g", "--topic", "t",
		"--processor", "nope", "--metrics-addr", ""}, &out, &errb,
		ordocli.WithProcessors(builtin.New()), ordocli.WithProcessor("count", counterFactory(make(chan *counter, 1))))
	want := `--processor: "nope" is not registered (registered: count, example, log, postgres, redis-ledger, webhook)`
	if rc != 2 || !strings.Contains(errb.String(), want) {
		t.Errorf("exit %d, stderr %q; want 2 and %q", rc, errb.String(), want)
	}

	errb.Reset()
	rc = ordocli.Main(t.Context(), []string{"run", "--brokers", "127.0.0.1:1", "--group", "g", "--topic", "t",
		"--processor", "count", "--processor-config", "{prefx: ev-}", "--metrics-addr", ""}, &out, &errb,
		ordocli.WithProcessor("count", counterFactory(make(chan *counter, 1))))
	want = `--processor-config: processor "count": unknown option "prefx"`
	if rc != 2 || !strings.Contains(errb.String(), want) {
		t.Errorf("exit %d, stderr %q; want 2 and %q", rc, errb.String(), want)
	}
}

// ordo dev refuses an unknown processor before it starts anything, and a
// bad --processor-config.
func TestDevRefusesUnknownProcessors(t *testing.T) {
	var out, errb bytes.Buffer
	rc := ordocli.Main(t.Context(), []string{"dev", "--processor", "nope", "--processor-config", "[1, 2]",
		"--kafka-addr", "127.0.0.1:0", "--metrics-addr", "", "--topics-dir", "../../topics"}, &out, &errb,
		ordocli.WithProcessor("count", counterFactory(make(chan *counter, 1))))
	for _, want := range []string{
		`--processor "nope" is not registered (registered: count, postgres, redis-ledger, webhook)`,
		`--processor-config want a YAML mapping ('{key: value}'), got "[1, 2]"`,
	} {
		if rc != 2 || !strings.Contains(errb.String(), want) {
			t.Errorf("exit %d, stderr %q; want 2 and %q", rc, errb.String(), want)
		}
	}
	if strings.Contains(out.String(), "broker") {
		t.Errorf("started a broker:\n%s", out.String())
	}
}

// Registering a name twice is refused before any command runs.
func TestDuplicateProcessorExitsTwo(t *testing.T) {
	var out, errb bytes.Buffer
	rc := ordocli.Main(t.Context(), []string{"topics", "list", "--dir", "../../topics"}, &out, &errb,
		ordocli.WithProcessors(builtin.New()), ordocli.WithProcessor("log", counterFactory(make(chan *counter, 1))))
	if rc != 2 || !strings.Contains(errb.String(), `processor "log" registered twice`) || out.Len() != 0 {
		t.Errorf("exit %d, stdout %q, stderr %q", rc, out.String(), errb.String())
	}
}

// `ordo dev --demo --processor count` runs the program's processor on the
// embedded broker, fed by the demo generator, and drains at a signal.
func TestDevRunsARegisteredProcessor(t *testing.T) {
	got := make(chan *counter, 1)
	sigs := make(chan os.Signal, 2)
	var out, errb syncBuffer
	code := make(chan int, 1)
	go func() {
		code <- ordocli.Main(context.Background(), []string{"dev", "--demo", "--processor", "count", "--processor-config", "{prefix: '{'}",
			"--kafka-addr", "127.0.0.1:0", "--metrics-addr", "", "--topics-dir", "../../topics", "--rate", "500",
			"--malformed-every", "0", "--flaky-every", "0", "--log-level", "error"},
			&out, &errb, ordocli.WithProcessor("count", counterFactory(got)), ordocli.WithSignalChannel(sigs))
	}()
	var c *counter
	select {
	case c = <-got:
	case rc := <-code:
		t.Fatalf("exit %d before building the processor:\n%s%s", rc, out.String(), errb.String())
	}
	for deadline := time.Now().Add(20 * time.Second); c.n.Load() < 100; time.Sleep(10 * time.Millisecond) {
		if time.Now().After(deadline) {
			sigs <- syscall.SIGINT
			sigs <- syscall.SIGINT
			<-code
			t.Fatalf("%d records processed:\n%s%s", c.n.Load(), out.String(), errb.String())
		}
	}
	sigs <- syscall.SIGINT
	if rc := <-code; rc != 0 {
		t.Fatalf("exit %d:\n%s%s", rc, out.String(), errb.String())
	}
	if !c.closed.Load() || !strings.Contains(out.String(), "with the count processor") {
		t.Errorf("closed %v; output:\n%s", c.closed.Load(), out.String())
	}
}
