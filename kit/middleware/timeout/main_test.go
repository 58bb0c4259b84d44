package timeout_test

import (
	"context"
	"math"
	"testing"
	"time"

	"go.uber.org/goleak"
	"google.golang.org/grpc"

	"github.com/grpckit/grpckit/kit/internal/kittest"
	testpbv1 "github.com/grpckit/grpckit/kit/internal/testpb/v1"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

const (
	echo        = testpbv1.TestService_Echo_FullMethodName
	echoStream  = testpbv1.TestService_EchoStream_FullMethodName
	testService = "/testpb.v1.TestService/*"
)

// startServer serves the test service over bufconn with serverOpts and
// returns a client dialled with dialOpts; both stop on cleanup.
func startServer(t *testing.T, serverOpts []grpc.ServerOption, dialOpts ...grpc.DialOption) testpbv1.TestServiceClient {
	t.Helper()
	return testpbv1.NewTestServiceClient(kittest.Serve(t, (&kittest.Service{}).Register, serverOpts, dialOpts...))
}

// deadline is what a handler saw: whether its context had a deadline and the
// time left, rounded up to whole seconds so that tests can compare it.
type deadline struct {
	Set     bool
	Seconds int
}

func deadlineOf(ctx context.Context) deadline {
	dl, ok := ctx.Deadline()
	if !ok {
		return deadline{}
	}
	return deadline{Set: true, Seconds: int(math.Ceil(time.Until(dl).Seconds()))}
}

// recorder captures the deadline of each call it sees, innermost in the
// server chain.
type recorder chan deadline

func (r recorder) unary(ctx context.Context, req any, _ *grpc.UnaryServerInfo, handler grpc.UnaryHandler) (any, error) {
	r <- deadlineOf(ctx)
	return handler(ctx, req)
}

func (r recorder) stream(srv any, ss grpc.ServerStream, _ *grpc.StreamServerInfo, handler grpc.StreamHandler) error {
	r <- deadlineOf(ss.Context())
	return handler(srv, ss)
}

// callContext returns t.Context() with timeout d, or without a deadline when
// d is 0.
func callContext(t *testing.T, d time.Duration) context.Context {
	if d == 0 {
		return t.Context()
	}
	ctx, cancel := context.WithTimeout(t.Context(), d)
	t.Cleanup(cancel)
	return ctx
}
