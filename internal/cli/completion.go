package cli

import (
	"github.com/spf13/cobra"

	"github.com/ordokafka/ordo/pkg/registry"
	"github.com/ordokafka/ordo/processors/builtin"
)

// Shell completion: cobra's `ordo completion bash|zsh|fish|powershell`
// (given examples here, as every command has), and the values of the
// flags that take one of a few words, completed in every command that has
// them.

// flagWords are the values of flags that take one of a few words, by flag
// name; commandFlagWords override them for one command (by its path
// without "ordo ").
var (
	flagWords = map[string][]string{
		"sasl-mechanism": saslMechanisms,
		"log-level":      {"debug", "info", "warn", "error"},
		"ordering":       {"key", "partition", "unordered"},
		"progress":       {"auto", "bar", "lines", "none"},
		"start":          {"earliest", "latest"},
		"offsets-lost":   {"earliest", "latest", "fail"},
	}
	commandFlagWords = map[string]map[string][]string{
		"produce": {"format": {"text", "json"}},
		"consume": {"format": {"json", "text"}, "offset": offsetKeywords},
	}
)

// fileFlags complete with files of these extensions ("": any file).
var fileFlags = map[string][]string{
	"tls-ca":             {"pem", "crt", "cert"},
	"tls-cert":           {"pem", "crt", "cert"},
	"tls-key":            {"pem", "key"},
	"sasl-password-file": nil,
	"sasl-token-file":    nil,
	"config":             {"yaml", "yml"},
	"from-file":          {"csv"},
}

// setUpCompletion adds cobra's completion command to root, with examples,
// gives cobra's help command examples too, and registers the value
// completion of every flag of flagWords and fileFlags in the tree, and of
// --processor: the processors of procs (nil: the built-ins) and the
// store's.
func setUpCompletion(root *cobra.Command, procs *registry.Registry) {
	if procs == nil {
		procs = builtin.New()
	}
	processors := processorNames(procs)
	root.InitDefaultHelpCmd()
	root.InitDefaultCompletionCmd()
	for _, c := range root.Commands() {
		switch c.Name() {
		case "help":
			c.Example = `  ordo help consume
  ordo help dlq redrive`
		case "completion":
			c.Example = `  source <(ordo completion bash)                             # bash, this shell
  ordo completion zsh > "${fpath[1]}/_ordo"                  # zsh, new shells
  ordo completion fish > ~/.config/fish/completions/ordo.fish
  ordo completion powershell | Out-String | Invoke-Expression`
			for _, sh := range c.Commands() {
				sh.Example = completionExamples[sh.Name()]
			}
		}
	}
	var walk func(c *cobra.Command)
	walk = func(c *cobra.Command) {
		for _, sub := range c.Commands() {
			walk(sub)
		}
		path := c.CommandPath()
		if len(path) > len("ordo ") {
			path = path[len("ordo "):]
		}
		for name, words := range flagWords {
			if w, ok := commandFlagWords[path][name]; ok {
				words = w
			}
			if c.Flags().Lookup(name) != nil {
				_ = c.RegisterFlagCompletionFunc(name, cobra.FixedCompletions(words, cobra.ShellCompDirectiveNoFileComp))
			}
		}
		for name, words := range commandFlagWords[path] {
			if _, done := flagWords[name]; !done && c.Flags().Lookup(name) != nil {
				_ = c.RegisterFlagCompletionFunc(name, cobra.FixedCompletions(words, cobra.ShellCompDirectiveNoFileComp))
			}
		}
		if c.Flags().Lookup("processor") != nil {
			_ = c.RegisterFlagCompletionFunc("processor", cobra.FixedCompletions(processors, cobra.ShellCompDirectiveNoFileComp))
		}
		for name, exts := range fileFlags {
			if c.Flags().Lookup(name) != nil {
				_ = c.MarkFlagFilename(name, exts...)
			}
		}
	}
	walk(root)
}

// completionExamples are the examples of `ordo completion <shell>`.
var completionExamples = map[string]string{
	"bash": `  source <(ordo completion bash)                          # this shell
  ordo completion bash > /etc/bash_completion.d/ordo       # every new shell (Linux, as root)
  ordo completion bash > $(brew --prefix)/etc/bash_completion.d/ordo   # macOS with Homebrew`,
	"zsh": `  echo "autoload -U compinit; compinit" >> ~/.zshrc         # once, if completion is off
  ordo completion zsh > "${fpath[1]}/_ordo"                 # then start a new shell`,
	"fish": `  ordo completion fish | source                            # this shell
  ordo completion fish > ~/.config/fish/completions/ordo.fish`,
	"powershell": `  ordo completion powershell | Out-String | Invoke-Expression
  ordo completion powershell >> $PROFILE                     # every new shell`,
}
