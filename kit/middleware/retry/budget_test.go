package retry_test

import (
	"sync"
	"testing"
	"time"

	"google.golang.org/grpc"

	"github.com/grpckit/grpckit/kit/internal/kittest"
	testpbv1 "github.com/grpckit/grpckit/kit/internal/testpb/v1"
	"github.com/grpckit/grpckit/kit/middleware/retry"
)

// TestBudget sends calls to a target that fails them all: the retries stay
// within BudgetRatio of the calls plus the minimum allowance.
func TestBudget(t *testing.T) {
	mp, reader := kittest.NewMeterProvider(t)

	svc := &kittest.Service{}
	svc.Fail(errUnavailable)
	srv := kittest.StartServer(t, svc.Register)
	cfg := fastConfig()
	cfg.BudgetRatio, cfg.BudgetMinRetriesPerSecond = 0.1, 2
	r := newRetrier(t, cfg, retry.WithMeterProvider(mp))
	// Two connections to the same target share its budget.
	clients := []testpbv1.TestServiceClient{
		testpbv1.NewTestServiceClient(srv.Dial(t, "always-down", grpc.WithUnaryInterceptor(r.UnaryClientInterceptor()))),
		testpbv1.NewTestServiceClient(srv.Dial(t, "always-down", grpc.WithUnaryInterceptor(r.UnaryClientInterceptor()))),
	}
	const calls = 400
	start := time.Now()
	var wg sync.WaitGroup
	for w := range 4 {
		wg.Go(func() {
			for range calls / 4 {
				clients[w%2].Echo(t.Context(), &testpbv1.EchoRequest{Message: "a"})
			}
		})
	}
	wg.Wait()
	elapsed := time.Since(start)

	retries := svc.Calls() - calls
	// Earned tokens: BudgetRatio per call (they only fade). Allowance: one
	// second saved up at the start plus the refill while the test ran.
	limit := calls*cfg.BudgetRatio + cfg.BudgetMinRetriesPerSecond*(1+elapsed.Seconds())
	t.Logf("%d calls in %v made %d retries (%.3f per call); budget limit %.1f; without a budget: %d",
		calls, elapsed.Round(time.Millisecond), retries, float64(retries)/calls, limit, calls*(cfg.MaxAttempts-1))
	if float64(retries) > limit {
		t.Errorf("%d retries, more than the budget's %.1f", retries, limit)
	}
	if float64(retries) < calls*cfg.BudgetRatio/2 {
		t.Errorf("%d retries, far fewer than the budget's %.1f", retries, limit)
	}

	got := kittest.MetricSums(t, reader)
	if got["grpckit.retry.attempts"] != int64(svc.Calls()) {
		t.Errorf("grpckit.retry.attempts = %d, want the %d calls the server received", got["grpckit.retry.attempts"], svc.Calls())
	}
	if got["grpckit.retry.retries"] != int64(retries) {
		t.Errorf("grpckit.retry.retries = %d, want %d", got["grpckit.retry.retries"], retries)
	}
	// A call that did not make all its attempts was refused one retry; at
	// most retries/2 calls made all of theirs.
	refusals := got["grpckit.retry.budget_refusals"]
	if lo := int64(calls - retries/2); refusals < lo || refusals > calls {
		t.Errorf("grpckit.retry.budget_refusals = %d, want between %d and %d", refusals, lo, calls)
	}
}
