package builtin_test

import (
	"slices"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/ordokafka/ordo/pkg/registry"
	"github.com/ordokafka/ordo/processors/builtin"
	"github.com/ordokafka/ordo/processors/example"
	"github.com/ordokafka/ordo/processors/logproc"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

func TestBuiltins(t *testing.T) {
	r := builtin.New()
	if got := r.Names(); !slices.Equal(got, []string{"example", "log"}) {
		t.Fatalf("names %v", got)
	}
	p, err := r.Build(registry.NewSetup("example", map[string]any{"work": "3ms"}, nil))
	if _, ok := p.(*example.Processor); !ok || err != nil {
		t.Errorf("example: %T, %v", p, err)
	}
	p, err = r.Build(registry.NewSetup("log", map[string]any{"max_value": 16}, nil))
	if lp, ok := p.(*logproc.Processor); !ok || err != nil || lp.MaxValue != 16 {
		t.Errorf("log: %T, %v", p, err)
	}
	for name, cfg := range map[string]map[string]any{
		"example": {"work": (-time.Second).String()},
		"log":     {"max_value": -1},
	} {
		if _, err := r.Build(registry.NewSetup(name, cfg, nil)); err == nil {
			t.Errorf("%s accepted %v", name, cfg)
		}
	}
}
