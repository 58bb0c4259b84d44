package kit_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	"go.opentelemetry.io/otel/trace"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/grpckit/grpckit/kit"
	"github.com/grpckit/grpckit/kit/duration"
	"github.com/grpckit/grpckit/kit/internal/kittest"
	testpbv1 "github.com/grpckit/grpckit/kit/internal/testpb/v1"
	"github.com/grpckit/grpckit/kit/middleware/auth"
	"github.com/grpckit/grpckit/kit/middleware/ratelimit"
	"github.com/grpckit/grpckit/kit/middleware/telemetry"
	"github.com/grpckit/grpckit/kit/registry"
	"github.com/grpckit/grpckit/kit/registry/memory"
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
	// The admin listener starts inside Serve.
	kittest.WaitFor(t, "the admin listener", func() bool { return srv.AdminAddr() != nil })
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

// TestOneTraceAcrossKitHops: a call to a kit server that calls another
// one through discovery yields one trace in which the second server's span
// is a child of the first one's outgoing call, itself a child of the first
// server's span.
func TestOneTraceAcrossKitHops(t *testing.T) {
	spans := tracetest.NewInMemoryExporter()
	cfg := telemetry.DefaultConfig()
	cfg.ServiceName, cfg.TracesSampler = "test", "always_on"
	tel, err := telemetry.New(t.Context(), cfg, telemetry.WithSyncSpanExporter(spans))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { tel.Shutdown(context.Background()) })
	reg := memory.New()

	backSrv := newServer(t, kit.WithRegistrar(reg, registry.Instance{Name: "back"}), kit.WithTelemetry(tel))
	(&kittest.Service{Name: "back"}).Register(backSrv)
	serve(t, backSrv)
	toBack := testpbv1.NewTestServiceClient(newClient(t, "consul:///back", kit.WithDiscovery(reg), kit.WithTelemetry(tel)))
	frontSrv := newServer(t, kit.WithRegistrar(reg, registry.Instance{Name: "front"}), kit.WithTelemetry(tel))
	(&kittest.Service{Name: "front", Next: toBack}).Register(frontSrv)
	serve(t, frontSrv)

	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
	defer cancel()
	front := testpbv1.NewTestServiceClient(newClient(t, "consul:///front", kit.WithDiscovery(reg), kit.WithTelemetry(tel)))
	resp, err := front.Echo(ctx, &testpbv1.EchoRequest{Message: "x"}, grpc.WaitForReady(true))
	if err != nil || resp.GetServer() != "back" {
		t.Fatalf("Echo through front = %v, %v; want back's answer", resp, err)
	}

	// A server span ends after its response went out: wait for both. (A
	// hop retried on a loaded machine, its first attempt refused while the
	// endpoint was not yet ready, has a span per attempt: at least two.)
	var all []sdktrace.ReadOnlySpan
	count := func(kind trace.SpanKind) int {
		n := 0
		for _, s := range all {
			if s.SpanKind() == kind && s.Name() == "testpb.v1.TestService/Echo" {
				n++
			}
		}
		return n
	}
	kittest.WaitFor(t, "the client and server spans of both hops", func() bool {
		all = spans.GetSpans().Snapshots()
		return count(trace.SpanKindServer) >= 2 && count(trace.SpanKindClient) >= 2
	})
	bySpanID := map[trace.SpanID]sdktrace.ReadOnlySpan{}
	for _, s := range all {
		bySpanID[s.SpanContext().SpanID()] = s
		if s.SpanContext().TraceID() != all[0].SpanContext().TraceID() {
			t.Errorf("span %s %v is in trace %v, not %v", s.Name(), s.SpanKind(), s.SpanContext().TraceID(), all[0].SpanContext().TraceID())
		}
	}
	// back's server span <- front's client span <- front's server span.
	linked := false
	for _, back := range all {
		hop, ok := bySpanID[back.Parent().SpanID()]
		if back.SpanKind() != trace.SpanKindServer || !ok || hop.SpanKind() != trace.SpanKindClient {
			continue
		}
		if front, ok := bySpanID[hop.Parent().SpanID()]; ok && front.SpanKind() == trace.SpanKindServer {
			linked = true
		}
	}
	if !linked {
		t.Errorf("the second hop is not a child call of the first server's span: %v", describe(all))
	}
}

// describe names spans with their kind and parent, for failure messages.
func describe(spans []sdktrace.ReadOnlySpan) []string {
	var out []string
	for _, s := range spans {
		out = append(out, fmt.Sprintf("%s/%v %v<-%v", s.Name(), s.SpanKind(), s.SpanContext().SpanID(), s.Parent().SpanID()))
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
	(&kittest.Service{}).Register(srv)
	addr := serve(t, srv)
	admin := "http://" + srv.AdminAddr().String()

	token, err := auth.IssueHS256(secret, "alice", time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	client := testpbv1.NewTestServiceClient(newClient(t, "passthrough:///"+addr,
		kit.WithPerRPCCredentials(auth.BearerToken(token, auth.AllowInsecure())),
		kit.WithDedupedMethods("/testpb.v1.TestService/Echo")))
	ctx := t.Context()
	if resp, err := client.Echo(ctx, &testpbv1.EchoRequest{Message: "Ada"}); err != nil || resp.GetMessage() != "Ada" {
		t.Fatalf("Echo = %v, %v", resp, err)
	}
	stream, err := client.EchoStream(ctx, &testpbv1.EchoStreamRequest{Message: "Ada", Count: 5})
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

	anonymous := testpbv1.NewTestServiceClient(newClient(t, "passthrough:///"+addr))
	if _, err := anonymous.Echo(ctx, &testpbv1.EchoRequest{Message: "x"}); status.Code(err) != codes.Unauthenticated {
		t.Errorf("call without a token = %v, want Unauthenticated", err)
	}
	s, err := anonymous.EchoStream(ctx, &testpbv1.EchoStreamRequest{Message: "x"})
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
	if !strings.Contains(string(body), "rpc_server_call_duration_seconds") || !strings.Contains(string(body), `rpc_method="testpb.v1.TestService/EchoStream"`) {
		t.Errorf("/metrics lacks the server call metrics:\n%.2000s", body)
	}
}

// TestWithoutLayers: a server and client with every layer off still serve.
func TestWithoutLayers(t *testing.T) {
	all := []kit.Layer{kit.LayerTelemetry, kit.LayerRecovery, kit.LayerLogging, kit.LayerRateLimit, kit.LayerTimeout,
		kit.LayerAuth, kit.LayerDedupe, kit.LayerRetry, kit.LayerBreaker}
	srv := newServer(t, kit.WithoutLayers(all...))
	(&kittest.Service{}).Register(srv)
	addr := serve(t, srv)
	for _, l := range all {
		if obj := srv.Layer(l); obj != nil {
			t.Errorf("layer %s still on: %T", l, obj)
		}
	}
	client := testpbv1.NewTestServiceClient(newClient(t, "passthrough:///"+addr, kit.WithoutLayers(all...)))
	if _, err := client.Echo(t.Context(), &testpbv1.EchoRequest{Message: "x"}); err != nil {
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
	if cc, err := kit.NewClient("passthrough:///x", kit.WithDedupedMethods("Create")); err == nil {
		cc.Close()
		t.Error("NewClient accepted a malformed deduped method")
	}
}

// TestRetryChainStopAcrossKitHops: client → A → B with B down. A's first
// attempt may retry B; A's retried attempts carry the mark and do not, so B
// sees 3 + 1 + 1 calls instead of 3 x 3. (The A → B client's breaker is off:
// it would open after 5 failures and cut the calls to B on its own.)
func TestRetryChainStopAcrossKitHops(t *testing.T) {
	for _, tc := range []struct {
		name    string
		aLayers []kit.ServerOption
		want    int
	}{
		{"chain stop", nil, 5},
		{"without the retry layer on A", []kit.ServerOption{kit.WithoutLayers(kit.LayerRetry)}, 9},
	} {
		t.Run(tc.name, func(t *testing.T) {
			down := &kittest.Service{}
			down.Fail(status.Error(codes.Unavailable, "down"))
			b := newServer(t)
			down.Register(b)
			bAddr := serve(t, b)

			// A relays its calls to B with the server's own context, as a
			// kit handler must for traces and the retry chain stop.
			toB := testpbv1.NewTestServiceClient(newClient(t, "passthrough:///"+bAddr, kit.WithoutLayers(kit.LayerBreaker)))
			a := newServer(t, tc.aLayers...)
			(&kittest.Service{Next: toB}).Register(a)
			aAddr := serve(t, a)

			client := testpbv1.NewTestServiceClient(newClient(t, "passthrough:///"+aAddr))
			_, err := client.Echo(t.Context(), &testpbv1.EchoRequest{Message: "x"})
			if status.Code(err) != codes.Unavailable {
				t.Fatalf("call through A to a down B = %v, want UNAVAILABLE", err)
			}
			if got := down.Calls(); got != tc.want {
				t.Errorf("B got %d calls, want %d", got, tc.want)
			}
		})
	}
}

// TestRequestIDStableAcrossRetries: a deduplicated method keeps its request
// id through kit's retry layer.
func TestRequestIDStableAcrossRetries(t *testing.T) {
	svc := &kittest.Service{}
	svc.FailNext(1, status.Error(codes.Unavailable, "down"))
	srv := newServer(t)
	svc.Register(srv)
	addr := serve(t, srv)
	client := testpbv1.NewTestServiceClient(newClient(t, "passthrough:///"+addr,
		kit.WithDedupedMethods("/testpb.v1.TestService/Echo")))
	if _, err := client.Echo(t.Context(), &testpbv1.EchoRequest{Message: "x"}); err != nil {
		t.Fatalf("Echo after one retry: %v", err)
	}
	md := svc.Metadata()
	if len(md) != 2 {
		t.Fatalf("%d calls reached the server, want 2", len(md))
	}
	first, second := strings.Join(md[0].Get("grpckit-request-id"), ","), strings.Join(md[1].Get("grpckit-request-id"), ",")
	if first == "" || first != second {
		t.Errorf("request ids %q then %q, want one id on both attempts", first, second)
	}
}

// TestUnknownMethodsThroughTheChain: a call to a method no service has is
// answered UNIMPLEMENTED with grpc-go's own messages, and goes through the
// server's chain, so that it is counted in the server's call metrics, under
// the one rpc.method "_OTHER".
func TestUnknownMethodsThroughTheChain(t *testing.T) {
	srv := newServer(t, kit.WithAdminAddress("127.0.0.1:0"))
	testpbv1.RegisterTestServiceServer(srv, &kittest.Service{Name: "a"})
	addr := serve(t, srv)
	cc := newClient(t, "passthrough:///"+addr)
	for _, c := range []struct{ method, msg string }{
		{"/testpb.v1.TestService/Nope", "unknown method Nope for service testpb.v1.TestService"},
		{"/no.such.Service/Call", "unknown service no.such.Service"},
		{"/a/b/c", "unknown service a/b"},
	} {
		err := cc.Invoke(t.Context(), c.method, &testpbv1.EchoRequest{}, &testpbv1.EchoResponse{})
		if st := status.Convert(err); st.Code() != codes.Unimplemented || st.Message() != c.msg {
			t.Errorf("%s: %v, want UNIMPLEMENTED %q", c.method, err, c.msg)
		}
	}
	// Counted under one rpc.method: the names are the caller's, and would
	// make a series each.
	body := adminBody(t, srv)
	if want := `rpc_method="_OTHER",rpc_response_status_code="UNIMPLEMENTED"`; !strings.Contains(body, want) {
		t.Errorf("/metrics lacks %s", want)
	}
	for _, m := range []string{"Nope", "no.such.Service", "a/b"} {
		if strings.Contains(body, m) {
			t.Errorf("/metrics names the unknown method %q", m)
		}
	}
}

// adminBody returns srv's /metrics.
func adminBody(t *testing.T, srv *kit.Server) string {
	t.Helper()
	resp, err := http.Get("http://" + srv.AdminAddr().String() + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return string(body)
}
