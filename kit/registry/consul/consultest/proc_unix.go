//go:build unix && !linux

package consultest

import (
	"os/exec"
	"syscall"
)

// setProcAttr puts the agent in its own process group, so a terminal's Ctrl-C
// reaches only its parent (which stops it last).
func setProcAttr(cmd *exec.Cmd) {
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
}
