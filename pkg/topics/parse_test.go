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
    groups:
      - name: ledger
        retry:
          delays: [1s, 10s, 10s, 1m]
        dlq: true
      - name: audit
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
			Groups: []topics.GroupChain{
				{Topic: "orders", Group: "ledger", Retry: topics.RetryChain{Delays: []time.Duration{time.Second, 10 * time.Second, 10 * time.Second, time.Minute}}, DLQ: true},
				{Topic: "orders", Group: "audit", DLQ: true},
			},
		},
		{Name: "payments", Partitions: 3, ReplicationFactor: 1},
	}
	if !reflect.DeepEqual(set.Topics, want) {
		t.Fatalf("topics:\n got %+v\nwant %+v", set.Topics, want)
	}

	orders, ok := set.Lookup("orders")
	if !ok || orders.Name != "orders" {
		t.Fatalf("Lookup(orders) = %+v, %v", orders, ok)
	}
	if _, ok := set.Lookup("orders.ledger.dlq"); ok {
		t.Fatal("Lookup found a derived name")
	}
	ledger, ok := orders.Chain("ledger")
	if !ok {
		t.Fatal("Chain(ledger) not found")
	}
	if got := ledger.RetryTopic(2); got != "orders.ledger.retry.2" {
		t.Errorf("RetryTopic(2) = %q", got)
	}
	if got := ledger.DLQTopic(); got != "orders.ledger.dlq" {
		t.Errorf("DLQTopic() = %q", got)
	}
	if d, ok := ledger.Retry.Delay(4); !ok || d != time.Minute {
		t.Errorf("Delay(4) = %s, %v", d, ok)
	}
	if _, ok := ledger.Retry.Delay(5); ok {
		t.Error("Delay(5) found a tier the chain does not have")
	}
	if _, ok := orders.Chain("billing"); ok {
		t.Error("Chain found an undeclared group")
	}
	if c, ok := set.Chain("orders", "audit"); !ok || c.Retry.Tiers() != 0 || !c.DLQ {
		t.Errorf("Set.Chain(orders, audit) = %+v, %v", c, ok)
	}
	if _, ok := set.Chain("payments", "ledger"); ok {
		t.Error("Set.Chain found a group on a topic that does not declare it")
	}

	specs := set.Specs()
	var names []string
	for _, s := range specs {
		names = append(names, s.Name)
		if s.Source == "orders" && (s.Partitions != 12 || s.ReplicationFactor != 3) {
			t.Errorf("%s: partitions %d, replication %d; want the source's 12, 3", s.Name, s.Partitions, s.ReplicationFactor)
		}
	}
	wantNames := []string{"orders", "orders.ledger.retry.1", "orders.ledger.retry.2", "orders.ledger.retry.3", "orders.ledger.retry.4",
		"orders.ledger.dlq", "orders.audit.dlq", "payments"}
	if !reflect.DeepEqual(names, wantNames) {
		t.Fatalf("Specs names = %v, want %v", names, wantNames)
	}
	if s := specs[3]; s.Kind != topics.KindRetry || s.Tier != 3 || s.Delay != 10*time.Second || s.Source != "orders" || s.Group != "ledger" {
		t.Errorf("orders.ledger.retry.3 spec = %+v", s)
	}
	if s := specs[5]; s.Kind != topics.KindDLQ || s.Tier != 0 || s.Delay != 0 || s.Group != "ledger" {
		t.Errorf("orders.ledger.dlq spec = %+v", s)
	}
	if s := specs[6]; s.Kind != topics.KindDLQ || s.Group != "audit" {
		t.Errorf("orders.audit.dlq spec = %+v", s)
	}
	if s := specs[0]; s.Kind != topics.KindMain || s.Group != "" {
		t.Errorf("orders spec = %+v", s)
	}
	if got := specs[0].Configs["cleanup.policy"]; got != "compact" {
		t.Errorf("main topic cleanup.policy = %q, want compact", got)
	}
	for _, s := range specs[1:7] {
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

// Two groups reading one topic get chains of their own: no derived name is
// shared, and each group's lookup returns only its own.
func TestTwoGroupsOnOneTopicKeptApart(t *testing.T) {
	set, err := topics.Parse("t.yaml", []byte(`
topics:
  - name: orders
    partitions: 4
    groups:
      - {name: billing, retry: {delays: [1s, 5s]}}
      - {name: audit, retry: {delays: [10s]}}
`))
	if err != nil {
		t.Fatal(err)
	}
	owner := make(map[string]string)
	for _, s := range set.Specs()[1:] {
		if prev, dup := owner[s.Name]; dup {
			t.Fatalf("%s derived for both %s and %s", s.Name, prev, s.Group)
		}
		owner[s.Name] = s.Group
		if !strings.Contains(s.Name, "."+s.Group+".") {
			t.Errorf("%s (group %s) does not carry its group", s.Name, s.Group)
		}
	}
	want := map[string]string{
		"orders.billing.retry.1": "billing", "orders.billing.retry.2": "billing", "orders.billing.dlq": "billing",
		"orders.audit.retry.1": "audit", "orders.audit.dlq": "audit",
	}
	if !reflect.DeepEqual(owner, want) {
		t.Fatalf("derived topics %v, want %v", owner, want)
	}
	b, _ := set.Chain("orders", "billing")
	a, _ := set.Chain("orders", "audit")
	if b.DLQTopic() == a.DLQTopic() || b.RetryTopic(1) == a.RetryTopic(1) {
		t.Fatalf("chains share topics: %+v %+v", b, a)
	}
	if a.Retry.Tiers() != 1 || b.Retry.Tiers() != 2 {
		t.Fatalf("tiers: audit %d, billing %d", a.Retry.Tiers(), b.Retry.Tiers())
	}

	// The chain of a group the declarations do not name, built by a tool.
	orders, _ := set.Lookup("orders")
	extra := orders.ChainSpecs(topics.GroupChain{Topic: "orders", Group: "search", Retry: b.Retry, DLQ: true})
	var names []string
	for _, s := range extra {
		names = append(names, s.Name)
		if s.Group != "search" || s.Partitions != 4 || s.Source != "orders" {
			t.Errorf("spec %+v", s)
		}
	}
	if want := []string{"orders.search.retry.1", "orders.search.retry.2", "orders.search.dlq"}; !reflect.DeepEqual(names, want) {
		t.Fatalf("ChainSpecs = %v, want %v", names, want)
	}
}

func TestParseDefaultsAndDLQOff(t *testing.T) {
	set, err := topics.Parse("x.yaml", []byte("topics:\n- name: a\n  partitions: 1\n  groups: [{name: g, dlq: false}]\n- name: b\n  partitions: 1\n"))
	if err != nil {
		t.Fatal(err)
	}
	got := set.Topics[0]
	if got.ReplicationFactor != 1 || got.Configs != nil || len(got.Groups) != 1 {
		t.Fatalf("defaults: %+v", got)
	}
	if g := got.Groups[0]; g.DLQ || g.Retry.Tiers() != 0 || g.Group != "g" || g.Topic != "a" {
		t.Fatalf("group defaults: %+v", g)
	}
	if specs := got.All(); len(specs) != 1 || specs[0].Name != "a" || specs[0].Kind != topics.KindMain {
		t.Fatalf("All() = %+v", specs)
	}
	// A group without dlq gets one.
	set, err = topics.Parse("x.yaml", []byte("topics:\n- {name: a, partitions: 1, groups: [{name: g}]}\n"))
	if err != nil {
		t.Fatal(err)
	}
	if specs := set.Specs(); len(specs) != 2 || specs[1].Name != "a.g.dlq" {
		t.Fatalf("default dlq: %+v", specs)
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
			data: "topics:\n- name: " + strings.Repeat("a", 240) + "\n  partitions: 1\n  groups: [{name: g, retry: {delays: [1s]}, dlq: false}]\n",
			want: []string{`topics/orders.yaml: topic "` + strings.Repeat("a", 240) + `": groups[0].name "g" gives retry topic 1 "` +
				strings.Repeat("a", 240) + `.g.retry.1", which is 250 characters long, more than 249`},
		},
		{
			name: "group name too long for the dlq",
			data: "topics:\n- name: orders\n  partitions: 1\n  groups: [{name: " + strings.Repeat("g", 241) + "}]\n",
			want: []string{`topics/orders.yaml: topic "orders": groups[0].name "` + strings.Repeat("g", 241) + `" gives DLQ topic "orders.` + strings.Repeat("g", 241) + `.dlq", which is 252 characters long, more than 249`},
		},
		{
			name: "group name makes an illegal topic name",
			data: "topics:\n- name: orders\n  partitions: 1\n  groups: [{name: 'team/billing', retry: {delays: [1s]}}]\n",
			want: []string{`topics/orders.yaml: topic "orders": groups[0].name "team/billing" gives retry topic 1 "orders.team/billing.retry.1", which has '/': only a-z A-Z 0-9 . _ - are allowed`},
		},
		{
			name: "group name required",
			data: "topics:\n- name: orders\n  partitions: 1\n  groups: [{retry: {delays: [1s]}}]\n",
			want: []string{`topics/orders.yaml: topic "orders": groups[0].name is required (the consumer group that reads the topic)`},
		},
		{
			name: "group declared twice",
			data: "topics:\n- name: orders\n  partitions: 1\n  groups: [{name: g}, {name: h}, {name: g, dlq: false}]\n",
			want: []string{`topics/orders.yaml: topic "orders": groups[2].name "g" is already declared for this topic (groups[0])`},
		},
		{
			name: "old topic-level retry",
			data: "topics:\n- name: orders\n  partitions: 1\n  retry: {delays: [1s]}\n",
			want: []string{`topics/orders.yaml: topic "orders": retry is no longer a topic field: retry tiers belong to a consumer group; ` +
				`move it under groups, e.g. groups: [{name: <group>, retry: {delays: [1s, 5s]}}], which gives orders.<group>.retry.1 (see topics/README.md)`},
		},
		{
			name: "old topic-level dlq",
			data: "topics:\n- name: orders\n  partitions: 1\n  dlq: false\n",
			want: []string{`topics/orders.yaml: topic "orders": dlq is no longer a topic field: a dead-letter topic belongs to a consumer group; ` +
				`move it under groups, e.g. groups: [{name: <group>, dlq: true}], which gives orders.<group>.dlq (see topics/README.md)`},
		},
		{
			name: "zero delay",
			data: "topics:\n- name: orders\n  partitions: 1\n  groups: [{name: g, retry: {delays: [1s, 0s]}}]\n",
			want: []string{`topics/orders.yaml: topic "orders": groups[0].retry.delays[1] must be > 0, got 0s`},
		},
		{
			name: "negative delay",
			data: "topics:\n- name: orders\n  partitions: 1\n  groups: [{name: g, retry: {delays: [-5s]}}]\n",
			want: []string{`topics/orders.yaml: topic "orders": groups[0].retry.delays[0] must be > 0, got -5s`},
		},
		{
			name: "decreasing delays",
			data: "topics:\n- name: orders\n  partitions: 1\n  groups: [{name: a}, {name: g, retry: {delays: [10s, 1m, 5s]}}]\n",
			want: []string{`topics/orders.yaml: topic "orders": groups[1].retry.delays[2] must not be shorter than groups[1].retry.delays[1] (1m0s), got 5s`},
		},
		{
			name: "unitless delay",
			data: "topics:\n- name: orders\n  partitions: 1\n  groups: [{name: g, retry: {delays: [5]}}]\n",
			want: []string{`topics/orders.yaml: topic "orders": groups[0].retry.delays[0] is not a duration: "5" (use a Go duration such as 500ms, 10s or 1m)`},
		},
		{
			name: "empty retry",
			data: "topics:\n- name: orders\n  partitions: 1\n  groups: [{name: g, retry: {delays: []}}]\n",
			want: []string{`topics/orders.yaml: topic "orders": groups[0].retry.delays must list at least one delay (omit retry for a group without retry tiers)`},
		},
		{
			name: "delay beyond retention",
			data: "topics:\n- name: orders\n  partitions: 1\n  configs: {retention.ms: 60000}\n  groups: [{name: g, retry: {delays: [1s, 1m]}}]\n",
			want: []string{`topics/orders.yaml: topic "orders": groups[0].retry.delays[1] 1m0s is not shorter than configs retention.ms (1m0s): records would expire before they are due`},
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
			data: "topics:\n- {name: orders.g.dlq, partitions: 1}\n- {name: orders, partitions: 1, groups: [{name: g}]}\n",
			want: []string{`topics/orders.yaml: topic "orders.g.dlq": name collides with the DLQ topic of group "g" of topic "orders" declared in topics/orders.yaml`},
		},
		{
			name: "declared retry name",
			data: "topics:\n- {name: orders, partitions: 1, groups: [{name: g, retry: {delays: [1s, 2s]}}]}\n- {name: orders.g.retry.2, partitions: 1}\n",
			want: []string{`topics/orders.yaml: topic "orders.g.retry.2": name collides with the retry topic 2 of group "g" of topic "orders" declared in topics/orders.yaml`},
		},
		{
			name: "two chains derive one name",
			data: "topics:\n- {name: a, partitions: 1, groups: [{name: b.c}]}\n- {name: a.b, partitions: 1, groups: [{name: c}]}\n",
			want: []string{`topics/orders.yaml: topic "a.b": groups[0].name "c" gives DLQ topic "a.b.c.dlq", which is also the DLQ topic of group "b.c" of topic "a" declared in topics/orders.yaml`},
		},
		{
			name: "dot underscore collision",
			data: "topics:\n- {name: a.b, partitions: 1}\n- {name: a_b, partitions: 1}\n",
			want: []string{`topics/orders.yaml: topic "a_b": name collides with topic "a.b" declared in topics/orders.yaml: Kafka refuses names that differ only in '.' and '_'`},
		},
		{
			name: "derived dot underscore collision",
			data: "topics:\n- {name: a_g_dlq, partitions: 1}\n- {name: a, partitions: 1, groups: [{name: g}]}\n",
			want: []string{`topics/orders.yaml: topic "a": groups[0].name gives DLQ topic "a.g.dlq" of group "g" on topic "a", which collides with topic "a_g_dlq" declared in topics/orders.yaml: Kafka refuses names that differ only in '.' and '_'`},
		},
		{
			name: "several errors at once",
			data: "topics:\n- name: orders\n  partitions: 0\n  replication_factor: -1\n  groups: [{name: g, retry: {delays: [0s]}}, {name: 'x y'}]\n",
			want: []string{
				`topics/orders.yaml: topic "orders": partitions must be >= 1, got 0`,
				`topics/orders.yaml: topic "orders": replication_factor must be >= 1, got -1`,
				`topics/orders.yaml: topic "orders": groups[0].retry.delays[0] must be > 0, got 0s`,
				`topics/orders.yaml: topic "orders": groups[1].name "x y" gives DLQ topic "orders.x y.dlq", which has ' ': only a-z A-Z 0-9 . _ - are allowed`,
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
			data: "topics:\n- name: orders\n  partitions: 1\n  groups:\n  - name: g\n    retry: {delay: [1s]}\n",
			want: []string{`topics/orders.yaml: line 6: unknown field "delay"`},
		},
		{
			name: "unknown group field",
			data: "topics:\n- name: orders\n  partitions: 1\n  groups:\n  - name: g\n    dlq_topic: x\n",
			want: []string{`topics/orders.yaml: line 6: unknown field "dlq_topic"`},
		},
		{
			name: "groups not a list",
			data: "topics:\n- name: orders\n  partitions: 1\n  groups: g\n",
			want: []string{"topics/orders.yaml: line 4: cannot unmarshal !!str `g` into groups (want a list)"},
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
	_, err := topics.Parse("t.yaml", []byte("topics:\n- {name: a, partitions: 1}\n- {name: orders, partitions: 1, groups: [{name: g, retry: {delays: [2s, 1s]}}]}\n"))
	var ve *topics.ValidationError
	if !errors.As(err, &ve) {
		t.Fatalf("error %v is not a *ValidationError", err)
	}
	want := topics.ValidationError{File: "t.yaml", Index: 1, Topic: "orders", Field: "groups[0].retry.delays[1]", Msg: "must not be shorter than groups[0].retry.delays[0] (2s), got 1s"}
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
		"a.yml":            "topics:\n- {name: orders, partitions: 12, groups: [{name: g, retry: {delays: [1s]}}]}\n",
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
		"a.yaml": "topics:\n- {name: orders, partitions: 12, groups: [{name: g}]}\n",
		"b.yaml": "topics:\n- {name: orders, partitions: 12}\n- {name: orders.g.dlq, partitions: 12}\n",
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
		b + `: topic "orders.g.dlq": name collides with the DLQ topic of group "g" of topic "orders" declared in ` + a,
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
		Groups: []topics.GroupChain{{
			Topic: "orders", Group: "ordo-dev", DLQ: true,
			Retry: topics.RetryChain{Delays: []time.Duration{time.Second, 5 * time.Second, 30 * time.Second}},
		}, {
			// deploy/ordo.yaml's group: its retry.tiers are these delays.
			Topic: "orders", Group: "orders-ledger", DLQ: true,
			Retry: topics.RetryChain{Delays: []time.Duration{time.Minute, 10 * time.Minute}},
		}, {
			// examples/custom-processor's group: a dead-letter topic, no tiers.
			Topic: "orders", Group: "audit", DLQ: true,
		}},
	}
	if !reflect.DeepEqual(orders, want) {
		t.Fatalf("orders = %+v, want %+v", orders, want)
	}
	// The targets of the docs' copy examples (replay.md, cli.md).
	for _, name := range []string{"orders.replay", "orders.copy"} {
		if tp, ok := set.Lookup(name); !ok || tp.Partitions != 12 || len(tp.Groups) != 0 {
			t.Errorf("%s = %+v, %v; want 12 partitions, no group", name, tp, ok)
		}
	}
	// ordo dev's group: the chain the engine and `ordo dlq` look up.
	c, ok := set.Chain("orders", "ordo-dev")
	if !ok || c.RetryTopic(1) != "orders.ordo-dev.retry.1" || c.DLQTopic() != "orders.ordo-dev.dlq" {
		t.Fatalf("Chain(orders, ordo-dev) = %+v, %v", c, ok)
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
