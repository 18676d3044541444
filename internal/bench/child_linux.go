package bench

import (
	"os/exec"
	"syscall"
)

// dieWithParent makes the kernel kill the child when the bench process
// dies, even by SIGKILL, when no context cancellation can run.
func dieWithParent(cmd *exec.Cmd) {
	if cmd.SysProcAttr == nil {
		cmd.SysProcAttr = &syscall.SysProcAttr{}
	}
	cmd.SysProcAttr.Pdeathsig = syscall.SIGKILL
}
