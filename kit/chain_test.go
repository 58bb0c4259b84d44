package kit_test

import (
	"context"
	"errors"
	"io"
	"net/http"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"

	"github.com/grpckit/grpckit/kit"
	"github.com/grpckit/grpckit/kit/duration"
	"github.com/grpckit/grpckit/kit/middleware/auth"
	"github.com/grpckit/grpckit/kit/middleware/ratelimit"
	"github.com/grpckit/grpckit/kit/middleware/telemetry"
	"github.com/grpckit/grpckit/kit/registry"
	"github.com/grpckit/grpckit/kit/registry/memory"
	greeterv1 "github.com/grpckit/grpckit/proto/greeter/v1"
	userv1 "github.com/grpckit/grpckit/proto/user/v1"
	"github.com/grpckit/grpckit/services/greeter"
	"github.com/grpckit/grpckit/services/user"
)

// serve starts srv on a loopback listener and shuts it down with the test.
func serve(t *testing.T, srv *kit.Server) string {
	t.Helper()
	lis := listen(t)
	served := make(chan error, 1)
	go func() { served <- srv.Serve(lis) }()
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		srv.Shutdown(ctx)
		<-served
	})
	deadline := time.Now().Add(5 * time.Second)
	for srv.AdminAddr() == nil { // the admin listener starts inside Serve
		if time.Now().After(deadline) {
			t.Fatal("admin listener not started")
		}
		time.Sleep(time.Millisecond)
	}
	return lis.Addr().String()
}

func newServer(t *testing.T, opts ...kit.ServerOption) *kit.Server {
	t.Helper()
	srv, err := kit.NewServer(append([]kit.ServerOption{kit.WithDrain(0), kit.WithLogger(quiet)}, opts...)...)
	if err != nil {
		t.Fatal(err)
	}
	return srv
}

func newClient(t *testing.T, target string, opts ...kit.ClientOption) *grpc.ClientConn {
	t.Helper()
	cc, err := kit.NewClient(target, opts...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cc.Close() })
	return cc
}

// TestOneTraceAcrossGreeterAndUser: a SayHello that looks a user up yields
// one trace holding the server spans of both services.
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

	store, err := user.OpenSQLite(t.Context(), filepath.Join(t.TempDir(), "users.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { store.Close() })
	userSrv := newServer(t, kit.WithRegistrar(reg, registry.Instance{Name: "user"}), kit.WithTelemetry(tel))
	userv1.RegisterUserServiceServer(userSrv, user.NewServer(store))
	serve(t, userSrv)

	users := userv1.NewUserServiceClient(newClient(t, "consul:///user", kit.WithDiscovery(reg), kit.WithTelemetry(tel)))
	greeterSrv := newServer(t, kit.WithRegistrar(reg, registry.Instance{Name: "greeter"}), kit.WithTelemetry(tel))
	greeterv1.RegisterGreeterServiceServer(greeterSrv, greeter.NewServer(users))
	serve(t, greeterSrv)

	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
	defer cancel()
	created, err := users.CreateUser(ctx, &userv1.CreateUserRequest{Name: "Ada", Email: "ada@example.com"}, grpc.WaitForReady(true))
	if err != nil {
		t.Fatal(err)
	}
	spans.Reset()
	id := created.GetUser().GetId()
	greeterClient := greeterv1.NewGreeterServiceClient(newClient(t, "consul:///greeter", kit.WithDiscovery(reg), kit.WithTelemetry(tel)))
	if _, err := greeterClient.SayHello(ctx, &greeterv1.SayHelloRequest{UserId: &id}, grpc.WaitForReady(true)); err != nil {
		t.Fatal(err)
	}

	// A server span ends after its response went out: wait for both.
	byName := map[string]sdktrace.ReadOnlySpan{}
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
			t.Fatalf("want server spans of SayHello and GetUser, got %v", keys(byName))
		}
		time.Sleep(time.Millisecond)
	}
	sayHello := byName["greeter.v1.GreeterService/SayHello/server"]
	getUser := byName["user.v1.UserService/GetUser/server"]
	if sayHello.SpanContext().TraceID() != getUser.SpanContext().TraceID() {
		t.Errorf("SayHello and GetUser are in different traces: %v, %v", sayHello.SpanContext().TraceID(), getUser.SpanContext().TraceID())
	}
	getUserClient := byName["user.v1.UserService/GetUser/client"]
	if getUserClient == nil || getUserClient.Parent().SpanID() != sayHello.SpanContext().SpanID() || getUser.Parent().SpanID() != getUserClient.SpanContext().SpanID() {
		t.Errorf("GetUser is not a child call of SayHello's server span: %v", keys(byName))
	}
}

func keys(m map[string]sdktrace.ReadOnlySpan) []string {
	var out []string
	for k := range m {
		out = append(out, k)
	}
	return out
}

// TestEveryLayerUnaryAndStream runs unary and streaming calls through both
// chains with every layer on: auth with a token, a rate limit, dedupe.
func TestEveryLayerUnaryAndStream(t *testing.T) {
	secret := strings.Repeat("k", 32)
	authn, err := auth.New(auth.Config{HMACSecret: secret, Leeway: duration.Duration(30 * time.Second)})
	if err != nil {
		t.Fatal(err)
	}
	limits, err := ratelimit.New(ratelimit.Config{RPS: 1000, Burst: 1000})
	if err != nil {
		t.Fatal(err)
	}
	srv := newServer(t, kit.WithAuth(authn), kit.WithRateLimit(limits))
	greeterv1.RegisterGreeterServiceServer(srv, greeter.NewServer(nil))
	addr := serve(t, srv)
	admin := "http://" + srv.AdminAddr().String()

	token, err := auth.IssueHS256(secret, "alice", time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	client := greeterv1.NewGreeterServiceClient(newClient(t, "passthrough:///"+addr,
		kit.WithPerRPCCredentials(auth.BearerToken(token, auth.AllowInsecure())),
		kit.WithDedupedMethods("/greeter.v1.GreeterService/SayHello")))
	ctx := t.Context()
	if resp, err := client.SayHello(ctx, &greeterv1.SayHelloRequest{Name: "Ada"}); err != nil || resp.GetMessage() != "Hello, Ada!" {
		t.Fatalf("SayHello = %v, %v", resp, err)
	}
	stream, err := client.StreamHellos(ctx, &greeterv1.StreamHellosRequest{Name: "Ada", Count: 5})
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for {
		_, err := stream.Recv()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			t.Fatalf("stream: %v", err)
		}
		n++
	}
	if n != 5 {
		t.Errorf("stream gave %d messages, want 5", n)
	}

	anonymous := greeterv1.NewGreeterServiceClient(newClient(t, "passthrough:///"+addr))
	if _, err := anonymous.SayHello(ctx, &greeterv1.SayHelloRequest{Name: "x"}); status.Code(err) != codes.Unauthenticated {
		t.Errorf("call without a token = %v, want Unauthenticated", err)
	}
	s, err := anonymous.StreamHellos(ctx, &greeterv1.StreamHellosRequest{Name: "x"})
	if err == nil {
		_, err = s.Recv()
	}
	if status.Code(err) != codes.Unauthenticated {
		t.Errorf("stream without a token = %v, want Unauthenticated", err)
	}

	// The admin listener exposes the calls' metrics.
	resp, err := http.Get(admin + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if !strings.Contains(string(body), "rpc_server_call_duration_seconds") || !strings.Contains(string(body), `rpc_method="greeter.v1.GreeterService/StreamHellos"`) {
		t.Errorf("/metrics lacks the server call metrics:\n%.2000s", body)
	}
}

// TestWithoutLayers: a server and client with every layer off still serve.
func TestWithoutLayers(t *testing.T) {
	all := []kit.Layer{kit.LayerTelemetry, kit.LayerRecovery, kit.LayerLogging, kit.LayerRateLimit, kit.LayerTimeout,
		kit.LayerAuth, kit.LayerDedupe, kit.LayerRetry, kit.LayerBreaker}
	srv := newServer(t, kit.WithoutLayers(all...))
	greeterv1.RegisterGreeterServiceServer(srv, greeter.NewServer(nil))
	addr := serve(t, srv)
	for _, l := range all {
		if obj := srv.Layer(l); obj != nil {
			t.Errorf("layer %s still on: %T", l, obj)
		}
	}
	client := greeterv1.NewGreeterServiceClient(newClient(t, "passthrough:///"+addr, kit.WithoutLayers(all...)))
	if _, err := client.SayHello(t.Context(), &greeterv1.SayHelloRequest{Name: "x"}); err != nil {
		t.Fatal(err)
	}
	resp, err := http.Get("http://" + srv.AdminAddr().String() + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusNotFound {
		t.Errorf("/metrics without telemetry = %d, want 404", resp.StatusCode)
	}
}

func TestLayerOptionErrors(t *testing.T) {
	authn, err := auth.New(auth.Config{HMACSecret: strings.Repeat("k", 32), Leeway: duration.Duration(time.Second)})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := kit.NewServer(kit.WithAuth(authn), kit.WithoutLayers(kit.LayerAuth), kit.WithLogger(quiet)); err == nil {
		t.Error("NewServer accepted auth both given and turned off")
	}
	if _, err := kit.NewServer(kit.WithoutLayers("Auth"), kit.WithLogger(quiet)); err == nil || !strings.Contains(err.Error(), "unknown layer") {
		t.Errorf("NewServer with an unknown layer = %v, want an error naming it", err)
	}
	if cc, err := kit.NewClient("passthrough:///x", kit.WithDedupedMethods("CreateUser")); err == nil {
		cc.Close()
		t.Error("NewClient accepted a malformed deduped method")
	}
}

// hopGreeter answers SayHello by calling next with the server's own
// context, as a kit handler must for traces and the retry chain stop.
type hopGreeter struct {
	greeterv1.UnimplementedGreeterServiceServer
	next greeterv1.GreeterServiceClient
}

func (h hopGreeter) SayHello(ctx context.Context, req *greeterv1.SayHelloRequest) (*greeterv1.SayHelloResponse, error) {
	return h.next.SayHello(ctx, req)
}

// countingFault fails calls with UNAVAILABLE while fail says so, counting
// calls and recording their request ids.
type countingFault struct {
	calls atomic.Int32
	fail  func(n int32) bool
	ids   chan string
}

func (f *countingFault) intercept(ctx context.Context, req any, _ *grpc.UnaryServerInfo, h grpc.UnaryHandler) (any, error) {
	n := f.calls.Add(1)
	if f.ids != nil {
		id := ""
		if v := metadata.ValueFromIncomingContext(ctx, "grpckit-request-id"); len(v) > 0 {
			id = v[0]
		}
		f.ids <- id
	}
	if f.fail(n) {
		return nil, status.Error(codes.Unavailable, "down")
	}
	return h(ctx, req)
}

// TestRetryChainStopAcrossKitHops: client → A → B with B down. A's first
// attempt may retry B; A's retried attempts carry the mark and do not, so B
// sees 3 + 1 + 1 calls instead of 3 x 3. (The A → B client's breaker is off:
// it would open after 5 failures and cut the calls to B on its own.)
func TestRetryChainStopAcrossKitHops(t *testing.T) {
	for _, tc := range []struct {
		name    string
		aLayers []kit.ServerOption
		want    int32
	}{
		{"chain stop", nil, 5},
		{"without the retry layer on A", []kit.ServerOption{kit.WithoutLayers(kit.LayerRetry)}, 9},
	} {
		t.Run(tc.name, func(t *testing.T) {
			fault := &countingFault{fail: func(int32) bool { return true }}
			b := newServer(t, kit.WithGRPCServerOptions(grpc.UnaryInterceptor(fault.intercept)))
			greeterv1.RegisterGreeterServiceServer(b, greeter.NewServer(nil))
			bAddr := serve(t, b)

			toB := greeterv1.NewGreeterServiceClient(newClient(t, "passthrough:///"+bAddr, kit.WithoutLayers(kit.LayerBreaker)))
			a := newServer(t, tc.aLayers...)
			greeterv1.RegisterGreeterServiceServer(a, hopGreeter{next: toB})
			aAddr := serve(t, a)

			client := greeterv1.NewGreeterServiceClient(newClient(t, "passthrough:///"+aAddr))
			_, err := client.SayHello(t.Context(), &greeterv1.SayHelloRequest{Name: "x"})
			if status.Code(err) != codes.Unavailable {
				t.Fatalf("call through A to a down B = %v, want UNAVAILABLE", err)
			}
			if got := fault.calls.Load(); got != tc.want {
				t.Errorf("B got %d calls, want %d", got, tc.want)
			}
		})
	}
}

// TestRequestIDStableAcrossRetries: a deduplicated method keeps its request
// id through kit's retry layer.
func TestRequestIDStableAcrossRetries(t *testing.T) {
	fault := &countingFault{fail: func(n int32) bool { return n == 1 }, ids: make(chan string, 4)}
	srv := newServer(t, kit.WithGRPCServerOptions(grpc.UnaryInterceptor(fault.intercept)))
	greeterv1.RegisterGreeterServiceServer(srv, greeter.NewServer(nil))
	addr := serve(t, srv)
	client := greeterv1.NewGreeterServiceClient(newClient(t, "passthrough:///"+addr,
		kit.WithDedupedMethods("/greeter.v1.GreeterService/SayHello")))
	if _, err := client.SayHello(t.Context(), &greeterv1.SayHelloRequest{Name: "x"}); err != nil {
		t.Fatalf("SayHello after one retry: %v", err)
	}
	first, second := <-fault.ids, <-fault.ids
	if first == "" || first != second {
		t.Errorf("request ids %q then %q, want one id on both attempts", first, second)
	}
}
