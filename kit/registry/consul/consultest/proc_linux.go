package consultest

import (
	"os/exec"
	"syscall"
)

// setProcAttr puts the agent in its own process group, so a terminal's Ctrl-C
// reaches only its parent (which stops it last), and kills it if the parent dies.
func setProcAttr(cmd *exec.Cmd) {
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
}
