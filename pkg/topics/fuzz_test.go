package topics_test

import (
	"strings"
	"testing"

	"github.com/ordokafka/ordo/pkg/topics"
)

// FuzzParse checks that Parse never panics and that what it accepts is
// consistent: every spec has a legal name, at least one partition and
// replica, names are unique, and retry delays are positive and non-decreasing.
func FuzzParse(f *testing.F) {
	seeds := []string{
		"",
		"topics: []\n",
		"topics:\n- name: orders\n  partitions: 12\n  replication_factor: 1\n  configs: {retention.ms: \"604800000\"}\n  groups:\n  - name: g\n    retry:\n      delays: [1s, 10s, 1m]\n    dlq: true\n",
		"topics:\n- {name: a, partitions: 1}\n---\ntopics:\n- {name: b, partitions: 2, groups: [{name: g, dlq: false}]}\n",
		"topics:\n- {name: orders.g.dlq, partitions: 1}\n- {name: orders, partitions: 1, groups: [{name: g}]}\n",
		"topics:\n- {name: a.b, partitions: 1}\n- {name: a_b, partitions: 1}\n",
		"topics:\n- {name: a, partitions: 1, groups: [{name: b.c}]}\n- {name: a.b, partitions: 1, groups: [{name: c}]}\n",
		"topics:\n- name: x\n  partitions: 1\n  groups: [{name: g, retry: {delays: [5, -1s, 0, 1h, 30m]}}, {name: g}, {name: 'a b'}]\n",
		"topics:\n- name: x\n  partitions: 1\n  retry: {delays: [1s]}\n  dlq: true\n",
		"topics: &a [*a]\n",
		"topics:\n- name: [\n",
		"topics:\n- name: x\n  partitions: 1\n  partitions: 2\n",
		"!!binary AAAA",
	}
	for _, s := range seeds {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		set, err := topics.Parse("fuzz.yaml", data)
		if err != nil {
			if set != nil {
				t.Fatalf("Parse returned a set and an error: %v", err)
			}
			if !strings.HasPrefix(err.Error(), "fuzz.yaml: ") {
				t.Fatalf("error does not name the file: %q", err)
			}
			return
		}
		seen := make(map[string]bool)
		for _, s := range set.Specs() {
			if s.Name == "" || len(s.Name) > topics.MaxNameLen || s.Name == "." || s.Name == ".." ||
				strings.Trim(s.Name, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789._-") != "" {
				t.Fatalf("accepted illegal name %q", s.Name)
			}
			norm := strings.ReplaceAll(s.Name, ".", "_")
			if seen[norm] {
				t.Fatalf("accepted colliding name %q", s.Name)
			}
			seen[norm] = true
			if s.Partitions < 1 || s.ReplicationFactor < 1 {
				t.Fatalf("accepted %+v", s)
			}
		}
		for _, tp := range set.Topics {
			groups := make(map[string]bool)
			for _, g := range tp.Groups {
				if g.Group == "" || groups[g.Group] || g.Topic != tp.Name {
					t.Fatalf("accepted group %+v of %s", g, tp.Name)
				}
				groups[g.Group] = true
				for i, d := range g.Retry.Delays {
					if d <= 0 || i > 0 && d < g.Retry.Delays[i-1] {
						t.Fatalf("accepted delays %v", g.Retry.Delays)
					}
				}
			}
		}
	})
}
