//go:build !linux

package bench

import "os/exec"

// dieWithParent has no kernel support here: children are killed by context
// cancellation (interrupts and errors) only.
func dieWithParent(*exec.Cmd) {}
