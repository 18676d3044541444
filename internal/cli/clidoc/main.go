// Command clidoc writes the CLI reference, docs/cli-reference.md, from the
// ordo commands: go run ./internal/cli/clidoc > docs/cli-reference.md
// (make docs).
package main

import (
	"fmt"
	"os"

	"github.com/ordokafka/ordo/internal/cli"
)

func main() {
	if err := cli.WriteReference(os.Stdout); err != nil {
		fmt.Fprintln(os.Stderr, "clidoc:", err)
		os.Exit(1)
	}
}
