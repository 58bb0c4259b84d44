package dedupe_test

import (
	"context"
	"fmt"
	"net"
	"sync/atomic"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/test/bufconn"

	"github.com/grpckit/grpckit/kit/middleware/dedupe"
	greeterv1 "github.com/grpckit/grpckit/proto/greeter/v1"
	"github.com/grpckit/grpckit/services/greeter"
)

// A server that deduplicates SayHello: a second call with the same request
// id gets the first one's response without running the handler.
func ExampleCache_UnaryServerInterceptor() {
	cfg := dedupe.DefaultConfig()
	cfg.Methods = []string{"/greeter.v1.GreeterService/SayHello"}
	cache, err := dedupe.New(cfg)
	if err != nil {
		panic(err)
	}
	var runs atomic.Int32
	count := func(ctx context.Context, req any, _ *grpc.UnaryServerInfo, handler grpc.UnaryHandler) (any, error) {
		runs.Add(1)
		return handler(ctx, req)
	}
	lis := bufconn.Listen(1 << 20)
	srv := grpc.NewServer(grpc.ChainUnaryInterceptor(cache.UnaryServerInterceptor(), count))
	greeterv1.RegisterGreeterServiceServer(srv, greeter.NewServer(nil, greeter.WithInstance("g1")))
	go srv.Serve(lis)
	defer srv.Stop()

	conn, err := grpc.NewClient("passthrough:///greeter",
		grpc.WithContextDialer(func(ctx context.Context, _ string) (net.Conn, error) { return lis.DialContext(ctx) }),
		grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		panic(err)
	}
	defer conn.Close()
	c := greeterv1.NewGreeterServiceClient(conn)

	// dedupe.UnaryClientInterceptor stamps ids itself; here the caller does.
	ctx := metadata.AppendToOutgoingContext(context.Background(), dedupe.RequestIDKey, "order-42")
	for range 2 {
		resp, err := c.SayHello(ctx, &greeterv1.SayHelloRequest{Name: "Ada"})
		fmt.Println(resp.GetMessage(), err)
	}
	fmt.Println("handler runs:", runs.Load())
	// Output:
	// Hello, Ada! <nil>
	// Hello, Ada! <nil>
	// handler runs: 1
}
