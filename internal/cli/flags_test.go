package cli

import (
	"bytes"
	"context"
	"strings"
	"testing"
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
