package registry_test

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/ordokafka/ordo/pkg/ordo"
	"github.com/ordokafka/ordo/pkg/registry"
)

var nop = ordo.ProcessorFunc(func(context.Context, *kgo.Record) error { return nil })

func nopFactory(registry.Setup) (ordo.Processor, error) { return nop, nil }

func TestAddRefusesBadNamesNilFactoriesAndDuplicates(t *testing.T) {
	r := registry.New()
	if err := r.Add("shout", nopFactory); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name string
		f    registry.Factory
		want string
	}{
		{"", nopFactory, `processor name ""`},
		{"Shout", nopFactory, `processor name "Shout"`},
		{"-x", nopFactory, `processor name "-x"`},
		{"has space", nopFactory, `processor name "has space"`},
		{"nil", nil, `processor "nil": nil factory`},
		{"shout", nopFactory, `processor "shout" registered twice`},
	} {
		err := r.Add(tc.name, tc.f)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("Add(%q): %v, want an error with %q", tc.name, err, tc.want)
		}
	}
	if got := r.Names(); len(got) != 1 || got[0] != "shout" {
		t.Errorf("names %v after refused adds", got)
	}
	for _, name := range []string{"a.b_c-1", "9lives"} {
		if err := r.Add(name, nopFactory); err != nil {
			t.Errorf("Add(%q): %v", name, err)
		}
	}
}

func TestRegisterPanicsOnAProgrammingError(t *testing.T) {
	r := registry.New()
	r.Register("shout", nopFactory)
	defer func() {
		if v := recover(); v == nil || !strings.Contains(v.(error).Error(), "registered twice") {
			t.Errorf("recovered %v, want the duplicate's error", v)
		}
	}()
	r.Register("shout", nopFactory)
}

func TestBuildUnknownNameListsTheRegisteredOnes(t *testing.T) {
	r := registry.New()
	r.Register("b", nopFactory)
	r.Register("a", nopFactory)
	_, err := r.Build(registry.NewSetup("c", nil, nil))
	var nr *registry.NotRegisteredError
	if !errors.As(err, &nr) || err.Error() != `"c" is not registered (registered: a, b)` {
		t.Errorf("Build: %v", err)
	}
	var empty *registry.Registry
	if _, err := empty.Build(registry.NewSetup("c", nil, nil)); err == nil || !strings.Contains(err.Error(), "registers no processor") {
		t.Errorf("nil registry: %v", err)
	}
}

func TestBuildPassesTheSetupAndRefusesNilProcessors(t *testing.T) {
	r := registry.New()
	var got registry.Setup
	r.Register("spy", func(s registry.Setup) (ordo.Processor, error) { got = s; return nop, nil })
	r.Register("broken", func(registry.Setup) (ordo.Processor, error) { return nil, nil })
	r.Register("picky", func(registry.Setup) (ordo.Processor, error) { return nil, errors.New("url: is required") })
	if _, err := r.Build(registry.NewSetup("spy", map[string]any{"a": 1}, nil)); err != nil {
		t.Fatal(err)
	}
	if got.Name != "spy" || got.Logger == nil || got.Config()["a"] != 1 {
		t.Errorf("setup %+v, config %v", got, got.Config())
	}
	got.Config()["a"] = 2 // a copy: the factory cannot change the command's configuration
	if got.Config()["a"] != 1 {
		t.Error("Config returned the section itself")
	}
	if _, err := r.Build(registry.NewSetup("broken", nil, nil)); err == nil || !strings.Contains(err.Error(), "returned no processor") {
		t.Errorf("nil processor: %v", err)
	}
	if _, err := r.Build(registry.NewSetup("picky", nil, nil)); err == nil || err.Error() != "url: is required" {
		t.Errorf("factory error: %v", err)
	}
}

type options struct {
	URL     string        `yaml:"url"`
	Timeout time.Duration `yaml:"timeout"`
	Retries int           `yaml:"retries"`
	Tags    []string      `yaml:"tags"`
}

func TestDecodeReadsOptionsStrictly(t *testing.T) {
	cfg := map[string]any{"url": "http://x", "timeout": "250ms", "retries": 3, "tags": []any{"a", "b"}}
	o := options{Timeout: time.Second}
	if err := registry.NewSetup("p", cfg, nil).Decode(&o); err != nil {
		t.Fatal(err)
	}
	if o.URL != "http://x" || o.Timeout != 250*time.Millisecond || o.Retries != 3 || len(o.Tags) != 2 {
		t.Errorf("decoded %+v", o)
	}

	def := options{Timeout: time.Second}
	if err := registry.NewSetup("p", nil, nil).Decode(&def); err != nil || def.Timeout != time.Second {
		t.Errorf("no section: %v, %+v (defaults must stay)", err, def)
	}

	for _, tc := range []struct {
		cfg  map[string]any
		want string
	}{
		{map[string]any{"ulr": "x"}, `unknown option "ulr"`},
		{map[string]any{"timeout": "soon"}, `cannot read "soon" as time.Duration`},
		{map[string]any{"retries": "many"}, `cannot read "many" as int`},
	} {
		err := registry.NewSetup("p", tc.cfg, nil).Decode(&options{})
		if err == nil || err.Error() != tc.want {
			t.Errorf("Decode(%v): %v, want %q", tc.cfg, err, tc.want)
		}
	}
}

func TestMergeIsAllOrNothing(t *testing.T) {
	a, b := registry.New(), registry.New()
	a.Register("x", nopFactory)
	b.Register("y", nopFactory)
	b.Register("x", nopFactory)
	if err := a.Merge(b); err == nil || !strings.Contains(err.Error(), `"x" registered twice`) {
		t.Errorf("Merge: %v", err)
	}
	if a.Has("y") {
		t.Error("a failed merge registered y")
	}
	c := registry.New()
	if err := c.Merge(b); err != nil || !c.Has("x") || !c.Has("y") {
		t.Errorf("Merge into empty: %v, %v", err, c.Names())
	}
	if err := c.Merge(nil); err != nil {
		t.Errorf("Merge(nil): %v", err)
	}
}
