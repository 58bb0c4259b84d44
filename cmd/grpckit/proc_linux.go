package main

import (
	"os/exec"
	"syscall"
)

// setProcAttr puts an instance in its own process group, so Ctrl-C reaches
// only grpckit (which stops the instances in order), and sends it SIGTERM if
// grpckit dies.
func setProcAttr(cmd *exec.Cmd) {
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGTERM}
}
