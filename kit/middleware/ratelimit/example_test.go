package ratelimit_test

import (
	"context"
	"fmt"
	"net"

	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/status"
	"google.golang.org/grpc/test/bufconn"

	"github.com/grpckit/grpckit/kit/internal/kittest"
	testpbv1 "github.com/grpckit/grpckit/kit/internal/testpb/v1"
	"github.com/grpckit/grpckit/kit/middleware/ratelimit"
)

func Example() {
	cfg := ratelimit.DefaultConfig()
	cfg.PerMethod = map[string]ratelimit.Limit{
		"/testpb.v1.TestService/Echo": {RPS: 0.001, Burst: 2}, // two calls, then one every 1000s
	}
	limiter, err := ratelimit.New(cfg)
	if err != nil {
		panic(err)
	}
	lis := bufconn.Listen(1 << 20)
	srv := grpc.NewServer(
		grpc.ChainUnaryInterceptor(limiter.UnaryServerInterceptor()),
		grpc.ChainStreamInterceptor(limiter.StreamServerInterceptor()))
	testpbv1.RegisterTestServiceServer(srv, &kittest.Service{})
	go srv.Serve(lis)
	defer srv.Stop()

	cc, err := grpc.NewClient("passthrough:///test",
		grpc.WithContextDialer(func(ctx context.Context, _ string) (net.Conn, error) { return lis.DialContext(ctx) }),
		grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		panic(err)
	}
	defer cc.Close()
	client := testpbv1.NewTestServiceClient(cc)

	for range 3 {
		_, err := client.Echo(context.Background(), &testpbv1.EchoRequest{Message: "ada"})
		st := status.Convert(err)
		if err == nil {
			fmt.Println(st.Code())
			continue
		}
		fmt.Println(st.Code(), st.Message())
		for _, d := range st.Details() {
			if ri, ok := d.(*errdetails.RetryInfo); ok {
				fmt.Println("retry within 1000s:", ri.GetRetryDelay().AsDuration().Seconds() <= 1000)
			}
		}
	}
	// Output:
	// OK
	// OK
	// ResourceExhausted ratelimit: method limit exceeded calling /testpb.v1.TestService/Echo
	// retry within 1000s: true
}
