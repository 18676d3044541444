// Package builtin registers the processors that ship with Ordo, so that the
// ordo binary and a team's own binary register the same ones explicitly:
//
//	procs := builtin.New() // example, log
//	procs.Register("mine", newMine)
package builtin

import (
	"fmt"
	"time"

	"github.com/ordokafka/ordo/pkg/ordo"
	"github.com/ordokafka/ordo/pkg/registry"
	"github.com/ordokafka/ordo/processors/example"
	"github.com/ordokafka/ordo/processors/logproc"
)

// New returns a Registry holding the built-in processors.
func New() *registry.Registry {
	r := registry.New()
	Register(r)
	return r
}

// Register adds the built-in processors to r:
//
//	example  the demo's ledger (processors/example); processor_config: {work: 2ms}
//	log      logs each record (processors/logproc); processor_config: {max_value: 256}
//
// It panics if r already has one of their names.
func Register(r *registry.Registry) {
	r.Register("example", Example)
	r.Register("log", Log)
}

// ExampleConfig is the processor_config of the example processor.
type ExampleConfig struct {
	// Work is the simulated work per event. Default 0.
	Work time.Duration `yaml:"work"`
}

// Example is the factory of the example processor.
func Example(s registry.Setup) (ordo.Processor, error) {
	var c ExampleConfig
	if err := s.Decode(&c); err != nil {
		return nil, err
	}
	if c.Work < 0 {
		return nil, fmt.Errorf("work: must not be negative, got %s", c.Work)
	}
	return example.New(example.Options{Work: c.Work}), nil
}

// LogConfig is the processor_config of the log processor.
type LogConfig struct {
	// MaxValue is the most bytes of a value logged. Default 256.
	MaxValue int `yaml:"max_value"`
}

// Log is the factory of the log processor.
func Log(s registry.Setup) (ordo.Processor, error) {
	c := LogConfig{MaxValue: 256}
	if err := s.Decode(&c); err != nil {
		return nil, err
	}
	if c.MaxValue < 0 {
		return nil, fmt.Errorf("max_value: must not be negative, got %d", c.MaxValue)
	}
	p := logproc.New(s.Logger)
	p.MaxValue = c.MaxValue
	return p, nil
}
