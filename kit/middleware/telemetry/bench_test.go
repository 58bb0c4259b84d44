package telemetry

import (
	"context"
	"time"

	"testing"

	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	testgrpc "google.golang.org/grpc/interop/grpc_testing"
	"google.golang.org/grpc/stats"
)

// BenchmarkUnary compares a unary call over bufconn without stats handlers
// (bare grpc-go), with stats handlers that do nothing (grpc-go's own cost of
// having one), with both handlers in the default setup (metrics on, no
// span exporter), and with every span recorded into a no-op exporter.
// Compare ns/op and allocs/op between the sub-benchmarks of one run.
func BenchmarkUnary(b *testing.B) {
	noEnv := fakeEnv(nil)
	for _, bc := range []struct {
		name  string
		opts  []Option
		none  bool
		empty bool
	}{
		{name: "bare", none: true},
		{name: "empty-handlers", none: true, empty: true},
		{name: "default", opts: []Option{noEnv}},
		{name: "traced", opts: []Option{noEnv, WithSyncSpanExporter(tracetest.NewNoopExporter())}},
	} {
		b.Run(bc.name, func(b *testing.B) {
			var server, client stats.Handler
			if bc.empty {
				server, client = emptyHandler{}, emptyHandler{}
			}
			if !bc.none {
				tel, err := New(b.Context(), testConfig("bench"), bc.opts...)
				if err != nil {
					b.Fatal(err)
				}
				b.Cleanup(func() { _ = tel.Shutdown(b.Context()) })
				server, client = tel.ServerHandler(), tel.ClientHandler()
			}
			c := testgrpc.NewTestServiceClient(serve(b, &testServer{}, server, client))
			req := &testgrpc.SimpleRequest{}
			if _, err := c.UnaryCall(b.Context(), req); err != nil { // connect
				b.Fatal(err)
			}
			b.ReportAllocs()
			for b.Loop() {
				if _, err := c.UnaryCall(b.Context(), req); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// BenchmarkUnaryRatio alternates calls without and with the default handlers
// (metrics on, no span exporter) in one loop, so that load on the machine
// hits both alike, and reports the latency ratio and the allocations the
// handlers add per call (client and server sides together).
func BenchmarkUnaryRatio(b *testing.B) {
	tel, err := New(b.Context(), testConfig("bench"), fakeEnv(nil))
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { _ = tel.Shutdown(b.Context()) })
	bare := testgrpc.NewTestServiceClient(serve(b, &testServer{}, nil, nil))
	withHandlers := testgrpc.NewTestServiceClient(serve(b, &testServer{}, tel.ServerHandler(), tel.ClientHandler()))
	req := &testgrpc.SimpleRequest{}
	call := func(c testgrpc.TestServiceClient) time.Duration {
		start := time.Now()
		if _, err := c.UnaryCall(b.Context(), req); err != nil {
			b.Fatal(err)
		}
		return time.Since(start)
	}
	call(bare)
	call(withHandlers)
	allocs := func(c testgrpc.TestServiceClient) float64 {
		return testing.AllocsPerRun(200, func() { call(c) })
	}
	extraAllocs := allocs(withHandlers) - allocs(bare)

	var tBare, tHandlers time.Duration
	for b.Loop() {
		tBare += call(bare)
		tHandlers += call(withHandlers)
	}
	b.ReportMetric(float64(tBare.Nanoseconds())/float64(b.N), "ns-bare/op")
	b.ReportMetric(float64(tHandlers.Nanoseconds())/float64(b.N), "ns-handlers/op")
	b.ReportMetric(float64(tHandlers)/float64(tBare), "ratio")
	b.ReportMetric(extraAllocs, "extra-allocs/op")
}

// emptyHandler is a stats.Handler that does nothing.
type emptyHandler struct{}

func (emptyHandler) TagRPC(ctx context.Context, _ *stats.RPCTagInfo) context.Context   { return ctx }
func (emptyHandler) HandleRPC(context.Context, stats.RPCStats)                         {}
func (emptyHandler) TagConn(ctx context.Context, _ *stats.ConnTagInfo) context.Context { return ctx }
func (emptyHandler) HandleConn(context.Context, stats.ConnStats)                       {}
