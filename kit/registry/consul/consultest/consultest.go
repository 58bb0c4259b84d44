package consultest

import (
	"context"
	"crypto/rand"
	"os"
	"sync"
	"testing"
	"time"

	"github.com/hashicorp/consul/api"
)

// findBinary runs [Find] once per test binary, for [Start].
var findBinary = sync.OnceValues(func() (string, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Minute)
	defer cancel()
	return Find(ctx, os.Stderr)
})

// Start starts a dev agent for the test and stops it when the test and its
// subtests end; the agent's log is printed when the test failed. It skips
// the test under -short, and fails it when [Find] finds no consul binary (the
// first call in a test binary may take minutes if a project script builds
// one; later calls reuse its answer) or the agent does not start. Start
// must be called from the test's goroutine.
func Start(t testing.TB) *Agent {
	t.Helper()
	return start(t, Config{})
}

// StartACL is [Start] for an agent with ACLs on and the default policy
// deny, whose management token ([Agent.ManagementToken]) is random: a
// request needs a token with the rights it takes. [Client] uses the
// management token; [TokenClient] any other.
func StartACL(t testing.TB) *Agent {
	t.Helper()
	return start(t, Config{ManagementToken: rand.Text()})
}

func start(t testing.TB, cfg Config) *Agent {
	t.Helper()
	if testing.Short() {
		t.Skip("needs a real Consul agent; skipped with -short")
	}
	binary, err := findBinary()
	if err != nil {
		t.Fatalf("consultest: %v", err)
	}
	var a *Agent
	for range 3 { // a port picked as free may be taken meanwhile by another process
		cfg.Binary = binary
		if a, err = StartAgent(t.Context(), cfg); err == nil {
			break
		}
	}
	if err != nil {
		t.Fatalf("consultest: start consul: %v", err)
	}
	t.Cleanup(func() {
		a.Stop()
		if t.Failed() {
			t.Logf("consul agent log:\n%s", a.Log())
		}
	})
	return a
}

// Client returns a Consul API client for a whose idle connections are
// closed when the test ends, so that leak checks (goleak) pass. With a's
// ACLs on it uses the management token.
func Client(t testing.TB, a *Agent) *api.Client {
	t.Helper()
	return TokenClient(t, a, a.ManagementToken())
}

// TokenClient is [Client] with the ACL token token; "" sends none (Consul
// takes the request as its anonymous token's), whatever CONSUL_HTTP_TOKEN
// says.
func TokenClient(t testing.TB, a *Agent, token string) *api.Client {
	t.Helper()
	cfg := api.DefaultConfig()
	cfg.Address = a.HTTPAddr()
	cfg.Token, cfg.TokenFile = token, ""
	c, err := api.NewClient(cfg)
	if err != nil {
		t.Fatalf("consultest: consul client: %v", err)
	}
	t.Cleanup(cfg.Transport.CloseIdleConnections)
	return c
}

// StartClusterT starts a [Cluster] of the default datacenters with ACLs on
// (a random management token) for the test, and stops it when the test
// ends; the nodes' logs are printed when the test failed. It skips the test
// under -short.
func StartClusterT(t testing.TB) *Cluster {
	t.Helper()
	if testing.Short() {
		t.Skip("needs a real Consul cluster; skipped with -short")
	}
	binary, err := findBinary()
	if err != nil {
		t.Fatalf("consultest: %v", err)
	}
	c, err := StartCluster(t.Context(), ClusterConfig{Binary: binary, ManagementToken: rand.Text()})
	if err != nil {
		t.Fatalf("consultest: start the cluster: %v", err)
	}
	t.Cleanup(func() {
		c.Stop()
		if t.Failed() {
			for _, n := range c.Nodes() {
				t.Logf("%s log:\n%s", n.Name, n.Log())
			}
		}
	})
	return c
}

// NodeClient returns a Consul API client for node n of c (with c's
// management token), whose idle connections are closed when the test ends.
func NodeClient(t testing.TB, c *Cluster, n *Node) *api.Client {
	t.Helper()
	cfg := api.DefaultConfig()
	cfg.Address = n.HTTPAddr()
	cfg.Token, cfg.TokenFile = c.ManagementToken(), ""
	cl, err := api.NewClient(cfg)
	if err != nil {
		t.Fatalf("consultest: consul client: %v", err)
	}
	t.Cleanup(cfg.Transport.CloseIdleConnections)
	return cl
}
