package telemetry

import (
	"context"
	"time"

	"testing"

	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	"google.golang.org/grpc"
	testgrpc "google.golang.org/grpc/interop/grpc_testing"
	"google.golang.org/grpc/stats"

	"github.com/grpckit/grpckit/kit/internal/kittest"
)

// BenchmarkUnary compares a unary call over bufconn without telemetry
// (bare grpc-go), with stats handlers that do nothing (grpc-go's own cost of
// having one, which the default setup avoids), with the default setup
// (metrics recorded by the interceptors, no span exporter), and with every
// span recorded into a no-op exporter (otelgrpc's stats handlers too).
// Compare ns/op and allocs/op between the sub-benchmarks of one run.
func BenchmarkUnary(b *testing.B) {
	noEnv := fakeEnv(nil)
	for _, bc := range []struct {
		name  string
		opts  []Option
		none  bool // no telemetry
		empty bool // stats handlers that do nothing
	}{
		{name: "bare", none: true},
		{name: "empty-handlers", empty: true},
		{name: "default", opts: []Option{noEnv}},
		{name: "traced", opts: []Option{noEnv, WithSyncSpanExporter(tracetest.NewNoopExporter())}},
	} {
		b.Run(bc.name, func(b *testing.B) {
			var c testgrpc.TestServiceClient
			switch {
			case bc.empty:
				c = testgrpc.NewTestServiceClient(kittest.Serve(b, func(s grpc.ServiceRegistrar) { testgrpc.RegisterTestServiceServer(s, &testServer{}) },
					[]grpc.ServerOption{grpc.StatsHandler(emptyHandler{})}, grpc.WithStatsHandler(emptyHandler{})))
			case bc.none:
				c = testgrpc.NewTestServiceClient(serve(b, &testServer{}, nil))
			default:
				tel, err := New(b.Context(), testConfig("bench"), bc.opts...)
				if err != nil {
					b.Fatal(err)
				}
				b.Cleanup(func() { _ = tel.Shutdown(b.Context()) })
				c = testgrpc.NewTestServiceClient(serve(b, &testServer{}, tel))
			}
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

// BenchmarkUnaryRatio alternates calls without and with the default
// telemetry (metrics on, no span exporter) in one loop, so that load on the
// machine hits both alike, and reports the latency ratio and the
// allocations telemetry adds per call (client and server sides together).
func BenchmarkUnaryRatio(b *testing.B) {
	tel, err := New(b.Context(), testConfig("bench"), fakeEnv(nil))
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { _ = tel.Shutdown(b.Context()) })
	bare := testgrpc.NewTestServiceClient(serve(b, &testServer{}, nil))
	withHandlers := testgrpc.NewTestServiceClient(serve(b, &testServer{}, tel))
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
