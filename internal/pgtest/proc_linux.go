package pgtest

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"os/user"
	"strconv"
	"syscall"
)

// runner starts the server's programs, each in a process group of its own
// (so that a terminal's Ctrl-C reaches only the test binary, which stops the
// server) and signaled when the test binary dies.
type runner struct {
	// cred is the unprivileged user the programs run as when this process
	// is root; nil otherwise.
	cred *syscall.Credential
}

// newRunner returns a runner that runs programs as this process's user or,
// when that is root, as the postgres user.
func newRunner() (runner, error) {
	if os.Geteuid() != 0 {
		return runner{}, nil
	}
	u, err := user.Lookup("postgres")
	if err != nil {
		return runner{}, fmt.Errorf("pgtest: running as root, which PostgreSQL refuses, and no postgres user to run it as "+
			"(scripts/ensure-postgres.sh installs the postgresql package, which creates it): %w", err)
	}
	uid, errU := strconv.ParseUint(u.Uid, 10, 32)
	gid, errG := strconv.ParseUint(u.Gid, 10, 32)
	if err := errors.Join(errU, errG); err != nil {
		return runner{}, fmt.Errorf("pgtest: postgres user: %w", err)
	}
	return runner{cred: &syscall.Credential{Uid: uint32(uid), Gid: uint32(gid)}}, nil
}

// command returns a command running name with args as r's user, which gets
// the signal deathSig when the test binary dies.
func (r runner) command(deathSig syscall.Signal, name string, args ...string) *exec.Cmd {
	cmd := exec.Command(name, args...)
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: deathSig, Credential: r.cred}
	return cmd
}

// own gives path to r's user, so that its programs may write there.
func (r runner) own(path string) error {
	if r.cred == nil {
		return nil
	}
	return os.Chown(path, int(r.cred.Uid), int(r.cred.Gid))
}

// signalGroup sends sig to the process group that cmd leads.
func signalGroup(cmd *exec.Cmd, sig syscall.Signal) error {
	return syscall.Kill(-cmd.Process.Pid, sig)
}

// processExists reports whether a process with pid exists.
func processExists(pid int) bool {
	err := syscall.Kill(pid, 0)
	return err == nil || errors.Is(err, syscall.EPERM)
}
