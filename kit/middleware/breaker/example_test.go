package breaker_test

import (
	"context"
	"fmt"
	"net"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/status"
	"google.golang.org/grpc/test/bufconn"

	"github.com/grpckit/grpckit/kit/internal/kittest"
	testpbv1 "github.com/grpckit/grpckit/kit/internal/testpb/v1"
	"github.com/grpckit/grpckit/kit/middleware/breaker"
)

func Example() {
	lis := bufconn.Listen(1 << 20)
	srv := grpc.NewServer()
	overloaded := &kittest.Service{}
	overloaded.Fail(status.Error(codes.Unavailable, "overloaded"))
	overloaded.Register(srv)
	go srv.Serve(lis)
	defer srv.Stop()

	cfg := breaker.DefaultConfig()
	cfg.ConsecutiveFailures = 2
	breakers, err := breaker.New(cfg)
	if err != nil {
		panic(err)
	}
	cc, err := grpc.NewClient("passthrough:///test",
		grpc.WithContextDialer(func(ctx context.Context, _ string) (net.Conn, error) { return lis.DialContext(ctx) }),
		grpc.WithTransportCredentials(insecure.NewCredentials()),
		grpc.WithChainUnaryInterceptor(breakers.UnaryClientInterceptor()),
		grpc.WithChainStreamInterceptor(breakers.StreamClientInterceptor()))
	if err != nil {
		panic(err)
	}
	defer cc.Close()
	client := testpbv1.NewTestServiceClient(cc)

	for range 3 {
		_, err := client.Echo(context.Background(), &testpbv1.EchoRequest{Message: "ada"})
		fmt.Println(status.Code(err), status.Convert(err).Message())
	}
	for _, s := range breakers.States() {
		fmt.Println(s.Target, s.Method, s.State)
	}
	// Output:
	// Unavailable overloaded
	// Unavailable overloaded
	// Unavailable breaker: circuit breaker is open for target "passthrough:///test" method /testpb.v1.TestService/Echo
	// passthrough:///test /testpb.v1.TestService/Echo open
}
