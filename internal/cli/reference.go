package cli

import (
	"bytes"
	"fmt"
	"io"
	"strings"

	"github.com/spf13/cobra"
	"github.com/spf13/cobra/doc"
)

// WriteReference writes the CLI reference (docs/cli-reference.md) in
// Markdown, generated from the commands themselves by cobra's doc package:
// every command, its synopsis, examples and flags, in one page whose links
// are anchors in it. TestCLIReferenceIsCurrent fails when the page
// differs from what the commands would write; `make docs` rewrites it.
func WriteReference(w io.Writer) error {
	root := NewRoot(io.Discard, io.Discard)
	root.InitDefaultHelpCmd()
	root.InitDefaultCompletionCmd()
	var buf bytes.Buffer
	buf.WriteString("# ordo CLI reference\n\n")
	buf.WriteString("Generated from the commands by `make docs` (`go run ./internal/cli/clidoc`); do not edit.\n")
	buf.WriteString("[cli.md](cli.md) explains the commands with examples and exit codes.\n\n")
	var cmds []*cobra.Command
	var walk func(c *cobra.Command)
	walk = func(c *cobra.Command) {
		if !c.IsAvailableCommand() && c != root {
			return
		}
		cmds = append(cmds, c)
		for _, sub := range c.Commands() {
			walk(sub)
		}
	}
	walk(root)
	for _, c := range cmds {
		fmt.Fprintf(&buf, "- [%s](%s)\n", c.CommandPath(), anchor(c.CommandPath()))
	}
	buf.WriteString("\n")
	for _, c := range cmds {
		c.DisableAutoGenTag = true
		var page bytes.Buffer
		if err := doc.GenMarkdownCustom(c, &page, func(file string) string {
			return anchor(strings.ReplaceAll(strings.TrimSuffix(file, ".md"), "_", " "))
		}); err != nil {
			return err
		}
		buf.Write(demote(page.Bytes()))
		buf.WriteString("\n")
	}
	_, err := w.Write(bytes.TrimRight(buf.Bytes(), "\n"))
	if err == nil {
		_, err = io.WriteString(w, "\n")
	}
	return err
}

// anchor is the GitHub anchor of a command's heading.
func anchor(path string) string { return "#" + strings.ReplaceAll(path, " ", "-") }

// demote turns cobra's "## cmd" and "### Options" into "## cmd" and
// "#### Options" so that one page holds them all under its title.
func demote(page []byte) []byte {
	lines := strings.Split(string(page), "\n")
	for i, l := range lines {
		if strings.HasPrefix(l, "### ") {
			lines[i] = "#" + l
		}
	}
	return []byte(strings.Join(lines, "\n"))
}
