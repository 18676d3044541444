package topics

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"gopkg.in/yaml.v3"
)

// fileDoc is one YAML document of a declaration file.
type fileDoc struct {
	Topics []topicDecl `yaml:"topics"`
}

// topicDecl is one topic as written in a file. Pointers tell an absent field
// from a zero one, so that defaults apply only to absent fields.
type topicDecl struct {
	Name              string            `yaml:"name"`
	Partitions        *int32            `yaml:"partitions"`
	ReplicationFactor *int16            `yaml:"replication_factor"`
	Configs           map[string]string `yaml:"configs"`
	Groups            []groupDecl       `yaml:"groups"`

	// OldRetry and OldDLQ catch the topic-level retry and dlq keys of the
	// format before retry chains belonged to a group, so that validation
	// says how to move them instead of "unknown field".
	OldRetry yaml.Node `yaml:"retry"`
	OldDLQ   yaml.Node `yaml:"dlq"`
}

// groupDecl is one consumer group's chain on a topic, as written.
type groupDecl struct {
	Name  string     `yaml:"name"`
	Retry *retryDecl `yaml:"retry"`
	DLQ   *bool      `yaml:"dlq"`
}

type retryDecl struct {
	// Delays are strings, not time.Duration, so that a bad value is reported
	// by validation with its topic and field rather than by the decoder.
	Delays []string `yaml:"delays"`
}

// decl is a topic declaration with where it came from.
type decl struct {
	file  string
	index int // position among the file's declarations, across its documents
	raw   topicDecl
}

// Load reads every *.yaml and *.yml file directly in dir, in lexical order,
// and validates the declarations together. Other files and subdirectories are
// ignored. It is an error for dir to hold no declaration file. The returned
// error reports every problem found, one per line.
func Load(dir string) (*Set, error) {
	entries, err := os.ReadDir(dir)
	if err != nil {
		return nil, fmt.Errorf("topics: %w", err)
	}
	var files []string
	for _, e := range entries {
		if e.IsDir() {
			continue
		}
		switch strings.ToLower(filepath.Ext(e.Name())) {
		case ".yaml", ".yml":
			files = append(files, filepath.Join(dir, e.Name()))
		}
	}
	if len(files) == 0 {
		return nil, fmt.Errorf("topics: no declaration files (*.yaml, *.yml) in %s", dir)
	}
	slices.Sort(files)

	var (
		decls []decl
		errs  []error
	)
	for _, f := range files {
		data, err := os.ReadFile(f)
		if err != nil {
			errs = append(errs, fmt.Errorf("topics: %w", err))
			continue
		}
		ds, err := decode(f, data)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		decls = append(decls, ds...)
	}
	set, err := build(decls)
	if err != nil {
		errs = append(errs, err)
	}
	if len(errs) > 0 {
		return nil, errors.Join(errs...)
	}
	return set, nil
}

// Parse decodes and validates the declarations of one file. name is used in
// error messages and is usually the file's path.
func Parse(name string, data []byte) (*Set, error) {
	decls, err := decode(name, data)
	if err != nil {
		return nil, err
	}
	return build(decls)
}

// decode strictly decodes every YAML document of a file.
func decode(name string, data []byte) (decls []decl, err error) {
	defer func() {
		// The YAML decoder is third-party code fed with user input; a bug in
		// it must be a bad-file error, not a crash of the CLI or worker.
		if r := recover(); r != nil {
			decls, err = nil, &DecodeError{File: name, Msg: fmt.Sprintf("cannot decode: %v", r)}
		}
	}()

	dec := yaml.NewDecoder(bytes.NewReader(data))
	dec.KnownFields(true)
	for {
		var doc fileDoc
		err := dec.Decode(&doc)
		if errors.Is(err, io.EOF) {
			return decls, nil
		}
		if err != nil {
			return nil, &DecodeError{File: name, Msg: yamlMessage(err), Err: err}
		}
		for _, t := range doc.Topics {
			decls = append(decls, decl{file: name, index: len(decls), raw: t})
		}
	}
}

// DecodeError is a file that is not well-formed YAML or does not fit the
// declaration format (an unknown field, a repeated key, a wrong type).
type DecodeError struct {
	File string // the file's name
	Msg  string // what is wrong, with line numbers
	Err  error  // the decoder's error, if any
}

func (e *DecodeError) Error() string { return e.File + ": " + e.Msg }

func (e *DecodeError) Unwrap() error { return e.Err }

// yamlMessage rewrites the decoder's messages to talk about the file format
// rather than about this package's Go types.
func yamlMessage(err error) string {
	var te *yaml.TypeError
	if errors.As(err, &te) {
		msgs := make([]string, 0, len(te.Errors))
		for _, m := range te.Errors {
			msgs = append(msgs, rewriteTypeError(m))
		}
		return strings.Join(msgs, "; ")
	}
	return strings.TrimPrefix(err.Error(), "yaml: ")
}

func rewriteTypeError(m string) string {
	// "line 4: field partitons not found in type topics.topicDecl"
	if before, _, ok := strings.Cut(m, " not found in type "); ok {
		if line, field, ok := strings.Cut(before, ": field "); ok {
			return fmt.Sprintf("%s: unknown field %q", line, field)
		}
	}
	// "line 3: cannot unmarshal !!str `abc` into int32"
	m = strings.Replace(m, " into topics.fileDoc", " into the top level (want a mapping with a topics list)", 1)
	m = strings.Replace(m, " into []topics.topicDecl", " into topics (want a list)", 1)
	m = strings.Replace(m, " into topics.topicDecl", " into a topic (want a mapping)", 1)
	m = strings.Replace(m, " into []topics.groupDecl", " into groups (want a list)", 1)
	m = strings.Replace(m, " into topics.groupDecl", " into a group (want a mapping with name, retry, dlq)", 1)
	m = strings.Replace(m, " into topics.retryDecl", " into retry (want a mapping with delays)", 1)
	return m
}
