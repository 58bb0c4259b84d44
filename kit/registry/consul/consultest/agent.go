package consultest

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"time"
)

// Config describes an agent for [StartAgent].
type Config struct {
	// Binary is the consul binary ([Find] returns one); required.
	Binary string
	// HTTPAddr is the host:port of the HTTP API (the address a client's
	// api.Config.Address takes); empty picks a free port on 127.0.0.1.
	HTTPAddr string
	// Output receives the agent's log as it is written; nil keeps only the
	// tail that [Agent.Log] returns.
	Output io.Writer
	// ManagementToken, when set, turns Consul's ACLs on with the default
	// policy deny: a request without a token may do nothing but what
	// Consul's anonymous token may (nothing, out of the box), and this token
	// is the initial management token, which may do everything (it is also
	// the agent's own token). Empty runs the agent without ACLs.
	ManagementToken string
	// Args are more arguments of `consul agent -dev`, after the package's
	// own (e.g. an -hcl fragment of a configuration under test).
	Args []string
}

// Agent is a running `consul agent -dev` on loopback. Its methods are not
// safe for concurrent use: one goroutine (a test, a program's main) starts,
// restarts and stops it. Any number of clients may use the agent itself.
type Agent struct {
	cfg   Config
	ports [3]int // serf LAN, serf WAN, server RPC; kept across restarts
	cmd   *exec.Cmd
	done  chan struct{} // closed when cmd exited
	out   *syncBuffer
}

// StartAgent starts a dev agent and waits until it has a leader (at most a
// minute, less if ctx ends first). The caller stops it with [Agent.Stop] or
// [Agent.Interrupt]; on Linux it also dies with the calling process. Tests
// use [Start] instead.
func StartAgent(ctx context.Context, cfg Config) (*Agent, error) {
	if cfg.Binary == "" {
		return nil, errors.New("consultest: Config.Binary is required")
	}
	a := &Agent{cfg: cfg, out: &syncBuffer{w: cfg.Output}}
	// Consul takes its ports from flags, so they are picked here and bound
	// by the agent a moment later; another process may take one in
	// between. The agent then exits at start-up, and a second pick is tried.
	const attempts = 3
	var err error
	for range attempts {
		if err = a.pickPorts(cfg.HTTPAddr == ""); err != nil {
			return nil, err
		}
		if err = a.start(ctx); err == nil || ctx.Err() != nil || !strings.Contains(err.Error(), "exited during start-up") {
			break
		}
	}
	if err != nil {
		return nil, err
	}
	return a, nil
}

// pickPorts picks free loopback ports for the agent's serf and server
// listeners, and for its HTTP API when withHTTP is set.
func (a *Agent) pickPorts(withHTTP bool) error {
	if withHTTP {
		p, err := freePort()
		if err != nil {
			return err
		}
		a.cfg.HTTPAddr = net.JoinHostPort("127.0.0.1", strconv.Itoa(p))
	}
	for i := range a.ports {
		p, err := freePort()
		if err != nil {
			return err
		}
		a.ports[i] = p
	}
	return nil
}

// HTTPAddr returns host:port of the agent's HTTP API.
func (a *Agent) HTTPAddr() string { return a.cfg.HTTPAddr }

// Log returns what the agent printed so far (the last 64 KiB).
func (a *Agent) Log() string { return a.out.String() }

func (a *Agent) start(ctx context.Context) error {
	host, httpPort, err := net.SplitHostPort(a.cfg.HTTPAddr)
	if err != nil {
		return fmt.Errorf("consultest: HTTPAddr %q: %w", a.cfg.HTTPAddr, err)
	}
	args := []string{"agent", "-dev",
		"-bind=127.0.0.1", "-advertise=127.0.0.1", "-client=" + host,
		"-http-port=" + httpPort, "-dns-port=-1", "-grpc-port=-1", "-grpc-tls-port=-1",
		"-serf-lan-port=" + strconv.Itoa(a.ports[0]),
		"-serf-wan-port=" + strconv.Itoa(a.ports[1]),
		"-server-port=" + strconv.Itoa(a.ports[2]),
		"-log-level=warn",
	}
	if t := a.cfg.ManagementToken; t != "" {
		args = append(args, "-hcl="+aclHCL(t))
	}
	args = append(args, a.cfg.Args...)
	cmd := exec.Command(a.cfg.Binary, args...)
	cmd.Stdout, cmd.Stderr = a.out, a.out
	setProcAttr(cmd)
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("consultest: start %s: %w", a.cfg.Binary, err)
	}
	a.cmd, a.done = cmd, make(chan struct{})
	go func() {
		cmd.Wait()
		close(a.done)
	}()
	if err := a.waitReady(ctx); err != nil {
		a.Stop()
		return err
	}
	return nil
}

// aclHCL is the agent configuration that turns ACLs on, default deny,
// with token as the initial management token and the agent's own.
func aclHCL(token string) string {
	return fmt.Sprintf(`acl {
  enabled = true
  default_policy = "deny"
  enable_token_persistence = true
  tokens {
    initial_management = %q
    agent = %q
  }
}`, token, token)
}

// waitReady polls the agent until it reports a leader and, with ACLs on,
// until its management token works (the leader makes it after its
// election).
func (a *Agent) waitReady(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(ctx, 60*time.Second)
	defer cancel()
	base := "http://" + a.cfg.HTTPAddr
	tick := time.NewTicker(50 * time.Millisecond)
	defer tick.Stop()
	for {
		if a.answers(ctx, base+"/v1/status/leader", "", true) &&
			(a.cfg.ManagementToken == "" || a.answers(ctx, base+"/v1/acl/token/self", a.cfg.ManagementToken, false)) {
			return nil
		}
		select {
		case <-a.done:
			return fmt.Errorf("consultest: consul exited during start-up: %s", lastLines(a.Log(), 10))
		case <-ctx.Done():
			return fmt.Errorf("consultest: consul at %s has no leader: %w\n%s", a.cfg.HTTPAddr, ctx.Err(), lastLines(a.Log(), 10))
		case <-tick.C:
		}
	}
}

// answers reports whether a GET of url with token answers 200, with a
// non-empty body when nonEmpty is set.
func (a *Agent) answers(ctx context.Context, url, token string, nonEmpty bool) bool {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return false
	}
	if token != "" {
		req.Header.Set("X-Consul-Token", token)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return false
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	return resp.StatusCode == http.StatusOK && (!nonEmpty || len(bytes.Trim(body, "\"\n ")) > 0)
}

// ManagementToken returns the agent's management token ([Config]); "" when
// its ACLs are off.
func (a *Agent) ManagementToken() string { return a.cfg.ManagementToken }

// Stop kills the agent and waits for it to exit. A dev agent keeps nothing,
// so its catalog is gone afterwards.
func (a *Agent) Stop() {
	if a.cmd == nil {
		return
	}
	a.cmd.Process.Kill()
	<-a.done
	a.cmd = nil
}

// Interrupt asks the agent to leave gracefully (SIGINT) and waits up to
// timeout before killing it.
func (a *Agent) Interrupt(timeout time.Duration) {
	if a.cmd == nil {
		return
	}
	a.cmd.Process.Signal(os.Interrupt)
	select {
	case <-a.done:
		a.cmd = nil
	case <-time.After(timeout):
		a.Stop()
	}
}

// Restart stops the agent and starts a fresh one on the same ports, which
// loses every registration.
func (a *Agent) Restart(ctx context.Context) error {
	a.Stop()
	return a.start(ctx)
}

// freePort returns a TCP port that was free on 127.0.0.1 a moment ago.
func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, fmt.Errorf("consultest: free port: %w", err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

func lastLines(s string, n int) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	return strings.Join(lines[max(0, len(lines)-n):], "\n")
}

// syncBuffer keeps the tail of the agent's output and copies it to w.
type syncBuffer struct {
	mu  sync.Mutex
	buf []byte    // guarded by mu
	w   io.Writer // may be nil
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.buf = append(b.buf, p...)
	if over := len(b.buf) - 64<<10; over > 0 {
		b.buf = b.buf[over:]
	}
	if b.w != nil {
		b.w.Write(p)
	}
	return len(p), nil
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return string(b.buf)
}
