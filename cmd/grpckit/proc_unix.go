//go:build unix && !linux

package main

import (
	"os/exec"
	"syscall"
)

// setProcAttr puts an instance in its own process group, so Ctrl-C reaches
// only grpckit, which stops the instances in order. (Only Linux can also
// signal it when grpckit dies.)
func setProcAttr(cmd *exec.Cmd) {
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
}
