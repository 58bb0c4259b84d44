package retry_test

import (
	"testing"

	"google.golang.org/grpc"

	"github.com/grpckit/grpckit/kit/internal/kittest"
	testpbv1 "github.com/grpckit/grpckit/kit/internal/testpb/v1"
	"github.com/grpckit/grpckit/kit/middleware/timeout"
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
			mustStamper(create).UnaryClientInterceptor(), to.UnaryClientInterceptor(), r.UnaryClientInterceptor()},
			server: []grpc.ServerOption{grpc.ChainUnaryInterceptor(to.UnaryServerInterceptor(), r.UnaryServerInterceptor())}},
	} {
		b.Run(bc.name, func(b *testing.B) {
			srv := kittest.StartServer(b, (&kittest.Service{}).Register, bc.server...)
			c := testpbv1.NewTestServiceClient(srv.Dial(b, "bench", grpc.WithChainUnaryInterceptor(bc.client...)))
			req := &testpbv1.EchoRequest{Message: "a"}
			b.ReportAllocs()
			for b.Loop() {
				if _, err := c.Echo(b.Context(), req); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
