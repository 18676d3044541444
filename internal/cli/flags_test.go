package cli

import (
	"bytes"
	"context"
	"net"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"
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

// Every command's --help has an Examples section: ordo's commands, and
// cobra's help and completion commands too. Only hidden commands (the
// bench worker, cobra's __complete) are left out.
func TestEveryCommandHasExamples(t *testing.T) {
	var walk func(c *cobra.Command)
	n := 0
	walk = func(c *cobra.Command) {
		for _, sub := range c.Commands() {
			walk(sub)
		}
		if c.Hidden {
			return
		}
		n++
		var out bytes.Buffer
		args := append(strings.Fields(strings.TrimPrefix(c.CommandPath(), "ordo")), "--help")
		if code := Main(context.Background(), args, &out, &out); code != 0 {
			t.Errorf("%s --help: exit %d", c.CommandPath(), code)
		}
		if c.Example == "" || !strings.Contains(out.String(), "Examples:\n  ordo ") && !strings.Contains(out.String(), "Examples:\n  # ") &&
			!strings.Contains(out.String(), "Examples:\n  source ") && !strings.Contains(out.String(), "Examples:\n  echo ") {
			t.Errorf("%s --help has no Examples section:\n%s", c.CommandPath(), out.String())
		}
	}
	walk(NewRoot(&bytes.Buffer{}, &bytes.Buffer{}))
	if n < 25 {
		t.Errorf("checked %d commands, want the 25 of ordo, dev, run, topics (3), bench, lag (2), replay (3), dlq (5), produce, consume, help, completion (5)", n)
	}
}

// The flags that mean the same thing have the same name in every command.
func TestCommonFlagNames(t *testing.T) {
	root := NewRoot(&bytes.Buffer{}, &bytes.Buffer{})
	for path, flags := range map[string][]string{
		"run":          {"brokers", "group", "topic", "metrics-addr", "log-level"},
		"dev":          {"group", "topic", "metrics-addr", "log-level"},
		"topics apply": {"brokers"},
		"produce":      {"brokers", "topic"},
		"consume":      {"brokers", "topic", "group"},
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

// Across the whole tree: seed brokers are --brokers, a consumer group
// --group, a topic --topic, wherever a command takes them; every command
// with --brokers has the same connection flags (TLS, SASL); no flag takes
// a secret as its value.
func TestFlagNamesAcrossTheTree(t *testing.T) {
	// Flags whose names hold these words but mean something else.
	other := map[string]string{
		"dev --broker-only":       "a switch: only the embedded broker",
		"dev --kafka-addr":        "the embedded broker's own listen address",
		"dev --topics-dir":        "a directory of declarations",
		"lag --all-groups":        "a switch: every group",
		"lag serve --all-groups":  "a switch: every group",
		"dlq list --dlq-topic":    "a dead-letter topic by name, beside --topic",
		"dlq show --dlq-topic":    "a dead-letter topic by name, beside --topic",
		"dlq stats --dlq-topic":   "a dead-letter topic by name, beside --topic",
		"dlq redrive --dlq-topic": "a dead-letter topic by name, beside --topic",
	}
	var conn []string
	for _, d := range connFlagDefs {
		conn = append(conn, d.flag)
	}
	var walk func(c *cobra.Command)
	brokerCmds := 0
	walk = func(c *cobra.Command) {
		for _, sub := range c.Commands() {
			walk(sub)
		}
		path := strings.TrimPrefix(c.CommandPath(), "ordo ")
		c.Flags().VisitAll(func(f *pflag.Flag) {
			id := path + " --" + f.Name
			if _, ok := other[id]; ok {
				return
			}
			for word, want := range map[string]string{"broker": "brokers", "bootstrap": "brokers", "kafka": "brokers", "group": "group", "topic": "topic"} {
				if strings.Contains(f.Name, word) && f.Name != want {
					t.Errorf("ordo %s: --%s: a command that takes %ss names the flag --%s", path, f.Name, word, want)
				}
			}
			for _, word := range []string{"password", "token", "secret"} {
				if strings.Contains(f.Name, word) && !strings.HasSuffix(f.Name, "-file") {
					t.Errorf("ordo %s: --%s takes a secret as its value (anyone can read it in ps): take a file", path, f.Name)
				}
			}
		})
		if f := c.Flags().Lookup("brokers"); f != nil && !c.Hidden {
			brokerCmds++
			if f.Value.Type() != "stringSlice" {
				t.Errorf("ordo %s: --brokers is a %s, want a list (repeat or comma-separate) as everywhere", path, f.Value.Type())
			}
			for _, name := range conn {
				if c.Flags().Lookup(name) == nil {
					t.Errorf("ordo %s has --brokers but no --%s", path, name)
				}
			}
		}
	}
	walk(NewRoot(&bytes.Buffer{}, &bytes.Buffer{}))
	if brokerCmds < 12 {
		t.Errorf("%d commands with --brokers, want 12 (run, topics apply, lag, lag serve, replay reset and copy, dlq list, show, stats and redrive, produce, consume)", brokerCmds)
	}
}

// Shell completion: the scripts of every shell, and the values of the
// flags that take one of a few words.
func TestCompletion(t *testing.T) {
	for _, sh := range []string{"bash", "zsh", "fish", "powershell"} {
		var out, errb bytes.Buffer
		if code := Main(context.Background(), []string{"completion", sh}, &out, &errb); code != 0 || !strings.Contains(out.String(), "ordo") || out.Len() < 1000 {
			t.Errorf("completion %s: exit %d, %d bytes, stderr %q", sh, code, out.Len(), errb.String())
		}
	}
	for _, tc := range []struct {
		args []string
		want []string
	}{
		{[]string{"consume", "--sasl-mechanism", ""}, []string{"plain", "scram-sha-256", "scram-sha-512", "oauthbearer"}},
		{[]string{"run", "--sasl-mechanism", ""}, []string{"plain", "scram-sha-256", "scram-sha-512", "oauthbearer"}},
		{[]string{"dlq", "redrive", "--sasl-mechanism", "s"}, []string{"plain", "scram-sha-256", "scram-sha-512", "oauthbearer"}},
		{[]string{"consume", "--format", ""}, []string{"json", "text"}},
		{[]string{"produce", "--format", ""}, []string{"text", "json"}},
		{[]string{"consume", "--offset", ""}, []string{"start", "end"}},
		{[]string{"lag", "serve", "--log-level", ""}, []string{"debug", "info", "warn", "error"}},
		{[]string{"replay", "copy", "--progress", ""}, []string{"auto", "bar", "lines", "none"}},
		{[]string{"run", "--processor", ""}, []string{"example", "log", "postgres", "redis-ledger", "webhook"}},
	} {
		var out bytes.Buffer
		if code := Main(context.Background(), append([]string{"__complete"}, tc.args...), &out, &bytes.Buffer{}); code != 0 {
			t.Errorf("__complete %v: exit %d", tc.args, code)
		}
		lines := strings.Split(strings.TrimSpace(out.String()), "\n")
		if got := lines[:len(lines)-1]; !slices.Equal(got, tc.want) || lines[len(lines)-1] != ":4" {
			t.Errorf("__complete %v: %q, want %q and :4 (no file completion)", tc.args, lines, tc.want)
		}
	}
}
