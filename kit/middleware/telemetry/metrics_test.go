package telemetry

import (
	"context"
	"net"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"go.opentelemetry.io/contrib/instrumentation/google.golang.org/grpc/otelgrpc"
	otelprom "go.opentelemetry.io/otel/exporters/prometheus"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	tracenoop "go.opentelemetry.io/otel/trace/noop"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	testgrpc "google.golang.org/grpc/interop/grpc_testing"
)

// countSeries returns the _count samples of the rpc_ histograms in a text
// exposition, as "name{labels} value" with the otel_scope_ labels dropped
// (the scopes differ by design) and labels in a fixed order.
func countSeries(body string) []string {
	var out []string
	for line := range strings.SplitSeq(body, "\n") {
		if !strings.HasPrefix(line, "rpc_") {
			continue
		}
		head, value, _ := strings.Cut(line, " ")
		name, labels, _ := strings.Cut(strings.TrimSuffix(head, "}"), "{")
		if !strings.HasSuffix(name, "_count") {
			continue
		}
		var kept []string
		for l := range strings.SplitSeq(labels, ",") {
			if !strings.HasPrefix(l, "otel_scope_") {
				kept = append(kept, l)
			}
		}
		slices.Sort(kept)
		out = append(out, name+"{"+strings.Join(kept, ",")+"} "+value)
	}
	slices.Sort(out)
	return out
}

// TestMetricsMatchOtelgrpc puts kit's handlers and otelgrpc's (metrics only)
// on the same loopback server and client, makes calls ending in several
// codes, and expects the same series from both: same names, labels
// (server.address and server.port included) and counts.
func TestMetricsMatchOtelgrpc(t *testing.T) {
	tel := newTelemetry(t, testConfig("svc"), fakeEnv(nil))

	refReg := prometheus.NewRegistry()
	refReader, err := otelprom.New(otelprom.WithRegisterer(refReg))
	if err != nil {
		t.Fatal(err)
	}
	refMP := sdkmetric.NewMeterProvider(sdkmetric.WithReader(refReader))
	t.Cleanup(func() { _ = refMP.Shutdown(context.Background()) })
	refOpts := []otelgrpc.Option{
		otelgrpc.WithMeterProvider(refMP),
		otelgrpc.WithTracerProvider(tracenoop.NewTracerProvider()),
		otelgrpc.WithPropagators(tel.Propagator()),
	}

	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	s := grpc.NewServer(grpc.StatsHandler(tel.ServerHandler()), grpc.StatsHandler(otelgrpc.NewServerHandler(refOpts...)))
	testgrpc.RegisterTestServiceServer(s, &testServer{})
	done := make(chan struct{})
	go func() {
		defer close(done)
		_ = s.Serve(lis)
	}()
	cc, err := grpc.NewClient(lis.Addr().String(),
		grpc.WithTransportCredentials(insecure.NewCredentials()),
		grpc.WithStatsHandler(tel.ClientHandler()),
		grpc.WithStatsHandler(otelgrpc.NewClientHandler(refOpts...)))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = cc.Close()
		s.Stop()
		<-done
	})

	client := testgrpc.NewTestServiceClient(cc)
	calls := 0
	for _, code := range []codes.Code{codes.OK, codes.OK, codes.NotFound, codes.Internal, codes.Canceled, codes.Unauthenticated} {
		req := &testgrpc.SimpleRequest{}
		if code != codes.OK {
			req.ResponseStatus = &testgrpc.EchoStatus{Code: int32(code), Message: "no"}
		}
		_, _ = client.UnaryCall(t.Context(), req)
		calls++
	}
	_, _ = client.EmptyCall(t.Context(), &testgrpc.Empty{}) // Unimplemented
	calls++

	// Server-side End events may trail the client's return: wait until
	// both sides counted every call in both registries.
	total := func(series []string) int {
		n := 0
		for _, s := range series {
			if strings.HasPrefix(s, "rpc_server_") || strings.HasPrefix(s, "rpc_client_") {
				var v int
				for _, c := range s[strings.LastIndexByte(s, ' ')+1:] {
					v = v*10 + int(c-'0')
				}
				n += v
			}
		}
		return n
	}
	deadline := time.Now().Add(5 * time.Second)
	var got, want []string
	for {
		got = countSeries(scrape(t, tel.MetricsHandler()))
		want = countSeries(scrape(t, promhttp.HandlerFor(refReg, promhttp.HandlerOpts{})))
		if (total(got) == 2*calls && total(want) == 2*calls) || time.Now().After(deadline) {
			break
		}
		time.Sleep(5 * time.Millisecond)
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("series (-otelgrpc +kit):\n%s", diff)
	}
	joined := strings.Join(got, "\n")
	for _, sub := range []string{
		`rpc_client_call_duration_seconds_count{error_type="NOT_FOUND",rpc_method="grpc.testing.TestService/UnaryCall",rpc_response_status_code="NOT_FOUND",rpc_system_name="grpc",server_address="127.0.0.1",server_port=`,
		`rpc_server_call_duration_seconds_count{rpc_method="grpc.testing.TestService/UnaryCall",rpc_response_status_code="NOT_FOUND",rpc_system_name="grpc"} 1`,
		`rpc_server_call_duration_seconds_count{error_type="INTERNAL",rpc_method="grpc.testing.TestService/UnaryCall",rpc_response_status_code="INTERNAL",rpc_system_name="grpc"} 1`,
		`rpc_server_call_duration_seconds_count{rpc_method="grpc.testing.TestService/UnaryCall",rpc_response_status_code="OK",rpc_system_name="grpc"} 2`,
	} {
		if !strings.Contains(joined, sub) {
			t.Errorf("no series %s in:\n%s", sub, joined)
		}
	}
	if total(got) != 2*calls {
		t.Errorf("kit counted %d call ends, want %d:\n%s", total(got), 2*calls, strings.Join(got, "\n"))
	}
}
