package clustertest

import (
	"context"
	"testing"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/grpckit/grpckit/kit"
	testpbv1 "github.com/grpckit/grpckit/kit/internal/testpb/v1"
	"github.com/grpckit/grpckit/kit/registry"
	"github.com/grpckit/grpckit/kit/registry/consul/consultest"
)

// TestRegistrationThroughClientAgent: an instance registers with its node's
// client agent; another node's agent lists it on that node, its watch
// sees it, and a kit client through it calls it.
func TestRegistrationThroughClientAgent(t *testing.T) {
	c := need(t)
	one, two := node(t, c, "dc1-client-1"), node(t, c, "dc1-client-2")
	serveOn(t, registryOn(t, c, one), "alpha")
	api2 := consultest.NodeClient(t, c, two)
	waitFor(t, 15*time.Second, "alpha passes", func() bool {
		e, err := passing(api2, "alpha", "")
		return err == nil && len(e) == 1
	})
	e, _ := passing(api2, "alpha", "")
	if e[0].Node.Node != one.Name {
		t.Errorf("alpha is on node %s, want %s (its agent's)", e[0].Node.Node, one.Name)
	}
	cc, err := kit.NewClient("consul:///alpha", kit.WithDiscovery(registryOn(t, c, two)))
	if err != nil {
		t.Fatal(err)
	}
	defer cc.Close()
	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
	defer cancel()
	resp, err := testpbv1.NewTestServiceClient(cc).Echo(ctx, &testpbv1.EchoRequest{Message: "hi"})
	if err != nil || resp.GetServer() != "alpha" {
		t.Fatalf("Echo through dc1-client-2's agent: %v, %v", resp, err)
	}
}

// TestAgentLossDropsItsInstances: when a node's agent dies, Consul finds it
// failed by gossip (serfHealth), its instances go critical, and a watch
// through another agent drops them while keeping the others; the agent
// back, they return.
func TestAgentLossDropsItsInstances(t *testing.T) {
	c := need(t)
	one, two := node(t, c, "dc1-client-1"), node(t, c, "dc1-client-2")
	serveOn(t, registryOn(t, c, one), "beta")
	serveOn(t, registryOn(t, c, two), "beta")
	w, err := registryOn(t, c, one).Watch(t.Context(), "beta")
	if err != nil {
		t.Fatal(err)
	}
	defer w.Stop()
	next := func(want int) []registry.Instance {
		t.Helper()
		ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
		defer cancel()
		for {
			set, err := w.Next(ctx)
			if err != nil {
				t.Fatalf("watch: %v (waiting for %d instances)", err, want)
			}
			if len(set) == want {
				return set
			}
		}
	}
	next(2)
	t.Cleanup(func() { restart(t, c, two) })
	killed := time.Now()
	two.Kill()
	set := next(1)
	t.Logf("the instance of the dead agent left the watch %v after the kill", time.Since(killed).Round(time.Millisecond))
	if set[0].Port == 0 {
		t.Errorf("unexpected set %+v", set)
	}
	restart(t, c, two)
	next(2)
}

// TestWatchAcrossLeaderElection: the leader server killed, a watch through
// a client agent keeps its set through the election (never an empty one;
// a query the dying leader cut may be reported once, as the registry's
// contract allows, the set kept), registrations survive, and a change
// after it is seen.
func TestWatchAcrossLeaderElection(t *testing.T) {
	c := need(t)
	one, two := node(t, c, "dc1-client-1"), node(t, c, "dc1-client-2")
	regOne := registryOn(t, c, one)
	serveOn(t, regOne, "gamma")
	w, err := registryOn(t, c, two).Watch(t.Context(), "gamma")
	if err != nil {
		t.Fatal(err)
	}
	defer w.Stop()
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	defer cancel()
	for {
		set, err := w.Next(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if len(set) == 1 {
			break
		}
	}
	type answer struct {
		set []registry.Instance
		err error
	}
	answers := make(chan answer, 16)
	go func() {
		for {
			set, err := w.Next(ctx)
			answers <- answer{set, err}
			if ctx.Err() != nil || len(set) == 2 {
				return
			}
		}
	}()
	leader, err := c.Leader(t.Context(), "dc1")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { restart(t, c, leader) })
	killed := time.Now()
	leader.Kill()
	elected := waitFor(t, 30*time.Second, "a new leader", func() bool {
		l, err := c.Leader(t.Context(), "dc1")
		return err == nil && l != leader
	})
	t.Logf("new leader %v after the kill", elected.Round(time.Millisecond))
	api2 := consultest.NodeClient(t, c, two)
	if e, err := passing(api2, "gamma", ""); err != nil || len(e) != 1 {
		t.Errorf("after the election gamma has %d passing instances (%v), want its registration kept", len(e), err)
	}
	serveOn(t, regOne, "gamma")
	for {
		select {
		case a := <-answers:
			if a.err != nil {
				t.Logf("the watch reported %v (its set kept)", a.err)
				continue
			}
			if len(a.set) == 0 {
				t.Fatal("the watch answered an empty set during the election")
			}
			if len(a.set) == 2 {
				t.Logf("the watch saw a new instance %v after the leader was killed", time.Since(killed).Round(time.Millisecond))
				return
			}
		case <-ctx.Done():
			t.Fatal("the watch did not see the instance registered after the election")
		}
	}
}

// TestDatacenterAcrossWAN: a target with dc= reaches a service of the other
// datacenter through the local agent; without it, the local datacenter has
// none and the call fails at once.
func TestDatacenterAcrossWAN(t *testing.T) {
	c := need(t)
	serveOn(t, registryOn(t, c, node(t, c, "dc2-client-1")), "delta")
	local := registryOn(t, c, node(t, c, "dc1-client-1"))
	api1 := consultest.NodeClient(t, c, node(t, c, "dc1-client-1"))
	waitFor(t, 30*time.Second, "delta passes in dc2", func() bool {
		e, err := passing(api1, "delta", "dc2")
		return err == nil && len(e) == 1
	})
	call := func(target string) (*testpbv1.EchoResponse, error) {
		cc, err := kit.NewClient(target, kit.WithDiscovery(local))
		if err != nil {
			t.Fatal(err)
		}
		defer cc.Close()
		ctx, cancel := context.WithTimeout(t.Context(), 5*time.Second)
		defer cancel()
		return testpbv1.NewTestServiceClient(cc).Echo(ctx, &testpbv1.EchoRequest{Message: "hi"})
	}
	if resp, err := call("consul:///delta?dc=dc2"); err != nil || resp.GetServer() != "delta" {
		t.Fatalf("Echo on consul:///delta?dc=dc2 from dc1: %v, %v", resp, err)
	}
	if _, err := call("consul:///delta"); status.Code(err) != codes.Unavailable {
		t.Errorf("Echo on consul:///delta (dc1 has none): %v, want UNAVAILABLE", err)
	}
}

// restart starts node n again if it is down and waits until its
// datacenter has a leader and n is alive in it.
func restart(t *testing.T, c *consultest.Cluster, n *consultest.Node) {
	t.Helper()
	if n.Running() {
		return
	}
	if err := n.Start(); err != nil {
		t.Fatal(err)
	}
	apiN := consultest.NodeClient(t, c, n)
	defer func() {
		if t.Failed() {
			t.Logf("%s's log:\n%s", n.Name, n.Log())
		}
	}()
	waitFor(t, 60*time.Second, n.Name+" back in the cluster", func() bool {
		if _, err := c.Leader(context.Background(), n.Datacenter); err != nil { // t.Context() is done in a cleanup
			return false
		}
		members, err := apiN.Agent().Members(false)
		if err != nil {
			return false
		}
		for _, m := range members {
			if m.Name == n.Name && m.Status == 1 {
				return true
			}
		}
		return false
	})
}
