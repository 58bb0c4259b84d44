package dedupe_test

import (
	"context"
	"fmt"
	"net"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/test/bufconn"

	"github.com/grpckit/grpckit/kit/internal/kittest"
	testpbv1 "github.com/grpckit/grpckit/kit/internal/testpb/v1"
	"github.com/grpckit/grpckit/kit/middleware/dedupe"
)

// A server that deduplicates Create: a second call with the same request id
// gets the first one's response without running the handler, so the item
// is created once.
func ExampleCache_UnaryServerInterceptor() {
	cfg := dedupe.DefaultConfig()
	cfg.Methods = []string{"/testpb.v1.TestService/Create"}
	cache, err := dedupe.New(cfg)
	if err != nil {
		panic(err)
	}
	store := &kittest.Store{}
	lis := bufconn.Listen(1 << 20)
	srv := grpc.NewServer(grpc.ChainUnaryInterceptor(cache.UnaryServerInterceptor()))
	testpbv1.RegisterTestServiceServer(srv, &kittest.Service{Store: store})
	go srv.Serve(lis)
	defer srv.Stop()

	conn, err := grpc.NewClient("passthrough:///test",
		grpc.WithContextDialer(func(ctx context.Context, _ string) (net.Conn, error) { return lis.DialContext(ctx) }),
		grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		panic(err)
	}
	defer conn.Close()
	c := testpbv1.NewTestServiceClient(conn)

	// dedupe.UnaryClientInterceptor stamps ids itself; here the caller does.
	ctx := metadata.AppendToOutgoingContext(context.Background(), dedupe.RequestIDKey, "order-42")
	for range 2 {
		resp, err := c.Create(ctx, &testpbv1.CreateRequest{Key: "order-42", Value: "2 books"})
		fmt.Println(resp.GetItem().GetId(), err)
	}
	fmt.Println("writes:", store.Writes())
	// Output:
	// item-1 <nil>
	// item-1 <nil>
	// writes: 1
}
