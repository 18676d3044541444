package cli

import (
	"bytes"
	"context"
	"net"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ordokafka/ordo/pkg/devbroker"
)

// silentBroker accepts connections and never answers, like a broker that
// hangs or a port that is not Kafka. Close closes it and its connections.
type silentBroker struct {
	ln    net.Listener
	mu    sync.Mutex
	conns []net.Conn
	done  chan struct{}
}

func newSilentBroker(t *testing.T) *silentBroker {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	s := &silentBroker{ln: ln, done: make(chan struct{})}
	go func() {
		defer close(s.done)
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			s.mu.Lock()
			s.conns = append(s.conns, c)
			s.mu.Unlock()
		}
	}()
	t.Cleanup(func() {
		ln.Close()
		<-s.done
		s.mu.Lock()
		defer s.mu.Unlock()
		for _, c := range s.conns {
			c.Close()
		}
	})
	return s
}

// refusedAddr is a loopback address nothing listens on.
func refusedAddr(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	return addr
}

// `ordo topics apply` against a broker that refuses or never answers fails
// within --connect-timeout, naming the address and what to check, instead
// of "context deadline exceeded" after --timeout.
func TestTopicsApplyUnreachableBrokerIsNamed(t *testing.T) {
	silent := newSilentBroker(t).ln.Addr().String()
	cases := map[string]struct {
		addr  string
		flags []string
		why   string
		bound string
	}{
		"refused": {refusedAddr(t), []string{"--timeout", "20s", "--connect-timeout", "1s"}, "connection refused", "1s (--connect-timeout)"},
		"silent":  {silent, []string{"--timeout", "20s", "--connect-timeout", "1s"}, "no answer", "1s (--connect-timeout)"},
		// --timeout below --connect-timeout bounds the check.
		"short timeout": {silent, []string{"--timeout", "1s"}, "no answer", "1s (--timeout)"},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			var out, errb bytes.Buffer
			start := time.Now()
			code := Main(context.Background(), append([]string{"topics", "apply", "--dir", "../../topics", "--brokers", tc.addr}, tc.flags...), &out, &errb)
			took := time.Since(start)
			if code != 1 {
				t.Fatalf("exit %d, want 1; stderr %q", code, errb.String())
			}
			if took > 5*time.Second {
				t.Errorf("took %s, want about --connect-timeout (1s)", took)
			}
			for _, w := range []string{"no broker of " + tc.addr + " answered within " + tc.bound, tc.why, "check that"} {
				if !strings.Contains(errb.String(), w) {
					t.Errorf("stderr lacks %q: %s", w, errb.String())
				}
			}
		})
	}
}

func TestTopicsApplyFlagsAllAtOnce(t *testing.T) {
	var out, errb bytes.Buffer
	code := Main(context.Background(), []string{"topics", "apply", "--brokers", ",", "--timeout", "0s",
		"--connect-timeout", "-1s", "--dir", "/does/not/exist"}, &out, &errb)
	if code != 2 {
		t.Fatalf("exit %d, want 2; stderr %q", code, errb.String())
	}
	for _, w := range []string{"--brokers: entry 1 is empty", "--timeout must be > 0", "--connect-timeout must be > 0", `--dir "/does/not/exist"`} {
		if !strings.Contains(errb.String(), w) {
			t.Errorf("stderr lacks %q:\n%s", w, errb.String())
		}
	}
}

func TestTopicsApplyCreatesTheChain(t *testing.T) {
	b, err := devbroker.Start(devbroker.Options{Addr: "127.0.0.1:0"})
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	var out, errb bytes.Buffer
	if code := Main(context.Background(), []string{"topics", "apply", "--dir", "../../topics", "--brokers", b.Addr()}, &out, &errb); code != 0 {
		t.Fatalf("exit %d: %s", code, errb.String())
	}
	words := strings.Join(strings.Fields(out.String()), " ")
	for _, w := range []string{"orders main - created", "orders.ordo-dev.retry.1 retry ordo-dev created", "orders.ordo-dev.dlq dlq ordo-dev created", "orders.orders-ledger.dlq dlq orders-ledger created"} {
		if !strings.Contains(words, w) {
			t.Errorf("output lacks %q:\n%s", w, out.String())
		}
	}
}

// `ordo run` waits connect_timeout for a seed broker at start and, if none
// answers, fails naming the brokers and the setting as it was written.
func TestRunUnreachableBrokerIsNamed(t *testing.T) {
	silent := newSilentBroker(t).ln.Addr().String()
	refused := refusedAddr(t)
	t.Setenv("ORDO_CONNECT_TIMEOUT", "1s")
	var out, errb bytes.Buffer
	start := time.Now()
	code := Main(context.Background(), []string{"run", "--brokers", refused + "," + silent, "--group", "g", "--topic", "orders",
		"--processor", "log", "--metrics-addr", ""}, &out, &errb)
	if code != 1 {
		t.Fatalf("exit %d, want 1; stderr %q", code, errb.String())
	}
	if took := time.Since(start); took > 5*time.Second {
		t.Errorf("took %s, want about connect_timeout (1s)", took)
	}
	for _, w := range []string{"no broker of " + refused + "," + silent + " answered within 1s (ORDO_CONNECT_TIMEOUT)", "check that"} {
		if !strings.Contains(errb.String(), w) {
			t.Errorf("stderr lacks %q: %s", w, errb.String())
		}
	}
}
