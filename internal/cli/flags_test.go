package cli

import (
	"bytes"
	"context"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/spf13/cobra"
)

// The noop-throughput rounds: the help text said "3 times" while the
// default is 5 (internal/bench's defaultNoopRounds).
func TestBenchHelpStatesTheRoundsDefault(t *testing.T) {
	var out bytes.Buffer
	if code := Main(context.Background(), []string{"bench", "--help"}, &out, &out); code != 0 {
		t.Fatalf("exit %d: %s", code, out.String())
	}
	help := out.String()
	if strings.Contains(help, "3 times") {
		t.Errorf("help still says 3 times:\n%s", help)
	}
	if !strings.Contains(help, "alternated --rounds times (default 5") {
		t.Errorf("help does not say the rounds default (5):\n%s", help)
	}
}

// `ordo dev --workers -1` must exit 2 before the broker starts: the kafka
// address is held by the test, so a broker that tried to listen would fail
// with exit 1 and a listen error instead.
func TestDevBadFlagExitsBeforeTheBrokerStarts(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	var out, errb bytes.Buffer
	code := Main(context.Background(), []string{"dev", "--kafka-addr", ln.Addr().String(), "--metrics-addr", "",
		"--topics-dir", "../../topics", "--workers", "-1", "--duration", "1s"}, &out, &errb)
	if code != 2 {
		t.Fatalf("exit %d, want 2; stdout %q, stderr %q", code, out.String(), errb.String())
	}
	if !strings.Contains(errb.String(), "--workers must be >= 1, got -1") {
		t.Errorf("stderr %q does not name --workers", errb.String())
	}
	if strings.Contains(out.String(), "broker on") || strings.Contains(errb.String(), "listen") {
		t.Errorf("the broker was started: stdout %q, stderr %q", out.String(), errb.String())
	}
	// Nothing connected to the address either (no admin client, no topics).
	_ = ln.(*net.TCPListener).SetDeadline(time.Now().Add(50 * time.Millisecond))
	if c, err := ln.Accept(); err == nil {
		c.Close()
		t.Error("something connected to --kafka-addr")
	}
}

// Every flag of ordo dev is checked, all errors at once, each named as its
// flag; --workers 0 and --rate -5 (without --demo) are rejected.
func TestDevFlagsAllErrorsAtOnce(t *testing.T) {
	cases := []struct {
		name string
		args []string
		want []string
	}{
		{"workers 0", []string{"--workers", "0"}, []string{"--workers must be >= 1, got 0"}},
		{"rate without demo", []string{"--rate", "-5"}, []string{"--rate must be >= 1, got -5"}},
		{"undeclared topic", []string{"--topic", "payments"}, []string{`--topic "payments" is not declared in ../../topics`}},
		{"all at once", []string{"--workers", "0", "--rate", "-5", "--customers", "0", "--malformed-every", "-1",
			"--work", "-1s", "--duration", "-1s", "--shutdown-timeout", "0s", "--ordering", "sideways",
			"--log-level", "loud", "--kafka-addr", "nope", "--metrics-addr", "127.0.0.1:x", "--group", ""},
			[]string{"--workers ", "--rate ", "--customers ", "--malformed-every ", "--work ", "--duration ",
				"--shutdown-timeout ", "--ordering ", "--log-level ", "--kafka-addr ", "--metrics-addr ", "--group "}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			var out, errb bytes.Buffer
			args := append([]string{"dev", "--topics-dir", "../../topics", "--kafka-addr", "127.0.0.1:0", "--metrics-addr", "", "--duration", "2s"}, tc.args...)
			if code := Main(context.Background(), args, &out, &errb); code != 2 {
				t.Fatalf("exit %d, want 2; stderr %q", code, errb.String())
			}
			for _, w := range tc.want {
				if !strings.Contains(errb.String(), w) {
					t.Errorf("stderr lacks %q:\n%s", w, errb.String())
				}
			}
			if out.Len() != 0 {
				t.Errorf("printed before failing: %q", out.String())
			}
		})
	}
}

// Every command's --help has an Examples section.
func TestEveryCommandHasExamples(t *testing.T) {
	var walk func(c *cobra.Command)
	n := 0
	walk = func(c *cobra.Command) {
		for _, sub := range c.Commands() {
			walk(sub)
		}
		if c.Hidden || c.Name() == "help" || c.Name() == "completion" || c.Parent() != nil && c.Parent().Name() == "completion" {
			return
		}
		n++
		var out bytes.Buffer
		args := append(strings.Fields(strings.TrimPrefix(c.CommandPath(), "ordo")), "--help")
		if code := Main(context.Background(), args, &out, &out); code != 0 {
			t.Errorf("%s --help: exit %d", c.CommandPath(), code)
		}
		if c.Example == "" || !strings.Contains(out.String(), "Examples:\n  ordo ") && !strings.Contains(out.String(), "Examples:\n  # ") {
			t.Errorf("%s --help has no Examples section:\n%s", c.CommandPath(), out.String())
		}
	}
	walk(NewRoot(&bytes.Buffer{}, &bytes.Buffer{}))
	if n < 7 {
		t.Errorf("checked %d commands, want the 7 of ordo, dev, run, topics, topics apply, topics list, bench", n)
	}
}

// The flags that mean the same thing have the same name in every command.
func TestCommonFlagNames(t *testing.T) {
	root := NewRoot(&bytes.Buffer{}, &bytes.Buffer{})
	for path, flags := range map[string][]string{
		"run":          {"brokers", "group", "topic", "metrics-addr", "log-level"},
		"dev":          {"group", "topic", "metrics-addr", "log-level"},
		"topics apply": {"brokers"},
	} {
		c, _, err := root.Find(strings.Fields(path))
		if err != nil {
			t.Fatal(err)
		}
		for _, f := range flags {
			if c.Flags().Lookup(f) == nil {
				t.Errorf("ordo %s has no --%s", path, f)
			}
		}
	}
}
