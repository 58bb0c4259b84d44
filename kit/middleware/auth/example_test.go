package auth_test

import (
	"context"
	"fmt"
	"net"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	testgrpc "google.golang.org/grpc/interop/grpc_testing"
	"google.golang.org/grpc/status"

	"github.com/grpckit/grpckit/kit/middleware"
	"github.com/grpckit/grpckit/kit/middleware/auth"
)

// whoami answers UnaryCall with the caller's identity.
type whoami struct {
	testgrpc.UnimplementedTestServiceServer
}

func (whoami) UnaryCall(ctx context.Context, _ *testgrpc.SimpleRequest) (*testgrpc.SimpleResponse, error) {
	return &testgrpc.SimpleResponse{Username: middleware.Caller(ctx)}, nil
}

func Example() {
	const secret = "an example secret of 32 bytes..."
	cfg := auth.DefaultConfig()
	cfg.HMACSecret = secret
	a, err := auth.New(cfg)
	if err != nil {
		panic(err)
	}

	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		panic(err)
	}
	srv := grpc.NewServer(
		grpc.UnaryInterceptor(a.UnaryServerInterceptor()),
		grpc.StreamInterceptor(a.StreamServerInterceptor()))
	testgrpc.RegisterTestServiceServer(srv, whoami{})
	go srv.Serve(lis)
	defer srv.Stop()

	cc, err := grpc.NewClient(lis.Addr().String(), grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		panic(err)
	}
	defer cc.Close()
	client := testgrpc.NewTestServiceClient(cc)
	ctx := context.Background()

	_, err = client.UnaryCall(ctx, &testgrpc.SimpleRequest{})
	fmt.Println(status.Code(err), status.Convert(err).Message())

	tok, err := auth.IssueHS256(secret, "alice", time.Hour)
	if err != nil {
		panic(err)
	}
	// Plaintext on loopback: the token may only be sent with AllowInsecure.
	resp, err := client.UnaryCall(ctx, &testgrpc.SimpleRequest{},
		grpc.PerRPCCredentials(auth.BearerToken(tok, auth.AllowInsecure())))
	if err != nil {
		panic(err)
	}
	fmt.Println("caller:", resp.GetUsername())
	// Output:
	// Unauthenticated auth: missing bearer token
	// caller: alice
}
