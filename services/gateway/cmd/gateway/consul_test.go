package main

import (
	"context"
	"io"
	"log/slog"
	"net"
	"net/http"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/hashicorp/consul/api"

	"github.com/grpckit/grpckit/kit"
	"github.com/grpckit/grpckit/kit/middleware/auth"
	"github.com/grpckit/grpckit/kit/registry"
	"github.com/grpckit/grpckit/kit/registry/consul"
	"github.com/grpckit/grpckit/kit/registry/consul/consultest"
	greeterv1 "github.com/grpckit/grpckit/proto/greeter/v1"
	userv1 "github.com/grpckit/grpckit/proto/user/v1"
	"github.com/grpckit/grpckit/services/greeter"
	"github.com/grpckit/grpckit/services/user"
)

// serveKit serves a kit server registered in reg as name until cleanup.
func serveKit(t *testing.T, reg *consul.Registry, name string, register func(*kit.Server)) {
	t.Helper()
	srv, err := kit.NewServer(kit.WithRegistrar(reg, registry.Instance{Name: name}), kit.WithDrain(0),
		kit.WithAdminAddress(""), kit.WithLogger(slog.New(slog.NewTextHandler(io.Discard, nil))))
	if err != nil {
		t.Fatal(err)
	}
	register(srv)
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	served := make(chan error, 1)
	go func() { served <- srv.Serve(lis) }()
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if err := srv.Shutdown(ctx); err != nil {
			t.Errorf("shutdown %s: %v", name, err)
		}
		if err := <-served; err != nil {
			t.Errorf("serve %s: %v", name, err)
		}
	})
}

// TestConsul runs the whole stack on a real Consul agent: user and greeter
// register, the gateway finds them through consul:///user and
// consul:///greeter (the defaults), registers itself as "gateway" with a
// passing gRPC check and its HTTP address in Meta, and leaves on shutdown.
func TestConsul(t *testing.T) {
	agent := consultest.Start(t)
	c := consultest.Client(t, agent)
	reg := consul.New(c)
	t.Cleanup(reg.Close)

	store, err := user.OpenSQLite(context.Background(), filepath.Join(t.TempDir(), "users.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { store.Close() })
	serveKit(t, reg, "user", func(s *kit.Server) { userv1.RegisterUserServiceServer(s, user.NewServer(store)) })
	users, err := kit.NewClient("consul:///user", kit.WithDiscovery(reg))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { users.Close() })
	serveKit(t, reg, "greeter", func(s *kit.Server) {
		greeterv1.RegisterGreeterServiceServer(s, greeter.NewServer(userv1.NewUserServiceClient(users)))
	})

	_, base, stop := serveGateway(t, "-registry.address", agent.HTTPAddr())
	httpAddr := strings.TrimPrefix(base, "http://")
	hc := newClient(t)

	// The gateway answers once discovery found the greeter.
	deadline := time.Now().Add(15 * time.Second)
	for {
		st, b := call(t, hc, http.MethodGet, base+"/v1/hello/consul", "", "")
		if st == http.StatusOK {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("GET /v1/hello/consul: %d %s", st, b)
		}
		time.Sleep(50 * time.Millisecond)
	}
	tok, err := auth.IssueHS256(secret, "tester", time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	if st, b := call(t, hc, http.MethodGet, base+"/v1/users", tok, ""); st != http.StatusOK {
		t.Errorf("GET /v1/users: %d %s", st, b)
	}

	entries := waitGateway(t, c, true)
	if got := entries[0].Service.Meta["http"]; got != httpAddr {
		t.Errorf("Meta[http] = %q, want %q", got, httpAddr)
	}
	var grpcCheck bool
	for _, chk := range entries[0].Checks {
		grpcCheck = grpcCheck || (chk.Type == "grpc" && chk.Status == api.HealthPassing)
	}
	if !grpcCheck {
		t.Errorf("no passing gRPC check among %+v", entries[0].Checks)
	}

	if err := stop(); err != nil {
		t.Errorf("serve: %v", err)
	}
	waitGateway(t, c, false)
}

// waitGateway polls Consul until it lists a passing gateway instance, or
// none when want is false.
func waitGateway(t *testing.T, c *api.Client, want bool) []*api.ServiceEntry {
	t.Helper()
	deadline := time.Now().Add(15 * time.Second)
	for {
		entries, _, err := c.Health().Service("gateway", "", true, nil)
		if err == nil && (len(entries) > 0) == want {
			return entries
		}
		if time.Now().After(deadline) {
			t.Fatalf("Consul lists %d passing gateway instances (err %v), want present=%v", len(entries), err, want)
		}
		time.Sleep(50 * time.Millisecond)
	}
}
