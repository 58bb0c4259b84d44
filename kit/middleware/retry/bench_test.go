package retry_test

import (
	"testing"

	"google.golang.org/grpc"

	"github.com/grpckit/grpckit/kit/middleware/timeout"
	greeterv1 "github.com/grpckit/grpckit/proto/greeter/v1"
	"github.com/grpckit/grpckit/services/greeter"
)

// BenchmarkUnary compares a successful unary call with and without the
// client interceptors of this package and its neighbours, and the server
// interceptor; compare ns/op and allocs/op between sub-benchmarks.
func BenchmarkUnary(b *testing.B) {
	r := newRetrier(b, fastConfig())
	to, err := timeout.New(timeout.DefaultConfig())
	if err != nil {
		b.Fatal(err)
	}
	for _, bc := range []struct {
		name   string
		server []grpc.ServerOption
		client []grpc.UnaryClientInterceptor
	}{
		{name: "bare"},
		{name: "retry-client", client: []grpc.UnaryClientInterceptor{r.UnaryClientInterceptor()}},
		{name: "retry-server", server: []grpc.ServerOption{grpc.UnaryInterceptor(r.UnaryServerInterceptor())}},
		{name: "retry", client: []grpc.UnaryClientInterceptor{r.UnaryClientInterceptor()},
			server: []grpc.ServerOption{grpc.UnaryInterceptor(r.UnaryServerInterceptor())}},
		{name: "dedupe+timeout+retry", client: []grpc.UnaryClientInterceptor{
			mustStamper("/user.v1.UserService/CreateUser").UnaryClientInterceptor(), to.UnaryClientInterceptor(), r.UnaryClientInterceptor()},
			server: []grpc.ServerOption{grpc.ChainUnaryInterceptor(to.UnaryServerInterceptor(), r.UnaryServerInterceptor())}},
	} {
		b.Run(bc.name, func(b *testing.B) {
			lis := serve(b, func(s *grpc.Server) { greeterv1.RegisterGreeterServiceServer(s, greeter.NewServer(nil)) }, bc.server...)
			c := greeterv1.NewGreeterServiceClient(dial(b, lis, "bench", grpc.WithChainUnaryInterceptor(bc.client...)))
			req := &greeterv1.SayHelloRequest{Name: "a"}
			b.ReportAllocs()
			for b.Loop() {
				if _, err := c.SayHello(b.Context(), req); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
