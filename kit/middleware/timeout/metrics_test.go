package timeout_test

import (
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"google.golang.org/grpc"

	"github.com/grpckit/grpckit/kit/duration"
	"github.com/grpckit/grpckit/kit/internal/kittest"
	testpbv1 "github.com/grpckit/grpckit/kit/internal/testpb/v1"
	"github.com/grpckit/grpckit/kit/middleware/timeout"
)

func TestMetrics(t *testing.T) {
	mp, reader := kittest.NewMeterProvider(t)
	to, err := timeout.New(timeout.Config{Default: duration.Duration(time.Second), ServerMax: duration.Duration(time.Second)}, timeout.WithMeterProvider(mp))
	if err != nil {
		t.Fatal(err)
	}
	c := startServer(t, []grpc.ServerOption{grpc.UnaryInterceptor(to.UnaryServerInterceptor())},
		grpc.WithUnaryInterceptor(to.UnaryClientInterceptor()))
	for _, d := range []time.Duration{0, 0, time.Hour, 100 * time.Millisecond} {
		if _, err := c.Echo(callContext(t, d), &testpbv1.EchoRequest{Message: "a"}); err != nil {
			t.Fatalf("Echo: %v", err)
		}
	}
	// Two calls without a deadline get one from the client and keep it on the
	// server (1s is not above server_max); the hour-long one is capped.
	want := map[string]int64{"grpckit.timeout.deadlines_applied": 2, "grpckit.timeout.deadlines_capped": 1}
	if diff := cmp.Diff(want, kittest.MetricSums(t, reader)); diff != "" {
		t.Errorf("counters (-want +got):\n%s", diff)
	}
}
