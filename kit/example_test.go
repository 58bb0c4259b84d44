package kit_test

import (
	"context"
	"fmt"
	"net"
	"time"

	"google.golang.org/grpc"

	"github.com/grpckit/grpckit/kit"
	"github.com/grpckit/grpckit/kit/internal/kittest"
	testpbv1 "github.com/grpckit/grpckit/kit/internal/testpb/v1"
	"github.com/grpckit/grpckit/kit/registry"
	"github.com/grpckit/grpckit/kit/registry/memory"
)

// A server registers itself in a registry once it serves; a client finds it
// through consul:///<name>. The in-memory registry stands in for Consul here;
// in a service it is consul.NewFromAddress("127.0.0.1:8500").
func Example() {
	reg := memory.New()

	srv, err := kit.NewServer(
		kit.WithRegistrar(reg, registry.Instance{Name: "echo"}),
		kit.WithDrain(0), kit.WithLogger(quiet),
	)
	if err != nil {
		panic(err)
	}
	testpbv1.RegisterTestServiceServer(srv, &kittest.Service{})
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		panic(err)
	}
	go srv.Serve(lis)
	defer srv.Shutdown(context.Background())

	cc, err := kit.NewClient("consul:///echo", kit.WithDiscovery(reg))
	if err != nil {
		panic(err)
	}
	defer cc.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	// WaitForReady: the server may still be registering.
	resp, err := testpbv1.NewTestServiceClient(cc).Echo(ctx, &testpbv1.EchoRequest{Message: "hello, kit"}, grpc.WaitForReady(true))
	if err != nil {
		panic(err)
	}
	fmt.Println(resp.GetMessage())
	// Output: hello, kit
}
