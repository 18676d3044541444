package bench

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"os"
	"os/exec"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// NoopConfig is the noop-throughput comparison: Ordo with key ordering and a
// no-op processor against a raw franz-go poll loop, on a broker in another
// process, each side in its own process.
type NoopConfig struct {
	// Exe is the ordo binary that runs the broker (`ordo dev --broker-only`)
	// and the sides (`ordo bench worker`). Default: this executable.
	Exe string
	// Env is added to the children's environment.
	Env []string
	// Records, Partitions, Keys and ValueBytes shape the topic. Defaults
	// 1,000,000, 12, 10,000 and 100.
	Records, Partitions, Keys, ValueBytes int
	// Rounds is the number of raw/ordo alternations; the median of each side
	// is reported. Default 3.
	Rounds int
	// Seed seeds the values.
	Seed uint64
	// CPUProfile, if set, is a path prefix: each side's child writes a CPU
	// profile to PREFIX.<side>.<round>.pprof.
	CPUProfile string
	// Progress receives a line per step. Default: discard.
	Progress io.Writer
	// Timeout bounds each child's run. Default 5 minutes.
	Timeout time.Duration
}

// NoopResult is what a noop-throughput run measured.
type NoopResult struct {
	Records int
	// Raw and Ordo are the runs of each side, in order.
	Raw, Ordo []WorkerResult
	// RawRate and OrdoRate are the medians of the sides, in records/s.
	RawRate, OrdoRate float64
	// RawRSS and OrdoRSS are the highest peak RSS of the sides' runs, bytes.
	RawRSS, OrdoRSS int64
	// RawCPU and OrdoCPU are the medians of the sides' CPU per record.
	RawCPU, OrdoCPU time.Duration
	// ProduceRate is the rate at which the records were produced.
	ProduceRate float64
}

func (c NoopConfig) withDefaults() NoopConfig {
	if c.Records == 0 {
		c.Records = 1_000_000
	}
	if c.Partitions == 0 {
		c.Partitions = 12
	}
	if c.Keys == 0 {
		c.Keys = 10_000
	}
	if c.ValueBytes == 0 {
		c.ValueBytes = 100
	}
	if c.Rounds == 0 {
		c.Rounds = defaultNoopRounds
	}
	if c.Progress == nil {
		c.Progress = io.Discard
	}
	if c.Timeout == 0 {
		c.Timeout = 5 * time.Minute
	}
	return c
}

// NoopThroughput starts a broker in a child process, produces the records
// once, then alternates a raw and an Ordo worker child Rounds times, each
// with a fresh group, and kills the broker.
func NoopThroughput(ctx context.Context, cfg NoopConfig) (NoopResult, error) {
	cfg = cfg.withDefaults()
	res := NoopResult{Records: cfg.Records}
	if cfg.Records < 1 || cfg.Partitions < 1 || cfg.Keys < 1 || cfg.ValueBytes < 0 || cfg.Rounds < 1 {
		return res, errors.New("bench: noop-throughput: Records, Partitions, Keys and Rounds must be >= 1")
	}
	if cfg.Exe == "" {
		exe, err := os.Executable()
		if err != nil {
			return res, fmt.Errorf("bench: finding the ordo executable: %w", err)
		}
		cfg.Exe = exe
	}
	broker, err := startBrokerChild(ctx, cfg.Exe, cfg.Env)
	if err != nil {
		return res, err
	}
	defer broker.kill()
	fmt.Fprintf(cfg.Progress, "noop-throughput: broker child (pid %d) on %s\n", broker.cmd.Process.Pid, broker.addr)

	id := strconv.FormatInt(time.Now().UnixNano(), 36)
	topic := "bench-noop-" + id
	took, err := produceNoop(ctx, broker.addr, topic, cfg)
	if err != nil {
		return res, err
	}
	res.ProduceRate = float64(cfg.Records) / took.Seconds()
	fmt.Fprintf(cfg.Progress, "noop-throughput: produced %s records in %.2fs (%s records/s)\n",
		groupDigits(float64(cfg.Records)), took.Seconds(), groupDigits(res.ProduceRate))

	for round := range cfg.Rounds {
		// Alternate which side goes first, so that neither always inherits
		// the broker's garbage from the one before.
		sides := []string{SideRaw, SideOrdo}
		if round%2 == 1 {
			sides = []string{SideOrdo, SideRaw}
		}
		for _, side := range sides {
			wc := WorkerConfig{
				Side:    side,
				Brokers: []string{broker.addr},
				Topic:   topic,
				Group:   fmt.Sprintf("bench-noop-%s-%d-%s", side, round+1, id),
				Records: int64(cfg.Records),
			}
			if cfg.CPUProfile != "" {
				wc.CPUProfile = fmt.Sprintf("%s.%s.%d.pprof", cfg.CPUProfile, side, round+1)
			}
			wr, err := runWorkerChild(ctx, cfg.Exe, cfg.Env, wc, cfg.Timeout, broker)
			if err != nil {
				return res, err
			}
			fmt.Fprintf(cfg.Progress, "noop-throughput: round %d %-4s %s records/s in %.3fs, CPU %.0f ns/record, peak RSS %.0f MiB\n",
				round+1, side, groupDigits(wr.RecordsPerSecond()), wr.ElapsedS, wr.CPUS*1e9/float64(max(wr.Records, 1)), mib(wr.MaxRSSBytes))
			if side == SideRaw {
				res.Raw = append(res.Raw, wr)
				res.RawRSS = max(res.RawRSS, wr.MaxRSSBytes)
			} else {
				res.Ordo = append(res.Ordo, wr)
				res.OrdoRSS = max(res.OrdoRSS, wr.MaxRSSBytes)
			}
		}
	}
	res.RawRate = medianRate(res.Raw)
	res.OrdoRate = medianRate(res.Ordo)
	res.RawCPU = medianCPU(res.Raw)
	res.OrdoCPU = medianCPU(res.Ordo)
	return res, nil
}

// medianCPU is the median CPU per record of runs.
func medianCPU(runs []WorkerResult) time.Duration {
	v := make([]float64, len(runs))
	for i, r := range runs {
		if r.Records > 0 {
			v[i] = r.CPUS * 1e9 / float64(r.Records)
		}
	}
	return time.Duration(median(v))
}

func medianRate(runs []WorkerResult) float64 {
	rates := make([]float64, len(runs))
	for i, r := range runs {
		rates[i] = r.RecordsPerSecond()
	}
	return median(rates)
}

// median returns the middle value (the mean of the two middle ones for an
// even count); 0 for none.
func median(v []float64) float64 {
	if len(v) == 0 {
		return 0
	}
	s := slices.Clone(v)
	slices.Sort(s)
	n := len(s)
	if n%2 == 1 {
		return s[n/2]
	}
	return (s[n/2-1] + s[n/2]) / 2
}

func mib(b int64) float64 { return float64(b) / (1 << 20) }

// WorkerArgs are the arguments of `ordo bench worker` for cfg.
func WorkerArgs(cfg WorkerConfig) []string {
	args := []string{"bench", "worker",
		"--side", cfg.Side,
		"--brokers", strings.Join(cfg.Brokers, ","),
		"--topic", cfg.Topic,
		"--group", cfg.Group,
		"--records", strconv.FormatInt(cfg.Records, 10),
	}
	if cfg.CPUProfile != "" {
		args = append(args, "--cpuprofile", cfg.CPUProfile)
	}
	return args
}

// BrokerArgs are the arguments of the broker child listening on addr.
func BrokerArgs(addr string) []string {
	return []string{"dev", "--broker-only", "--topics-dir", "", "--kafka-addr", addr, "--metrics-addr", ""}
}

// child is a running child process. Its output is kept for error messages.
type child struct {
	cmd    *exec.Cmd
	stdout *tailBuffer
	stderr *tailBuffer
	cancel context.CancelFunc
	exited chan struct{} // closed once Wait returned
	err    error         // Wait's error, set before exited closes
}

// startChild starts exe with args. The child is killed when ctx ends, when
// kill is called, and (on Linux) when this process dies.
func startChild(ctx context.Context, exe string, env []string, args ...string) (*child, error) {
	ctx, cancel := context.WithCancel(ctx)
	cmd := exec.CommandContext(ctx, exe, args...) //nolint:gosec // runs the ordo binary itself (or the one the caller chose) with arguments built here
	cmd.Env = append(os.Environ(), env...)
	c := &child{cmd: cmd, stdout: &tailBuffer{}, stderr: &tailBuffer{}, cancel: cancel, exited: make(chan struct{})}
	cmd.Stdout, cmd.Stderr = c.stdout, c.stderr
	cmd.WaitDelay = 5 * time.Second
	dieWithParent(cmd)
	if err := cmd.Start(); err != nil {
		cancel()
		return nil, fmt.Errorf("bench: starting %s %s: %w", exe, strings.Join(args, " "), err)
	}
	go func() {
		c.err = cmd.Wait()
		close(c.exited)
	}()
	return c, nil
}

// kill kills the child and waits for it.
func (c *child) kill() {
	c.cancel()
	<-c.exited
}

// exitReason describes how a child ended, from its Wait error.
func exitReason(err error) string {
	if err == nil {
		return "exit status 0"
	}
	return err.Error()
}

func (c *child) describe() string {
	var b strings.Builder
	if out := strings.TrimSpace(c.stderr.String()); out != "" {
		fmt.Fprintf(&b, "; stderr: %s", out)
	}
	if out := strings.TrimSpace(c.stdout.String()); out != "" {
		fmt.Fprintf(&b, "; stdout: %s", out)
	}
	return b.String()
}

type brokerChild struct {
	*child
	addr string
}

// startBrokerChild runs `ordo dev --broker-only` on a free loopback port and
// waits until it answers a Kafka metadata request.
func startBrokerChild(ctx context.Context, exe string, env []string) (*brokerChild, error) {
	var lastErr error
	for range 3 { // the free port may be taken before the child binds it
		addr, err := freeAddr(ctx)
		if err != nil {
			return nil, err
		}
		c, err := startChild(ctx, exe, env, BrokerArgs(addr)...)
		if err != nil {
			return nil, err
		}
		b := &brokerChild{child: c, addr: addr}
		if lastErr = b.waitReady(ctx, 30*time.Second); lastErr == nil {
			return b, nil
		}
		b.kill()
		if ctx.Err() != nil {
			break
		}
	}
	return nil, lastErr
}

func freeAddr(ctx context.Context) (string, error) {
	ln, err := (&net.ListenConfig{}).Listen(ctx, "tcp", "127.0.0.1:0")
	if err != nil {
		return "", fmt.Errorf("bench: finding a free port: %w", err)
	}
	addr := ln.Addr().String()
	return addr, ln.Close()
}

func (b *brokerChild) waitReady(ctx context.Context, within time.Duration) error {
	ctx, cancel := context.WithTimeout(ctx, within)
	defer cancel()
	var cl *kgo.Client
	defer func() {
		if cl != nil {
			cl.Close()
		}
	}()
	retry := time.NewTimer(0)
	defer retry.Stop()
	for {
		select {
		case <-b.exited:
			return fmt.Errorf("bench: broker child exited before serving on %s: %s%s", b.addr, exitReason(b.err), b.describe())
		case <-ctx.Done():
			return fmt.Errorf("bench: broker child did not answer a metadata request on %s: %w%s", b.addr, ctx.Err(), b.describe())
		case <-retry.C:
		}
		if conn, err := (&net.Dialer{Timeout: time.Second}).DialContext(ctx, "tcp", b.addr); err == nil {
			_ = conn.Close()
			if cl == nil {
				var err error
				if cl, err = kgo.NewClient(kgo.SeedBrokers(b.addr)); err != nil {
					return err
				}
			}
			rctx, rcancel := context.WithTimeout(ctx, 2*time.Second)
			_, err := cl.Request(rctx, kmsg.NewPtrMetadataRequest())
			rcancel()
			if err == nil {
				return nil
			}
		}
		retry.Reset(20 * time.Millisecond)
	}
}

// produceNoop creates the topic and produces the records asynchronously,
// keys k0..k<Keys-1> in turn, values drawn from a seeded pool (distinct
// enough that batches do not shrink; batches are not compressed).
func produceNoop(ctx context.Context, addr, topic string, cfg NoopConfig) (time.Duration, error) {
	cl, err := kgo.NewClient(
		kgo.SeedBrokers(addr),
		kgo.DefaultProduceTopic(topic),
		kgo.ProducerBatchCompression(kgo.NoCompression()),
		kgo.MaxBufferedRecords(1<<16),
	)
	if err != nil {
		return 0, err
	}
	defer cl.Close()
	if _, err := kadm.NewClient(cl).CreateTopic(ctx, int32(cfg.Partitions), 1, nil, topic); err != nil {
		return 0, fmt.Errorf("bench: creating topic %s: %w", topic, err)
	}
	keys := make([][]byte, cfg.Keys)
	for i := range keys {
		keys[i] = []byte("k" + strconv.Itoa(i))
	}
	rng := rand.New(rand.NewPCG(cfg.Seed, 3))
	values := make([][]byte, 4096)
	for i := range values {
		v := make([]byte, cfg.ValueBytes)
		for j := range v {
			v[j] = byte('a' + rng.IntN(26))
		}
		values[i] = v
	}

	pctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var (
		firstErr atomic.Pointer[error]
		acked    atomic.Int64
	)
	promise := func(_ *kgo.Record, err error) {
		if err != nil {
			if firstErr.CompareAndSwap(nil, &err) {
				cancel()
			}
			return
		}
		acked.Add(1)
	}
	start := time.Now()
	for i := range cfg.Records {
		if pctx.Err() != nil {
			break
		}
		cl.Produce(pctx, &kgo.Record{Key: keys[i%len(keys)], Value: values[i%len(values)]}, promise)
	}
	if err := cl.Flush(ctx); err != nil {
		return 0, fmt.Errorf("bench: producing to %s: %w", topic, err)
	}
	took := time.Since(start)
	if p := firstErr.Load(); p != nil {
		return 0, fmt.Errorf("bench: producing to %s: %w", topic, *p)
	}
	if n := acked.Load(); n != int64(cfg.Records) {
		return 0, fmt.Errorf("bench: producing to %s: %d of %d records acknowledged", topic, n, cfg.Records)
	}
	return took, nil
}

// runWorkerChild runs one side in a child process and reads its JSON line.
func runWorkerChild(ctx context.Context, exe string, env []string, wc WorkerConfig, timeout time.Duration, broker *brokerChild) (WorkerResult, error) {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	c, err := startChild(ctx, exe, env, WorkerArgs(wc)...)
	if err != nil {
		return WorkerResult{}, err
	}
	defer c.kill()
	select {
	case <-c.exited:
	case <-broker.exited:
		return WorkerResult{}, fmt.Errorf("bench: broker child exited during the %s run: %s%s", wc.Side, exitReason(broker.err), broker.describe())
	}
	if c.err != nil {
		if ctx.Err() != nil {
			return WorkerResult{}, fmt.Errorf("bench: %s worker: %w (%w)%s", wc.Side, ctx.Err(), c.err, c.describe())
		}
		return WorkerResult{}, fmt.Errorf("bench: %s worker: %w%s", wc.Side, c.err, c.describe())
	}
	lines := strings.Split(strings.TrimSpace(c.stdout.String()), "\n")
	var wr WorkerResult
	if err := json.Unmarshal([]byte(lines[len(lines)-1]), &wr); err != nil {
		return WorkerResult{}, fmt.Errorf("bench: %s worker printed no result line: %w%s", wc.Side, err, c.describe())
	}
	if wr.Records < wc.Records || wr.ElapsedS <= 0 {
		return WorkerResult{}, fmt.Errorf("bench: %s worker reported %d records in %gs, want %d%s", wc.Side, wr.Records, wr.ElapsedS, wc.Records, c.describe())
	}
	return wr, nil
}

// tailBuffer keeps the last 64 KiB written to it; safe for concurrent use.
type tailBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

const tailMax = 64 << 10

func (t *tailBuffer) Write(p []byte) (int, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.buf.Write(p)
	if over := t.buf.Len() - tailMax; over > 0 {
		t.buf.Next(over)
	}
	return len(p), nil
}

func (t *tailBuffer) String() string {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.buf.String()
}
