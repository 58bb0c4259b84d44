package retry_test

import (
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/grpckit/grpckit/kit/internal/kittest"
	testpbv1 "github.com/grpckit/grpckit/kit/internal/testpb/v1"
	"github.com/grpckit/grpckit/kit/middleware/retry"
)

// chain is a call chain client -> A -> B -> C of real servers: A and B
// relay each call to the next one, passing their server context on as kit
// services must; C is always unavailable. Every client retries with its
// own Retrier; A and B install the retry server interceptors.
type chain struct {
	a, b, c *kittest.Service // count the calls each server receives
	client  testpbv1.TestServiceClient
}

func newChain(t *testing.T, cfg retry.Config) *chain {
	t.Helper()
	serverOpts := func() []grpc.ServerOption {
		r := newRetrier(t, cfg)
		return []grpc.ServerOption{
			grpc.ChainUnaryInterceptor(r.UnaryServerInterceptor()),
			grpc.ChainStreamInterceptor(r.StreamServerInterceptor()),
		}
	}
	retrying := func() grpc.DialOption { return grpc.WithUnaryInterceptor(newRetrier(t, cfg).UnaryClientInterceptor()) }
	// serve starts svc and returns a retrying client to it.
	serve := func(name string, svc *kittest.Service) testpbv1.TestServiceClient {
		return testpbv1.NewTestServiceClient(kittest.StartServer(t, svc.Register, serverOpts()...).Dial(t, name, retrying()))
	}

	ch := &chain{c: &kittest.Service{Name: "C"}}
	ch.c.Fail(errUnavailable)
	ch.b = &kittest.Service{Name: "B", Next: serve("c", ch.c)}
	ch.a = &kittest.Service{Name: "A", Next: serve("b", ch.b)}
	ch.client = serve("a", ch.a)
	return ch
}

// run makes n calls through the chain from workers goroutines.
func (ch *chain) run(t *testing.T, n, workers int) {
	t.Helper()
	var wg sync.WaitGroup
	for range workers {
		wg.Go(func() {
			for range n / workers {
				_, err := ch.client.Echo(t.Context(), &testpbv1.EchoRequest{Message: "m"})
				if status.Code(err) != codes.Unavailable {
					t.Errorf("Echo error = %v, want UNAVAILABLE", err)
				}
			}
		})
	}
	wg.Wait()
}

// TestChainWithoutBudget shows the server marking alone, with budgets too
// large to matter. Per call to the chain: the client tries A 3 times. A's
// first attempt tries B 3 times; B's first attempt tries C 3 times, B's
// retries try C once each (5). A's retries call B once each and B calls C
// once (2). C gets 7 calls where retries at every hop would make 27.
func TestChainWithoutBudget(t *testing.T) {
	cfg := fastConfig()
	cfg.BudgetRatio, cfg.BudgetMinRetriesPerSecond = 100, 1e6
	ch := newChain(t, cfg)
	const n = 20
	ch.run(t, n, 2)
	want := map[string]int{"A": 3 * n, "B": 5 * n, "C": 7 * n}
	got := map[string]int{"A": ch.a.Calls(), "B": ch.b.Calls(), "C": ch.c.Calls()}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("calls received per server (-want +got):\n%s", diff)
	}
}

// TestChainBudget checks that with the default budget ratio an outage at
// the end of a chain of three services multiplies the calls by about
// 1 + BudgetRatio per hop, not by MaxAttempts per hop.
func TestChainBudget(t *testing.T) {
	cfg := fastConfig()
	// A small minimum allowance, so that the ratio shows in a short test.
	cfg.BudgetMinRetriesPerSecond = 1
	ch := newChain(t, cfg)
	const n = 400
	start := time.Now()
	ch.run(t, n, 4)
	elapsed := time.Since(start)

	a, b, c := ch.a.Calls(), ch.b.Calls(), ch.c.Calls()
	ratio := float64(c) / float64(a)
	t.Logf("%d calls to the chain in %v: A received %d, B %d, C %d; C/A = %.3f (budget ratio %.2f; retries at every hop without protection would give C/A = %d)",
		n, elapsed.Round(time.Millisecond), a, b, c, ratio, cfg.BudgetRatio, cfg.MaxAttempts*cfg.MaxAttempts)
	// C receives one call per call to B plus B's retries; B one per call to
	// A plus A's retries. Each Retrier's retries are at most BudgetRatio of
	// its calls plus its allowance.
	allowance := cfg.BudgetMinRetriesPerSecond * (1 + elapsed.Seconds())
	maxB := float64(a)*(1+cfg.BudgetRatio) + allowance
	maxC := maxB*(1+cfg.BudgetRatio) + allowance
	if float64(b) > maxB || float64(c) > maxC {
		t.Errorf("B received %d calls, C %d; want at most %.0f and %.0f", b, c, maxB, maxC)
	}
	if ratio > 1+3*cfg.BudgetRatio {
		t.Errorf("C/A = %.3f, want at most %.2f", ratio, 1+3*cfg.BudgetRatio)
	}
	if float64(a) > n*(1+cfg.BudgetRatio)+allowance {
		t.Errorf("A received %d calls for %d made", a, n)
	}
}
