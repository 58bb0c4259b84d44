package retry_test

import (
	"sync"
	"testing"
	"time"

	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	"go.opentelemetry.io/otel/sdk/metric/metricdata"
	"google.golang.org/grpc"

	"github.com/grpckit/grpckit/kit/middleware/retry"
	greeterv1 "github.com/grpckit/grpckit/proto/greeter/v1"
	"github.com/grpckit/grpckit/services/greeter"
)

// sums returns the value of every int64 sum reader has collected, by name.
func sums(t *testing.T, reader sdkmetric.Reader) map[string]int64 {
	t.Helper()
	var rm metricdata.ResourceMetrics
	if err := reader.Collect(t.Context(), &rm); err != nil {
		t.Fatalf("Collect: %v", err)
	}
	got := make(map[string]int64)
	for _, sm := range rm.ScopeMetrics {
		for _, m := range sm.Metrics {
			if s, ok := m.Data.(metricdata.Sum[int64]); ok {
				for _, dp := range s.DataPoints {
					got[m.Name] += dp.Value
				}
			}
		}
	}
	return got
}

// TestBudget sends calls to a target that fails them all: the retries stay
// within BudgetRatio of the calls plus the minimum allowance.
func TestBudget(t *testing.T) {
	reader := sdkmetric.NewManualReader()
	mp := sdkmetric.NewMeterProvider(sdkmetric.WithReader(reader))
	t.Cleanup(func() { mp.Shutdown(t.Context()) })

	f := &faults{fail: always(errUnavailable)}
	lis := serve(t, func(s *grpc.Server) { greeterv1.RegisterGreeterServiceServer(s, greeter.NewServer(nil)) }, f.serverOptions()...)
	cfg := fastConfig()
	cfg.BudgetRatio, cfg.BudgetMinRetriesPerSecond = 0.1, 2
	r := newRetrier(t, cfg, retry.WithMeterProvider(mp))
	// Two connections to the same target share its budget.
	clients := []greeterv1.GreeterServiceClient{
		greeterv1.NewGreeterServiceClient(dial(t, lis, "always-down", grpc.WithUnaryInterceptor(r.UnaryClientInterceptor()))),
		greeterv1.NewGreeterServiceClient(dial(t, lis, "always-down", grpc.WithUnaryInterceptor(r.UnaryClientInterceptor()))),
	}
	const calls = 400
	start := time.Now()
	var wg sync.WaitGroup
	for w := range 4 {
		wg.Go(func() {
			for range calls / 4 {
				clients[w%2].SayHello(t.Context(), &greeterv1.SayHelloRequest{Name: "a"})
			}
		})
	}
	wg.Wait()
	elapsed := time.Since(start)

	retries := f.calls() - calls
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

	got := sums(t, reader)
	if got["grpckit.retry.attempts"] != int64(f.calls()) {
		t.Errorf("grpckit.retry.attempts = %d, want the %d calls the server received", got["grpckit.retry.attempts"], f.calls())
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
