package topics_test

import (
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/ordokafka/ordo/pkg/topics"
)

func TestParseFull(t *testing.T) {
	const data = `
topics:
  - name: orders
    partitions: 12
    replication_factor: 3
    configs: {retention.ms: "604800000", cleanup.policy: compact}
    retry:
      delays: [1s, 10s, 10s, 1m]
    dlq: true
  - name: payments
    partitions: 3
`
	set, err := topics.Parse("topics/a.yaml", []byte(data))
	if err != nil {
		t.Fatal(err)
	}
	want := []topics.Topic{
		{
			Name:              "orders",
			Partitions:        12,
			ReplicationFactor: 3,
			Configs:           map[string]string{"retention.ms": "604800000", "cleanup.policy": "compact"},
			Retry:             topics.RetryChain{Delays: []time.Duration{time.Second, 10 * time.Second, 10 * time.Second, time.Minute}},
			DLQ:               true,
		},
		{Name: "payments", Partitions: 3, ReplicationFactor: 1, DLQ: true},
	}
	if !reflect.DeepEqual(set.Topics, want) {
		t.Fatalf("topics:\n got %+v\nwant %+v", set.Topics, want)
	}

	orders, ok := set.Lookup("orders")
	if !ok || orders.Name != "orders" {
		t.Fatalf("Lookup(orders) = %+v, %v", orders, ok)
	}
	if _, ok := set.Lookup("orders.dlq"); ok {
		t.Fatal("Lookup found a derived name")
	}
	if got := orders.RetryTopic(2); got != "orders.retry.2" {
		t.Errorf("RetryTopic(2) = %q", got)
	}
	if got := orders.DLQTopic(); got != "orders.dlq" {
		t.Errorf("DLQTopic() = %q", got)
	}

	specs := set.Specs()
	var names []string
	for _, s := range specs {
		names = append(names, s.Name)
		if s.Source == "orders" && (s.Partitions != 12 || s.ReplicationFactor != 3) {
			t.Errorf("%s: partitions %d, replication %d; want the source's 12, 3", s.Name, s.Partitions, s.ReplicationFactor)
		}
	}
	wantNames := []string{"orders", "orders.retry.1", "orders.retry.2", "orders.retry.3", "orders.retry.4", "orders.dlq", "payments", "payments.dlq"}
	if !reflect.DeepEqual(names, wantNames) {
		t.Fatalf("Specs names = %v, want %v", names, wantNames)
	}
	if s := specs[3]; s.Kind != topics.KindRetry || s.Tier != 3 || s.Delay != 10*time.Second || s.Source != "orders" {
		t.Errorf("orders.retry.3 spec = %+v", s)
	}
	if s := specs[5]; s.Kind != topics.KindDLQ || s.Tier != 0 || s.Delay != 0 {
		t.Errorf("orders.dlq spec = %+v", s)
	}
	if got := specs[0].Configs["cleanup.policy"]; got != "compact" {
		t.Errorf("main topic cleanup.policy = %q, want compact", got)
	}
	for _, s := range specs[1:6] {
		if got := s.Configs["cleanup.policy"]; got != "delete" {
			t.Errorf("%s cleanup.policy = %q, want delete (compaction would drop records)", s.Name, got)
		}
		if got := s.Configs["retention.ms"]; got != "604800000" {
			t.Errorf("%s retention.ms = %q, want inherited 604800000", s.Name, got)
		}
	}
	// Each spec owns its configs.
	specs[1].Configs["retention.ms"] = "1"
	if set.Topics[0].Configs["retention.ms"] != "604800000" || set.Specs()[1].Configs["retention.ms"] != "604800000" {
		t.Error("mutating a spec's configs changed the set")
	}
}

func TestParseDefaultsAndDLQOff(t *testing.T) {
	set, err := topics.Parse("x.yaml", []byte("topics:\n- name: a\n  partitions: 1\n  dlq: false\n"))
	if err != nil {
		t.Fatal(err)
	}
	got := set.Topics[0]
	if got.ReplicationFactor != 1 || got.DLQ || got.Retry.Tiers() != 0 || got.Configs != nil {
		t.Fatalf("defaults: %+v", got)
	}
	if specs := got.All(); len(specs) != 1 || specs[0].Name != "a" || specs[0].Kind != topics.KindMain {
		t.Fatalf("All() = %+v", specs)
	}
}

func TestParseEmptyAndMultiDocument(t *testing.T) {
	for _, data := range []string{"", "# nothing\n", "topics: []\n", "topics:\n"} {
		set, err := topics.Parse("e.yaml", []byte(data))
		if err != nil || len(set.Topics) != 0 {
			t.Errorf("Parse(%q) = %+v, %v; want an empty set", data, set, err)
		}
	}
	set, err := topics.Parse("m.yaml", []byte("topics:\n- {name: a, partitions: 1}\n---\ntopics:\n- {name: b, partitions: 2}\n"))
	if err != nil {
		t.Fatal(err)
	}
	if len(set.Topics) != 2 || set.Topics[1].Name != "b" || set.Topics[1].Partitions != 2 {
		t.Fatalf("multi-document: %+v", set.Topics)
	}
}

func TestParseErrors(t *testing.T) {
	const f = "topics/orders.yaml"
	tests := []struct {
		name string
		data string
		want []string // every line of the error, in any order
	}{
		{
			name: "zero partitions",
			data: "topics:\n- name: orders\n  partitions: 0\n",
			want: []string{`topics/orders.yaml: topic "orders": partitions must be >= 1, got 0`},
		},
		{
			name: "negative partitions",
			data: "topics:\n- name: orders\n  partitions: -3\n",
			want: []string{`topics/orders.yaml: topic "orders": partitions must be >= 1, got -3`},
		},
		{
			name: "missing partitions",
			data: "topics:\n- name: orders\n",
			want: []string{`topics/orders.yaml: topic "orders": partitions is required (>= 1)`},
		},
		{
			name: "zero replication",
			data: "topics:\n- name: orders\n  partitions: 1\n  replication_factor: 0\n",
			want: []string{`topics/orders.yaml: topic "orders": replication_factor must be >= 1, got 0`},
		},
		{
			name: "missing name",
			data: "topics:\n- name: a\n  partitions: 1\n- partitions: 1\n",
			want: []string{`topics/orders.yaml: topics[1]: name is required`},
		},
		{
			name: "illegal character",
			data: "topics:\n- name: 'ord ers'\n  partitions: 1\n",
			want: []string{`topics/orders.yaml: topic "ord ers": name has illegal character ' ' at byte 3 (only [a-zA-Z0-9._-] are allowed)`},
		},
		{
			name: "non-ascii character",
			data: "topics:\n- name: ordérs\n  partitions: 1\n",
			want: []string{`topics/orders.yaml: topic "ordérs": name has illegal character 'é' at byte 3 (only [a-zA-Z0-9._-] are allowed)`},
		},
		{
			name: "dot",
			data: "topics:\n- name: '.'\n  partitions: 1\n",
			want: []string{`topics/orders.yaml: topic ".": name must not be "." or ".."`},
		},
		{
			name: "dot dot",
			data: "topics:\n- name: '..'\n  partitions: 1\n",
			want: []string{`topics/orders.yaml: topic "..": name must not be "." or ".."`},
		},
		{
			name: "name too long",
			data: "topics:\n- name: " + strings.Repeat("a", 250) + "\n  partitions: 1\n",
			want: []string{`topics/orders.yaml: topic "` + strings.Repeat("a", 250) + `": name must be at most 249 characters, got 250`},
		},
		{
			name: "derived name too long",
			data: "topics:\n- name: " + strings.Repeat("a", 242) + "\n  partitions: 1\n  retry: {delays: [1s]}\n",
			want: []string{`topics/orders.yaml: topic "` + strings.Repeat("a", 242) + `": name is too long for its derived topic "` +
				strings.Repeat("a", 242) + `.retry.1" (250 characters, at most 249)`},
		},
		{
			name: "zero delay",
			data: "topics:\n- name: orders\n  partitions: 1\n  retry: {delays: [1s, 0s]}\n",
			want: []string{`topics/orders.yaml: topic "orders": retry.delays[1] must be > 0, got 0s`},
		},
		{
			name: "negative delay",
			data: "topics:\n- name: orders\n  partitions: 1\n  retry: {delays: [-5s]}\n",
			want: []string{`topics/orders.yaml: topic "orders": retry.delays[0] must be > 0, got -5s`},
		},
		{
			name: "decreasing delays",
			data: "topics:\n- name: orders\n  partitions: 1\n  retry: {delays: [10s, 1m, 5s]}\n",
			want: []string{`topics/orders.yaml: topic "orders": retry.delays[2] must not be shorter than retry.delays[1] (1m0s), got 5s`},
		},
		{
			name: "unitless delay",
			data: "topics:\n- name: orders\n  partitions: 1\n  retry: {delays: [5]}\n",
			want: []string{`topics/orders.yaml: topic "orders": retry.delays[0] is not a duration: "5" (use a Go duration such as 500ms, 10s or 1m)`},
		},
		{
			name: "empty retry",
			data: "topics:\n- name: orders\n  partitions: 1\n  retry: {delays: []}\n",
			want: []string{`topics/orders.yaml: topic "orders": retry.delays must list at least one delay (omit retry for a topic without retry tiers)`},
		},
		{
			name: "delay beyond retention",
			data: "topics:\n- name: orders\n  partitions: 1\n  configs: {retention.ms: 60000}\n  retry: {delays: [1s, 1m]}\n",
			want: []string{`topics/orders.yaml: topic "orders": retry.delays[1] 1m0s is not shorter than configs retention.ms (1m0s): records would expire before they are due`},
		},
		{
			name: "empty config value",
			data: "topics:\n- name: orders\n  partitions: 1\n  configs: {retention.ms: ~}\n",
			want: []string{`topics/orders.yaml: topic "orders": configs["retention.ms"] must not be empty`},
		},
		{
			name: "duplicate in one file",
			data: "topics:\n- {name: orders, partitions: 1}\n- {name: orders, partitions: 2}\n",
			want: []string{`topics/orders.yaml: topic "orders": name is already declared in this file (topics[0])`},
		},
		{
			name: "declared DLQ name",
			data: "topics:\n- {name: orders.dlq, partitions: 1, dlq: false}\n- {name: orders, partitions: 1}\n",
			want: []string{`topics/orders.yaml: topic "orders.dlq": name collides with the DLQ topic of topic "orders" declared in topics/orders.yaml`},
		},
		{
			name: "declared retry name",
			data: "topics:\n- {name: orders, partitions: 1, retry: {delays: [1s, 2s]}}\n- {name: orders.retry.2, partitions: 1}\n",
			want: []string{`topics/orders.yaml: topic "orders.retry.2": name collides with the retry topic 2 of topic "orders" declared in topics/orders.yaml`},
		},
		{
			name: "dot underscore collision",
			data: "topics:\n- {name: a.b, partitions: 1, dlq: false}\n- {name: a_b, partitions: 1, dlq: false}\n",
			want: []string{`topics/orders.yaml: topic "a_b": name collides with topic "a.b" declared in topics/orders.yaml: Kafka refuses names that differ only in '.' and '_'`},
		},
		{
			name: "derived dot underscore collision",
			data: "topics:\n- {name: a_dlq, partitions: 1}\n- {name: a, partitions: 1}\n",
			want: []string{`topics/orders.yaml: topic "a": name gives DLQ topic "a.dlq" of topic "a", which collides with topic "a_dlq" declared in topics/orders.yaml: Kafka refuses names that differ only in '.' and '_'`},
		},
		{
			name: "several errors at once",
			data: "topics:\n- name: orders\n  partitions: 0\n  replication_factor: -1\n  retry: {delays: [0s]}\n",
			want: []string{
				`topics/orders.yaml: topic "orders": partitions must be >= 1, got 0`,
				`topics/orders.yaml: topic "orders": replication_factor must be >= 1, got -1`,
				`topics/orders.yaml: topic "orders": retry.delays[0] must be > 0, got 0s`,
			},
		},
		// Decoding errors name the file and the line.
		{
			name: "unknown field",
			data: "topics:\n- name: orders\n  partitons: 12\n",
			want: []string{`topics/orders.yaml: line 3: unknown field "partitons"`},
		},
		{
			name: "unknown nested field",
			data: "topics:\n- name: orders\n  partitions: 1\n  retry: {delay: [1s]}\n",
			want: []string{`topics/orders.yaml: line 4: unknown field "delay"`},
		},
		{
			name: "unknown top-level field",
			data: "topic:\n- name: orders\n",
			want: []string{`topics/orders.yaml: line 1: unknown field "topic"`},
		},
		{
			name: "wrong type",
			data: "topics:\n- name: orders\n  partitions: twelve\n",
			want: []string{"topics/orders.yaml: line 3: cannot unmarshal !!str `twelve` into int32"},
		},
		{
			name: "partitions overflow",
			data: "topics:\n- name: orders\n  partitions: 99999999999\n",
			want: []string{"topics/orders.yaml: line 3: cannot unmarshal !!int `9999999...` into int32"},
		},
		{
			name: "topics not a list",
			data: "topics: orders\n",
			want: []string{"topics/orders.yaml: line 1: cannot unmarshal !!str `orders` into topics (want a list)"},
		},
		{
			name: "repeated key",
			data: "topics:\n- name: orders\n  partitions: 1\n  partitions: 2\n",
			want: []string{`topics/orders.yaml: line 4: mapping key "partitions" already defined at line 3`},
		},
		{
			name: "syntax error",
			data: "topics:\n- name: [orders\n",
			want: []string{"topics/orders.yaml: line 1: did not find expected ',' or ']'"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			set, err := topics.Parse(f, []byte(tt.data))
			if err == nil {
				t.Fatalf("Parse succeeded: %+v", set)
			}
			if set != nil {
				t.Errorf("Parse returned a set with an error: %+v", set)
			}
			got := strings.Split(err.Error(), "\n")
			if !sameLines(got, tt.want) {
				t.Errorf("error lines:\n got %q\nwant %q", got, tt.want)
			}
		})
	}
}

func sameLines(got, want []string) bool {
	if len(got) != len(want) {
		return false
	}
	seen := make(map[string]int)
	for _, g := range got {
		seen[g]++
	}
	for _, w := range want {
		if seen[w] == 0 {
			return false
		}
		seen[w]--
	}
	return true
}

func TestValidationErrorFields(t *testing.T) {
	_, err := topics.Parse("t.yaml", []byte("topics:\n- {name: a, partitions: 1}\n- {name: orders, partitions: 1, retry: {delays: [2s, 1s]}}\n"))
	var ve *topics.ValidationError
	if !errors.As(err, &ve) {
		t.Fatalf("error %v is not a *ValidationError", err)
	}
	want := topics.ValidationError{File: "t.yaml", Index: 1, Topic: "orders", Field: "retry.delays[1]", Msg: "must not be shorter than retry.delays[0] (2s), got 1s"}
	if *ve != want {
		t.Fatalf("got %+v, want %+v", *ve, want)
	}

	_, err = topics.Parse("t.yaml", []byte("topics:\n- {name: a, bogus: 1}\n"))
	var de *topics.DecodeError
	if !errors.As(err, &de) || de.File != "t.yaml" {
		t.Fatalf("error %v is not a *DecodeError for t.yaml", err)
	}
}

func writeFiles(t *testing.T, files map[string]string) string {
	t.Helper()
	dir := t.TempDir()
	for name, data := range files {
		p := filepath.Join(dir, name)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(data), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

func TestLoad(t *testing.T) {
	dir := writeFiles(t, map[string]string{
		"b.yaml":           "topics:\n- {name: payments, partitions: 3}\n",
		"a.yml":            "topics:\n- {name: orders, partitions: 12, retry: {delays: [1s]}}\n",
		"README.md":        "not yaml: [",
		"notes.txt":        "topics: nope",
		"sub/ignored.yaml": "topics: nope",
	})
	set, err := topics.Load(dir)
	if err != nil {
		t.Fatal(err)
	}
	if len(set.Topics) != 2 || set.Topics[0].Name != "orders" || set.Topics[1].Name != "payments" {
		t.Fatalf("Load: %+v (want orders from a.yml, then payments from b.yaml)", set.Topics)
	}
}

func TestLoadErrorsAcrossFiles(t *testing.T) {
	dir := writeFiles(t, map[string]string{
		"a.yaml": "topics:\n- {name: orders, partitions: 12}\n",
		"b.yaml": "topics:\n- {name: orders, partitions: 12}\n- {name: orders.dlq, partitions: 12, dlq: false}\n",
		"c.yaml": "topics:\n- {name: bad, partitions: 1, color: red}\n",
		"d.yaml": "topics:\n- {name: fine, partitions: 0}\n",
	})
	_, err := topics.Load(dir)
	if err == nil {
		t.Fatal("Load succeeded")
	}
	a, b, c, d := filepath.Join(dir, "a.yaml"), filepath.Join(dir, "b.yaml"), filepath.Join(dir, "c.yaml"), filepath.Join(dir, "d.yaml")
	want := []string{
		b + `: topic "orders": name is already declared in ` + a,
		b + `: topic "orders.dlq": name collides with the DLQ topic of topic "orders" declared in ` + a,
		c + `: line 2: unknown field "color"`,
		d + `: topic "fine": partitions must be >= 1, got 0`,
	}
	if got := strings.Split(err.Error(), "\n"); !sameLines(got, want) {
		t.Fatalf("error lines:\n got %q\nwant %q", got, want)
	}
}

func TestLoadNoFiles(t *testing.T) {
	dir := writeFiles(t, map[string]string{"README.md": "hi"})
	if _, err := topics.Load(dir); err == nil || !strings.Contains(err.Error(), "no declaration files") {
		t.Fatalf("Load of a directory without declarations: %v", err)
	}
	if _, err := topics.Load(filepath.Join(dir, "missing")); err == nil {
		t.Fatal("Load of a missing directory succeeded")
	}
}

// TestRepoTopics checks the repository's own declarations.
func TestRepoTopics(t *testing.T) {
	set, err := topics.Load("../../topics")
	if err != nil {
		t.Fatal(err)
	}
	orders, ok := set.Lookup("orders")
	if !ok {
		t.Fatal("topics/ does not declare orders")
	}
	want := topics.Topic{
		Name:              "orders",
		Partitions:        12,
		ReplicationFactor: 1,
		Retry:             topics.RetryChain{Delays: []time.Duration{time.Second, 5 * time.Second, 30 * time.Second}},
		DLQ:               true,
	}
	if !reflect.DeepEqual(orders, want) {
		t.Fatalf("orders = %+v, want %+v", orders, want)
	}
}

func TestNilSet(t *testing.T) {
	var s *topics.Set
	if s.Specs() != nil {
		t.Error("nil Set has specs")
	}
	if _, ok := s.Lookup("x"); ok {
		t.Error("nil Set found a topic")
	}
}
