package timeout_test

import (
	"context"
	"math"
	"net"
	"testing"
	"time"

	"go.uber.org/goleak"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/test/bufconn"

	greeterv1 "github.com/grpckit/grpckit/proto/greeter/v1"
	"github.com/grpckit/grpckit/services/greeter"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

const (
	sayHello     = "/greeter.v1.GreeterService/SayHello"
	streamHellos = "/greeter.v1.GreeterService/StreamHellos"
)

// startGreeter serves a real greeter over bufconn with serverOpts and
// returns a client dialled with dialOpts; both stop on cleanup.
func startGreeter(t *testing.T, serverOpts []grpc.ServerOption, dialOpts ...grpc.DialOption) greeterv1.GreeterServiceClient {
	t.Helper()
	lis := bufconn.Listen(1 << 20)
	gs := grpc.NewServer(serverOpts...)
	greeterv1.RegisterGreeterServiceServer(gs, greeter.NewServer(nil))
	served := make(chan error, 1)
	go func() { served <- gs.Serve(lis) }()
	dialOpts = append([]grpc.DialOption{
		grpc.WithContextDialer(func(ctx context.Context, _ string) (net.Conn, error) { return lis.DialContext(ctx) }),
		grpc.WithTransportCredentials(insecure.NewCredentials()),
	}, dialOpts...)
	conn, err := grpc.NewClient("passthrough:///bufnet", dialOpts...)
	if err != nil {
		t.Fatalf("grpc.NewClient: %v", err)
	}
	t.Cleanup(func() {
		conn.Close()
		gs.Stop()
		if err := <-served; err != nil {
			t.Errorf("Serve: %v", err)
		}
	})
	return greeterv1.NewGreeterServiceClient(conn)
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
