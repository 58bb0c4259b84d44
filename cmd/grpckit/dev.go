package main

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"io/fs"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"github.com/hashicorp/consul/api"

	"github.com/grpckit/grpckit/internal/repo"
	"github.com/grpckit/grpckit/kit"
	"github.com/grpckit/grpckit/kit/middleware/auth"
	"github.com/grpckit/grpckit/kit/registry/consul"
	"github.com/grpckit/grpckit/kit/registry/consul/consultest"
	"github.com/grpckit/grpckit/kit/service"
	greeterv1 "github.com/grpckit/grpckit/proto/greeter/v1"
	userv1 "github.com/grpckit/grpckit/proto/user/v1"
)

// proc is one service instance run by the dev stack.
type proc struct {
	name   string // e.g. user-1
	addr   string // gRPC address, from its ready report
	admin  string // admin HTTP address, from its ready report
	log    string // log file
	ready  string // its ready report (service.WithReadyFile)
	cmd    *exec.Cmd
	exited chan struct{} // closed when the process exited
	err    error         // exit status; read after exited is closed
}

func runDev(ctx context.Context, args []string) error {
	fs := flag.NewFlagSet("dev", flag.ContinueOnError)
	consulAddr := fs.String("consul", "127.0.0.1:8500", "HTTP address of the Consul agent to use or start")
	users := fs.Int("users", 2, "user instances")
	greeters := fs.Int("greeters", 2, "greeter instances")
	gatewayAddr := fs.String("gateway", "127.0.0.1:8080", "HTTP address of the REST/JSON gateway")
	dir := fs.String("dir", "", "working directory for binaries, data and logs (default <repo>/.cache/dev)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	root, err := repo.Root()
	if err != nil {
		return err
	}
	if *dir == "" {
		*dir = filepath.Join(root, ".cache", "dev")
	}
	// The build runs in the repository root and the instances here: one
	// absolute directory for both.
	if *dir, err = filepath.Abs(*dir); err != nil {
		return err
	}
	if *users < 1 || *greeters < 1 {
		return fmt.Errorf("dev: -users and -greeters must be at least 1 (the demo call needs both services)")
	}
	logs := filepath.Join(*dir, "logs")
	if err := os.MkdirAll(logs, 0o755); err != nil {
		return err
	}

	// 1. Consul: use the agent at the address, else start a dev agent there.
	var agent *consultest.Agent
	if leader(*consulAddr) {
		step("using the Consul agent already at %s", *consulAddr)
	} else {
		step("making a consul binary available")
		bin, err := consultest.Find(ctx, os.Stderr)
		if err != nil {
			return err
		}
		logFile, err := os.Create(filepath.Join(logs, "consul.log"))
		if err != nil {
			return err
		}
		defer logFile.Close()
		step("starting consul agent -dev on %s (%s)", *consulAddr, bin)
		if agent, err = consultest.StartAgent(ctx, consultest.Config{Binary: bin, HTTPAddr: *consulAddr, Output: logFile}); err != nil {
			return err
		}
		defer func() {
			step("stopping Consul")
			agent.Interrupt(10 * time.Second)
		}()
	}

	// 2. Build the services.
	bin := filepath.Join(*dir, "bin")
	step("compiling services into %s", bin)
	build := exec.CommandContext(ctx, "go", "build", "-o", bin+string(filepath.Separator), "./services/user/cmd/user", "./services/greeter/cmd/greeter", "./services/gateway/cmd/gateway")
	build.Dir, build.Stdout, build.Stderr = root, os.Stderr, os.Stderr
	if err := build.Run(); err != nil {
		return fmt.Errorf("go build: %w", err)
	}

	// 3. Start the instances, stopping them (deregistered) on the way out.
	var procs []*proc
	defer func() { stopAll(procs) }()
	exits := make(chan *proc, *users+*greeters+1)
	db := filepath.Join(*dir, "users.db")
	// The gateway checks write tokens against a secret made for this run; the
	// summary prints a token signed with it. The secret goes through the
	// environment, not a flag, so that ps does not show it.
	secret, err := devSecret()
	if err != nil {
		return err
	}
	for _, svc := range []struct {
		name  string
		count int
		extra []string
		env   []string
	}{
		{"user", *users, []string{"-user.db", db}, nil},
		{"greeter", *greeters, nil, nil},
		{"gateway", 1, []string{"-gateway.listen", *gatewayAddr}, []string{"GRPCKIT_GATEWAY_AUTH_HMAC_SECRET=" + secret}},
	} {
		for i := 1; i <= svc.count; i++ {
			p, err := start(filepath.Join(bin, svc.name), fmt.Sprintf("%s-%d", svc.name, i), *consulAddr, logs, svc.extra, svc.env, exits)
			if err != nil {
				return err
			}
			procs = append(procs, p)
		}
	}
	if err := awaitReady(ctx, procs); err != nil {
		return err
	}
	step("waiting until every instance passes its Consul health check")
	reg, err := consul.NewFromAddress(*consulAddr)
	if err != nil {
		return err
	}
	defer reg.Close()
	if err := waitPassing(ctx, reg.Client(), procs, map[string]int{"user": *users, "greeter": *greeters, "gateway": 1}); err != nil {
		return err
	}

	// 4. One demo call through discovery.
	if err := demo(ctx, reg, *gatewayAddr); err != nil {
		return fmt.Errorf("demo call: %w", err)
	}
	token, err := auth.IssueHS256(secret, "dev", 24*time.Hour)
	if err != nil {
		return err
	}
	summary(*consulAddr, *gatewayAddr, token, procs, *dir)

	// 5. Stay in the foreground; report instances that exit.
	for {
		select {
		case <-ctx.Done():
			fmt.Println()
			step("shutting down: instances deregister, drain and stop (Ctrl-C again to kill)")
			return nil
		case p := <-exits:
			step("%s exited (%v); log: %s", p.name, p.err, p.log)
			procs = remove(procs, p)
		}
	}
}

func step(format string, args ...any) {
	fmt.Printf("==> "+format+"\n", args...)
}

// leader reports whether a Consul agent at addr answers with a leader.
func leader(addr string) bool {
	c := http.Client{Timeout: time.Second}
	resp, err := c.Get("http://" + addr + "/v1/status/leader")
	if err != nil {
		return false
	}
	defer resp.Body.Close()
	var b [128]byte
	n, _ := resp.Body.Read(b[:])
	return resp.StatusCode == http.StatusOK && len(strings.Trim(string(b[:n]), "\"\n ")) > 0
}

// start runs one instance; it is sent on exits when it exits.
func start(binary, name, consulAddr, logs string, extra, env []string, exits chan<- *proc) (*proc, error) {
	// The instance listens on port 0 itself and reports the addresses it
	// got: no port is picked here and bound later by someone else.
	p := &proc{name: name, log: filepath.Join(logs, name+".log"), ready: filepath.Join(logs, name+".ready.json"),
		exited: make(chan struct{})}
	if err := os.Remove(p.ready); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return nil, err
	}
	f, err := os.Create(p.log)
	if err != nil {
		return nil, err
	}
	args := append([]string{"-server.listen", "127.0.0.1:0", "-server.admin", "127.0.0.1:0", "-registry.address", consulAddr, "-server.drain", "2s"}, extra...)
	p.cmd = exec.Command(binary, args...)
	p.cmd.Env = append(append(os.Environ(), env...), "GRPCKIT_READY_FILE="+p.ready)
	p.cmd.Stdout, p.cmd.Stderr = f, f
	setProcAttr(p.cmd)
	if err := p.cmd.Start(); err != nil {
		f.Close()
		return nil, fmt.Errorf("start %s: %w", name, err)
	}
	go func() {
		p.err = p.cmd.Wait()
		f.Close()
		close(p.exited)
		exits <- p
	}()
	step("started %s (pid %d)", name, p.cmd.Process.Pid)
	return p, nil
}

// awaitReady waits until every instance wrote its ready report, and takes
// its addresses from it.
func awaitReady(ctx context.Context, procs []*proc) error {
	ctx, cancel := context.WithTimeout(ctx, 60*time.Second)
	defer cancel()
	for _, p := range procs {
		for {
			if b, err := os.ReadFile(p.ready); err == nil {
				var r service.Ready
				if err := json.Unmarshal(b, &r); err != nil {
					return fmt.Errorf("%s: ready report %s: %w", p.name, p.ready, err)
				}
				p.addr, p.admin = r.GRPC, r.Admin
				break
			}
			select {
			case <-p.exited:
				return fmt.Errorf("%s exited during start-up (%v); its log %s ends with:\n%s", p.name, p.err, p.log, tail(p.log, 15))
			case <-ctx.Done():
				return fmt.Errorf("%s did not report its addresses: %w", p.name, ctx.Err())
			case <-time.After(20 * time.Millisecond):
			}
		}
	}
	return nil
}

// waitPassing polls Consul until every service has its count of passing instances.
func waitPassing(ctx context.Context, c *api.Client, procs []*proc, want map[string]int) error {
	ctx, cancel := context.WithTimeout(ctx, 60*time.Second)
	defer cancel()
	for {
		ready := true
		for svc, n := range want {
			entries, _, err := c.Health().Service(svc, "", true, (&api.QueryOptions{}).WithContext(ctx))
			if err != nil || len(entries) < n {
				ready = false
			}
		}
		if ready {
			return nil
		}
		for _, p := range procs {
			select {
			case <-p.exited:
				return fmt.Errorf("%s exited during start-up (%v); its log %s ends with:\n%s", p.name, p.err, p.log, tail(p.log, 15))
			default:
			}
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("instances not passing in Consul: %w", ctx.Err())
		case <-time.After(100 * time.Millisecond):
		}
	}
}

func demo(ctx context.Context, reg *consul.Registry, gatewayAddr string) error {
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	uc, err := kit.NewClient("consul:///user", kit.WithDiscovery(reg))
	if err != nil {
		return err
	}
	defer uc.Close()
	gc, err := kit.NewClient("consul:///greeter", kit.WithDiscovery(reg))
	if err != nil {
		return err
	}
	defer gc.Close()
	created, err := userv1.NewUserServiceClient(uc).CreateUser(ctx, &userv1.CreateUserRequest{
		Name: "Ada Lovelace", Email: fmt.Sprintf("ada+%d@example.com", time.Now().UnixNano()),
	})
	if err != nil {
		return fmt.Errorf("user.CreateUser: %w", err)
	}
	id := created.GetUser().GetId()
	resp, err := greeterv1.NewGreeterServiceClient(gc).SayHello(ctx, &greeterv1.SayHelloRequest{UserId: &id})
	if err != nil {
		return fmt.Errorf("greeter.SayHello: %w", err)
	}
	step("demo call through consul:///greeter (greeter → consul:///user):")
	fmt.Printf("    SayHello{user_id: %q} = %q  (answered by %s)\n", id, resp.GetMessage(), resp.GetInstance())

	req, err := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+gatewayAddr+"/v1/hello/world", nil)
	if err != nil {
		return err
	}
	hr, err := http.DefaultClient.Do(req)
	if err != nil {
		return fmt.Errorf("gateway: %w", err)
	}
	defer hr.Body.Close()
	body, _ := io.ReadAll(io.LimitReader(hr.Body, 4096))
	if hr.StatusCode != http.StatusOK {
		return fmt.Errorf("gateway GET /v1/hello/world: %s %s", hr.Status, body)
	}
	step("demo call through the gateway:")
	fmt.Printf("    GET http://%s/v1/hello/world = %s\n", gatewayAddr, strings.TrimSpace(string(body)))
	return nil
}

// devSecret returns a random HMAC secret for the gateway's write tokens.
func devSecret() (string, error) {
	b := make([]byte, 32)
	if _, err := rand.Read(b); err != nil {
		return "", err
	}
	return hex.EncodeToString(b), nil
}

func summary(consulAddr, gatewayAddr, token string, procs []*proc, dir string) {
	step("the local stack is up")
	fmt.Printf("    Consul UI:  http://%s/ui/\n", consulAddr)
	fmt.Printf("    gateway:    http://%s/v1/hello/world   API: http://%s/openapi.json\n", gatewayAddr, gatewayAddr)
	for _, p := range procs {
		fmt.Printf("    %-10s  gRPC %-21s  admin http://%s/debug/kit  log %s\n", p.name, p.addr, p.admin, p.log)
	}
	for _, p := range procs {
		if strings.HasPrefix(p.name, "greeter") {
			fmt.Printf("    try:        grpcurl -plaintext -d '{\"name\":\"world\"}' %s greeter.v1.GreeterService/SayHello\n", p.addr)
			break
		}
	}
	fmt.Printf("    write:      curl -X POST http://%s/v1/users -H 'Authorization: Bearer %s' -H 'Content-Type: application/json' -d '{\"name\":\"Ada\",\"email\":\"ada@example.com\"}'\n", gatewayAddr, token)
	fmt.Printf("    dev token:  %s  (24h, for the gateway's writes)\n", token)
	fmt.Printf("    data:       %s\n", filepath.Join(dir, "users.db"))
	fmt.Println("    Ctrl-C stops everything; instances deregister from Consul first.")
}

func remove(procs []*proc, p *proc) []*proc {
	out := procs[:0]
	for _, q := range procs {
		if q != p {
			out = append(out, q)
		}
	}
	return out
}

// stopAll stops the instances callers first, in the reverse order of
// their start (the gateway, then the greeters, then the users), so that no
// instance loses its backends while it drains. Each group gets SIGTERM at
// once and is waited for; an instance that takes longer than 20s is killed.
func stopAll(procs []*proc) {
	service := func(p *proc) string { return p.name[:strings.LastIndexByte(p.name, '-')] }
	for end := len(procs); end > 0; {
		start := end - 1
		for start > 0 && service(procs[start-1]) == service(procs[end-1]) {
			start--
		}
		group := procs[start:end]
		for _, p := range group {
			p.cmd.Process.Signal(syscall.SIGTERM)
		}
		deadline := time.After(20 * time.Second)
		for _, p := range group {
			select {
			case <-p.exited:
				step("%s stopped", p.name)
			case <-deadline:
				p.cmd.Process.Kill()
				<-p.exited
				step("%s killed after 20s", p.name)
			}
		}
		end = start
	}
}

func tail(path string, n int) string {
	b, err := os.ReadFile(path)
	if err != nil {
		return err.Error()
	}
	lines := strings.Split(strings.TrimRight(string(b), "\n"), "\n")
	return strings.Join(lines[max(0, len(lines)-n):], "\n")
}
