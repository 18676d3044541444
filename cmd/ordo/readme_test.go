package main

import (
	"context"
	"net"
	"os"
	"os/exec"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"
)

// TestReadmeQuickstart is the newcomer's test: it runs the README's
// quickstart as written, from the repository root: the first sh block
// (make run) in the background, then each other sh block with bash, and
// fails unless the lines of the text block after each appear, in order, in
// what the command printed. Numbers, times and runs of spaces may differ; a
// line cut with "…" matches up to the word it cuts.
func TestReadmeQuickstart(t *testing.T) {
	if testing.Short() {
		t.Skip("the newcomer test builds and runs the quickstart: not in -short")
	}
	const root = "../.."
	readme, err := os.ReadFile(root + "/README.md")
	if err != nil {
		t.Fatal(err)
	}
	steps := quickstartSteps(t, string(readme))
	if len(steps) < 4 || steps[0].cmd != "make run" {
		t.Fatalf("the README's quickstart has %d steps, the first %q: want make run, then the commands of the second terminal", len(steps), steps[0].cmd)
	}
	for _, addr := range []string{"127.0.0.1:9092", "127.0.0.1:9100"} {
		ln, err := net.Listen("tcp", addr)
		if err != nil {
			t.Fatalf("%s is taken (%v): the quickstart needs it; stop whatever listens there (an ordo dev?)", addr, err)
		}
		_ = ln.Close()
	}

	ctx, cancel := context.WithTimeout(context.Background(), 4*time.Minute)
	defer cancel()
	run := exec.CommandContext(ctx, "bash", "-c", steps[0].cmd)
	run.Dir = root
	run.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	var out syncBuffer
	run.Stdout, run.Stderr = &out, &out
	if err := run.Start(); err != nil {
		t.Fatal(err)
	}
	stopped := false
	defer func() {
		if !stopped {
			_ = syscall.Kill(-run.Process.Pid, syscall.SIGKILL)
			_ = run.Wait()
		}
		if t.Failed() {
			t.Logf("make run printed:\n%s", lastLines(out.String(), 30))
		}
	}()
	deadline := time.Now().Add(3 * time.Minute) // make run builds bin/ordo first
	for !matchLines(steps[0].want, out.String()).ok {
		if time.Now().After(deadline) {
			t.Fatalf("make run: %s", matchLines(steps[0].want, out.String()).why)
		}
		time.Sleep(100 * time.Millisecond)
	}
	time.Sleep(time.Second) // the pipeline settles: lag shows committed partitions

	for _, st := range steps[1:] {
		// A newcomer types the next command seconds after the last: what
		// the demo does with a record just produced (a dead letter, a
		// commit) may take a fetch and a produce's linger to show. The
		// commands that only read are run again for up to 5 s until
		// their output matches; the others run once.
		readOnly := strings.HasPrefix(st.cmd, "bin/ordo lag ") || strings.HasPrefix(st.cmd, "bin/ordo dlq list ")
		until := time.Now().Add(5 * time.Second)
		for {
			cmd := exec.CommandContext(ctx, "bash", "-c", st.cmd)
			cmd.Dir = root
			got, err := cmd.CombinedOutput()
			if err != nil {
				t.Errorf("%s: %v\n%s", st.cmd, err, got)
				break
			}
			m := matchLines(st.want, string(got))
			if m.ok {
				break
			}
			if !readOnly || time.Now().After(until) {
				t.Errorf("%s: %s\nit printed:\n%s", st.cmd, m.why, got)
				break
			}
			time.Sleep(200 * time.Millisecond)
		}
	}

	// Ctrl-C: the demo drains, commits and prints its final line.
	_ = syscall.Kill(-run.Process.Pid, syscall.SIGINT)
	done := make(chan struct{})
	go func() { _ = run.Wait(); close(done) }()
	select {
	case <-done:
		stopped = true
	case <-time.After(30 * time.Second):
		t.Errorf("make run did not stop within 30 s of Ctrl-C")
	}
	if !strings.Contains(out.String(), "ordo dev: stopped.") || !strings.Contains(out.String(), "order-violations=0") {
		t.Errorf("after Ctrl-C, no final line with order-violations=0:\n%s", lastLines(out.String(), 5))
	}
}

type quickstartStep struct {
	cmd  string
	want []string
}

// quickstartSteps reads the README's "## Quickstart" section: each sh
// block and the text block that follows it.
func quickstartSteps(t *testing.T, readme string) []quickstartStep {
	t.Helper()
	start := strings.Index(readme, "\n## Quickstart")
	if start < 0 {
		t.Fatal("README.md has no ## Quickstart section")
	}
	sec := readme[start+1:]
	if end := strings.Index(sec, "\n## "); end >= 0 {
		sec = sec[:end]
	}
	blocks := regexp.MustCompile("(?s)```(sh|text)\n(.*?)```").FindAllStringSubmatch(sec, -1)
	var steps []quickstartStep
	for i := 0; i < len(blocks); i++ {
		if blocks[i][1] != "sh" {
			t.Fatalf("quickstart block %d is output with no command before it", i+1)
		}
		st := quickstartStep{cmd: strings.TrimSpace(blocks[i][2])}
		if i+1 < len(blocks) && blocks[i+1][1] == "text" {
			st.want = strings.Split(strings.TrimRight(blocks[i+1][2], "\n"), "\n")
			i++
		}
		steps = append(steps, st)
	}
	return steps
}

type match struct {
	ok  bool
	why string
}

var (
	digitsRe = regexp.MustCompile(`[0-9]+`)
	spacesRe = regexp.MustCompile(`( |\\ )+`)
)

// lineRe turns a line the README shows into a pattern: numbers and runs of
// spaces may differ, and a line cut with "…" matches up to the word it
// cuts.
func lineRe(line string) *regexp.Regexp {
	line = strings.TrimSpace(line)
	cut := false
	if i := strings.LastIndex(line, "…"); i >= 0 {
		line, cut = line[:max(0, strings.LastIndex(line[:i], " "))], true
	}
	p := regexp.QuoteMeta(line)
	p = digitsRe.ReplaceAllString(p, `[0-9]+`)
	p = spacesRe.ReplaceAllString(p, ` +`)
	if cut {
		p += ".*"
	}
	return regexp.MustCompile("^" + p + "$")
}

// matchLines reports whether want's lines appear in got in order.
func matchLines(want []string, got string) match {
	lines := strings.Split(got, "\n")
	j := 0
	for _, w := range want {
		re := lineRe(w)
		for j < len(lines) && !re.MatchString(strings.TrimSpace(lines[j])) {
			j++
		}
		if j == len(lines) {
			return match{why: "no line like " + strings.TrimSpace(w) + " (after the lines before it)"}
		}
		j++
	}
	return match{ok: true}
}
