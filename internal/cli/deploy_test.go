package cli

import (
	"bytes"
	"context"
	"fmt"
	"regexp"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/ordokafka/ordo/pkg/devbroker"
	"github.com/ordokafka/ordo/pkg/topics"
)

const deployConfig = "../../deploy/ordo.yaml"

// deploy/ordo.yaml through the real loader: as written (the compose
// Redpanda), and with the overrides docs/cli.md gives to run it beside
// `ordo dev`.
func TestDeployConfigLoads(t *testing.T) {
	cases := []struct {
		name    string
		env     []string
		args    []string
		brokers []string
		metrics string
	}{
		{"as written", nil, nil, []string{"localhost:19092"}, "127.0.0.1:9100"},
		{"beside ordo dev, flags", nil, []string{"--brokers", "127.0.0.1:9092", "--metrics-addr", "127.0.0.1:9101"},
			[]string{"127.0.0.1:9092"}, "127.0.0.1:9101"},
		{"beside ordo dev, environment", []string{"ORDO_BROKERS=127.0.0.1:9092", "ORDO_METRICS_ADDR=127.0.0.1:9101"}, nil,
			[]string{"127.0.0.1:9092"}, "127.0.0.1:9101"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			r := &RunCmd{Out: &bytes.Buffer{}, Err: &bytes.Buffer{}, Environ: func() []string { return tc.env }}
			cmd := newRunCommand(r)
			if err := cmd.ParseFlags(append([]string{"--config", deployConfig}, tc.args...)); err != nil {
				t.Fatal(err)
			}
			if err := r.Validate(); err != nil {
				t.Fatalf("%s: %v", deployConfig, err)
			}
			c := r.cfg
			if !slices.Equal(c.Brokers, tc.brokers) || *r.fc.MetricsAddr != tc.metrics {
				t.Errorf("brokers %q metrics_addr %q, want %q %q", c.Brokers, *r.fc.MetricsAddr, tc.brokers, tc.metrics)
			}
			if c.Group != "orders-ledger" || !slices.Equal(c.Topics, []string{"orders"}) || c.ProcessorName != "example" ||
				c.ConnectTimeout != 30*time.Second || c.ShutdownTimeout != 30*time.Second || c.Retry.MaxAttempts != 5 ||
				r.fc.ExampleWork != 2*time.Millisecond {
				t.Errorf("decoded %+v", c)
			}
		})
	}
}

// syncBuffer is a buffer that a command writes to while the test reads it.
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

var brokerLine = regexp.MustCompile(`Kafka-protocol broker on (\S+) `)

// The documented pairing, in-process: `ordo dev --broker-only` (the
// broker and the topics of topics/), and `ordo run --config
// deploy/ordo.yaml` beside it with --brokers and --metrics-addr overrides.
// ordo run must consume and commit everything and stop cleanly.
func TestRunDeployConfigBesideDev(t *testing.T) {
	var devOut syncBuffer
	devCtx, stopDev := context.WithCancel(context.Background())
	devDone := make(chan int, 1)
	go func() {
		devDone <- Main(devCtx, []string{"dev", "--broker-only", "--kafka-addr", "127.0.0.1:0", "--topics-dir", "../../topics"}, &devOut, &devOut)
	}()
	defer func() {
		stopDev()
		if code := <-devDone; code != 0 {
			t.Errorf("ordo dev exit %d:\n%s", code, devOut.String())
		}
	}()
	var addr string
	for deadline := time.Now().Add(10 * time.Second); addr == ""; time.Sleep(10 * time.Millisecond) {
		if m := brokerLine.FindStringSubmatch(devOut.String()); m != nil && strings.Contains(devOut.String(), "ordo dev: topics") {
			addr = m[1]
		} else if time.Now().After(deadline) {
			t.Fatalf("ordo dev did not start:\n%s", devOut.String())
		}
	}

	var out, errb syncBuffer
	runCtx, stopRun := context.WithCancel(context.Background())
	defer stopRun()
	runDone := make(chan int, 1)
	go func() {
		runDone <- Main(runCtx, []string{"run", "--config", deployConfig, "--brokers", addr, "--metrics-addr", "127.0.0.1:0",
			"--log-level", "error"}, &out, &errb)
	}()

	cl, err := kgo.NewClient(kgo.SeedBrokers(addr), kgo.DefaultProduceTopic("orders"))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	const n = 200
	for i := 1; i <= n; i++ {
		v := fmt.Sprintf(`{"customer":"c-%d","seq":%d,"amount_cents":1}`, i%7, (i+6)/7)
		if err := cl.ProduceSync(context.Background(), &kgo.Record{Key: fmt.Appendf(nil, "c-%d", i%7), Value: []byte(v)}).FirstErr(); err != nil {
			t.Fatal(err)
		}
	}
	adm := kadm.NewClient(cl)
	for deadline := time.Now().Add(30 * time.Second); ; time.Sleep(50 * time.Millisecond) {
		offs, err := adm.FetchOffsets(context.Background(), "orders-ledger")
		total := int64(0)
		if err == nil {
			offs.Each(func(o kadm.OffsetResponse) { total += o.At })
		}
		if total == n {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("committed %d of %d (err %v)\nstdout:\n%s\nstderr:\n%s", total, n, err, out.String(), errb.String())
		}
	}
	stopRun()
	select {
	case code := <-runDone:
		if code != 0 {
			t.Fatalf("ordo run exit %d\nstdout:\n%s\nstderr:\n%s", code, out.String(), errb.String())
		}
	case <-time.After(30 * time.Second):
		t.Fatal("ordo run did not stop")
	}
	for _, w := range []string{"ordo run: metrics on http://127.0.0.1:", `group "orders-ledger" consuming [orders] from [` + addr + "]",
		fmt.Sprintf("ordo run: stopped. processed=%d ", n)} {
		if !strings.Contains(out.String(), w) {
			t.Errorf("stdout lacks %q:\n%s", w, out.String())
		}
	}
}

// TestDeployConfigMatchesItsChain: deploy/ordo.yaml's retry.tiers are the
// delays topics/ declares for its group, so `ordo topics apply` creates
// the tiers `ordo run` routes to.
func TestDeployConfigMatchesItsChain(t *testing.T) {
	r := &RunCmd{ConfigPath: deployConfig, Out: &bytes.Buffer{}, Err: &bytes.Buffer{}, Environ: func() []string { return nil }}
	if err := r.Validate(); err != nil {
		t.Fatal(err)
	}
	set, err := topics.Load("../../topics")
	if err != nil {
		t.Fatal(err)
	}
	for _, topic := range r.cfg.Topics {
		c, ok := set.Chain(topic, r.cfg.Group)
		if !ok {
			t.Fatalf("topics/ declares no chain for group %q on %s", r.cfg.Group, topic)
		}
		if !slices.Equal(c.Retry.Delays, r.cfg.Retry.Tiers) || !c.DLQ {
			t.Errorf("topics/ declares %v (dlq %v) for %s/%s; deploy/ordo.yaml routes to tiers %v", c.Retry.Delays, c.DLQ, topic, r.cfg.Group, r.cfg.Retry.Tiers)
		}
	}
}

// TestRunRefusesMissingChainTopics: `ordo run` with retry tiers whose
// topics do not exist fails before joining the group, naming each missing
// topic and the command that creates them.
func TestRunRefusesMissingChainTopics(t *testing.T) {
	b, err := devbroker.Start(devbroker.Options{Addr: "127.0.0.1:0", Extra: []kfake.Opt{kfake.SeedTopics(1, "orders", "orders.g.retry.1")}})
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	var out bytes.Buffer
	r := &RunCmd{Out: &out, Err: &out, Environ: func() []string {
		return []string{"ORDO_BROKERS=" + b.Addr(), "ORDO_GROUP=g", "ORDO_TOPICS=orders", "ORDO_PROCESSOR=log",
			"ORDO_METRICS_ADDR=", "ORDO_RETRY_TIERS=1s,1m"}
	}}
	if err := r.Validate(); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	err = r.Run(ctx)
	if err == nil || !strings.Contains(err.Error(), "orders.g.dlq, orders.g.retry.2") || !strings.Contains(err.Error(), "ordo topics apply") {
		t.Fatalf("run = %v; want an error naming orders.g.dlq, orders.g.retry.2 and ordo topics apply", err)
	}
	cl, err := kgo.NewClient(kgo.SeedBrokers(b.Addr()))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	groups, _ := kadm.NewClient(cl).ListGroups(ctx)
	if len(groups) != 0 {
		t.Errorf("groups %v exist: the run joined before failing", groups.Groups())
	}
}
