package kit_test

import (
	"context"
	"testing"
	"time"

	testpbv1 "github.com/grpckit/grpckit/kit/internal/testpb/v1"

	"github.com/grpckit/grpckit/kit"
	"github.com/grpckit/grpckit/kit/duration"
	"github.com/grpckit/grpckit/kit/internal/kittest"
	"github.com/grpckit/grpckit/kit/middleware/overload"
	"github.com/grpckit/grpckit/kit/middleware/retry"
)

// fixedLimitServer serves kittest's service behind a fixed concurrency
// limit of 1 whose refusals ask to retry after retryAfter.
func fixedLimitServer(t *testing.T, retryAfter time.Duration) (*kittest.Service, *overload.Server, string) {
	t.Helper()
	cfg := overload.DefaultServerConfig()
	cfg.Mode, cfg.FixedLimit, cfg.RetryAfter = overload.ModeFixed, 1, duration.Duration(retryAfter)
	ol, err := overload.NewServer(cfg)
	if err != nil {
		t.Fatal(err)
	}
	srv := newServer(t, kit.WithOverload(ol), kit.WithDrain(0))
	svc := &kittest.Service{}
	svc.Register(srv)
	return svc, ol, serve(t, srv)
}

// TestRefusedCallRetriedAfterPushback: with the default chains, a call a
// busy server refuses is retried no sooner than the RetryInfo asks, and
// succeeds once the server has room.
func TestRefusedCallRetriedAfterPushback(t *testing.T) {
	const pushback = 150 * time.Millisecond
	svc, ol, addr := fixedLimitServer(t, pushback)
	c := testpbv1.NewTestServiceClient(newClient(t, "passthrough:///"+addr))

	svc.Block(true)
	ctx, cancel := context.WithCancel(context.Background())
	held := make(chan error, 1)
	go func() {
		_, err := c.Echo(ctx, &testpbv1.EchoRequest{Message: "held"})
		held <- err
	}()
	recv(t, svc.Blocked(), "the first call to hold the only place")
	svc.Block(false)

	done := make(chan error, 1)
	start := time.Now()
	go func() {
		_, err := c.Echo(context.Background(), &testpbv1.EchoRequest{Message: "second"})
		done <- err
	}()
	poll(t, 5*time.Second, "the server to refuse the second call", func() bool { return ol.Stats().Refused == 1 })
	cancel() // the place is free: the retry finds it
	<-held
	if err := recv(t, done, "the second call"); err != nil {
		t.Fatalf("second call: %v, want it retried after the pushback and served", err)
	}
	if took := time.Since(start); took < pushback {
		t.Errorf("second call took %v, want its retry no sooner than the %v pushback", took, pushback)
	}
	if got := ol.Stats().Refused; got != 1 {
		t.Errorf("refusals = %d, want 1 (one retry, after the pushback)", got)
	}
}

// TestRefusedCallsRetriedWithinBudget: a server that refuses every call
// gets at most about 10% more attempts than the calls made (the retry
// budget), however many calls are refused.
func TestRefusedCallsRetriedWithinBudget(t *testing.T) {
	svc, ol, addr := fixedLimitServer(t, time.Millisecond)
	// Short backoffs and a small allowance per second, so that the budget's
	// share of the calls is what bounds the retries; the throttle would
	// refuse most calls locally: leave it out to see the retries alone.
	rcfg := retry.DefaultConfig()
	rcfg.InitialBackoff, rcfg.MaxBackoff, rcfg.BudgetMinRetriesPerSecond = duration.Duration(time.Millisecond), duration.Duration(2*time.Millisecond), 1
	r, err := retry.New(rcfg)
	if err != nil {
		t.Fatal(err)
	}
	c := testpbv1.NewTestServiceClient(newClient(t, "passthrough:///"+addr, kit.WithRetry(r), kit.WithoutLayers(kit.LayerOverload)))
	svc.Block(true)
	// A deadline of its own, beyond the client's default 5s: the place
	// stays held until the test ends.
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	held := make(chan struct{})
	t.Cleanup(func() { cancel(); <-held })
	go func() {
		defer close(held)
		c.Echo(ctx, &testpbv1.EchoRequest{Message: "held"})
	}()
	recv(t, svc.Blocked(), "the first call to hold the only place")
	svc.Block(false)

	const calls = 300
	start := time.Now()
	for range calls {
		c.Echo(context.Background(), &testpbv1.EchoRequest{Message: "refused"})
	}
	elapsed := time.Since(start).Seconds()
	attempts := ol.Stats().Refused
	// Budget: 10% of the calls, plus 1 retry per second (at most one
	// second of them saved up).
	bound := int64(calls*1.1+elapsed+1) + 2 // +2: rounding of the tokens earned
	t.Logf("%d calls in %.2fs: %d attempts refused (bound %d; %d without a budget)", calls, elapsed, attempts, bound, 3*calls)
	if attempts < calls {
		t.Fatalf("%d attempts refused, want at least the %d calls", attempts, calls)
	}
	if attempts > bound {
		t.Errorf("%d attempts for %d calls, want at most %d: refused calls must be retried within the budget", attempts, calls, bound)
	}
}
