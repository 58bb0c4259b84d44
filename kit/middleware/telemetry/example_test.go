package telemetry_test

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/health"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"

	"github.com/grpckit/grpckit/kit/middleware/telemetry"
)

func Example() {
	ctx := context.Background()
	cfg := telemetry.DefaultConfig()
	cfg.ServiceName = "greeter"
	// No OTEL_* environment: no span exporter, metrics on.
	tel, err := telemetry.New(ctx, cfg, telemetry.WithEnv(func(string) string { return "" }))
	if err != nil {
		panic(err)
	}
	defer tel.Shutdown(ctx)

	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		panic(err)
	}
	srv := grpc.NewServer(tel.ServerOptions()...)
	healthpb.RegisterHealthServer(srv, health.NewServer())
	go srv.Serve(lis)
	defer srv.Stop()

	cc, err := grpc.NewClient(lis.Addr().String(),
		append(tel.DialOptions(), grpc.WithTransportCredentials(insecure.NewCredentials()))...)
	if err != nil {
		panic(err)
	}
	defer cc.Close()
	if _, err := healthpb.NewHealthClient(cc).Check(ctx, &healthpb.HealthCheckRequest{}); err != nil {
		panic(err)
	}

	rec := httptest.NewRecorder()
	tel.MetricsHandler().ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/metrics", nil))
	fmt.Println("exporter:", tel.TracesExporter())
	fmt.Println("client histogram:", strings.Contains(rec.Body.String(), "rpc_client_call_duration_seconds_count{"))
	// Output:
	// exporter: none
	// client histogram: true
}
