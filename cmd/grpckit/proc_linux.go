package main

import (
	"os"
	"os/exec"
	"syscall"
)

// setProcAttr puts an instance in its own process group, so Ctrl-C reaches
// only grpckit (which stops the instances in order), and sends it SIGTERM if
// grpckit dies.
func setProcAttr(cmd *exec.Cmd) {
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGTERM}
}

// lockFile takes an exclusive lock on f, waiting for it.
func lockFile(f *os.File) error { return syscall.Flock(int(f.Fd()), syscall.LOCK_EX) }
