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

	"github.com/grpckit/grpckit/kit/middleware/ratelimit"
	greeterv1 "github.com/grpckit/grpckit/proto/greeter/v1"
)

type greeter struct {
	greeterv1.UnimplementedGreeterServiceServer
}

func (greeter) SayHello(_ context.Context, req *greeterv1.SayHelloRequest) (*greeterv1.SayHelloResponse, error) {
	return &greeterv1.SayHelloResponse{Message: "hello " + req.GetName()}, nil
}

func Example() {
	cfg := ratelimit.DefaultConfig()
	cfg.PerMethod = map[string]ratelimit.Limit{
		"/greeter.v1.GreeterService/SayHello": {RPS: 0.001, Burst: 2}, // two calls, then one every 1000s
	}
	limiter, err := ratelimit.New(cfg)
	if err != nil {
		panic(err)
	}
	lis := bufconn.Listen(1 << 20)
	srv := grpc.NewServer(
		grpc.ChainUnaryInterceptor(limiter.UnaryServerInterceptor()),
		grpc.ChainStreamInterceptor(limiter.StreamServerInterceptor()))
	greeterv1.RegisterGreeterServiceServer(srv, greeter{})
	go srv.Serve(lis)
	defer srv.Stop()

	cc, err := grpc.NewClient("passthrough:///greeter",
		grpc.WithContextDialer(func(ctx context.Context, _ string) (net.Conn, error) { return lis.DialContext(ctx) }),
		grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		panic(err)
	}
	defer cc.Close()
	client := greeterv1.NewGreeterServiceClient(cc)

	for range 3 {
		_, err := client.SayHello(context.Background(), &greeterv1.SayHelloRequest{Name: "ada"})
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
	// ResourceExhausted ratelimit: method limit exceeded calling /greeter.v1.GreeterService/SayHello
	// retry within 1000s: true
}
