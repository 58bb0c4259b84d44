package balancer

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net"
	"sync/atomic"
	"testing"
	"time"

	"google.golang.org/grpc"
	gbalancer "google.golang.org/grpc/balancer"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/experimental/balancer/weight"
	"google.golang.org/grpc/resolver"
	"google.golang.org/grpc/resolver/manual"
	"google.golang.org/grpc/status"

	greeterv1 "github.com/grpckit/grpckit/proto/greeter/v1"
	"github.com/grpckit/grpckit/services/greeter"
)

// tickClock is a manual clock whose ticker the test fires.
type tickClock struct {
	fakeClock
	ticks chan time.Time
}

func (c *tickClock) NewTicker(time.Duration) ticker { return manualTicker{c.ticks} }

var testBuilders atomic.Int64

// registerTestBuilder registers kit_weighted under a fresh name with clk.
func registerTestBuilder(clk clock) *builder {
	b := &builder{name: fmt.Sprintf("kit_weighted_test_%d", testBuilders.Add(1)), clock: clk,
		logger: slog.New(slog.NewTextHandler(io.Discard, nil))}
	gbalancer.Register(b)
	return b
}

// faultyGreeter is a loopback greeter that fails calls while failing is set.
type faultyGreeter struct {
	addr    string
	failing atomic.Bool
}

func startGreeters(t *testing.T, n int) []*faultyGreeter {
	t.Helper()
	var gs []*faultyGreeter
	for range n {
		lis, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		g := &faultyGreeter{addr: lis.Addr().String()}
		srv := grpc.NewServer(grpc.UnaryInterceptor(func(ctx context.Context, req any, _ *grpc.UnaryServerInfo, h grpc.UnaryHandler) (any, error) {
			if g.failing.Load() {
				return nil, status.Error(codes.Unavailable, "injected")
			}
			return h(ctx, req)
		}))
		greeterv1.RegisterGreeterServiceServer(srv, greeter.NewServer(nil, greeter.WithInstance(g.addr)))
		go srv.Serve(lis)
		t.Cleanup(srv.Stop)
		gs = append(gs, g)
	}
	return gs
}

func TestEndToEndWeightsEjectionReadmission(t *testing.T) {
	clk := &tickClock{fakeClock: fakeClock{now: time.Unix(1e9, 0)}, ticks: make(chan time.Time)}
	b := registerTestBuilder(clk)
	gs := startGreeters(t, 3)
	r := manual.NewBuilderWithScheme("kwtest")
	var eps []resolver.Endpoint
	for i, g := range gs {
		eps = append(eps, weight.Set(resolver.Endpoint{Addresses: []resolver.Address{{Addr: g.addr}}}, weight.EndpointInfo{Weight: uint32(i + 1)}))
	}
	r.InitialState(resolver.State{Endpoints: eps})
	cc, err := grpc.NewClient("kwtest:///greeters", grpc.WithResolvers(r), grpc.WithTransportCredentials(insecure.NewCredentials()),
		grpc.WithDefaultServiceConfig(fmt.Sprintf(`{"loadBalancingConfig":[{%q:{"ejectionJitter":0,"slowStart":"0s"}}]}`, b.name)))
	if err != nil {
		t.Fatal(err)
	}
	defer cc.Close()
	client := greeterv1.NewGreeterServiceClient(cc)
	ctx := t.Context()
	call := func() (string, error) {
		resp, err := client.SayHello(ctx, &greeterv1.SayHelloRequest{Name: "x"}, grpc.WaitForReady(true))
		return resp.GetInstance(), err
	}
	// Wait until all three are READY: the schedule then covers them all.
	deadline := time.Now().Add(10 * time.Second)
	for {
		ready := 0
		for _, st := range b.monitor.stats() { // empty until the channel leaves IDLE
			for _, ep := range st.Endpoints {
				if ep.Ready {
					ready++
				}
			}
		}
		if ready == 3 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("endpoints not READY: %+v", b.monitor.stats())
		}
		call()
	}

	got := map[string]int{}
	for range 600 {
		inst, err := call()
		if err != nil {
			t.Fatal(err)
		}
		got[inst]++
	}
	if got[gs[0].addr] != 100 || got[gs[1].addr] != 200 || got[gs[2].addr] != 300 {
		t.Errorf("calls by weight 1:2:3 over 600 = %d:%d:%d, want 100:200:300", got[gs[0].addr], got[gs[1].addr], got[gs[2].addr])
	}

	// gs[0] fails every call: ejected on its 5th failure, no tick needed.
	gs[0].failing.Store(true)
	failures := 0
	for range 300 {
		if _, err := call(); err != nil {
			failures++
		}
	}
	if failures != 5 {
		t.Errorf("%d client-visible failures, want 5 (ConsecutiveFailures)", failures)
	}

	// Healthy again; after the ejection time and a tick it is re-admitted.
	gs[0].failing.Store(false)
	clk.Advance(6 * time.Second)
	clk.ticks <- clk.Now()
	deadline = time.Now().Add(10 * time.Second)
	for b.monitor.stats()[0].Events.Readmissions == 0 {
		if time.Now().After(deadline) {
			t.Fatalf("not re-admitted: %+v", b.monitor.stats())
		}
		time.Sleep(time.Millisecond)
	}
	back := 0
	for range 60 {
		if inst, err := call(); err == nil && inst == gs[0].addr {
			back++
		}
	}
	if back == 0 {
		t.Error("the re-admitted endpoint gets no calls")
	}
}
