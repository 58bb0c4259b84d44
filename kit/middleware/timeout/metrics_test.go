package timeout_test

import (
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	"go.opentelemetry.io/otel/sdk/metric/metricdata"
	"google.golang.org/grpc"

	"github.com/grpckit/grpckit/kit/duration"
	"github.com/grpckit/grpckit/kit/middleware/timeout"
	greeterv1 "github.com/grpckit/grpckit/proto/greeter/v1"
)

// sums returns the value of every int64 sum reader has collected, by name.
func sums(t *testing.T, reader sdkmetric.Reader) map[string]int64 {
	t.Helper()
	var rm metricdata.ResourceMetrics
	if err := reader.Collect(t.Context(), &rm); err != nil {
		t.Fatalf("Collect: %v", err)
	}
	got := make(map[string]int64)
	for _, sm := range rm.ScopeMetrics {
		for _, m := range sm.Metrics {
			if s, ok := m.Data.(metricdata.Sum[int64]); ok {
				for _, dp := range s.DataPoints {
					got[m.Name] += dp.Value
				}
			}
		}
	}
	return got
}

func TestMetrics(t *testing.T) {
	reader := sdkmetric.NewManualReader()
	mp := sdkmetric.NewMeterProvider(sdkmetric.WithReader(reader))
	t.Cleanup(func() { mp.Shutdown(t.Context()) })
	to, err := timeout.New(timeout.Config{Default: duration.Duration(time.Second), ServerMax: duration.Duration(time.Second)}, timeout.WithMeterProvider(mp))
	if err != nil {
		t.Fatal(err)
	}
	c := startGreeter(t, []grpc.ServerOption{grpc.UnaryInterceptor(to.UnaryServerInterceptor())},
		grpc.WithUnaryInterceptor(to.UnaryClientInterceptor()))
	for _, d := range []time.Duration{0, 0, time.Hour, 100 * time.Millisecond} {
		if _, err := c.SayHello(callContext(t, d), &greeterv1.SayHelloRequest{Name: "a"}); err != nil {
			t.Fatalf("SayHello: %v", err)
		}
	}
	// Two calls without a deadline get one from the client and keep it on the
	// server (1s is not above server_max); the hour-long one is capped.
	want := map[string]int64{"grpckit.timeout.deadlines_applied": 2, "grpckit.timeout.deadlines_capped": 1}
	if diff := cmp.Diff(want, sums(t, reader)); diff != "" {
		t.Errorf("counters (-want +got):\n%s", diff)
	}
}
