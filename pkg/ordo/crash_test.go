package ordo_test

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/ordokafka/ordo/pkg/ordo"
	"github.com/ordokafka/ordo/pkg/store/redisstore"
)

// redisAddr returns ORDO_TEST_REDIS_ADDR, or skips the test saying so.
func redisAddr(t *testing.T) string {
	t.Helper()
	addr := os.Getenv("ORDO_TEST_REDIS_ADDR")
	if addr == "" {
		t.Skip("set ORDO_TEST_REDIS_ADDR (e.g. 127.0.0.1:6379) to run this test against Redis; .ci/run sets it")
	}
	return addr
}

// TestCrashLoopReachesTheDeadLetterTopic: a record kills its process on
// every call (os.Exit, no recovery possible). With Config.Attempts counting
// each call in Redis before it is made, the record still reaches the
// dead-letter topic after its MaxAttempts calls, with class interrupted,
// and the records behind it are applied: the partition does not crash-loop
// forever. Each process is a child of the test (the test binary, run as
// TestCrashChild) against a broker in the test's process.
func TestCrashLoopReachesTheDeadLetterTopic(t *testing.T) {
	addr := redisAddr(t)
	rdb := redis.NewClient(&redis.Options{Addr: addr})
	defer rdb.Close()
	if err := rdb.Ping(context.Background()).Err(); err != nil {
		t.Fatalf("ORDO_TEST_REDIS_ADDR=%s: %v", addr, err)
	}
	const group = "g"
	c := newCluster(t, 1, chainTopics("t", group, 0)...)
	produceRecords(t, c.ListenAddrs(),
		&kgo.Record{Topic: "t", Key: []byte("a"), Value: []byte("before")},
		&kgo.Record{Topic: "t", Key: []byte("crash"), Value: []byte("crash")},
		&kgo.Record{Topic: "t", Key: []byte("b"), Value: []byte("after")},
	)
	prefix := fmt.Sprintf("ordo-test-crash-%d:", time.Now().UnixNano())
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	crashes := 0
	for run := 1; run <= 6; run++ {
		cmd := exec.Command(exe, "-test.run=^TestCrashChild$", "-test.count=1", "-test.v") //nolint:gosec // the test binary itself
		cmd.Env = append(os.Environ(), "ORDO_CRASH_CHILD=1", "ORDO_CRASH_BROKER="+c.ListenAddrs()[0], "ORDO_CRASH_PREFIX="+prefix)
		out, err := cmd.CombinedOutput()
		var ee *exec.ExitError
		switch {
		case errors.As(err, &ee) && ee.ExitCode() == 3:
			crashes++
			continue
		case err != nil:
			t.Fatalf("child %d: %v\n%s", run, err, out)
		}
		if !strings.Contains(string(out), "applied after") {
			t.Fatalf("child %d ended without applying the record behind the crashing one:\n%s", run, out)
		}
		break
	}
	// The first crash came beside other calls (not counted against the
	// record), then MaxAttempts = 2 crashes alone.
	if crashes != 3 {
		t.Errorf("%d processes crashed, want 3: one beside other calls, then MaxAttempts = 2 alone", crashes)
	}
	dead := consumeAll(t, c.ListenAddrs(), ordo.DefaultNaming.DLQTopic("t", group), 1)
	if string(dead[0].Key) != "crash" || headerValue(dead[0], ordo.HeaderErrorClass) != "interrupted" {
		t.Errorf("dead letter %q class %q, want the crashing record with class interrupted", dead[0].Key, headerValue(dead[0], ordo.HeaderErrorClass))
	}
}

// TestCrashChild is the process TestCrashLoopReachesTheDeadLetterTopic
// runs: it exits with status 3 when it calls the crashing record.
func TestCrashChild(t *testing.T) {
	if os.Getenv("ORDO_CRASH_CHILD") == "" {
		t.Skip("run by TestCrashLoopReachesTheDeadLetterTopic")
	}
	rdb := redis.NewClient(&redis.Options{Addr: os.Getenv("ORDO_TEST_REDIS_ADDR")})
	defer rdb.Close()
	done := make(chan struct{})
	proc := ordo.ProcessorFunc(func(ctx context.Context, r *kgo.Record) error {
		switch string(r.Value) {
		case "crash":
			os.Exit(3)
		case "after":
			fmt.Println("applied after")
			close(done)
		}
		return nil
	})
	cfg := baseConfig([]string{os.Getenv("ORDO_CRASH_BROKER")}, "g", proc, "t")
	cfg.Retry.MaxAttempts = 2
	cfg.Retry.InitialBackoff = time.Millisecond
	cfg.Retry.MaxBackoff = 10 * time.Millisecond
	cfg.Attempts = redisstore.NewAttempts(rdb, redisstore.AttemptsOptions{Prefix: os.Getenv("ORDO_CRASH_PREFIX")})
	cons := startConsumer(t, cfg)
	select {
	case <-done:
	case <-time.After(30 * time.Second):
		t.Fatal("the record after the crashing one was never applied")
	}
	stop(t, cons)
}
