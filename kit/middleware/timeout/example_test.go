package timeout_test

import (
	"context"
	"fmt"
	"net"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/test/bufconn"

	"github.com/grpckit/grpckit/kit/duration"
	"github.com/grpckit/grpckit/kit/internal/kittest"
	testpbv1 "github.com/grpckit/grpckit/kit/internal/testpb/v1"
	"github.com/grpckit/grpckit/kit/middleware/timeout"
)

// A client whose calls get a deadline from the config when the caller set
// none, and a server that caps the deadlines it accepts.
func Example() {
	cfg := timeout.DefaultConfig()
	cfg.PerMethod = map[string]duration.Duration{"/testpb.v1.TestService/Echo": duration.Duration(2 * time.Second)}
	cfg.ServerMax = duration.Duration(time.Second)
	to, err := timeout.New(cfg)
	if err != nil {
		panic(err)
	}

	seen := make(chan time.Duration, 1)
	record := func(ctx context.Context, req any, _ *grpc.UnaryServerInfo, handler grpc.UnaryHandler) (any, error) {
		dl, _ := ctx.Deadline()
		seen <- time.Until(dl).Round(time.Second)
		return handler(ctx, req)
	}
	lis := bufconn.Listen(1 << 20)
	srv := grpc.NewServer(grpc.ChainUnaryInterceptor(to.UnaryServerInterceptor(), record))
	testpbv1.RegisterTestServiceServer(srv, &kittest.Service{})
	go srv.Serve(lis)
	defer srv.Stop()

	conn, err := grpc.NewClient("passthrough:///test",
		grpc.WithContextDialer(func(ctx context.Context, _ string) (net.Conn, error) { return lis.DialContext(ctx) }),
		grpc.WithTransportCredentials(insecure.NewCredentials()),
		grpc.WithUnaryInterceptor(to.UnaryClientInterceptor()))
	if err != nil {
		panic(err)
	}
	defer conn.Close()

	// The client gives the call 2s; the server caps it at 1s.
	_, err = testpbv1.NewTestServiceClient(conn).Echo(context.Background(), &testpbv1.EchoRequest{Message: "Ada"})
	fmt.Println(err, <-seen)
	// Output: <nil> 1s
}
