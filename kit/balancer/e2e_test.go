package balancer

import (
	"fmt"
	"io"
	"log/slog"
	"net"
	"sync"
	"testing"
	"time"

	"github.com/grpckit/grpckit/kit/internal/fakeclock"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/experimental/balancer/weight"
	"google.golang.org/grpc/resolver"
	"google.golang.org/grpc/resolver/manual"
	"google.golang.org/grpc/status"

	"github.com/grpckit/grpckit/kit/balancer/internal"
	"github.com/grpckit/grpckit/kit/internal/kittest"
	testpbv1 "github.com/grpckit/grpckit/kit/internal/testpb/v1"
)

// tickClock is a manual clock whose ticker the test fires.
type tickClock struct {
	fakeClock
	ticks chan time.Time
}

func (c *tickClock) NewTicker(time.Duration) ticker { return manualTicker{c.ticks} }

// useClock makes clk the clock of the balancers built during the test.
func useClock(t *testing.T, clk clock) {
	prev := internal.TestClock
	t.Cleanup(func() { internal.TestClock = prev })
	internal.TestClock = clk
}

// backend is a loopback server of the test service named by its address.
type backend struct {
	addr string
	svc  *kittest.Service
}

func startBackends(t *testing.T, n int) []backend {
	t.Helper()
	var bs []backend
	for range n {
		lis, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		b := backend{addr: lis.Addr().String(), svc: &kittest.Service{Name: lis.Addr().String()}}
		srv := grpc.NewServer()
		b.svc.Register(srv)
		go srv.Serve(lis)
		t.Cleanup(srv.Stop)
		bs = append(bs, b)
	}
	return bs
}

func TestEndToEndWeightsEjectionReadmission(t *testing.T) {
	clk := &tickClock{fakeClock: fakeClock{fakeclock.New(time.Unix(1e9, 0))}, ticks: make(chan time.Time)}
	useClock(t, clk)
	var mon Monitor
	bs := startBackends(t, 3)
	r := manual.NewBuilderWithScheme("kwtest")
	var eps []resolver.Endpoint
	for i, g := range bs {
		eps = append(eps, weight.Set(resolver.Endpoint{Addresses: []resolver.Address{{Addr: g.addr}}}, weight.EndpointInfo{Weight: uint32(i + 1)}))
	}
	r.InitialState(SetLogger(SetMonitor(resolver.State{Endpoints: eps}, &mon), slog.New(slog.NewTextHandler(io.Discard, nil))))
	cc, err := grpc.NewClient("kwtest:///backends", grpc.WithResolvers(r), grpc.WithTransportCredentials(insecure.NewCredentials()),
		grpc.WithDefaultServiceConfig(fmt.Sprintf(`{"loadBalancingConfig":[{%q:{"ejection_jitter":0,"slow_start":"0s"}}]}`, Name)))
	if err != nil {
		t.Fatal(err)
	}
	defer cc.Close()
	client := testpbv1.NewTestServiceClient(cc)
	ctx := t.Context()
	call := func() (string, error) {
		resp, err := client.Echo(ctx, &testpbv1.EchoRequest{Message: "x"}, grpc.WaitForReady(true))
		return resp.GetServer(), err
	}
	// Wait until all three are READY: the schedule then covers them all.
	deadline := time.Now().Add(10 * time.Second)
	for {
		ready := 0
		for _, st := range mon.Stats() { // empty until the channel leaves IDLE
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
			t.Fatalf("endpoints not READY: %+v", mon.Stats())
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
	if got[bs[0].addr] != 100 || got[bs[1].addr] != 200 || got[bs[2].addr] != 300 {
		t.Errorf("calls by weight 1:2:3 over 600 = %d:%d:%d, want 100:200:300", got[bs[0].addr], got[bs[1].addr], got[bs[2].addr])
	}

	// bs[0] fails every call: ejected on its 5th failure, no tick needed.
	bs[0].svc.Fail(status.Error(codes.Unavailable, "injected"))
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
	bs[0].svc.Fail(nil)
	clk.Advance(6 * time.Second)
	clk.ticks <- clk.Now()
	kittest.WaitFor(t, "the re-admission", func() bool { return mon.Stats()[0].Events.Readmissions > 0 })
	back := 0
	for range 60 {
		if inst, err := call(); err == nil && inst == bs[0].addr {
			back++
		}
	}
	if back == 0 {
		t.Error("the re-admitted endpoint gets no calls")
	}
}

// One replica of five answers correctly but 50 ms late: it soon gets
// almost no call; fast again, it wins its share back within seconds.
func TestSlowReplicaEndToEnd(t *testing.T) {
	bs := startBackends(t, 5)
	r := manual.NewBuilderWithScheme("kwslow")
	var eps []resolver.Endpoint
	for _, b := range bs {
		eps = append(eps, resolver.Endpoint{Addresses: []resolver.Address{{Addr: b.addr}}})
	}
	r.InitialState(SetLogger(resolver.State{Endpoints: eps}, slog.New(slog.NewTextHandler(io.Discard, nil))))
	cc, err := grpc.NewClient("kwslow:///backends", grpc.WithResolvers(r), grpc.WithTransportCredentials(insecure.NewCredentials()),
		grpc.WithDefaultServiceConfig(fmt.Sprintf(`{"loadBalancingConfig":[{%q:{}}]}`, Name)))
	if err != nil {
		t.Fatal(err)
	}
	defer cc.Close()
	client := testpbv1.NewTestServiceClient(cc)
	slow := bs[0]
	slow.svc.Slow(50*time.Millisecond, 1)

	// 8 callers in a closed loop send the replica that answered each call.
	served := make(chan string, 64)
	stop := make(chan struct{})
	var wg sync.WaitGroup
	for range 8 {
		wg.Go(func() {
			for {
				resp, err := client.Echo(t.Context(), &testpbv1.EchoRequest{Message: "x"}, grpc.WaitForReady(true))
				if err != nil {
					t.Error(err)
					return
				}
				select {
				case served <- resp.GetServer():
				case <-stop:
					return
				}
			}
		})
	}
	defer func() {
		close(stop)
		wg.Wait()
	}()
	// share returns the slow replica's share of the next n calls.
	share := func(n int) float64 {
		on := 0
		for range n {
			if <-served == slow.addr {
				on++
			}
		}
		return float64(on) / float64(n)
	}
	share(2000) // learn
	if s := share(2000); s > 0.05 {
		t.Errorf("the slow replica got %.1f%% of 2000 calls, want at most 5%% (round_robin: 20%%)", 100*s)
	}

	slow.svc.Slow(0, 0)
	start := time.Now()
	for {
		s := share(500)
		if s >= 0.10 {
			t.Logf("back to %.1f%% of 500 calls within %v", 100*s, time.Since(start).Round(100*time.Millisecond))
			break
		}
		if time.Since(start) > 5*time.Second {
			t.Fatalf("5s after it became fast, the replica gets %.1f%% of calls, want at least 10%% (half of fair)", 100*s)
		}
	}
}
