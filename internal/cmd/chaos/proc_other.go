//go:build !linux

package main

import (
	"os/exec"
	"syscall"
)

// setProcAttr puts an instance in its own process group, so that a
// terminal's Ctrl-C reaches only this program (which kills the instances).
func setProcAttr(cmd *exec.Cmd) {
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
}
