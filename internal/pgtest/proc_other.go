//go:build !linux

package pgtest

import (
	"errors"
	"os/exec"
	"syscall"
)

// runner is Linux-only; elsewhere [Start] fails with newRunner's error.
type runner struct{}

func newRunner() (runner, error) {
	return runner{}, errors.New("pgtest: runs PostgreSQL on Linux only")
}

func (runner) command(_ syscall.Signal, name string, args ...string) *exec.Cmd {
	return exec.Command(name, args...)
}

func (runner) own(string) error { return nil }

func signalGroup(cmd *exec.Cmd, _ syscall.Signal) error { return cmd.Process.Kill() }

func processExists(int) bool { return true }
