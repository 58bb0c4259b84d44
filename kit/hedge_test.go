package kit_test

import (
	"context"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/resolver"
	"google.golang.org/grpc/resolver/manual"

	"github.com/grpckit/grpckit/kit"
	"github.com/grpckit/grpckit/kit/duration"
	"github.com/grpckit/grpckit/kit/internal/kittest"
	testpbv1 "github.com/grpckit/grpckit/kit/internal/testpb/v1"
	"github.com/grpckit/grpckit/kit/middleware/retry"
)

// TestHedgingOverLoopback: a kit client whose retry layer hedges the test
// service, over two loopback kit servers of which one answers 300 ms late.
// Echo (NO_SIDE_EFFECTS) calls never wait for the slow one: the hedge goes
// to the other; Create (no idempotency_level) is never hedged.
func TestHedgingOverLoopback(t *testing.T) {
	var svcs [2]*kittest.Service
	var addrs []resolver.Address
	for i := range svcs {
		svcs[i] = &kittest.Service{Name: []string{"fast", "slow"}[i], Store: &kittest.Store{}}
		srv := newServer(t, kit.WithDrain(0))
		svcs[i].Register(srv)
		addrs = append(addrs, resolver.Address{Addr: serve(t, srv)})
	}
	slow := svcs[1]
	slow.Slow(300*time.Millisecond, 1)

	cfg := retry.DefaultConfig()
	cfg.Hedging.Methods = []string{"/testpb.v1.TestService/*"}
	cfg.Hedging.Delay = duration.Duration(20 * time.Millisecond)
	cfg.BudgetMinRetriesPerSecond = 1000 // this test is not about the budget
	r, err := retry.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	res := manual.NewBuilderWithScheme("hedgetest")
	var eps []resolver.Endpoint
	for _, a := range addrs {
		eps = append(eps, resolver.Endpoint{Addresses: []resolver.Address{a}})
	}
	res.InitialState(resolver.State{Endpoints: eps})
	c := testpbv1.NewTestServiceClient(newClient(t, "hedgetest:///both", kit.WithRetry(r), kit.WithDialOptions(grpc.WithResolvers(res))))

	// Until both connections are up, a call and its hedge may both have
	// only the slow server (a loaded machine connects slowly).
	kittest.WaitFor(t, "the fast server to answer", func() bool {
		resp, err := c.Echo(context.Background(), &testpbv1.EchoRequest{Message: "warm-up"}, grpc.WaitForReady(true))
		return err == nil && resp.GetServer() == "fast"
	})
	before := svcs[0].Calls() + slow.Calls()
	const calls = 20
	for i := range calls {
		start := time.Now()
		resp, err := c.Echo(context.Background(), &testpbv1.EchoRequest{Message: "x"}, grpc.WaitForReady(true))
		if err != nil {
			t.Fatalf("call %d: %v", i, err)
		}
		if took := time.Since(start); took >= 300*time.Millisecond || resp.GetServer() != "fast" {
			t.Errorf("call %d answered by %s after %v, want the fast server before the slow one's 300ms", i, resp.GetServer(), took)
		}
	}
	if got := svcs[0].Calls() + slow.Calls() - before; got > 2*calls {
		t.Errorf("%d attempts for %d calls, want at most one hedge each", got, calls)
	}

	// Create may not run twice: one attempt, however slow.
	slowBefore, fastBefore := slow.Calls(), svcs[0].Calls()
	svcs[0].Slow(300*time.Millisecond, 1)
	start := time.Now()
	if _, err := c.Create(context.Background(), &testpbv1.CreateRequest{Key: "k", Value: "v"}); err != nil {
		t.Fatal(err)
	}
	if got := slow.Calls() - slowBefore + svcs[0].Calls() - fastBefore; got != 1 {
		t.Errorf("Create reached the servers %d times, want 1 (never hedged)", got)
	}
	if took := time.Since(start); took < 300*time.Millisecond {
		t.Errorf("Create answered in %v: it did not wait for its only attempt", took)
	}
}
