package main

import (
	"context"
	"errors"
	"os/exec"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"
)

var inFlightRe = regexp.MustCompile(`in-flight=([1-9]\d*)`)

// The binary's signal wiring: a first SIGINT to the ordo process drains
// and says so, a second stops it at once with exit 1 and the abandoned
// records named. The signals go to the child process, never to the test.
func TestBinaryTwoStageInterrupt(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the binary: not in -short")
	}
	bin := buildOrdo(t)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, bin, "dev", "--demo", "--kafka-addr", freeAddr(t), "--metrics-addr", "",
		"--topics-dir", "../../topics", "--work", "1h", "--rate", "200", "--shutdown-timeout", "1m")
	var stdout, stderr syncBuffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	waitFor := func(what string, ok func() bool) {
		t.Helper()
		for deadline := time.Now().Add(20 * time.Second); !ok(); time.Sleep(20 * time.Millisecond) {
			if time.Now().After(deadline) {
				_ = cmd.Process.Kill()
				<-exited
				t.Fatalf("%s\nstdout:\n%s\nstderr:\n%s", what, stdout.String(), stderr.String())
			}
		}
	}
	waitFor("no record in flight", func() bool { return inFlightRe.MatchString(stdout.String()) })
	if err := cmd.Process.Signal(syscall.SIGINT); err != nil {
		t.Fatal(err)
	}
	waitFor("no draining line after the first SIGINT", func() bool {
		return strings.Contains(stdout.String(), "draining: finishing running records and committing; press Ctrl-C again to stop now")
	})
	select { // still draining: the records take an hour
	case err := <-exited:
		t.Fatalf("exited (%v) during the drain:\n%s", err, stdout.String())
	case <-time.After(300 * time.Millisecond):
	}
	start := time.Now()
	if err := cmd.Process.Signal(syscall.SIGINT); err != nil {
		t.Fatal(err)
	}
	var err error
	select {
	case err = <-exited:
	case <-time.After(15 * time.Second):
		_ = cmd.Process.Kill()
		<-exited
		t.Fatalf("did not stop after the second SIGINT:\n%s", lastLines(stdout.String(), 5))
	}
	var exit *exec.ExitError
	if !errors.As(err, &exit) || exit.ExitCode() != 1 {
		t.Errorf("exit %v, want code 1", err)
	}
	if took := time.Since(start); took > 10*time.Second {
		t.Errorf("took %s to stop after the second SIGINT", took)
	}
	if !strings.Contains(stdout.String(), "second interrupt: canceling running records and stopping now") ||
		!strings.Contains(stderr.String(), "ordo: stopped at the second interrupt: abandoned ") {
		t.Errorf("stdout:\n%s\nstderr:\n%s", lastLines(stdout.String(), 16), stderr.String())
	}
}
