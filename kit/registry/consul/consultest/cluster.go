package consultest

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"time"
)

// ClusterConfig describes a Consul cluster for [StartCluster].
type ClusterConfig struct {
	// Binary is the consul binary ([Find] returns one); required.
	Binary string
	// ManagementToken, when set, turns ACLs on in every datacenter with the
	// default policy deny, as the stacks run them: the first datacenter is
	// the primary (it holds the token), the others replicate from it.
	ManagementToken string
	// Datacenters are the datacenters, the first one primary, joined over
	// the WAN. Default: dc1 with 3 servers and 2 client agents, dc2 with 1
	// server and 1 client agent.
	Datacenters []DatacenterConfig
	// Output receives every node's log, each line prefixed with the node's
	// name; nil keeps only each node's tail ([Node.Log]).
	Output io.Writer
	// Dir holds the nodes' data directories; "" makes a temporary one that
	// [Cluster.Stop] removes.
	Dir string
}

// DatacenterConfig is one datacenter of a cluster.
type DatacenterConfig struct {
	Name    string
	Servers int // at least 1; 3 or 5 survive the loss of one or two
	Clients int // client agents, one per "node" of the services
}

// DefaultDatacenters are the datacenters of a cluster by default.
var DefaultDatacenters = []DatacenterConfig{{Name: "dc1", Servers: 3, Clients: 2}, {Name: "dc2", Servers: 1, Clients: 1}}

// Cluster is a running Consul cluster of real agents (not -dev) on
// loopback: every node binds an address of its own in 127.0.0.0/8
// (127.B.C.x, the block chosen at random and tried again when taken) with
// Consul's standard ports, so no port is picked and bound later. Servers
// elect a leader with Raft; client agents join their datacenter's servers
// over the LAN; the datacenters' servers join over the WAN. Gossip and
// Raft are tuned for loopback (failures are seen in about a second).
// Like [Agent], its methods are for one goroutine; the agents serve anyone.
type Cluster struct {
	cfg   ClusterConfig
	nodes []*Node
	dir   string
	temp  bool
}

// Node is one agent of a [Cluster].
type Node struct {
	// Name is the node name, e.g. "dc1-server-2" or "dc1-client-1".
	Name string
	// Datacenter is the node's datacenter.
	Datacenter string
	// Server tells a server from a client agent.
	Server bool
	// IP is the node's own loopback address.
	IP string

	c    *Cluster
	args []string
	cmd  *exec.Cmd
	done chan struct{}
	out  *syncBuffer
}

// HTTPAddr returns the host:port of the node's HTTP API: the address the
// services of this node give their registry (registry.address).
func (n *Node) HTTPAddr() string { return net.JoinHostPort(n.IP, "8500") }

// Log returns the tail of what the node printed.
func (n *Node) Log() string { return n.out.String() }

// Running reports whether the node's agent runs.
func (n *Node) Running() bool { return n.cmd != nil }

// StartCluster starts the agents of cfg and waits until every datacenter
// has a leader, every client agent has joined, the datacenters see each
// other over the WAN and, with ACLs on, the management token works in every
// datacenter (at most 2 minutes, less when ctx ends first). The caller
// stops it with [Cluster.Stop]; on Linux the agents also die with the
// calling process. Tests use [StartClusterT].
func StartCluster(ctx context.Context, cfg ClusterConfig) (*Cluster, error) {
	if cfg.Binary == "" {
		return nil, errors.New("consultest: ClusterConfig.Binary is required")
	}
	if len(cfg.Datacenters) == 0 {
		cfg.Datacenters = DefaultDatacenters
	}
	for _, dc := range cfg.Datacenters {
		if dc.Name == "" || dc.Servers < 1 || dc.Clients < 0 {
			return nil, fmt.Errorf("consultest: datacenter %+v: want a name and at least one server", dc)
		}
	}
	var err error
	for range 3 { // another cluster may hold the block of addresses picked
		var c *Cluster
		if c, err = startCluster(ctx, cfg); err == nil {
			return c, nil
		}
		if ctx.Err() != nil {
			break
		}
	}
	return nil, err
}

func startCluster(ctx context.Context, cfg ClusterConfig) (*Cluster, error) {
	c := &Cluster{cfg: cfg, dir: cfg.Dir}
	if c.dir == "" {
		d, err := os.MkdirTemp("", "consul-cluster-")
		if err != nil {
			return nil, err
		}
		c.dir, c.temp = d, true
	}
	block := fmt.Sprintf("127.%d.%d.", 10+rand.IntN(240), 10+rand.IntN(240))
	if l, err := net.Listen("tcp", block+"1:8300"); err != nil {
		c.Stop()
		return nil, fmt.Errorf("consultest: loopback block %s0/24 taken: %w", block, err)
	} else {
		l.Close() // Consul binds it in a moment: only a probe for another cluster
	}
	var wanJoin []string
	for d, dc := range cfg.Datacenters {
		var servers []string
		for i := range dc.Servers {
			servers = append(servers, fmt.Sprintf("%s%d", block, 1+d*50+i))
		}
		if d == 0 {
			wanJoin = servers
		}
		for i, ip := range servers {
			n := &Node{Name: fmt.Sprintf("%s-server-%d", dc.Name, i+1), Datacenter: dc.Name, Server: true, IP: ip, c: c}
			n.args = []string{"-server", fmt.Sprintf("-bootstrap-expect=%d", dc.Servers)}
			for _, s := range servers {
				n.args = append(n.args, "-retry-join="+s)
			}
			if d > 0 {
				for _, s := range wanJoin {
					n.args = append(n.args, "-retry-join-wan="+s)
				}
			}
			c.nodes = append(c.nodes, n)
		}
		for i := range dc.Clients {
			ip := fmt.Sprintf("%s%d", block, 1+d*50+20+i)
			n := &Node{Name: fmt.Sprintf("%s-client-%d", dc.Name, i+1), Datacenter: dc.Name, IP: ip, c: c}
			for _, s := range servers {
				n.args = append(n.args, "-retry-join="+s)
			}
			c.nodes = append(c.nodes, n)
		}
	}
	for _, n := range c.nodes {
		if err := n.Start(); err != nil {
			c.Stop()
			return nil, err
		}
	}
	if err := c.waitFormed(ctx); err != nil {
		c.Stop()
		return nil, err
	}
	return c, nil
}

// Start starts the node's agent (again, after [Node.Kill]: with its data
// directory, so it rejoins as the same node) without waiting for it.
func (n *Node) Start() error {
	if n.cmd != nil {
		return nil
	}
	if n.out == nil {
		n.out = &syncBuffer{w: prefixed(n.c.cfg.Output, n.Name)}
	}
	dir := filepath.Join(n.c.dir, n.Name)
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return err
	}
	args := append([]string{"agent",
		"-node=" + n.Name, "-datacenter=" + n.Datacenter, "-data-dir=" + dir,
		"-bind=" + n.IP, "-advertise=" + n.IP, "-client=" + n.IP,
		"-dns-port=-1", "-grpc-port=-1", "-grpc-tls-port=-1", "-log-level=warn",
		// A join tried before the other agents listen is tried again in a
		// second, not Consul's default 30.
		"-retry-interval=1s", "-retry-interval-wan=1s",
		"-hcl=" + n.c.hcl(n),
	}, n.args...)
	cmd := exec.Command(n.c.cfg.Binary, args...)
	cmd.Stdout, cmd.Stderr = n.out, n.out
	setProcAttr(cmd)
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("consultest: start %s: %w", n.Name, err)
	}
	n.cmd, n.done = cmd, make(chan struct{})
	go func(done chan struct{}) {
		cmd.Wait()
		close(done)
	}(n.done)
	return nil
}

// Kill kills the node's agent (SIGKILL: no leave; its peers find it failed
// by gossip) and waits for it to exit.
func (n *Node) Kill() {
	if n.cmd == nil {
		return
	}
	n.cmd.Process.Kill()
	<-n.done
	n.cmd = nil
}

// hcl is the configuration of node n: the primary datacenter, ACLs, and
// timings for loopback.
func (c *Cluster) hcl(n *Node) string {
	var b strings.Builder
	fmt.Fprintf(&b, "primary_datacenter = %q\n", c.cfg.Datacenters[0].Name)
	// Failures are told in about a second on loopback; Raft elects in one
	// to two (raft_multiplier 1, as Consul advises for production too).
	b.WriteString(`performance { raft_multiplier = 1 }
gossip_lan { probe_interval = "400ms" probe_timeout = "200ms" suspicion_mult = 4 gossip_interval = "100ms" }
gossip_wan { probe_interval = "500ms" probe_timeout = "250ms" suspicion_mult = 3 }
leave_on_terminate = true
disable_update_check = true
`)
	if t := c.cfg.ManagementToken; t != "" {
		tokens := fmt.Sprintf("agent = %q\n    replication = %q", t, t)
		if n.Datacenter == c.cfg.Datacenters[0].Name && n.Server {
			tokens += fmt.Sprintf("\n    initial_management = %q", t)
		}
		fmt.Fprintf(&b, `acl {
  enabled = true
  default_policy = "deny"
  enable_token_persistence = true
  enable_token_replication = true
  tokens {
    %s
  }
}
`, tokens)
	}
	return b.String()
}

// waitFormed polls until the cluster is whole (see [StartCluster]).
func (c *Cluster) waitFormed(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(ctx, 2*time.Minute)
	defer cancel()
	var why string
	for {
		why = c.notFormed(ctx)
		if why == "" {
			return nil
		}
		for _, n := range c.nodes {
			select {
			case <-n.done:
				return fmt.Errorf("consultest: %s exited during start-up: %s", n.Name, lastLines(n.Log(), 10))
			default:
			}
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("consultest: the cluster did not form: %s: %w", why, ctx.Err())
		case <-time.After(100 * time.Millisecond):
		}
	}
}

// notFormed returns why the cluster is not whole yet, or "".
func (c *Cluster) notFormed(ctx context.Context) string {
	for _, dc := range c.cfg.Datacenters {
		if _, err := c.Leader(ctx, dc.Name); err != nil {
			return err.Error()
		}
		members, err := c.alive(ctx, c.Servers(dc.Name)[0])
		if err != nil {
			return err.Error()
		}
		if want := dc.Servers + dc.Clients; members < want {
			return fmt.Sprintf("%s has %d of %d members alive", dc.Name, members, want)
		}
	}
	if len(c.cfg.Datacenters) > 1 {
		var dcs []string
		if err := c.get(ctx, c.Servers(c.cfg.Datacenters[0].Name)[0], "/v1/catalog/datacenters", &dcs); err != nil {
			return err.Error()
		}
		if len(dcs) < len(c.cfg.Datacenters) {
			return fmt.Sprintf("the WAN knows %v", dcs)
		}
	}
	if t := c.cfg.ManagementToken; t != "" {
		for _, n := range c.nodes {
			var self map[string]any
			if err := c.get(ctx, n, "/v1/acl/token/self", &self); err != nil {
				return fmt.Sprintf("%s: the management token: %v", n.Name, err)
			}
		}
	}
	return ""
}

// alive returns how many members of its datacenter node n sees alive.
func (c *Cluster) alive(ctx context.Context, n *Node) (int, error) {
	var ms []struct{ Status int }
	if err := c.get(ctx, n, "/v1/agent/members", &ms); err != nil {
		return 0, err
	}
	alive := 0
	for _, m := range ms {
		if m.Status == 1 {
			alive++
		}
	}
	return alive, nil
}

// Leader returns the server that leads datacenter dc.
func (c *Cluster) Leader(ctx context.Context, dc string) (*Node, error) {
	for _, s := range c.Servers(dc) {
		if !s.Running() {
			continue
		}
		var addr string
		if err := c.get(ctx, s, "/v1/status/leader", &addr); err != nil {
			continue
		}
		host, _, _ := net.SplitHostPort(addr)
		for _, n := range c.Servers(dc) {
			if n.IP == host && host != "" {
				return n, nil
			}
		}
	}
	return nil, fmt.Errorf("%s has no leader", dc)
}

// Servers returns the servers of datacenter dc.
func (c *Cluster) Servers(dc string) []*Node {
	return slices.DeleteFunc(slices.Clone(c.nodes), func(n *Node) bool { return n.Datacenter != dc || !n.Server })
}

// Clients returns the client agents of datacenter dc.
func (c *Cluster) Clients(dc string) []*Node {
	return slices.DeleteFunc(slices.Clone(c.nodes), func(n *Node) bool { return n.Datacenter != dc || n.Server })
}

// Nodes returns every node.
func (c *Cluster) Nodes() []*Node { return slices.Clone(c.nodes) }

// ManagementToken returns the management token; "" when ACLs are off.
func (c *Cluster) ManagementToken() string { return c.cfg.ManagementToken }

// Stop kills every agent and removes the data of a cluster that made its
// own directory.
func (c *Cluster) Stop() {
	for _, n := range c.nodes {
		n.Kill()
	}
	if c.temp {
		os.RemoveAll(c.dir)
	}
}

// get GETs path from node n's HTTP API into v.
func (c *Cluster) get(ctx context.Context, n *Node, path string, v any) error {
	ctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+n.HTTPAddr()+path, nil)
	if err != nil {
		return err
	}
	if t := c.cfg.ManagementToken; t != "" {
		req.Header.Set("X-Consul-Token", t)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("%s %s: %s %s", n.Name, path, resp.Status, strings.TrimSpace(string(body)))
	}
	return json.Unmarshal(body, v)
}

// prefixed returns a writer that writes to w with name before each write,
// or nil when w is.
func prefixed(w io.Writer, name string) io.Writer {
	if w == nil {
		return nil
	}
	return writerFunc(func(p []byte) (int, error) {
		if _, err := fmt.Fprintf(w, "[%s] %s", name, p); err != nil {
			return 0, err
		}
		return len(p), nil
	})
}

type writerFunc func(p []byte) (int, error)

func (f writerFunc) Write(p []byte) (int, error) { return f(p) }
