package e2e

import (
	"context"
	"io"
	"log/slog"
	"net"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/grpckit/grpckit/kit"
	"github.com/grpckit/grpckit/kit/registry"
	"github.com/grpckit/grpckit/kit/registry/consul"
	"github.com/grpckit/grpckit/kit/registry/consul/consultest"
	greeterv1 "github.com/grpckit/grpckit/proto/greeter/v1"
	userv1 "github.com/grpckit/grpckit/proto/user/v1"
	"github.com/grpckit/grpckit/services/greeter"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

var quiet = slog.New(slog.NewTextHandler(io.Discard, nil))

// stack is a real Consul agent and a registry on it.
type stack struct {
	t   *testing.T
	reg *consul.Registry
}

func newStack(t *testing.T) *stack {
	t.Helper()
	agent := consultest.Start(t)
	reg := consul.New(consultest.Client(t, agent))
	t.Cleanup(reg.Close)
	return &stack{t: t, reg: reg}
}

// instance is a running kit server and the address it listens on.
type instance struct {
	*kit.Server
	addr string
}

// serve starts a kit server registered as name, with register adding the
// service implementation. The server is shut down when the test ends.
func (s *stack) serve(name string, register func(*kit.Server)) instance {
	s.t.Helper()
	srv, err := kit.NewServer(kit.WithRegistrar(s.reg, registry.Instance{Name: name}),
		kit.WithDrain(300*time.Millisecond), kit.WithAdminAddress(""), kit.WithLogger(quiet))
	if err != nil {
		s.t.Fatal(err)
	}
	register(srv)
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		s.t.Fatal(err)
	}
	served := make(chan error, 1)
	go func() { served <- srv.Serve(lis) }()
	s.t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if err := srv.Shutdown(ctx); err != nil {
			s.t.Errorf("shutdown %s: %v", name, err)
		}
		if err := <-served; err != nil {
			s.t.Errorf("serve %s: %v", name, err)
		}
	})
	return instance{srv, lis.Addr().String()}
}

// waitInstances waits until Consul lists n healthy instances of name.
func (s *stack) waitInstances(name string, n int) {
	s.t.Helper()
	ctx, cancel := context.WithTimeout(s.t.Context(), 10*time.Second)
	defer cancel()
	w, err := s.reg.Watch(ctx, name)
	if err != nil {
		s.t.Fatal(err)
	}
	defer w.Stop()
	for {
		set, err := w.Next(ctx)
		if err != nil {
			s.t.Fatalf("waiting for %d instances of %s: %v", n, name, err)
		}
		if len(set) == n {
			return
		}
	}
}

func (s *stack) greeterClient() greeterv1.GreeterServiceClient {
	cc, err := kit.NewClient("consul:///greeter", kit.WithDiscovery(s.reg))
	if err != nil {
		s.t.Fatal(err)
	}
	s.t.Cleanup(func() { cc.Close() })
	return greeterv1.NewGreeterServiceClient(cc)
}

func (s *stack) userClient() userv1.UserServiceClient {
	cc, err := kit.NewClient("consul:///user", kit.WithDiscovery(s.reg))
	if err != nil {
		s.t.Fatal(err)
	}
	s.t.Cleanup(func() { cc.Close() })
	return userv1.NewUserServiceClient(cc)
}

// startGreeter starts a greeter instance that reaches users through users (may be nil).
func (s *stack) startGreeter(users userv1.UserServiceClient) instance {
	return s.serve("greeter", func(srv *kit.Server) {
		greeterv1.RegisterGreeterServiceServer(srv, greeter.NewServer(users))
	})
}
