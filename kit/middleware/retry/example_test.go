package retry_test

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
	"github.com/grpckit/grpckit/kit/middleware/dedupe"
	"github.com/grpckit/grpckit/kit/middleware/retry"
)

// A client chain in which Create, not idempotent by its proto options, is
// retried because the dedupe interceptor (outside retry) protects it with a
// request id. The server side would install a dedupe.Cache for it.
func Example() {
	lis := bufconn.Listen(1 << 20)
	srv := grpc.NewServer()
	svc := &kittest.Service{Store: &kittest.Store{}}
	svc.FailNext(1, status.Error(codes.Unavailable, "restarting")) // the first call fails
	testpbv1.RegisterTestServiceServer(srv, svc)
	go srv.Serve(lis)
	defer srv.Stop()

	r, err := retry.New(retry.DefaultConfig())
	if err != nil {
		panic(err)
	}
	ids, err := dedupe.NewClient(dedupe.ClientConfig{Methods: []string{"/testpb.v1.TestService/Create"}})
	if err != nil {
		panic(err)
	}
	conn, err := grpc.NewClient("passthrough:///test",
		grpc.WithContextDialer(func(ctx context.Context, _ string) (net.Conn, error) { return lis.DialContext(ctx) }),
		grpc.WithTransportCredentials(insecure.NewCredentials()),
		grpc.WithChainUnaryInterceptor(
			ids.UnaryClientInterceptor(),
			r.UnaryClientInterceptor(),
		))
	if err != nil {
		panic(err)
	}
	defer conn.Close()

	resp, err := testpbv1.NewTestServiceClient(conn).Create(context.Background(), &testpbv1.CreateRequest{Key: "ada", Value: "Ada"})
	fmt.Println(resp.GetItem().GetValue(), err, svc.Calls())
	// Output: Ada <nil> 2
}
