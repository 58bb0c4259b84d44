package kit_test

import (
	"context"
	"net"
	"testing"
	"time"

	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"

	"github.com/grpckit/grpckit/kit"
	"github.com/grpckit/grpckit/kit/internal/kittest"
	testpbv1 "github.com/grpckit/grpckit/kit/internal/testpb/v1"
	"github.com/grpckit/grpckit/kit/middleware/telemetry"
)

// BenchmarkUnary compares one Echo through kit's default chains (and with
// every call traced) with bare grpc-go, without and with the deadline kit's
// client sets, client and server in this process (allocations of both).
// `make bench` prints the full comparison with ratios.
func BenchmarkUnary(b *testing.B) {
	b.Run("bare", func(b *testing.B) { run(b, bareClient(b), 0) })
	b.Run("bare-deadline", func(b *testing.B) { run(b, bareClient(b), 5*time.Second) }) // the deadline kit's client sets
	b.Run("kit", func(b *testing.B) { run(b, kitClient(b, false), 0) })
	b.Run("kit-traced", func(b *testing.B) { run(b, kitClient(b, true), 0) })
}

// bareClient serves the test service from a bare grpc-go server and
// returns a bare grpc-go client of it; both stop with b.
func bareClient(b *testing.B) testpbv1.TestServiceClient {
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	srv := grpc.NewServer()
	testpbv1.RegisterTestServiceServer(srv, &kittest.Service{Name: "b"})
	go srv.Serve(lis)
	b.Cleanup(srv.Stop)
	cc, err := grpc.NewClient("passthrough:///"+lis.Addr().String(), grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { cc.Close() })
	return testpbv1.NewTestServiceClient(cc)
}

// kitClient is bareClient with kit's server and client and their default
// chains; traced makes both share a telemetry that samples every call
// into a batcher and a no-op exporter.
func kitClient(b *testing.B, traced bool) testpbv1.TestServiceClient {
	sopts := []kit.ServerOption{kit.WithDrain(0), kit.WithLogger(quiet), kit.WithAdminAddress("")}
	var copts []kit.ClientOption
	if traced {
		cfg := telemetry.DefaultConfig()
		cfg.ServiceName, cfg.TracesSampler = "bench", "always_on"
		tel, err := telemetry.New(b.Context(), cfg, telemetry.WithSpanExporter(tracetest.NewNoopExporter()))
		if err != nil {
			b.Fatal(err)
		}
		b.Cleanup(func() { tel.Shutdown(context.Background()) })
		sopts, copts = append(sopts, kit.WithTelemetry(tel)), append(copts, kit.WithTelemetry(tel))
	}
	srv, err := kit.NewServer(sopts...)
	if err != nil {
		b.Fatal(err)
	}
	testpbv1.RegisterTestServiceServer(srv, &kittest.Service{Name: "b"})
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	go srv.Serve(lis)
	b.Cleanup(func() { srv.Shutdown(context.Background()) })
	cc, err := kit.NewClient("passthrough:///"+lis.Addr().String(), copts...)
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { cc.Close() })
	return testpbv1.NewTestServiceClient(cc)
}

// run calls Echo in a loop, each call with deadline when it is not 0.
func run(b *testing.B, c testpbv1.TestServiceClient, deadline time.Duration) {
	req := &testpbv1.EchoRequest{Message: "x"}
	call := func() error {
		ctx, cancel := context.Background(), context.CancelFunc(func() {})
		if deadline > 0 {
			ctx, cancel = context.WithTimeout(ctx, deadline)
		}
		defer cancel()
		_, err := c.Echo(ctx, req)
		return err
	}
	for range 100 {
		if err := call(); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportAllocs()
	b.ResetTimer()
	for b.Loop() {
		if err := call(); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkUnaryParallel is BenchmarkUnary with 64 calls in flight, where
// the CPU per call decides the latency.
func BenchmarkUnaryParallel(b *testing.B) {
	for _, name := range []string{"bare", "bare-deadline", "kit"} {
		b.Run(name, func(b *testing.B) {
			var c testpbv1.TestServiceClient
			if name == "kit" {
				c = kitClient(b, false)
			} else {
				c = bareClient(b)
			}
			req := &testpbv1.EchoRequest{Message: "x"}
			b.ReportAllocs()
			b.SetParallelism(32) // 64 goroutines on 2 CPUs
			b.ResetTimer()
			b.RunParallel(func(pb *testing.PB) {
				for pb.Next() {
					ctx, cancel := context.Background(), context.CancelFunc(func() {})
					if name == "bare-deadline" { // the 5s deadline kit's client sets
						ctx, cancel = context.WithTimeout(ctx, 5*time.Second)
					}
					_, err := c.Echo(ctx, req)
					cancel()
					if err != nil {
						b.Error(err)
						return
					}
				}
			})
		})
	}
}
