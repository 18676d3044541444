package cli

import (
	"io"

	"github.com/spf13/cobra"
)

func newBenchCmd(out io.Writer) *cobra.Command {
	return &cobra.Command{Use: "bench", Short: "Measure Ordo against raw franz-go and Parallel Consumer's published test"}
}
