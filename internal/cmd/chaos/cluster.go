package main

import (
	"context"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/hashicorp/consul/api"
	"google.golang.org/grpc"

	"github.com/grpckit/grpckit/internal/writeload"
	"github.com/grpckit/grpckit/kit"
	"github.com/grpckit/grpckit/kit/balancer"
	"github.com/grpckit/grpckit/kit/middleware/auth"
	"github.com/grpckit/grpckit/kit/registry/consul"
	"github.com/grpckit/grpckit/kit/registry/consul/consultest"
	userv1 "github.com/grpckit/grpckit/proto/user/v1"
)

// The nodes of the cluster scenarios: user instances run on the client
// agents' nodes, two on each in dc1 and one in dc2; this process's clients
// watch through dc1-client-1's agent, as a caller on that node would.
const (
	callerNode = "dc1-client-1"
	victimNode = "dc1-client-2" // the node agent-loss takes down
)

// usersPerNode is how many user instances run on each client agent's node.
var usersPerNode = map[string]int{"dc1-client-1": 2, "dc1-client-2": 2, "dc2-client-1": 1}

// clusterEnv is what the cluster scenarios run against: a real Consul
// cluster of two datacenters (consultest.StartCluster: 3 servers and 2
// client agents in dc1, 1 + 1 in dc2, ACLs on) and user instances that
// register with their node's client agent, each with the user service's own
// Consul token.
type clusterEnv struct {
	cluster *consultest.Cluster
	mgmt    *api.Client      // the management token, through the caller's node
	reg     *consul.Registry // this process's discovery, through the caller's node
	users   map[string][]*instance
	mon     balancer.Monitor
	ids     []string // seeded users
}

// clusterEnv starts the cluster environment on first use.
func (e *env) clusterEnv(ctx context.Context) (*clusterEnv, error) {
	if e.cl != nil {
		return e.cl, e.cl.heal(ctx)
	}
	progress("starting a Consul cluster: dc1 (3 servers, 2 client agents) and dc2 (1 server, 1 client agent), ACLs on")
	bin, err := consultest.Find(ctx, os.Stderr)
	if err != nil {
		return nil, err
	}
	out, err := os.Create(filepath.Join(e.sup.logs, "consul-cluster.log"))
	if err != nil {
		return nil, err
	}
	start := time.Now()
	c, err := consultest.StartCluster(ctx, consultest.ClusterConfig{Binary: bin, ManagementToken: "chaos-" + strconv.FormatInt(time.Now().UnixNano(), 36), Output: out})
	if err != nil {
		return nil, err
	}
	ce := &clusterEnv{cluster: c, users: map[string][]*instance{}}
	e.cl = ce
	progress("cluster formed in %v", time.Since(start).Round(time.Millisecond))
	caller := ce.node(callerNode)
	cfg := api.DefaultConfig()
	cfg.Address, cfg.Token = caller.HTTPAddr(), c.ManagementToken()
	if ce.mgmt, err = api.NewClient(cfg); err != nil {
		return nil, err
	}
	// The services' own token (service:write on user, read on the
	// catalog), made in the primary datacenter and replicated to dc2.
	tok, err := consul.CreateServiceToken(ctx, ce.mgmt, "user", "chaos: user", "")
	if err != nil {
		return nil, err
	}
	// This process watches with the user service's token, as a caller
	// with the stack's policy would.
	rcfg := api.DefaultConfig()
	rcfg.Address, rcfg.Token = caller.HTTPAddr(), tok.SecretID
	rc, err := api.NewClient(rcfg)
	if err != nil {
		return nil, err
	}
	ce.reg = consul.New(rc, consul.WithLogger(e.log))
	db := filepath.Join(e.dir, "cluster-users.db")
	for _, n := range c.Nodes() {
		for i := range usersPerNode[n.Name] {
			inst, err := e.sup.newInstance("user", fmt.Sprintf("user-%s-%d", n.Name, i+1), n.HTTPAddr(), "-user.db", db)
			if err != nil {
				return nil, err
			}
			inst.env = []string{"CONSUL_HTTP_TOKEN=" + tok.SecretID}
			ce.users[n.Name] = append(ce.users[n.Name], inst)
		}
	}
	if err := ce.heal(ctx); err != nil {
		return nil, err
	}
	return ce, ce.seed(ctx)
}

// node returns the cluster's node name.
func (ce *clusterEnv) node(name string) *consultest.Node {
	for _, n := range ce.cluster.Nodes() {
		if n.Name == name {
			return n
		}
	}
	panic("chaos: no node " + name)
}

// all returns every user instance of the cluster.
func (ce *clusterEnv) all() []*instance {
	var out []*instance
	for _, n := range slices.Sorted(func(yield func(string) bool) {
		for k := range ce.users {
			if !yield(k) {
				return
			}
		}
	}) {
		out = append(out, ce.users[n]...)
	}
	return out
}

// in returns the user instances of datacenter dc.
func (ce *clusterEnv) in(dc string) []*instance {
	var out []*instance
	for name, insts := range ce.users {
		if strings.HasPrefix(name, dc+"-") {
			out = append(out, insts...)
		}
	}
	return out
}

// heal brings the cluster back: every agent running and alive in its
// datacenter, a leader in each, every user instance running and passing.
func (ce *clusterEnv) heal(ctx context.Context) error {
	for _, n := range ce.cluster.Nodes() {
		if !n.Running() {
			progress("restarting consul %s", n.Name)
			if err := n.Start(); err != nil {
				return err
			}
		}
	}
	if _, err := poll(ctx, 60*time.Second, "every consul node alive with a leader", func(ctx context.Context) (bool, error) {
		for _, dc := range []string{"dc1", "dc2"} {
			if _, err := ce.cluster.Leader(ctx, dc); err != nil {
				return false, nil
			}
		}
		members, err := ce.mgmt.Agent().Members(false)
		if err != nil {
			return false, nil
		}
		alive := 0
		for _, m := range members {
			if m.Status == 1 {
				alive++
			}
		}
		return alive == 5, nil // dc1: 3 servers and 2 client agents
	}); err != nil {
		return err
	}
	for _, inst := range ce.all() {
		if !inst.running() {
			if err := inst.start(); err != nil {
				return err
			}
		}
	}
	_, err := ce.waitPassing(ctx, ce.all())
	return err
}

// waitPassing waits until every instance of insts passes in its
// datacenter, as the caller's agent sees it.
func (ce *clusterEnv) waitPassing(ctx context.Context, insts []*instance) (time.Time, error) {
	return poll(ctx, startTimeout, "the user instances pass in Consul", func(ctx context.Context) (bool, error) {
		want := map[string]bool{}
		for _, inst := range insts {
			want[inst.addr] = true
		}
		for _, dc := range []string{"dc1", "dc2"} {
			entries, _, err := ce.mgmt.Health().Service("user", "", true, (&api.QueryOptions{Datacenter: dc, AllowStale: true}).WithContext(ctx))
			if err != nil {
				return false, nil
			}
			for _, en := range entries {
				delete(want, net.JoinHostPort(en.Service.Address, strconv.Itoa(en.Service.Port)))
			}
		}
		return len(want) == 0, nil
	})
}

// seed creates the users the load asks for.
func (ce *clusterEnv) seed(ctx context.Context) error {
	cc, users, _, err := ce.dial("consul:///user")
	if err != nil {
		return err
	}
	defer cc.Close()
	ctx, cancel := context.WithTimeout(ctx, 15*time.Second)
	defer cancel()
	for i := range 8 {
		resp, err := users.CreateUser(ctx, &userv1.CreateUserRequest{
			Name: fmt.Sprintf("Cluster %d", i), Email: fmt.Sprintf("cluster-%d-%d@example.com", time.Now().UnixNano(), i),
		})
		if err != nil {
			return fmt.Errorf("seed users: CreateUser: %w", err)
		}
		ce.ids = append(ce.ids, resp.GetUser().GetId())
	}
	return nil
}

// dial makes a kit client of target through the caller's node, with an
// observer innermost and a bearer token the services accept.
func (ce *clusterEnv) dial(target string) (*grpc.ClientConn, userv1.UserServiceClient, *observer, error) {
	obs := &observer{}
	tok, err := writeload.Token()
	if err != nil {
		return nil, nil, nil, err
	}
	cc, err := kit.NewClient(target,
		kit.WithPerRPCCredentials(auth.BearerToken(tok, auth.AllowInsecure())),
		kit.WithDiscovery(ce.reg),
		kit.WithBalancerMonitor(&ce.mon),
		kit.WithDialOptions(grpc.WithChainUnaryInterceptor(obs.unary)))
	if err != nil {
		return nil, nil, nil, err
	}
	return cc, userv1.NewUserServiceClient(cc), obs, nil
}

// getUser returns a load call asking users for the seeded users.
func (ce *clusterEnv) getUser(users userv1.UserServiceClient) callFunc {
	return func(ctx context.Context, caller int) error {
		id := ce.ids[caller%len(ce.ids)]
		resp, err := users.GetUser(ctx, &userv1.GetUserRequest{Id: id})
		if err == nil && resp.GetUser().GetId() != id {
			return fmt.Errorf("GetUser(%s) answered user %q", id, resp.GetUser().GetId())
		}
		return err
	}
}

// endpoints returns how many endpoints the caller's balancer of target
// has, -1 before it reported.
func (ce *clusterEnv) endpoints(target string) int {
	for _, s := range ce.mon.Stats() {
		if s.Target == target {
			return len(s.Endpoints)
		}
	}
	return -1
}

// close stops the cluster (the supervisor kills the instances).
func (ce *clusterEnv) close() {
	if ce.reg != nil {
		ce.reg.Close()
	}
	ce.cluster.Stop()
}

// leaderLoss: the leader of dc1's servers is killed (SIGKILL) under load.
// The watch through the caller's client agent keeps its set during the
// election (stale reads), and the registrations survive.
func leaderLoss(ctx context.Context, e *env) (r result) {
	r.target = "0 failed calls; the balancer keeps every endpoint; every instance still passing after the election"
	ce, err := e.clusterEnv(ctx)
	if err != nil {
		r.err = err
		return r
	}
	const target = "consul:///user"
	cc, users, _, err := ce.dial(target)
	if err != nil {
		r.err = err
		return r
	}
	defer cc.Close()
	l := e.startLoad(ctx, time.Second, ce.getUser(users))
	defer l.stop()
	if _, err := poll(ctx, 10*time.Second, "the balancer has the dc1 instances", func(context.Context) (bool, error) {
		return ce.endpoints(target) == len(ce.in("dc1")), nil
	}); err != nil {
		r.err = err
		return r
	}
	if err := hold(ctx, 2*time.Second); err != nil {
		r.err = err
		return r
	}
	leader, err := ce.cluster.Leader(ctx, "dc1")
	if err != nil {
		r.err = err
		return r
	}
	fewest := len(ce.in("dc1"))
	sample := func() {
		if n := ce.endpoints(target); n >= 0 && n < fewest {
			fewest = n
		}
	}
	killed := time.Now()
	r.fault(killed, "leader killed")
	leader.Kill()
	progress("killed the leader %s", leader.Name)
	elected, err := poll(ctx, 30*time.Second, "a new leader in dc1", func(ctx context.Context) (bool, error) {
		sample()
		l, err := ce.cluster.Leader(ctx, "dc1")
		return err == nil && l != leader, nil
	})
	if err != nil {
		r.err = err
		return r
	}
	r.add("leader", "%s", leader.Name)
	r.add("new leader after", "%s", ms(elected.Sub(killed)))
	for end := time.Now().Add(3 * time.Second); time.Now().Before(end) && ctx.Err() == nil; {
		sample()
		time.Sleep(pollEvery)
	}
	l.stop()
	r.fromLoad(l)
	_, perr := ce.waitPassing(ctx, ce.all())
	r.add("fewest endpoints", "%d of %d", fewest, len(ce.in("dc1")))
	r.check(r.failed == 0, "%d calls failed", r.failed)
	r.check(fewest == len(ce.in("dc1")), "the balancer lost endpoints during the election (%d left)", fewest)
	r.check(perr == nil, "instances not passing after the election: %v", perr)
	return r
}

// agentLoss: a node is lost: its client agent and the user instances on it
// are killed at once (SIGKILL). Consul finds the agent failed by gossip,
// its instances go critical, and the calls move to the other node.
func agentLoss(ctx context.Context, e *env) (r result) {
	ce, err := e.clusterEnv(ctx)
	if err != nil {
		r.err = err
		return r
	}
	r.target = fmt.Sprintf("failed calls <= %d (the callers); no attempt on the lost node's instances later than 3 s after the loss", e.opts.callers)
	const target = "consul:///user"
	cc, users, obs, err := ce.dial(target)
	if err != nil {
		r.err = err
		return r
	}
	defer cc.Close()
	l := e.startLoad(ctx, time.Second, ce.getUser(users))
	defer l.stop()
	if err := hold(ctx, 2*time.Second); err != nil {
		r.err = err
		return r
	}
	victim := ce.node(victimNode)
	lost := time.Now()
	r.fault(lost, "node lost")
	for _, inst := range ce.users[victimNode] {
		if err := inst.kill(ctx); err != nil {
			r.err = err
			return r
		}
	}
	victim.Kill()
	progress("killed %s's agent and its %d user instances", victim.Name, len(ce.users[victimNode]))
	gone, err := poll(ctx, 30*time.Second, "the lost node's instances leave the balancer", func(context.Context) (bool, error) {
		return ce.endpoints(target) == len(ce.in("dc1"))-len(ce.users[victimNode]), nil
	})
	if err != nil {
		r.err = err
		return r
	}
	if err := hold(ctx, 3*time.Second); err != nil {
		r.err = err
		return r
	}
	l.stop()
	r.fromLoad(l)
	var last time.Time
	for _, inst := range ce.users[victimNode] {
		for _, a := range obs.to(inst.addr, lost) {
			if a.start.After(last) {
				last = a.start
			}
		}
	}
	r.add("instances dropped after", "%s", ms(gone.Sub(lost)))
	if last.IsZero() {
		r.add("last attempt on the lost node", "none")
	} else {
		r.add("last attempt on the lost node", "%s after the loss", ms(last.Sub(lost)))
	}
	r.add("failed calls ended", "%s", failureWindow(l.failureTimes(), lost))
	r.check(r.failed <= int64(e.opts.callers), "%d calls failed", r.failed)
	r.check(last.IsZero() || last.Sub(lost) <= 3*time.Second, "an attempt reached the lost node %v after the loss", last.Sub(lost))
	return r
}

// datacenterFailover: every user instance of dc1 stops (SIGTERM) under load
// from a client of consul:///user?failover=dc2; the calls go to dc2, and
// back to dc1 when its instances pass again.
func datacenterFailover(ctx context.Context, e *env) (r result) {
	r.target = "calls answered from dc2 within 2 s of the stop; failed calls reported; calls back in dc1 within 5 s of its instances passing"
	ce, err := e.clusterEnv(ctx)
	if err != nil {
		r.err = err
		return r
	}
	const target = "consul:///user?failover=dc2"
	cc, users, obs, err := ce.dial(target)
	if err != nil {
		r.err = err
		return r
	}
	defer cc.Close()
	l := e.startLoad(ctx, time.Second, ce.getUser(users))
	defer l.stop()
	if err := hold(ctx, 2*time.Second); err != nil {
		r.err = err
		return r
	}
	dc1, dc2 := ce.in("dc1"), ce.in("dc2")
	answeredBy := func(insts []*instance, since time.Time) (time.Time, bool) {
		var first time.Time
		for _, inst := range insts {
			for _, a := range obs.to(inst.addr, since) {
				if a.code == 0 && (first.IsZero() || a.end.Before(first)) {
					first = a.end
				}
			}
		}
		return first, !first.IsZero()
	}
	if _, ok := answeredBy(dc2, l.start); ok {
		r.check(false, "calls went to dc2 while dc1 had instances")
	}
	stopped := time.Now()
	r.fault(stopped, "dc1 stopped")
	for _, inst := range dc1 {
		go inst.terminate(context.WithoutCancel(ctx), 10*time.Second)
	}
	progress("stopped the %d dc1 user instances", len(dc1))
	if _, err := poll(ctx, 30*time.Second, "calls answered from dc2", func(context.Context) (bool, error) {
		_, ok := answeredBy(dc2, stopped)
		return ok, nil
	}); err != nil {
		r.err = err
		return r
	}
	first, _ := answeredBy(dc2, stopped)
	if err := hold(ctx, 3*time.Second); err != nil {
		r.err = err
		return r
	}
	failedOver := l.failed.Load()
	r.fault(time.Now(), "dc1 restarted")
	for _, inst := range dc1 {
		if err := inst.start(); err != nil {
			r.err = err
			return r
		}
	}
	back, err := ce.waitPassing(ctx, dc1)
	if err != nil {
		r.err = err
		return r
	}
	if _, err := poll(ctx, 30*time.Second, "calls answered in dc1 again", func(context.Context) (bool, error) {
		_, ok := answeredBy(dc1, back)
		return ok, nil
	}); err != nil {
		r.err = err
		return r
	}
	returned, _ := answeredBy(dc1, back)
	if err := hold(ctx, 2*time.Second); err != nil {
		r.err = err
		return r
	}
	settled := time.Now().Add(-time.Second)
	l.stop()
	r.fromLoad(l)
	_, stillDC2 := answeredBy(dc2, settled)
	r.add("served from dc2 after", "%s", ms(first.Sub(stopped)))
	r.add("failed calls during the failover", "%d", failedOver)
	r.add("back in dc1 after", "%s (of its instances passing)", ms(returned.Sub(back)))
	r.check(first.Sub(stopped) <= 2*time.Second, "calls reached dc2 %v after the stop", first.Sub(stopped))
	r.check(returned.Sub(back) <= 5*time.Second, "calls came back to dc1 %v after it passed", returned.Sub(back))
	r.check(!stillDC2, "calls still went to dc2 a second after dc1 was back")
	r.check(r.failed <= int64(e.opts.callers), "%d calls failed", r.failed)
	return r
}
