package cli

import (
	"bytes"
	"os"
	"slices"
	"strings"
	"testing"

	"github.com/spf13/cobra"
)

// ordoCommands are the first words after "ordo" that start an invocation.
func ordoCommands() map[string]bool {
	names := map[string]bool{}
	for _, c := range NewRoot(&bytes.Buffer{}, &bytes.Buffer{}).Commands() {
		names[c.Name()] = true
	}
	return names
}

// invocations returns the ordo command lines in text (shell lines, a
// trailing backslash continuing a line): from "ordo <command>" to the end
// of the line or a shell operator (| < > ; &&), split into words with the
// shell's quoting; a # comment ends a line. Output lines ("ordo dev:
// stopped") and synopses ("[--execute]") are not command lines.
func invocations(text string) [][]string {
	var out [][]string
	commands := ordoCommands()
	text = strings.ReplaceAll(text, "\\\n", " ")
	for line := range strings.SplitSeq(text, "\n") {
		words := shellWords(line)
		for i := 0; i+1 < len(words); i++ {
			if words[i].text != "ordo" || words[i].op || !commands[words[i+1].text] {
				continue
			}
			var args []string
			j := i + 1
			for ; j < len(words) && !words[j].op; j++ {
				args = append(args, words[j].text)
			}
			i = j
			if !slices.ContainsFunc(args, func(w string) bool {
				return strings.HasSuffix(w, ":") && !strings.HasPrefix(w, "-") || strings.HasPrefix(w, "[")
			}) {
				out = append(out, args)
			}
		}
	}
	return out
}

// word is a shell word, or an operator (op).
type word struct {
	text string
	op   bool
}

// shellWords splits a line as a POSIX shell would, for the quoting the docs
// use: '...', "..." and bare words; | ; < > are operators; a word that
// begins with # begins a comment, the end of the line.
func shellWords(line string) []word {
	var words []word
	var cur strings.Builder
	in := false
	var quote rune
	flush := func() {
		if in {
			words = append(words, word{text: cur.String()})
			cur.Reset()
			in = false
		}
	}
	for _, r := range line {
		switch {
		case quote != 0 && r == quote:
			quote = 0
		case quote != 0:
			cur.WriteRune(r)
		case r == '\'' || r == '"':
			quote, in = r, true
		case r == ' ' || r == '\t':
			flush()
		case r == '#' && !in:
			return words
		case r == '|' || r == ';' || r == '<' || r == '>' || r == '&':
			flush()
			words = append(words, word{text: string(r), op: true})
		default:
			cur.WriteRune(r)
			in = true
		}
	}
	flush()
	return words
}

// fencedBlocks returns the contents of a markdown file's fenced code
// blocks.
func fencedBlocks(md string) string {
	var b strings.Builder
	inBlock := false
	for line := range strings.SplitSeq(md, "\n") {
		if strings.HasPrefix(strings.TrimSpace(line), "```") {
			inBlock = !inBlock
			continue
		}
		if inBlock {
			b.WriteString(line + "\n")
		}
	}
	return b.String()
}

// Every ordo command line in the docs' code blocks and in the commands'
// examples names a command that exists, with flags that exist and values
// they take: the examples run as written (what they need, a broker or a
// file, aside).
func TestDocExamplesParse(t *testing.T) {
	sources := map[string]string{}
	for _, path := range []string{"../../README.md", "../../docs/cli.md", "../../docs/getting-started.md", "../../docs/configuration.md", "../../docs/scaling.md", "../../docs/replay.md", "../../docs/dead-letters.md"} {
		b, err := os.ReadFile(path)
		if err != nil {
			t.Fatal(err)
		}
		sources[path] = fencedBlocks(string(b))
	}
	var walk func(c *cobra.Command)
	walk = func(c *cobra.Command) {
		for _, sub := range c.Commands() {
			walk(sub)
		}
		if c.Example != "" {
			sources[c.CommandPath()+" --help"] = c.Example
		}
	}
	walk(NewRoot(&bytes.Buffer{}, &bytes.Buffer{}))
	n := 0
	for src, text := range sources {
		for _, args := range invocations(text) {
			n++
			root := NewRoot(&bytes.Buffer{}, &bytes.Buffer{})
			cmd, rest, err := root.Find(args)
			if err != nil {
				t.Errorf("%s: ordo %s: %v", src, strings.Join(args, " "), err)
				continue
			}
			if err := cmd.ParseFlags(rest); err != nil {
				t.Errorf("%s: ordo %s: %v", src, strings.Join(args, " "), err)
				continue
			}
			if err := cmd.ValidateArgs(cmd.Flags().Args()); err != nil {
				t.Errorf("%s: ordo %s: %v", src, strings.Join(args, " "), err)
			}
		}
	}
	t.Logf("checked %d ordo command lines", n)
	if n < 60 {
		t.Errorf("checked %d ordo command lines; the docs and examples have more", n)
	}
}

func TestInvocations(t *testing.T) {
	got := invocations(`echo 'a|b' | ordo produce --brokers x --key-delim '|' # comment
ordo consume --topic t -e | jq -r .value
x ordo dev: stopped. produced=1
ordo completion zsh > "${fpath[1]}/_ordo"
ordo lag --brokers a \
  --group g`)
	want := [][]string{
		{"produce", "--brokers", "x", "--key-delim", "|"},
		{"consume", "--topic", "t", "-e"},
		{"completion", "zsh"},
		{"lag", "--brokers", "a", "--group", "g"},
	}
	if len(got) != len(want) {
		t.Fatalf("got %q", got)
	}
	for i := range want {
		if strings.Join(got[i], " ") != strings.Join(want[i], " ") {
			t.Errorf("%d: %q, want %q", i, got[i], want[i])
		}
	}
}
