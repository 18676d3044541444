package registry_test

import (
	"context"
	"fmt"
	"strings"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/ordokafka/ordo/pkg/ordo"
	"github.com/ordokafka/ordo/pkg/registry"
)

// ShoutConfig is the processor_config of the shout processor.
type ShoutConfig struct {
	Suffix string `yaml:"suffix"`
}

// newShout is a Factory: it decodes its options and builds the processor.
func newShout(s registry.Setup) (ordo.Processor, error) {
	c := ShoutConfig{Suffix: "!"}
	if err := s.Decode(&c); err != nil {
		return nil, err
	}
	return ordo.ProcessorFunc(func(ctx context.Context, r *kgo.Record) error {
		s.Logger.InfoContext(ctx, strings.ToUpper(string(r.Value))+c.Suffix)
		return nil
	}), nil
}

func Example() {
	procs := registry.New()
	procs.Register("shout", newShout)

	// What `ordo run` does with processor: shout and
	// processor_config: {suffix: "!!!"}:
	p, err := procs.Build(registry.NewSetup("shout", map[string]any{"suffix": "!!!"}, nil))
	fmt.Println(p != nil, err)

	_, err = procs.Build(registry.NewSetup("whisper", nil, nil))
	fmt.Println(err)
	_, err = procs.Build(registry.NewSetup("shout", map[string]any{"sufix": "?"}, nil))
	fmt.Println(err)
	// Output:
	// true <nil>
	// "whisper" is not registered (registered: shout)
	// unknown option "sufix"
}
