// Package registry names the processors a binary can run: `ordo run
// --processor NAME` and `ordo dev --processor NAME` look NAME up in the
// Registry the binary was built with.
//
// A Registry is a value, filled in by the program's main and handed to
// ordocli.Main: no init() self-registration, no global list. The ordo
// binary registers the built-in processors (processors/builtin); a team's
// own binary registers those and its own beside them:
//
//	procs := builtin.New()             // example, log
//	procs.Register("shout", newShout)  // func(registry.Setup) (ordo.Processor, error)
//	os.Exit(ordocli.Main(ctx, os.Args[1:], os.Stdout, os.Stderr, ordocli.WithProcessors(procs)))
//
// A Factory builds its processor from a Setup: the processor_config section
// of the `ordo run` configuration (decoded with Setup.Decode into the
// processor's own options struct) and a logger.
package registry

import (
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"regexp"
	"slices"
	"strings"

	"gopkg.in/yaml.v3"

	"github.com/ordokafka/ordo/pkg/ordo"
)

// Factory builds a processor. It is called once per `ordo run` or `ordo
// dev`, before anything connects: check the configuration and build the
// processor; open connections lazily, or in the processor's first call. An
// error is reported to the user as a configuration error of
// processor_config, and the command exits 2.
//
// If the processor returned also has a Close() error method, the command
// calls it once the consumer has stopped (its last records are done).
type Factory func(Setup) (ordo.Processor, error)

// Setup is what a Factory is given.
type Setup struct {
	// Name is the name the processor was asked by (`--processor NAME`).
	Name string
	// Logger is the command's logger (its level is `log_level`). Never nil.
	Logger *slog.Logger
	// config is the processor_config section; nil when absent.
	config map[string]any
}

// NewSetup returns the Setup of processor name with config (the
// processor_config section as YAML decodes it; nil: none) and log (nil: a
// logger that discards). Commands build it; a processor's tests use it to
// call their Factory.
func NewSetup(name string, config map[string]any, log *slog.Logger) Setup {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return Setup{Name: name, Logger: log, config: config}
}

// Config returns a copy of the processor_config section; nil when the
// configuration has none.
func (s Setup) Config() map[string]any { return maps.Clone(s.config) }

// Decode decodes the processor_config section into dst, a pointer to the
// processor's options struct, as gopkg.in/yaml.v3 decodes YAML: fields are
// matched by their `yaml:"name"` tag (or the lower-cased field name), and
// a time.Duration reads "250ms" or "1m". A key that matches no field is an
// error, so that a misspelled option is not silently ignored. Without a
// processor_config section dst is left as it is (its defaults).
func (s Setup) Decode(dst any) error {
	if len(s.config) == 0 {
		return nil
	}
	b, err := yaml.Marshal(s.config)
	if err != nil {
		return fmt.Errorf("processor_config: %w", err)
	}
	dec := yaml.NewDecoder(strings.NewReader(string(b)))
	dec.KnownFields(true)
	if err := dec.Decode(dst); err != nil {
		return errors.New(cleanYAMLError(err))
	}
	return nil
}

// yaml.v3's errors, rewritten for the user: their line numbers count lines
// of the section as Decode re-encoded it, not of the user's file, and the
// Go types they name mean nothing in a configuration.
var (
	yamlLine    = regexp.MustCompile(`line \d+: `)
	yamlUnknown = regexp.MustCompile(`field (\S+) not found in type \S+`)
	yamlType    = regexp.MustCompile("cannot unmarshal !!\\w+ `(.*)` into (\\S+)")
)

// cleanYAMLError returns err's text without line numbers, Go types or the
// "yaml: unmarshal errors:" preamble, its errors joined by "; ".
func cleanYAMLError(err error) string {
	msg := strings.TrimPrefix(err.Error(), "yaml: ")
	msg = strings.TrimPrefix(msg, "unmarshal errors:\n")
	lines := strings.Split(msg, "\n")
	for i, l := range lines {
		l = yamlLine.ReplaceAllString(strings.TrimSpace(l), "")
		l = yamlUnknown.ReplaceAllString(l, `unknown option "$1"`)
		lines[i] = yamlType.ReplaceAllString(l, `cannot read "$1" as $2`)
	}
	return strings.Join(lines, "; ")
}

// Registry maps processor names to factories. The zero value is empty and
// ready to use. A Registry is not safe for concurrent registration; fill it
// in main, before handing it on.
type Registry struct {
	factories map[string]Factory
}

// New returns an empty Registry.
func New() *Registry { return &Registry{} }

// validName is what a processor name may be: it is typed on command lines,
// in YAML and in the ordo-processor header.
var validName = regexp.MustCompile(`^[a-z0-9][a-z0-9._-]*$`)

// Register adds a processor under name. Like http.Handle and river's
// AddWorker, it panics on a programming error, so that a binary wired
// wrongly fails at its first start rather than at its first record: a name
// that is not lower-case letters, digits, '.', '_' and '-' (starting with a
// letter or digit), a nil factory, or a name already registered. Use Add
// to get an error instead.
func (r *Registry) Register(name string, f Factory) {
	if err := r.Add(name, f); err != nil {
		panic(err)
	}
}

// Add is Register returning an error instead of panicking.
func (r *Registry) Add(name string, f Factory) error {
	switch {
	case !validName.MatchString(name):
		return fmt.Errorf("registry: processor name %q: want lower-case letters, digits, '.', '_' and '-', starting with a letter or digit", name)
	case f == nil:
		return fmt.Errorf("registry: processor %q: nil factory", name)
	}
	if _, dup := r.factories[name]; dup {
		return fmt.Errorf("registry: processor %q registered twice", name)
	}
	if r.factories == nil {
		r.factories = map[string]Factory{}
	}
	r.factories[name] = f
	return nil
}

// Names returns the registered names, sorted. A nil Registry has none.
func (r *Registry) Names() []string {
	if r == nil {
		return nil
	}
	return slices.Sorted(maps.Keys(r.factories))
}

// Has reports whether name is registered.
func (r *Registry) Has(name string) bool {
	if r == nil {
		return false
	}
	_, ok := r.factories[name]
	return ok
}

// NotRegisteredError is Build's error for a name no processor is registered
// under.
type NotRegisteredError struct {
	Name       string
	Registered []string
}

func (e *NotRegisteredError) Error() string {
	if len(e.Registered) == 0 {
		return fmt.Sprintf("%q is not registered (this binary registers no processor)", e.Name)
	}
	return fmt.Sprintf("%q is not registered (registered: %s)", e.Name, strings.Join(e.Registered, ", "))
}

// Build builds the processor registered under s.Name with s. An unknown name
// is a *NotRegisteredError listing the registered names; a factory's error
// is returned as it is; a factory that returns a nil processor and no
// error is an error too.
func (r *Registry) Build(s Setup) (ordo.Processor, error) {
	if !r.Has(s.Name) {
		return nil, &NotRegisteredError{Name: s.Name, Registered: r.Names()}
	}
	if s.Logger == nil {
		s.Logger = slog.New(slog.DiscardHandler)
	}
	p, err := r.factories[s.Name](s)
	if err != nil {
		return nil, err
	}
	if p == nil {
		return nil, fmt.Errorf("the factory of processor %q returned no processor", s.Name)
	}
	return p, nil
}

// Merge registers every processor of other in r (nil: none). A name both
// have is an error, and then nothing is registered.
func (r *Registry) Merge(other *Registry) error {
	for _, name := range other.Names() {
		if r.Has(name) {
			return fmt.Errorf("registry: processor %q registered twice", name)
		}
	}
	for _, name := range other.Names() {
		if err := r.Add(name, other.factories[name]); err != nil {
			return err
		}
	}
	return nil
}
