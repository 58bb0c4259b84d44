package main

import (
	"context"
	"io"
	"log/slog"
	"net"
	"net/http"
	"path/filepath"
	"strings"
	"sync"
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

// serveKit serves a kit server registered in reg as name, with server
// reflection and auth by the test secret (public methods as given), until
// cleanup or the stop it returns.
func serveKit(t *testing.T, reg *consul.Registry, name string, public []string, register func(*kit.Server)) (stop func()) {
	t.Helper()
	a, err := auth.New(auth.Config{HMACSecret: secret, PublicMethods: public})
	if err != nil {
		t.Fatal(err)
	}
	srv, err := kit.NewServer(kit.WithRegistrar(reg, registry.Instance{Name: name}), kit.WithDrain(0),
		kit.WithAdminAddress(""), kit.WithReflection(true), kit.WithAuth(a),
		kit.WithLogger(slog.New(slog.NewTextHandler(io.Discard, nil))))
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
	var once sync.Once
	stop = func() {
		once.Do(func() {
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
	t.Cleanup(stop)
	return stop
}

// slowGreeter answers SayHello at once, except for "slow": it reports on
// blocked and answers once release is closed.
type slowGreeter struct {
	greeterv1.UnimplementedGreeterServiceServer
	blocked chan struct{}
	release chan struct{}
}

func (s *slowGreeter) SayHello(ctx context.Context, req *greeterv1.SayHelloRequest) (*greeterv1.SayHelloResponse, error) {
	if req.GetName() == "slow" {
		s.blocked <- struct{}{}
		<-s.release
	}
	return &greeterv1.SayHelloResponse{Message: "Hello, " + req.GetName() + "!"}, nil
}

// stack starts a Consul agent with the real user service and a slow
// greeter registered (SayHello public), both serving reflection.
func stack(t *testing.T) (*consultest.Agent, *slowGreeter) {
	t.Helper()
	agent := consultest.Start(t)
	reg := consul.New(consultest.Client(t, agent))
	t.Cleanup(reg.Close)
	serveUser(t, reg)
	g := &slowGreeter{blocked: make(chan struct{}, 1), release: make(chan struct{})}
	serveKit(t, reg, "greeter", []string{greeterv1.GreeterService_SayHello_FullMethodName},
		func(s *kit.Server) { greeterv1.RegisterGreeterServiceServer(s, g) })
	return agent, g
}

// serveUser serves the real user service on a SQLite file, registered in
// reg.
func serveUser(t *testing.T, reg *consul.Registry) {
	t.Helper()
	store, err := user.OpenSQLite(context.Background(), filepath.Join(t.TempDir(), "users.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { store.Close() })
	serveKit(t, reg, "user", nil, func(s *kit.Server) { userv1.RegisterUserServiceServer(s, user.NewServer(store)) })
}

// TestConsul runs the whole stack on a real Consul agent: the gateway
// registers itself as "gateway" with a passing gRPC check and its HTTP
// address in Meta; a service that starts after it is served at its
// annotated routes within 15 s and listed in /openapi.json, and its routes
// go when it stops; the gateway leaves Consul on shutdown.
func TestConsul(t *testing.T) {
	agent := consultest.Start(t)
	c := consultest.Client(t, agent)
	reg := consul.New(c)
	t.Cleanup(reg.Close)
	serveUser(t, reg)

	_, base, stop := serveGateway(t, "-registry.address", agent.HTTPAddr())
	httpAddr := strings.TrimPrefix(base, "http://")
	hc := newClient(t)
	tok, err := auth.IssueHS256(secret, "tester", time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(15 * time.Second)
	for {
		st, b := call(t, hc, http.MethodGet, base+"/v1/users", tok, "")
		if st == http.StatusOK {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("GET /v1/users: %d %s", st, b)
		}
		time.Sleep(20 * time.Millisecond)
	}
	if st, b := call(t, hc, http.MethodGet, base+"/v1/hello/consul", "", ""); st != http.StatusNotFound {
		t.Fatalf("hello before the greeter started: %d %s, want 404", st, b)
	}

	// The greeter starts after the gateway: served within 15 s, documented.
	users, err := kit.NewClient("consul:///user", kit.WithDiscovery(reg))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { users.Close() })
	stopGreeter := serveKit(t, reg, "greeter", []string{greeterv1.GreeterService_SayHello_FullMethodName}, func(s *kit.Server) {
		greeterv1.RegisterGreeterServiceServer(s, greeter.NewServer(userv1.NewUserServiceClient(users)))
	})
	start := time.Now()
	if b := waitStatus(t, hc, base+"/v1/hello/consul", http.StatusOK); !strings.Contains(string(b), "Hello, consul!") {
		t.Errorf("hello: %s", b)
	}
	t.Logf("the greeter's route was served %v after it started", time.Since(start).Round(time.Millisecond))
	if doc := waitStatus(t, hc, base+"/openapi.json", http.StatusOK); !strings.Contains(string(doc), `"/v1/hello/{name}"`) {
		t.Errorf("/openapi.json does not list the greeter's route: %s", doc)
	}

	// Stopped, its routes go.
	stopGreeter()
	waitStatus(t, hc, base+"/v1/hello/consul", http.StatusNotFound)
	if doc := waitStatus(t, hc, base+"/openapi.json", http.StatusOK); strings.Contains(string(doc), `"/v1/hello/{name}"`) {
		t.Errorf("/openapi.json still lists the route of a stopped service")
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
