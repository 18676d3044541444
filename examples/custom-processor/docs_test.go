package main

import (
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

// docBlock is a ```go block of a doc page and the file it says it is cut
// from.
var docBlock = regexp.MustCompile("(?s)(?:<!-- from: (\\S+) -->\\n)?```go\\n(.*?)```")

// Every Go block of the pages that teach writing and testing processors
// is cut from a file that is compiled and tested: each names its file
// (<!-- from: path -->) and must appear in it, line for line (indentation
// aside). A block edited on one side only fails here.
func TestDocsGoBlocksAreCompiled(t *testing.T) {
	root := filepath.Join("..", "..")
	for _, page := range []string{"docs/processors.md", "docs/testing.md", "examples/custom-processor/README.md"} {
		doc, err := os.ReadFile(filepath.Join(root, page))
		if err != nil {
			t.Fatal(err)
		}
		blocks := docBlock.FindAllStringSubmatch(string(doc), -1)
		if len(blocks) == 0 && page != "examples/custom-processor/README.md" {
			t.Errorf("%s: no Go block found", page)
		}
		for _, b := range blocks {
			src, code := b[1], b[2]
			first, _, _ := strings.Cut(strings.TrimSpace(code), "\n")
			if src == "" {
				t.Errorf("%s: the Go block starting %q names no file (<!-- from: path --> above it)", page, first)
				continue
			}
			file, err := os.ReadFile(filepath.Join(root, src))
			if err != nil {
				t.Errorf("%s: the Go block starting %q: %v", page, first, err)
				continue
			}
			if !strings.Contains(normalize(string(file)), normalize(code)) {
				t.Errorf("%s: the Go block starting %q is not in %s as written", page, first, src)
			}
		}
	}
}

// normalize drops indentation and blank lines, so that a block cut from
// inside a function matches.
func normalize(s string) string {
	var out []string
	for l := range strings.SplitSeq(s, "\n") {
		if l = strings.TrimSpace(l); l != "" {
			out = append(out, l)
		}
	}
	return "\n" + strings.Join(out, "\n") + "\n"
}
