package kit_test

import (
	"context"
	"fmt"
	"net"
	"time"

	"google.golang.org/grpc"

	"github.com/grpckit/grpckit/kit"
	"github.com/grpckit/grpckit/kit/registry"
	"github.com/grpckit/grpckit/kit/registry/memory"
	greeterv1 "github.com/grpckit/grpckit/proto/greeter/v1"
	"github.com/grpckit/grpckit/services/greeter"
)

// A server registers itself in a registry once it serves; a client finds it
// through consul:///<name>. The in-memory registry stands in for Consul here;
// in a service it is consul.NewFromAddress("127.0.0.1:8500").
func Example() {
	reg := memory.New()

	srv, err := kit.NewServer(
		kit.WithRegistrar(reg, registry.Instance{Name: "greeter"}),
		kit.WithDrain(0), kit.WithLogger(quiet),
	)
	if err != nil {
		panic(err)
	}
	greeterv1.RegisterGreeterServiceServer(srv, greeter.NewServer(nil))
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		panic(err)
	}
	go srv.Serve(lis)
	defer srv.Shutdown(context.Background())

	cc, err := kit.NewClient("consul:///greeter", kit.WithDiscovery(reg))
	if err != nil {
		panic(err)
	}
	defer cc.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	// WaitForReady: the server may still be registering.
	resp, err := greeterv1.NewGreeterServiceClient(cc).SayHello(ctx, &greeterv1.SayHelloRequest{Name: "kit"}, grpc.WaitForReady(true))
	if err != nil {
		panic(err)
	}
	fmt.Println(resp.GetMessage())
	// Output: Hello, kit!
}
