package bench_test

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/ordokafka/ordo/internal/bench"
	"github.com/ordokafka/ordo/internal/cli"
)

// `ordo bench --out` writes {"scenarios":[{"name","value","baseline","ratio","unit",...}]}.
func TestBenchOutJSONShape(t *testing.T) {
	path := filepath.Join(t.TempDir(), "bench.json")
	var stdout, stderr bytes.Buffer
	code := cli.Main(context.Background(), []string{"bench", "--quick", "--scenarios", "pc-volume-key-1000,pc-volume-unordered",
		"--pc-records", "200", "--seed", "3", "--out", path}, &stdout, &stderr)
	if code != 0 {
		t.Fatalf("exit %d; stdout:\n%s\nstderr:\n%s", code, stdout.String(), stderr.String())
	}
	for _, want := range []string{"SCENARIO", "pc-volume-key-1000", "pc-volume-unordered", "limit"} {
		if !strings.Contains(stdout.String(), want) {
			t.Errorf("table lacks %q:\n%s", want, stdout.String())
		}
	}
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var top map[string]json.RawMessage
	if err := json.Unmarshal(data, &top); err != nil {
		t.Fatalf("not a JSON object: %v\n%s", err, data)
	}
	if len(top) != 1 || top["scenarios"] == nil {
		t.Fatalf("top level keys = %v, want only \"scenarios\"", keysOf(top))
	}
	var scenarios []map[string]any
	if err := json.Unmarshal(top["scenarios"], &scenarios); err != nil {
		t.Fatalf("scenarios is not an array of objects: %v", err)
	}
	if len(scenarios) != 2 {
		t.Fatalf("%d scenarios, want 2", len(scenarios))
	}
	wantNames := []string{bench.ScenarioPCKey1000, bench.ScenarioPCUnordered}
	for i, s := range scenarios {
		if s["name"] != wantNames[i] {
			t.Errorf("scenario %d name = %v, want %s", i, s["name"], wantNames[i])
		}
		if s["unit"] != "s" {
			t.Errorf("%v: unit = %v, want \"s\"", s["name"], s["unit"])
		}
		var nums [3]float64
		for j, k := range []string{"value", "baseline", "ratio"} {
			v, ok := s[k].(float64)
			if !ok {
				t.Fatalf("%v: %s = %#v, want a number", s["name"], k, s[k])
			}
			nums[j] = v
		}
		if nums[0] <= 0 || nums[1] <= 0 {
			t.Errorf("%v: value %g and baseline %g must be > 0", s["name"], nums[0], nums[1])
		}
		if got := nums[0] / nums[1]; diff(got, nums[2]) > 1e-9 {
			t.Errorf("%v: ratio %g, want value/baseline = %g", s["name"], nums[2], got)
		}
		if nums[2] < 1 {
			t.Errorf("%v: ratio %g < 1: the run beat its limit", s["name"], nums[2])
		}
	}
}

func TestWriteJSONEmpty(t *testing.T) {
	var buf bytes.Buffer
	if err := bench.WriteJSON(&buf, bench.Report{}); err != nil {
		t.Fatal(err)
	}
	if got := strings.Join(strings.Fields(buf.String()), ""); got != `{"scenarios":[]}` {
		t.Fatalf("empty report = %s, want {\"scenarios\":[]}", got)
	}
}

func TestBenchValidate(t *testing.T) {
	tests := []struct {
		args []string
		want []string // each must appear in the error
	}{
		{[]string{"bench", "--scenarios", "nope"}, []string{"--scenarios", `"nope"`}},
		{[]string{"bench", "--rounds", "-1", "--noop-records", "-5", "--pc-records", "-2"}, []string{"--rounds", "--noop-records", "--pc-records"}},
		{[]string{"bench", "--out", filepath.Join(t.TempDir(), "missing", "x.json")}, []string{"--out"}},
		{[]string{"bench", "--out", t.TempDir()}, []string{"--out", "directory"}},
		{[]string{"bench", "--seed", "-1"}, []string{"--seed"}},
		{[]string{"bench", "worker", "--side", "java"}, []string{"--side", "--brokers", "--topic", "--group", "--records"}},
		{[]string{"bench", "worker", "--side", "raw", "--brokers", "x:1", "--topic", "t", "--group", "g", "--records", "1", "--timeout", "0s"}, []string{"--timeout"}},
	}
	for _, tt := range tests {
		var stdout, stderr bytes.Buffer
		code := cli.Main(context.Background(), tt.args, &stdout, &stderr)
		if code != 2 {
			t.Errorf("%v: exit %d, want 2 (usage); stderr: %s", tt.args, code, stderr.String())
			continue
		}
		for _, w := range tt.want {
			if !strings.Contains(stderr.String(), w) {
				t.Errorf("%v: error does not name %s: %s", tt.args, w, stderr.String())
			}
		}
	}
}

func keysOf(m map[string]json.RawMessage) []string {
	var out []string
	for k := range m {
		out = append(out, k)
	}
	return out
}

func diff(a, b float64) float64 {
	if a > b {
		return a - b
	}
	return b - a
}
