package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"syscall"
	"time"

	"github.com/hashicorp/consul/api"

	"github.com/grpckit/grpckit/internal/repo"
	"github.com/grpckit/grpckit/kit/balancer"
	"github.com/grpckit/grpckit/kit/registry/consul"
	"github.com/grpckit/grpckit/kit/registry/consul/consultest"
	userv1 "github.com/grpckit/grpckit/proto/user/v1"
)

// Fleet size and how long instances may take to come up.
const (
	numUsers     = 4
	numGreeters  = 2
	startTimeout = 30 * time.Second
)

// env is what the scenarios run against: the Consul agent, the instances
// and this process's view of them.
type env struct {
	opts options
	dir  string // scratch directory: binaries, SQLite file, logs

	agent     *consultest.Agent
	agentDown bool // stopped by a scenario and not started again
	consul    *api.Client
	reg       *consul.Registry // discovery for this process's kit clients
	balancers balancer.Monitor // the kit_weighted balancers of this process's kit clients

	log *slog.Logger // this process's kit logs (balancer events, discovery), to logs/chaos.log

	sup      *supervisor
	users    []*instance
	greeters []*instance
	db       string   // the SQLite file the user instances share
	userIDs  []string // users created at set-up, asked for by the load

	cl *clusterEnv // the cluster scenarios' environment, started on first use
}

// setUp builds the services, starts Consul and the fleet, and seeds users.
// On error, what was started is stopped by close, which the caller must call
// in every case once setUp returned.
func setUp(ctx context.Context, opts options, e *env) error {
	e.opts = opts
	root, err := repo.Root()
	if err != nil {
		return err
	}
	if e.dir, err = os.MkdirTemp("", "grpckit-chaos-"); err != nil {
		return err
	}
	bin, logs := filepath.Join(e.dir, "bin"), filepath.Join(e.dir, "logs")
	if err := os.MkdirAll(logs, 0o755); err != nil {
		return err
	}
	e.sup = newSupervisor(bin, logs)
	logFile, err := os.Create(filepath.Join(logs, "chaos.log"))
	if err != nil {
		return err
	}
	e.log = slog.New(slog.NewTextHandler(logFile, nil))
	// kit_weighted logs its state changes with slog.Default().
	slog.SetDefault(e.log)

	progress("building user and greeter into %s", bin)
	build := exec.CommandContext(ctx, "go", "build", "-o", bin+string(filepath.Separator), "./services/user/cmd/user", "./services/greeter/cmd/greeter")
	build.Dir, build.Stdout, build.Stderr = root, os.Stderr, os.Stderr
	if err := build.Run(); err != nil {
		return fmt.Errorf("go build: %w", err)
	}

	progress("finding consul")
	consulBin, err := consultest.Find(ctx, os.Stderr)
	if err != nil {
		return err
	}
	consulLog, err := os.Create(filepath.Join(logs, "consul.log"))
	if err != nil {
		return err
	}
	for range 3 { // a port seen free may be taken a moment later
		if e.agent, err = consultest.StartAgent(ctx, consultest.Config{Binary: consulBin, Output: consulLog}); err == nil {
			break
		}
	}
	if err != nil {
		return fmt.Errorf("start consul: %w", err)
	}
	progress("consul agent -dev on %s (%s)", e.agent.HTTPAddr(), consulBin)
	cfg := api.DefaultConfig()
	cfg.Address = e.agent.HTTPAddr()
	if e.consul, err = api.NewClient(cfg); err != nil {
		return err
	}
	if e.reg, err = consul.NewFromAddress(e.agent.HTTPAddr(), consul.WithLogger(e.log)); err != nil {
		return err
	}

	e.db = filepath.Join(e.dir, "users.db")
	for i := 1; i <= numUsers; i++ {
		inst, err := e.sup.newInstance("user", fmt.Sprintf("user-%d", i), e.agent.HTTPAddr(), "-user.db", e.db)
		if err != nil {
			return err
		}
		e.users = append(e.users, inst)
	}
	for i := 1; i <= numGreeters; i++ {
		inst, err := e.sup.newInstance("greeter", fmt.Sprintf("greeter-%d", i), e.agent.HTTPAddr())
		if err != nil {
			return err
		}
		e.greeters = append(e.greeters, inst)
	}
	for _, inst := range e.fleet() {
		if err := inst.start(); err != nil {
			return err
		}
	}
	start := time.Now()
	if _, err := e.waitPassing(ctx, startTimeout, e.fleet()...); err != nil {
		return err
	}
	progress("%d user and %d greeter instances passing in Consul after %v (logs in %s)", numUsers, numGreeters, time.Since(start).Round(time.Millisecond), logs)
	return e.seed(ctx)
}

// fleet returns every instance of the standing fleet.
func (e *env) fleet() []*instance {
	return append(append([]*instance(nil), e.users...), e.greeters...)
}

// seed creates the users the load asks for.
func (e *env) seed(ctx context.Context) error {
	c, err := e.dial(greeterTarget)
	if err != nil {
		return err
	}
	defer c.close()
	ctx, cancel := context.WithTimeout(ctx, 15*time.Second)
	defer cancel()
	stamp := time.Now().UnixNano()
	for i := range 16 {
		resp, err := c.users.CreateUser(ctx, &userv1.CreateUserRequest{
			Name: fmt.Sprintf("Chaos %d", i), Email: fmt.Sprintf("chaos-%d-%d@example.com", stamp, i),
		})
		if err != nil {
			return fmt.Errorf("seed users: CreateUser: %w", err)
		}
		e.userIDs = append(e.userIDs, resp.GetUser().GetId())
	}
	return nil
}

// heal brings the fleet back after a scenario that may have left it broken
// (it failed or was cut short): Consul running, every process running and
// not stopped, every instance passing.
func (e *env) heal(ctx context.Context) error {
	if e.agentDown {
		if err := e.agent.Restart(ctx); err != nil {
			return err
		}
		e.agentDown = false
	}
	for _, inst := range e.fleet() {
		if inst.running() {
			inst.signal(syscall.SIGCONT)
			continue
		}
		progress("restarting %s", inst.name)
		if err := inst.start(); err != nil {
			return err
		}
	}
	_, err := e.waitPassing(ctx, startTimeout, e.fleet()...)
	return err
}

// close kills every process and the agent. It keeps the scratch directory
// when keep is set.
func (e *env) close(keep bool) {
	if e.sup != nil {
		e.sup.killAll(15 * time.Second)
	}
	if e.cl != nil {
		e.cl.close()
	}
	if e.reg != nil {
		e.reg.Close()
	}
	if e.agent != nil {
		e.agent.Stop()
	}
	if e.dir == "" {
		return
	}
	if keep {
		progress("logs and data kept in %s", e.dir)
		return
	}
	if err := os.RemoveAll(e.dir); err != nil && !errors.Is(err, os.ErrNotExist) {
		progress("removing %s: %v", e.dir, err)
	}
}
