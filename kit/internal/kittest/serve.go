package kittest

import (
	"context"
	"errors"
	"net"
	"testing"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/test/bufconn"
)

// Target is the target of the client connections [Serve] returns.
const Target = "passthrough:///bufnet"

// Server is a gRPC server serving on an in-memory bufconn listener.
type Server struct {
	lis *bufconn.Listener
}

// StartServer starts a gRPC server with opts on a new bufconn listener,
// with the services register adds (register may be nil). The server stops
// when the test ends; the test fails if it stopped serving with an error.
func StartServer(t testing.TB, register func(grpc.ServiceRegistrar), opts ...grpc.ServerOption) *Server {
	t.Helper()
	lis := bufconn.Listen(1 << 20)
	gs := grpc.NewServer(opts...)
	if register != nil {
		register(gs)
	}
	served := make(chan error, 1)
	go func() { served <- gs.Serve(lis) }()
	t.Cleanup(func() {
		gs.Stop()
		// Stop before Serve began makes Serve return ErrServerStopped.
		if err := <-served; err != nil && !errors.Is(err, grpc.ErrServerStopped) {
			t.Errorf("kittest: Serve: %v", err)
		}
	})
	return &Server{lis: lis}
}

// Dial returns a client connection to s with the target
// "passthrough:///"+name and opts, which come after the bufconn dialer and
// insecure credentials. The connection is closed when the test ends,
// before the server stops.
func (s *Server) Dial(t testing.TB, name string, opts ...grpc.DialOption) *grpc.ClientConn {
	t.Helper()
	opts = append([]grpc.DialOption{
		grpc.WithContextDialer(func(ctx context.Context, _ string) (net.Conn, error) { return s.lis.DialContext(ctx) }),
		grpc.WithTransportCredentials(insecure.NewCredentials()),
	}, opts...)
	cc, err := grpc.NewClient("passthrough:///"+name, opts...)
	if err != nil {
		t.Fatalf("kittest: grpc.NewClient: %v", err)
	}
	t.Cleanup(func() { cc.Close() })
	return cc
}

// Serve starts a server as [StartServer] does and returns a client
// connection to it, with the target [Target] and dialOpts.
func Serve(t testing.TB, register func(grpc.ServiceRegistrar), serverOpts []grpc.ServerOption, dialOpts ...grpc.DialOption) *grpc.ClientConn {
	t.Helper()
	return StartServer(t, register, serverOpts...).Dial(t, "bufnet", dialOpts...)
}
