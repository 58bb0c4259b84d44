package telemetry

import (
	"context"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"go.opentelemetry.io/otel/baggage"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	"go.opentelemetry.io/otel/trace"
	"go.uber.org/goleak"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	testgrpc "google.golang.org/grpc/interop/grpc_testing"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"

	"github.com/grpckit/grpckit/kit/internal/kittest"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// fakeEnv is an environment with only the given variables.
func fakeEnv(vars map[string]string) Option {
	return WithEnv(func(k string) string { return vars[k] })
}

// testConfig is the default config with a service name.
func testConfig(name string) Config {
	c := DefaultConfig()
	c.ServiceName = name
	return c
}

func newTelemetry(t *testing.T, cfg Config, opts ...Option) *Telemetry {
	t.Helper()
	tel, err := New(t.Context(), cfg, opts...)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		if err := tel.Shutdown(ctx); err != nil {
			t.Errorf("Shutdown: %v", err)
		}
	})
	return tel
}

// testServer answers UnaryCall with handle (or an empty response).
type testServer struct {
	testgrpc.UnimplementedTestServiceServer
	handle func(ctx context.Context) error
}

func (s *testServer) UnaryCall(ctx context.Context, req *testgrpc.SimpleRequest) (*testgrpc.SimpleResponse, error) {
	if st := req.GetResponseStatus(); st != nil {
		return nil, status.Error(codes.Code(st.GetCode()), st.GetMessage())
	}
	if s.handle != nil {
		if err := s.handle(ctx); err != nil {
			return nil, err
		}
	}
	return &testgrpc.SimpleResponse{}, nil
}

// serve starts srv over bufconn with tel's server options (nil: none) and
// returns a client connection with tel's dial options.
func serve(t testing.TB, srv testgrpc.TestServiceServer, tel *Telemetry) *grpc.ClientConn {
	t.Helper()
	var sopts []grpc.ServerOption
	var dopts []grpc.DialOption
	if tel != nil {
		sopts, dopts = tel.ServerOptions(), tel.DialOptions()
	}
	return kittest.Serve(t, func(s grpc.ServiceRegistrar) { testgrpc.RegisterTestServiceServer(s, srv) }, sopts, dopts...)
}

func scrape(t *testing.T, h http.Handler) string {
	t.Helper()
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/metrics", nil))
	if rec.Code != http.StatusOK {
		t.Fatalf("GET /metrics: status %d", rec.Code)
	}
	return rec.Body.String()
}

// metricLines returns the sample lines of metric family name.
func metricLines(body, name string) []string {
	var out []string
	for line := range strings.SplitSeq(body, "\n") {
		if strings.HasPrefix(line, name+"{") || strings.HasPrefix(line, name+" ") {
			out = append(out, line)
		}
	}
	return out
}

func TestDefaultRecordsNoSpanAndExposesMetrics(t *testing.T) {
	tel := newTelemetry(t, testConfig("svc"), fakeEnv(nil))
	if got := tel.TracesExporter(); got != ExporterNone {
		t.Errorf("TracesExporter() = %q, want %q", got, ExporterNone)
	}

	// The caller already is inside a trace (as a service called by a traced
	// service would be): no span is recorded here, but the trace context
	// still flows through to the handler.
	callerSC := trace.NewSpanContext(trace.SpanContextConfig{
		TraceID:    trace.TraceID{1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16},
		SpanID:     trace.SpanID{1, 2, 3, 4, 5, 6, 7, 8},
		TraceFlags: trace.FlagsSampled,
	})
	type seen struct {
		Recording bool
		TraceID   string
		Baggage   string
	}
	got := make(chan seen, 1)
	srv := &testServer{handle: func(ctx context.Context) error {
		span := trace.SpanFromContext(ctx)
		got <- seen{span.IsRecording(), span.SpanContext().TraceID().String(), baggage.FromContext(ctx).Member("tenant").Value()}
		return nil
	}}
	cc := serve(t, srv, tel)
	member, err := baggage.NewMember("tenant", "acme")
	if err != nil {
		t.Fatal(err)
	}
	bag, err := baggage.New(member)
	if err != nil {
		t.Fatal(err)
	}
	ctx := baggage.ContextWithBaggage(trace.ContextWithSpanContext(t.Context(), callerSC), bag)
	if _, err := testgrpc.NewTestServiceClient(cc).UnaryCall(ctx, &testgrpc.SimpleRequest{}); err != nil {
		t.Fatalf("UnaryCall: %v", err)
	}
	want := seen{Recording: false, TraceID: callerSC.TraceID().String(), Baggage: "acme"}
	if diff := cmp.Diff(want, <-got); diff != "" {
		t.Errorf("server span (-want +got):\n%s", diff)
	}
	if trace.SpanFromContext(ctx).IsRecording() {
		t.Error("client span is recording")
	}

	// The client records its histogram before UnaryCall returns; the server
	// records its own when its handler returns, which may come a moment
	// later than the client's return: poll the scrape.
	const method = `rpc_method="grpc.testing.TestService/UnaryCall"`
	deadline := time.Now().Add(5 * time.Second)
	for {
		body := scrape(t, tel.MetricsHandler())
		var missing []string
		for _, name := range []string{
			"rpc_server_call_duration_seconds_count",
			"rpc_client_call_duration_seconds_count",
		} {
			lines := metricLines(body, name)
			if len(lines) != 1 || !strings.Contains(lines[0], method) || !strings.HasSuffix(lines[0], " 1") {
				missing = append(missing, name)
			}
		}
		for _, name := range []string{"go_goroutines", "target_info"} {
			if len(metricLines(body, name)) == 0 {
				missing = append(missing, name)
			}
		}
		if len(missing) == 0 {
			if !strings.Contains(body, `service_name="svc"`) {
				t.Errorf("target_info lacks service_name=\"svc\":\n%s", strings.Join(metricLines(body, "target_info"), "\n"))
			}
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("/metrics lacks %v; body:\n%s", missing, body)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func TestMetricsOff(t *testing.T) {
	cfg := testConfig("svc")
	cfg.Metrics = false
	tel := newTelemetry(t, cfg, fakeEnv(nil))
	cc := serve(t, &testServer{}, tel)
	if _, err := testgrpc.NewTestServiceClient(cc).UnaryCall(t.Context(), &testgrpc.SimpleRequest{}); err != nil {
		t.Fatalf("UnaryCall: %v", err)
	}
	if body := scrape(t, tel.MetricsHandler()); strings.Contains(body, "rpc_") {
		t.Errorf("/metrics with metrics off has RPC metrics:\n%s", body)
	}
}

// TestTwoHopTrace calls A, whose handler calls B with its own ctx: the four
// spans (client->A, A, A->B, B) form one trace, each the parent of the next.
func TestTwoHopTrace(t *testing.T) {
	exp := tracetest.NewInMemoryExporter()
	tel := newTelemetry(t, testConfig("svc"), fakeEnv(nil), WithSyncSpanExporter(exp))
	if got := tel.TracesExporter(); got != ExporterCustom {
		t.Errorf("TracesExporter() = %q, want %q", got, ExporterCustom)
	}

	ccB := serve(t, &testServer{}, tel)
	clientB := testgrpc.NewTestServiceClient(ccB)
	ccA := serve(t, &testServer{handle: func(ctx context.Context) error {
		_, err := clientB.UnaryCall(ctx, &testgrpc.SimpleRequest{})
		return err
	}}, tel)
	if _, err := testgrpc.NewTestServiceClient(ccA).UnaryCall(t.Context(), &testgrpc.SimpleRequest{}); err != nil {
		t.Fatalf("UnaryCall: %v", err)
	}

	// Server spans end when the server's End event fires, which can follow
	// the client's return: wait for all four.
	var spans tracetest.SpanStubs
	kittest.WaitFor(t, "four spans", func() bool { spans = exp.GetSpans(); return len(spans) >= 4 })
	if len(spans) != 4 {
		t.Fatalf("got %d spans, want 4: %v", len(spans), spans)
	}
	byKind := map[trace.SpanKind][]tracetest.SpanStub{}
	traceIDs := map[trace.TraceID]bool{}
	for _, s := range spans {
		byKind[s.SpanKind] = append(byKind[s.SpanKind], s)
		traceIDs[s.SpanContext.TraceID()] = true
		if s.Name != "grpc.testing.TestService/UnaryCall" {
			t.Errorf("span name %q", s.Name)
		}
	}
	if len(traceIDs) != 1 {
		t.Errorf("spans belong to %d traces, want 1", len(traceIDs))
	}
	if len(byKind[trace.SpanKindClient]) != 2 || len(byKind[trace.SpanKindServer]) != 2 {
		t.Fatalf("want 2 client and 2 server spans, got %v", byKind)
	}
	// Chain: root client span -> server A -> client A->B -> server B.
	parentOf := map[trace.SpanID]trace.SpanID{}
	var root trace.SpanID
	for _, s := range spans {
		if !s.Parent.IsValid() {
			root = s.SpanContext.SpanID()
			continue
		}
		parentOf[s.Parent.SpanID()] = s.SpanContext.SpanID()
	}
	var chain []trace.SpanKind
	for id, ok := root, root.IsValid(); ok; id, ok = parentOf[id] {
		for _, s := range spans {
			if s.SpanContext.SpanID() == id {
				chain = append(chain, s.SpanKind)
			}
		}
	}
	want := []trace.SpanKind{trace.SpanKindClient, trace.SpanKindServer, trace.SpanKindClient, trace.SpanKindServer}
	if diff := cmp.Diff(want, chain); diff != "" {
		t.Errorf("span chain from the root (-want +got):\n%s", diff)
	}
	for _, s := range spans {
		v, ok := s.Resource.Set().Value("service.name")
		if !ok || v.AsString() != "svc" {
			t.Errorf("span resource service.name = %v, want svc", v.AsString())
		}
	}
}

// closedPort returns a loopback address where nothing listens.
func closedPort(t *testing.T) string {
	t.Helper()
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := lis.Addr().String()
	_ = lis.Close()
	return addr
}

func TestExporterFromEnv(t *testing.T) {
	// WithEnv replaces the process environment as a whole: an exporter the
	// process environment names does not count.
	t.Setenv("OTEL_TRACES_EXPORTER", "console")
	addr := closedPort(t)
	for _, tc := range []struct {
		name string
		env  map[string]string
		want string
	}{
		{"nothing", nil, ExporterNone},
		{"otlp with endpoint", map[string]string{
			"OTEL_TRACES_EXPORTER":        "otlp",
			"OTEL_EXPORTER_OTLP_ENDPOINT": "http://" + addr,
		}, ExporterOTLP},
		{"endpoint alone", map[string]string{"OTEL_EXPORTER_OTLP_ENDPOINT": "http://" + addr}, ExporterOTLP},
		{"traces endpoint alone", map[string]string{"OTEL_EXPORTER_OTLP_TRACES_ENDPOINT": "http://" + addr + "/v1/traces"}, ExporterOTLP},
		{"otlp grpc", map[string]string{
			"OTEL_EXPORTER_OTLP_ENDPOINT": "http://" + addr,
			"OTEL_EXPORTER_OTLP_PROTOCOL": "grpc",
		}, ExporterOTLP},
		{"none wins over endpoint", map[string]string{
			"OTEL_TRACES_EXPORTER":        "none",
			"OTEL_EXPORTER_OTLP_ENDPOINT": "http://" + addr,
		}, ExporterNone},
		{"sdk disabled", map[string]string{
			"OTEL_SDK_DISABLED":           "true",
			"OTEL_EXPORTER_OTLP_ENDPOINT": "http://" + addr,
		}, ExporterNone},
	} {
		t.Run(tc.name, func(t *testing.T) {
			tel, err := New(t.Context(), testConfig("svc"), fakeEnv(tc.env))
			if err != nil {
				t.Fatalf("New: %v", err)
			}
			if got := tel.TracesExporter(); got != tc.want {
				t.Errorf("TracesExporter() = %q, want %q", got, tc.want)
			}
			_, span := tel.TracerProvider().Tracer("test").Start(t.Context(), "op")
			if got, want := span.IsRecording(), tc.want != ExporterNone; got != want {
				t.Errorf("span.IsRecording() = %v, want %v", got, want)
			}
			span.End()

			// The exporter cannot reach its collector: Shutdown gives up
			// when ctx ends rather than retrying for its full timeout.
			ctx, cancel := context.WithTimeout(t.Context(), 300*time.Millisecond)
			defer cancel()
			start := time.Now()
			_ = tel.Shutdown(ctx)
			if d := time.Since(start); d > 3*time.Second {
				t.Errorf("Shutdown took %v with a 300ms deadline", d)
			}
		})
	}
}

func TestNewRejectsBadEnv(t *testing.T) {
	for _, tc := range []struct {
		name string
		env  map[string]string
	}{
		{"unknown exporter", map[string]string{"OTEL_TRACES_EXPORTER": "zipkin-ish"}},
		{"unknown protocol", map[string]string{"OTEL_EXPORTER_OTLP_ENDPOINT": "http://127.0.0.1:1", "OTEL_EXPORTER_OTLP_PROTOCOL": "carrier-pigeon"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if tel, err := New(t.Context(), testConfig("svc"), fakeEnv(tc.env)); err == nil {
				_ = tel.Shutdown(t.Context())
				t.Fatal("New succeeded")
			}
		})
	}
}

func TestSamplerFromEnv(t *testing.T) {
	exp := tracetest.NewInMemoryExporter()
	cfg := testConfig("svc")
	cfg.TracesSampler = ""
	tel := newTelemetry(t, cfg, fakeEnv(map[string]string{"OTEL_TRACES_SAMPLER": "always_off"}), WithSyncSpanExporter(exp))
	_, span := tel.TracerProvider().Tracer("test").Start(t.Context(), "op")
	if span.IsRecording() {
		t.Error("span recorded under OTEL_TRACES_SAMPLER=always_off")
	}
	span.End()
}

// countingExporter counts the spans it got and its shutdowns.
type countingExporter struct {
	mu        sync.Mutex
	spans     int
	shutdowns int
}

var _ sdktrace.SpanExporter = (*countingExporter)(nil)

func (e *countingExporter) ExportSpans(_ context.Context, spans []sdktrace.ReadOnlySpan) error {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.spans += len(spans)
	return nil
}

func (e *countingExporter) Shutdown(context.Context) error {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.shutdowns++
	return nil
}

func TestShutdownFlushesOnce(t *testing.T) {
	exp := &countingExporter{}
	tel, err := New(t.Context(), testConfig("svc"), fakeEnv(nil), WithSpanExporter(exp))
	if err != nil {
		t.Fatal(err)
	}
	_, span := tel.TracerProvider().Tracer("test").Start(t.Context(), "op")
	span.End()
	if err := tel.Shutdown(t.Context()); err != nil {
		t.Fatalf("Shutdown: %v", err)
	}
	if err := tel.Shutdown(t.Context()); err != nil {
		t.Fatalf("second Shutdown: %v", err)
	}
	exp.mu.Lock()
	defer exp.mu.Unlock()
	if diff := cmp.Diff([2]int{1, 1}, [2]int{exp.spans, exp.shutdowns}); diff != "" {
		t.Errorf("[spans, shutdowns] of the batched exporter (-want +got):\n%s", diff)
	}
}

// TestInjectReplacesAStaleTraceContext: a call's outgoing metadata gets the
// trace context of its ctx once, replacing one already there (a caller's or
// a forwarded one) instead of sending two, and keeping the other keys.
func TestInjectReplacesAStaleTraceContext(t *testing.T) {
	tel := newTelemetry(t, testConfig("svc"), fakeEnv(nil))
	sc := trace.NewSpanContext(trace.SpanContextConfig{
		TraceID: trace.TraceID{1}, SpanID: trace.SpanID{2}, TraceFlags: trace.FlagsSampled,
	})
	ctx := trace.ContextWithSpanContext(t.Context(), sc)
	const want = "00-01000000000000000000000000000000-0200000000000000-01"

	md, _ := metadata.FromOutgoingContext(tel.inject(ctx))
	if got := md.Get("traceparent"); len(got) != 1 || got[0] != want {
		t.Errorf("fresh metadata: traceparent %q, want [%s]", got, want)
	}

	stale := metadata.AppendToOutgoingContext(ctx, "traceparent", "00-ffffffffffffffffffffffffffffffff-ffffffffffffffff-01", "x-other", "kept")
	md, _ = metadata.FromOutgoingContext(tel.inject(stale))
	if got := md.Get("traceparent"); len(got) != 1 || got[0] != want {
		t.Errorf("stale traceparent: now %q, want [%s]", got, want)
	}
	if got := md.Get("x-other"); len(got) != 1 || got[0] != "kept" {
		t.Errorf("x-other = %q, want [kept]", got)
	}

	if got := tel.inject(t.Context()); got != t.Context() {
		t.Error("a context without trace context or baggage was changed")
	}
}
