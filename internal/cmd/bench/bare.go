package main

import (
	"context"
	"net"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"

	greeterv1 "github.com/grpckit/grpckit/proto/greeter/v1"
	"github.com/grpckit/grpckit/services/greeter"
)

// request is the 1-byte payload of every measured call.
var request = &greeterv1.SayHelloRequest{Name: "x"}

// bare is grpc-go with nothing added: the baseline of every ratio.
func bare() (caller, func(), error) {
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, nil, err
	}
	srv := grpc.NewServer()
	greeterv1.RegisterGreeterServiceServer(srv, greeter.NewServer(nil, greeter.WithInstance("bench")))
	go srv.Serve(lis)
	cc, err := grpc.NewClient("passthrough:///"+lis.Addr().String(), grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		srv.Stop()
		return nil, nil, err
	}
	client := greeterv1.NewGreeterServiceClient(cc)
	call := func(ctx context.Context) error {
		_, err := client.SayHello(ctx, request)
		return err
	}
	return call, func() { cc.Close(); srv.Stop() }, nil
}
