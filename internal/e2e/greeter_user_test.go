package e2e

import (
	"context"
	"errors"
	"io"
	"net"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/grpckit/grpckit/kit"
	"github.com/grpckit/grpckit/kit/registry"
	"github.com/grpckit/grpckit/kit/registry/consul"
	greeterv1 "github.com/grpckit/grpckit/proto/greeter/v1"
	userv1 "github.com/grpckit/grpckit/proto/user/v1"
	"github.com/grpckit/grpckit/services/user"
)

// TestGreeterCallsUserThroughConsul runs two user instances sharing one
// SQLite file and a greeter that finds them through consul:///user, all
// registered in a real Consul agent; the test client finds the greeter the
// same way.
func TestGreeterCallsUserThroughConsul(t *testing.T) {
	s := newStack(t)
	db := filepath.Join(t.TempDir(), "users.db")
	for range 2 {
		store, err := user.OpenSQLite(t.Context(), db)
		if err != nil {
			t.Fatal(err)
		}
		s.serve("user", func(srv *kit.Server) {
			userv1.RegisterUserServiceServer(srv, user.NewServer(store, user.WithLogger(quiet)))
		})
		t.Cleanup(func() { store.Close() }) // after the server stopped (cleanups run last-in first-out)
	}
	s.startGreeter(s.userClient())
	s.waitInstances("user", 2)
	s.waitInstances("greeter", 1)
	users, greeter := s.userClient(), s.greeterClient()

	ctx, cancel := context.WithTimeout(t.Context(), 20*time.Second)
	defer cancel()
	created, err := users.CreateUser(ctx, &userv1.CreateUserRequest{Name: "Ada Lovelace", Email: "ada@example.com"})
	if err != nil {
		t.Fatalf("CreateUser: %v", err)
	}
	id := created.GetUser().GetId()
	// Every user instance sees the row, whichever one the balancer picks.
	for range 10 {
		resp, err := greeter.SayHello(ctx, &greeterv1.SayHelloRequest{UserId: &id})
		if err != nil {
			t.Fatalf("SayHello(user %s): %v", id, err)
		}
		if resp.GetMessage() != "Hello, Ada Lovelace!" {
			t.Errorf("SayHello = %q, want the user's name", resp.GetMessage())
		}
	}

	stream, err := greeter.StreamHellos(ctx, &greeterv1.StreamHellosRequest{Name: "stream", Count: 4})
	if err != nil {
		t.Fatal(err)
	}
	var got []int32
	for {
		msg, err := stream.Recv()
		if err != nil {
			if !errors.Is(err, io.EOF) {
				t.Fatalf("stream: %v", err)
			}
			break
		}
		got = append(got, msg.GetSequence())
	}
	if len(got) != 4 || got[3] != 4 {
		t.Errorf("stream sequences %v, want 1..4", got)
	}

	// Bad input gets clear codes, across both hops.
	missing := "01890000-0000-7000-8000-000000000000"
	empty := ""
	for _, tc := range []struct {
		name string
		call func() error
		want codes.Code
	}{
		{"unknown user through greeter", func() error {
			_, err := greeter.SayHello(ctx, &greeterv1.SayHelloRequest{UserId: &missing})
			return err
		}, codes.NotFound},
		{"empty user id", func() error {
			_, err := greeter.SayHello(ctx, &greeterv1.SayHelloRequest{UserId: &empty})
			return err
		}, codes.InvalidArgument},
		{"no name", func() error {
			_, err := greeter.SayHello(ctx, &greeterv1.SayHelloRequest{})
			return err
		}, codes.InvalidArgument},
		{"count out of range", func() error {
			st, err := greeter.StreamHellos(ctx, &greeterv1.StreamHellosRequest{Name: "x", Count: 1000})
			if err != nil {
				return err
			}
			_, err = st.Recv()
			return err
		}, codes.InvalidArgument},
		{"duplicate email", func() error {
			_, err := users.CreateUser(ctx, &userv1.CreateUserRequest{Name: "Ada", Email: "ada@example.com"})
			return err
		}, codes.AlreadyExists},
		{"bad email", func() error {
			_, err := users.CreateUser(ctx, &userv1.CreateUserRequest{Name: "Ada", Email: "not an email"})
			return err
		}, codes.InvalidArgument},
		{"get unknown user", func() error {
			_, err := users.GetUser(ctx, &userv1.GetUserRequest{Id: missing})
			return err
		}, codes.NotFound},
	} {
		if err := tc.call(); status.Code(err) != tc.want {
			t.Errorf("%s: %v, want %v", tc.name, err, tc.want)
		}
	}
}

// TestGreeterWithoutUsers shows the codes when the downstream service has no
// instance at all: the greeter answers promptly with Internal (user's
// outage, not greeter's: its callers must not eject greeter), not a hang.
func TestGreeterWithoutUsers(t *testing.T) {
	s := newStack(t)
	s.startGreeter(s.userClient())
	s.waitInstances("greeter", 1)
	ctx, cancel := context.WithTimeout(t.Context(), 20*time.Second)
	defer cancel()
	id := "someone"
	_, err := s.greeterClient().SayHello(ctx, &greeterv1.SayHelloRequest{UserId: &id})
	if status.Code(err) != codes.Internal || ctx.Err() != nil {
		t.Errorf("SayHello with no user instance = %v, want a prompt Internal", err)
	}
}

// TestShutdownLeavesConsul: Shutdown removes the instance from Consul's
// catalog before the server stops.
func TestShutdownLeavesConsul(t *testing.T) {
	s := newStack(t)
	g := s.startGreeter(nil)
	s.waitInstances("greeter", 1)
	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
	defer cancel()
	if err := g.Shutdown(ctx); err != nil {
		t.Fatal(err)
	}
	services, _, err := s.reg.Client().Catalog().Service("greeter", "", nil)
	if err != nil {
		t.Fatal(err)
	}
	if len(services) != 0 {
		t.Errorf("catalog still lists %d greeter instance(s) after Shutdown", len(services))
	}
}

// TestServerWithConsulDown: a server whose Consul is unreachable fails to
// start with an error naming the instance and the cause; nothing panics.
func TestServerWithConsulDown(t *testing.T) {
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	dead := lis.Addr().String()
	lis.Close()
	reg, err := consul.NewFromAddress(dead)
	if err != nil {
		t.Fatal(err)
	}
	defer reg.Close()
	srv, err := kit.NewServer(kit.WithRegistrar(reg, registry.Instance{Name: "greeter"}), kit.WithLogger(quiet), kit.WithAddress("127.0.0.1:0"))
	if err != nil {
		t.Fatal(err)
	}
	err = srv.Run(t.Context())
	if err == nil || !strings.Contains(err.Error(), "register greeter") || !strings.Contains(err.Error(), "connection refused") {
		t.Errorf("Run with Consul down = %v, want an error naming the registration and the refused connection", err)
	}
}
