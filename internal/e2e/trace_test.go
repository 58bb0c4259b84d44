package e2e

import (
	"context"
	"path/filepath"
	"testing"
	"time"

	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	"google.golang.org/grpc"

	"github.com/grpckit/grpckit/kit"
	"github.com/grpckit/grpckit/kit/middleware/telemetry"
	"github.com/grpckit/grpckit/kit/registry"
	"github.com/grpckit/grpckit/kit/registry/memory"
	greeterv1 "github.com/grpckit/grpckit/proto/greeter/v1"
	userv1 "github.com/grpckit/grpckit/proto/user/v1"
	"github.com/grpckit/grpckit/services/greeter"
	"github.com/grpckit/grpckit/services/user"
)

// TestOneTraceAcrossGreeterAndUser: a SayHello that looks a user up yields
// one trace holding the server spans of both services. The in-memory
// registry stands in for Consul.
func TestOneTraceAcrossGreeterAndUser(t *testing.T) {
	spans := tracetest.NewInMemoryExporter()
	cfg := telemetry.DefaultConfig()
	cfg.ServiceName, cfg.TracesSampler = "test", "always_on"
	tel, err := telemetry.New(t.Context(), cfg, telemetry.WithSyncSpanExporter(spans))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { tel.Shutdown(context.Background()) })
	reg := memory.New()

	// serve starts a kit server registered as name, with register adding
	// the service; it stops with the test.
	serve := func(name string, register func(*kit.Server)) {
		t.Helper()
		srv, err := kit.NewServer(kit.WithRegistrar(reg, registry.Instance{Name: name}), kit.WithTelemetry(tel),
			kit.WithDrain(0), kit.WithAdminAddress(""), kit.WithLogger(quiet))
		if err != nil {
			t.Fatal(err)
		}
		register(srv)
		serveOn(t, srv, false)
	}
	client := func(target string) *grpc.ClientConn {
		t.Helper()
		cc, err := kit.NewClient(target, kit.WithDiscovery(reg), kit.WithTelemetry(tel))
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { cc.Close() })
		return cc
	}

	store, err := user.OpenSQLite(t.Context(), filepath.Join(t.TempDir(), "users.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { store.Close() }) // after the server stopped (cleanups run last-in first-out)
	serve("user", func(srv *kit.Server) {
		userv1.RegisterUserServiceServer(srv, user.NewServer(store, user.WithLogger(quiet)))
	})
	users := userv1.NewUserServiceClient(client("consul:///user"))
	serve("greeter", func(srv *kit.Server) { greeterv1.RegisterGreeterServiceServer(srv, greeter.NewServer(users)) })

	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
	defer cancel()
	created, err := users.CreateUser(ctx, &userv1.CreateUserRequest{Name: "Ada", Email: "ada@example.com"}, grpc.WaitForReady(true))
	if err != nil {
		t.Fatal(err)
	}
	spans.Reset()
	id := created.GetUser().GetId()
	greeterClient := greeterv1.NewGreeterServiceClient(client("consul:///greeter"))
	if _, err := greeterClient.SayHello(ctx, &greeterv1.SayHelloRequest{UserId: &id}, grpc.WaitForReady(true)); err != nil {
		t.Fatal(err)
	}

	// A server span ends after its response went out: wait for both.
	byName := map[string]sdktrace.ReadOnlySpan{}
	tick := time.NewTicker(time.Millisecond)
	defer tick.Stop()
	deadline := time.Now().Add(5 * time.Second)
	for {
		for _, s := range spans.GetSpans().Snapshots() {
			byName[s.Name()+"/"+s.SpanKind().String()] = s
		}
		_, ok1 := byName["greeter.v1.GreeterService/SayHello/server"]
		_, ok2 := byName["user.v1.UserService/GetUser/server"]
		if ok1 && ok2 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("want server spans of SayHello and GetUser, got %v", spanNames(byName))
		}
		<-tick.C
	}
	sayHello := byName["greeter.v1.GreeterService/SayHello/server"]
	getUser := byName["user.v1.UserService/GetUser/server"]
	if sayHello.SpanContext().TraceID() != getUser.SpanContext().TraceID() {
		t.Errorf("SayHello and GetUser are in different traces: %v, %v", sayHello.SpanContext().TraceID(), getUser.SpanContext().TraceID())
	}
	getUserClient := byName["user.v1.UserService/GetUser/client"]
	if getUserClient == nil || getUserClient.Parent().SpanID() != sayHello.SpanContext().SpanID() || getUser.Parent().SpanID() != getUserClient.SpanContext().SpanID() {
		t.Errorf("GetUser is not a child call of SayHello's server span: %v", spanNames(byName))
	}
}

func spanNames(m map[string]sdktrace.ReadOnlySpan) []string {
	var out []string
	for k := range m {
		out = append(out, k)
	}
	return out
}
