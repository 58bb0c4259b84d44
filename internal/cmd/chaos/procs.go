package main

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/grpckit/grpckit/internal/loopback"
	"github.com/grpckit/grpckit/internal/writeload"
)

// instance is one service instance: its fixed addresses and arguments, and
// the process currently running them (a restart keeps the ports).
type instance struct {
	svc   string // user or greeter
	name  string // user-1, greeter-2, ...
	addr  string // gRPC address, 127.0.0.1:port
	port  int
	admin string // admin HTTP address
	args  []string
	env   []string // added to this process's environment
	log   string   // log file, appended to by every run

	sup *supervisor

	mu     sync.Mutex
	cmd    *exec.Cmd     // the current process, nil before the first start; guarded by mu
	exited chan struct{} // closed when the current process exited; guarded by mu
}

// supervisor starts instances and kills whatever still runs on the way out.
type supervisor struct {
	bin  string // directory of the service binaries
	logs string // directory of the log files

	mu   sync.Mutex
	live map[*exec.Cmd]chan struct{} // running processes and their exit channels; guarded by mu
}

func newSupervisor(bin, logs string) *supervisor {
	return &supervisor{bin: bin, logs: logs, live: make(map[*exec.Cmd]chan struct{})}
}

// newInstance picks free ports for an instance of svc; it does not start it.
func (s *supervisor) newInstance(svc, name, consulAddr string, extra ...string) (*instance, error) {
	port, err := loopback.FreePort()
	if err != nil {
		return nil, err
	}
	adminPort, err := loopback.FreePort()
	if err != nil {
		return nil, err
	}
	inst := &instance{
		svc: svc, name: name, port: port,
		addr:  net.JoinHostPort("127.0.0.1", strconv.Itoa(port)),
		admin: net.JoinHostPort("127.0.0.1", strconv.Itoa(adminPort)),
		log:   filepath.Join(s.logs, name+".log"),
		sup:   s,
	}
	inst.args = append([]string{
		"-server.listen", inst.addr,
		"-server.admin", inst.admin,
		"-registry.address", consulAddr,
		"-server.drain", "1s",
	}, extra...)
	return inst, nil
}

// start runs the instance's binary (again), appending to its log.
func (i *instance) start() error {
	i.mu.Lock()
	defer i.mu.Unlock()
	if i.cmd != nil {
		select {
		case <-i.exited:
		default:
			return fmt.Errorf("%s is already running (pid %d)", i.name, i.cmd.Process.Pid)
		}
	}
	f, err := os.OpenFile(i.log, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return err
	}
	fmt.Fprintf(f, "---- chaos: starting %s %s\n", i.name, strings.Join(i.args, " "))
	cmd := exec.Command(filepath.Join(i.sup.bin, i.svc), i.args...)
	cmd.Stdout, cmd.Stderr = f, f
	// The services check bearer tokens signed with this secret (when they
	// have an auth section); this process's clients present one.
	cmd.Env = append(append(os.Environ(), "GRPCKIT_AUTH_HMAC_SECRET="+writeload.Secret), i.env...)
	setProcAttr(cmd)
	if err := cmd.Start(); err != nil {
		f.Close()
		return fmt.Errorf("start %s: %w", i.name, err)
	}
	exited := make(chan struct{})
	i.cmd, i.exited = cmd, exited
	i.sup.mu.Lock()
	i.sup.live[cmd] = exited
	i.sup.mu.Unlock()
	go func() {
		cmd.Wait()
		f.Close()
		i.sup.mu.Lock()
		delete(i.sup.live, cmd)
		i.sup.mu.Unlock()
		close(exited)
	}()
	return nil
}

// current returns the running process and its exit channel, or nil.
func (i *instance) current() (*exec.Cmd, chan struct{}) {
	i.mu.Lock()
	defer i.mu.Unlock()
	if i.cmd == nil {
		return nil, nil
	}
	select {
	case <-i.exited:
		return nil, nil
	default:
		return i.cmd, i.exited
	}
}

// running reports whether the instance's process runs.
func (i *instance) running() bool {
	cmd, _ := i.current()
	return cmd != nil
}

// signal sends sig to the instance's process.
func (i *instance) signal(sig syscall.Signal) error {
	cmd, _ := i.current()
	if cmd == nil {
		return fmt.Errorf("%s is not running", i.name)
	}
	return syscall.Kill(cmd.Process.Pid, sig)
}

// kill sends SIGKILL to the instance's process group and waits until it exited.
func (i *instance) kill(ctx context.Context) error {
	cmd, exited := i.current()
	if cmd == nil {
		return nil
	}
	syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
	return waitExited(ctx, exited, 10*time.Second, i.name)
}

// terminate sends SIGTERM and waits up to timeout for the instance to exit
// (deregister, drain, graceful stop), killing it after that.
func (i *instance) terminate(ctx context.Context, timeout time.Duration) error {
	cmd, exited := i.current()
	if cmd == nil {
		return nil
	}
	if err := syscall.Kill(cmd.Process.Pid, syscall.SIGTERM); err != nil {
		return fmt.Errorf("SIGTERM %s: %w", i.name, err)
	}
	if err := waitExited(ctx, exited, timeout, i.name); err != nil {
		i.kill(context.WithoutCancel(ctx))
		return err
	}
	return nil
}

// exitedEarly returns an error when the instance's process is not running,
// with the end of its log.
func (i *instance) exitedEarly() error {
	if i.running() {
		return nil
	}
	return fmt.Errorf("%s is not running; its log %s ends with:\n%s", i.name, i.log, tail(i.log, 12))
}

func waitExited(ctx context.Context, exited <-chan struct{}, timeout time.Duration, name string) error {
	t := time.NewTimer(timeout)
	defer t.Stop()
	select {
	case <-exited:
		return nil
	case <-t.C:
		return fmt.Errorf("%s did not exit within %v", name, timeout)
	case <-ctx.Done():
		return ctx.Err()
	}
}

// killAll kills every process still running, stopped ones included, and
// waits for them (at most timeout in all).
func (s *supervisor) killAll(timeout time.Duration) {
	s.mu.Lock()
	live := make(map[*exec.Cmd]chan struct{}, len(s.live))
	for cmd, ch := range s.live {
		live[cmd] = ch
	}
	s.mu.Unlock()
	for cmd := range live {
		// The whole group: the instance and anything it started. SIGKILL
		// also ends a SIGSTOPped process.
		syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
	}
	deadline := time.NewTimer(timeout)
	defer deadline.Stop()
	var stuck []string
	for cmd, ch := range live {
		select {
		case <-ch:
		case <-deadline.C:
			stuck = append(stuck, strconv.Itoa(cmd.Process.Pid))
		}
	}
	if len(stuck) > 0 {
		progress("processes still running after SIGKILL: %s", strings.Join(stuck, ", "))
	}
}

func tail(path string, n int) string {
	b, err := os.ReadFile(path)
	if err != nil {
		if errors.Is(err, os.ErrNotExist) {
			return "(no log)"
		}
		return err.Error()
	}
	lines := strings.Split(strings.TrimRight(string(b), "\n"), "\n")
	return strings.Join(lines[max(0, len(lines)-n):], "\n")
}
