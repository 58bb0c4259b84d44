package retry_test

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/grpckit/grpckit/kit/middleware/retry"
	greeterv1 "github.com/grpckit/grpckit/proto/greeter/v1"
	userv1 "github.com/grpckit/grpckit/proto/user/v1"
	"github.com/grpckit/grpckit/services/greeter"
	"github.com/grpckit/grpckit/services/user"
)

// relayUsers is a user service whose GetUser asks the next one, passing its
// server context on as kit services must.
type relayUsers struct {
	userv1.UnimplementedUserServiceServer
	next userv1.UserServiceClient
}

func (s relayUsers) GetUser(ctx context.Context, req *userv1.GetUserRequest) (*userv1.GetUserResponse, error) {
	return s.next.GetUser(ctx, req)
}

// chain is a call chain client -> A -> B -> C of real servers: A a greeter
// that looks users up in B, B a user service relaying GetUser to C, C a user
// service that is always unavailable. Every client retries with its own
// Retrier; A and B install the retry server interceptors.
type chain struct {
	a, b, c *faults // count the calls each server receives
	client  greeterv1.GreeterServiceClient
}

func newChain(t *testing.T, cfg retry.Config) *chain {
	t.Helper()
	ch := &chain{a: &faults{}, b: &faults{}, c: &faults{fail: always(errUnavailable)}}
	serverOpts := func(f *faults) []grpc.ServerOption {
		r := newRetrier(t, cfg)
		return []grpc.ServerOption{
			grpc.ChainUnaryInterceptor(r.UnaryServerInterceptor(), f.unary),
			grpc.ChainStreamInterceptor(r.StreamServerInterceptor(), f.stream),
		}
	}
	retrying := func() grpc.DialOption { return grpc.WithUnaryInterceptor(newRetrier(t, cfg).UnaryClientInterceptor()) }

	cLis := serve(t, func(s *grpc.Server) { userv1.RegisterUserServiceServer(s, user.NewServer(nil)) }, serverOpts(ch.c)...)
	toC := userv1.NewUserServiceClient(dial(t, cLis, "c", retrying()))
	bLis := serve(t, func(s *grpc.Server) { userv1.RegisterUserServiceServer(s, relayUsers{next: toC}) }, serverOpts(ch.b)...)
	toB := userv1.NewUserServiceClient(dial(t, bLis, "b", retrying()))
	aLis := serve(t, func(s *grpc.Server) { greeterv1.RegisterGreeterServiceServer(s, greeter.NewServer(toB)) }, serverOpts(ch.a)...)
	ch.client = greeterv1.NewGreeterServiceClient(dial(t, aLis, "a", retrying()))
	return ch
}

// run makes n calls through the chain from workers goroutines.
func (ch *chain) run(t *testing.T, n, workers int) {
	t.Helper()
	id := "u1"
	var wg sync.WaitGroup
	for range workers {
		wg.Go(func() {
			for range n / workers {
				_, err := ch.client.SayHello(t.Context(), &greeterv1.SayHelloRequest{UserId: &id})
				if status.Code(err) != codes.Unavailable {
					t.Errorf("SayHello error = %v, want UNAVAILABLE", err)
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
	got := map[string]int{"A": ch.a.calls(), "B": ch.b.calls(), "C": ch.c.calls()}
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

	a, b, c := ch.a.calls(), ch.b.calls(), ch.c.calls()
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
