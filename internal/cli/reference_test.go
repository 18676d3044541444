package cli

import (
	"bytes"
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

// TestCLIReferenceIsCurrent: docs/cli-reference.md is what the commands
// generate, so a flag added, renamed or described anew cannot leave the
// reference behind; and every command is in it.
func TestCLIReferenceIsCurrent(t *testing.T) {
	var got bytes.Buffer
	if err := WriteReference(&got); err != nil {
		t.Fatal(err)
	}
	want, err := os.ReadFile("../../docs/cli-reference.md")
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got.Bytes(), want) {
		gl, wl := strings.Split(got.String(), "\n"), strings.Split(string(want), "\n")
		for i := range max(len(gl), len(wl)) {
			var g, w string
			if i < len(gl) {
				g = gl[i]
			}
			if i < len(wl) {
				w = wl[i]
			}
			if g != w {
				t.Fatalf("docs/cli-reference.md is out of date (run `make docs`); first difference at line %d:\n  file:      %q\n  generated: %q", i+1, w, g)
			}
		}
	}
	for _, cmd := range []string{"ordo dev", "ordo run", "ordo produce", "ordo consume", "ordo lag serve", "ordo dlq redrive",
		"ordo replay reset", "ordo replay copy", "ordo topics apply", "ordo store migrate", "ordo healthcheck", "ordo completion bash"} {
		if !strings.Contains(got.String(), "\n## "+cmd+"\n") {
			t.Errorf("the reference has no section for %s", cmd)
		}
	}
}

// TestDocsNameExistingTests: every test that docs/architecture.md and
// docs/testing.md cite as a proof exists, so a renamed or deleted test
// cannot leave a guarantee pointing at nothing.
func TestDocsNameExistingTests(t *testing.T) {
	defined := map[string]bool{}
	def := regexp.MustCompile(`(?m)^func (Test\w+)\(`)
	err := filepath.WalkDir("../..", func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() && (d.Name() == ".git" || d.Name() == "node_modules") {
			return filepath.SkipDir
		}
		if !strings.HasSuffix(path, "_test.go") {
			return nil
		}
		b, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		for _, m := range def.FindAllSubmatch(b, -1) {
			defined[string(m[1])] = true
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	cited := regexp.MustCompile("`(Test[A-Z]\\w+)`")
	for _, doc := range []string{"../../docs/architecture.md", "../../docs/testing.md", "../../docs/idempotency.md"} {
		b, err := os.ReadFile(doc)
		if err != nil {
			t.Fatal(err)
		}
		n := 0
		for _, m := range cited.FindAllSubmatch(b, -1) {
			n++
			if name := string(m[1]); !defined[name] {
				t.Errorf("%s cites %s, which no test file defines", filepath.Base(doc), name)
			}
		}
		if n == 0 {
			t.Errorf("%s cites no test", filepath.Base(doc))
		}
	}
}
