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

	"github.com/grpckit/grpckit/kit/middleware/breaker"
	greeterv1 "github.com/grpckit/grpckit/proto/greeter/v1"
)

// overloaded answers every call with UNAVAILABLE.
type overloaded struct {
	greeterv1.UnimplementedGreeterServiceServer
}

func (overloaded) SayHello(context.Context, *greeterv1.SayHelloRequest) (*greeterv1.SayHelloResponse, error) {
	return nil, status.Error(codes.Unavailable, "overloaded")
}

func Example() {
	lis := bufconn.Listen(1 << 20)
	srv := grpc.NewServer()
	greeterv1.RegisterGreeterServiceServer(srv, overloaded{})
	go srv.Serve(lis)
	defer srv.Stop()

	cfg := breaker.DefaultConfig()
	cfg.ConsecutiveFailures = 2
	breakers, err := breaker.New(cfg)
	if err != nil {
		panic(err)
	}
	cc, err := grpc.NewClient("passthrough:///greeter",
		grpc.WithContextDialer(func(ctx context.Context, _ string) (net.Conn, error) { return lis.DialContext(ctx) }),
		grpc.WithTransportCredentials(insecure.NewCredentials()),
		grpc.WithChainUnaryInterceptor(breakers.UnaryClientInterceptor()),
		grpc.WithChainStreamInterceptor(breakers.StreamClientInterceptor()))
	if err != nil {
		panic(err)
	}
	defer cc.Close()
	client := greeterv1.NewGreeterServiceClient(cc)

	for range 3 {
		_, err := client.SayHello(context.Background(), &greeterv1.SayHelloRequest{Name: "ada"})
		fmt.Println(status.Code(err), status.Convert(err).Message())
	}
	for _, s := range breakers.States() {
		fmt.Println(s.Target, s.Method, s.State)
	}
	// Output:
	// Unavailable overloaded
	// Unavailable overloaded
	// Unavailable breaker: circuit breaker is open for target "passthrough:///greeter" method /greeter.v1.GreeterService/SayHello
	// passthrough:///greeter /greeter.v1.GreeterService/SayHello open
}
