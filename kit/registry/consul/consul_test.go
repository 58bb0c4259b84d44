package consul_test

import (
	"context"
	"net"
	"slices"
	"testing"
	"time"

	"github.com/hashicorp/consul/api"
	"google.golang.org/grpc"
	"google.golang.org/grpc/health"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"

	"github.com/grpckit/grpckit/kit/registry"
	"github.com/grpckit/grpckit/kit/registry/consul"
	"github.com/grpckit/grpckit/kit/registry/consul/consultest"
)

// healthServer serves grpc.health.v1 on a loopback port for Consul's check.
func healthServer(t *testing.T) (*health.Server, registry.Instance) {
	t.Helper()
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	hs := health.NewServer()
	s := grpc.NewServer()
	healthpb.RegisterHealthServer(s, hs)
	go s.Serve(lis)
	t.Cleanup(s.Stop)
	port := lis.Addr().(*net.TCPAddr).Port
	return hs, registry.Instance{
		ID: "svc-" + lis.Addr().String(), Name: "svc", Address: "127.0.0.1", Port: port,
		Tags: []string{"blue"}, Meta: map[string]string{"version": "1"}, Weights: registry.Weights{Passing: 3, Warning: 1},
	}
}

// eventually polls cond every 20ms until it holds or d passes.
func eventually(t *testing.T, d time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(d)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("%s: not within %v", what, d)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func status(c *api.Client, id string) string {
	entries, _, err := c.Health().Service("svc", "", false, nil)
	if err != nil {
		return "error: " + err.Error()
	}
	for _, e := range entries {
		if e.Service.ID == id {
			return e.Checks.AggregatedStatus()
		}
	}
	return "absent"
}

func TestRegisterCheckDeregister(t *testing.T) {
	agent := consultest.Start(t)
	c := consultest.Client(t, agent)
	hs, inst := healthServer(t)
	// Start critical, so passing proves Consul's native gRPC check reached us.
	r := consul.New(c, consul.WithCheckInterval(time.Second, time.Second) /* Consul's minimum */, consul.WithInitialPassing(false))
	defer r.Close()
	if err := r.Register(t.Context(), inst); err != nil {
		t.Fatal(err)
	}
	eventually(t, 5*time.Second, "instance passing", func() bool { return status(c, inst.ID) == api.HealthPassing })

	svc, _, err := c.Agent().Service(inst.ID, nil)
	if err != nil {
		t.Fatal(err)
	}
	if svc.Port != inst.Port || !slices.Equal(svc.Tags, inst.Tags) || svc.Meta["version"] != "1" || svc.Weights.Passing != 3 {
		t.Errorf("registered %+v, want the instance's port, tags, meta and weights", svc)
	}
	checks, err := c.Agent().Checks()
	if err != nil {
		t.Fatal(err)
	}
	if ch := checks["service:"+inst.ID+":grpc"]; ch == nil || ch.Type != "grpc" || ch.ServiceID != inst.ID {
		t.Errorf("check %+v, want a grpc check for the instance", ch)
	}

	hs.SetServingStatus("", healthpb.HealthCheckResponse_NOT_SERVING)
	eventually(t, 5*time.Second, "instance critical", func() bool { return status(c, inst.ID) == api.HealthCritical })

	if err := r.Deregister(t.Context(), inst); err != nil {
		t.Fatal(err)
	}
	if got := status(c, inst.ID); got != "absent" {
		t.Errorf("after Deregister the instance is %s, want absent", got)
	}
	if err := r.Deregister(t.Context(), inst); err != nil {
		t.Errorf("second Deregister: %v, want nil", err)
	}
}

func TestWatchSeesChangesWithinOneSecond(t *testing.T) {
	agent := consultest.Start(t)
	c := consultest.Client(t, agent)
	r := consul.New(c)
	defer r.Close()
	_, a := healthServer(t)
	_, b := healthServer(t)
	if err := r.Register(t.Context(), a); err != nil {
		t.Fatal(err)
	}
	w, err := r.Watch(t.Context(), "svc")
	if err != nil {
		t.Fatal(err)
	}
	sets := make(chan []registry.Instance)
	done := make(chan struct{})
	go func() {
		defer close(done)
		for {
			set, err := w.Next(context.Background())
			if err != nil {
				return
			}
			sets <- set
		}
	}()
	defer func() { w.Stop(); <-done }()

	waitFor := func(what string, want ...string) time.Duration {
		t.Helper()
		start := time.Now()
		timeout := time.After(time.Second)
		for {
			select {
			case set := <-sets:
				var ids []string
				for _, i := range set {
					ids = append(ids, i.ID)
				}
				if slices.Equal(ids, want) {
					return time.Since(start)
				}
			case <-timeout:
				t.Fatalf("%s: watcher did not show %v within 1s", what, want)
			}
		}
	}
	waitFor("initial", a.ID)
	if err := r.Register(t.Context(), b); err != nil {
		t.Fatal(err)
	}
	want := []string{a.ID, b.ID}
	slices.Sort(want)
	t.Logf("added instance seen after %v", waitFor("add", want...))
	if err := r.Deregister(t.Context(), a); err != nil {
		t.Fatal(err)
	}
	t.Logf("removed instance gone after %v", waitFor("remove", b.ID))

	if err := r.Deregister(t.Context(), b); err != nil {
		t.Fatal(err)
	}
	waitFor("last instance removed")
}

func TestReRegisterAfterAgentRestart(t *testing.T) {
	agent := consultest.Start(t)
	c := consultest.Client(t, agent)
	// A check interval far beyond the deadline below: passing must come from
	// restoring the registration as it was made, not from a new check.
	r := consul.New(c, consul.WithBackoff(50*time.Millisecond, 500*time.Millisecond), consul.WithCheckInterval(time.Hour, time.Second))
	defer r.Close()
	_, inst := healthServer(t)
	if err := r.Register(t.Context(), inst); err != nil {
		t.Fatal(err)
	}
	if err := agent.Restart(t.Context()); err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	eventually(t, 5*time.Second, "registration restored", func() bool { return status(c, inst.ID) == api.HealthPassing })
	t.Logf("registered again %v after the agent was back", time.Since(start))
	if err := r.Deregister(t.Context(), inst); err != nil {
		t.Fatal(err)
	}
	// The keeper is gone: the registration stays gone.
	if err := agent.Restart(t.Context()); err != nil {
		t.Fatal(err)
	}
	if got := status(c, inst.ID); got != "absent" {
		t.Errorf("after Deregister and a restart the instance is %s", got)
	}
}

func TestUnreachableConsul(t *testing.T) {
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := lis.Addr().String()
	lis.Close() // nothing listens there now
	r, err := consul.NewFromAddress(addr)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	ctx, cancel := context.WithTimeout(t.Context(), 5*time.Second)
	defer cancel()
	inst := registry.Instance{ID: "x", Name: "svc", Address: "127.0.0.1", Port: 1}
	if err := r.Register(ctx, inst); err == nil {
		t.Error("Register with Consul down succeeded")
	}
	w, err := r.Watch(ctx, "svc")
	if err != nil {
		t.Fatal(err)
	}
	defer w.Stop()
	if _, err := w.Next(ctx); err == nil || ctx.Err() != nil {
		t.Errorf("Next with Consul down = %v, want a prompt error", err)
	}
	if err := r.Register(ctx, registry.Instance{Name: "svc"}); err == nil {
		t.Error("Register of an invalid instance succeeded")
	}
}

// When a running agent drops the registration (as DeregisterCriticalServiceAfter
// does), the keeper restores it critical, so a failing instance gets no
// traffic until its check passes.
func TestReRegisterAfterRemovalStartsCritical(t *testing.T) {
	agent := consultest.Start(t)
	c := consultest.Client(t, agent)
	r := consul.New(c, consul.WithCheckInterval(time.Hour, time.Second))
	defer r.Close()
	_, inst := healthServer(t)
	if err := r.Register(t.Context(), inst); err != nil {
		t.Fatal(err)
	}
	if err := c.Agent().ServiceDeregister(inst.ID); err != nil { // behind the registry's back
		t.Fatal(err)
	}
	eventually(t, 5*time.Second, "registration restored", func() bool { return status(c, inst.ID) != "absent" })
	if got := status(c, inst.ID); got != api.HealthCritical {
		t.Errorf("restored registration is %s, want critical until its check passes", got)
	}
}
