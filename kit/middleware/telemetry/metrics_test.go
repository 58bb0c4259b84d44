package telemetry

import (
	"cmp"
	"context"
	"errors"
	"io"
	"math"
	"net"
	"slices"
	"sync"
	"testing"
	"time"

	gocmp "github.com/google/go-cmp/cmp"
	"go.opentelemetry.io/contrib/instrumentation/google.golang.org/grpc/otelgrpc"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/propagation"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	"go.opentelemetry.io/otel/sdk/metric/metricdata"
	tracenoop "go.opentelemetry.io/otel/trace/noop"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	testgrpc "google.golang.org/grpc/interop/grpc_testing"
	"google.golang.org/grpc/status"

	"github.com/grpckit/grpckit/kit/internal/kittest"
)

// point is one histogram data point reduced to what must match otelgrpc's:
// everything but the durations themselves.
type point struct {
	Name        string
	Description string
	Unit        string
	Temporality string
	Attributes  string
	Count       uint64
	Bounds      []float64
}

// points collects the rpc.* histograms of r.
func points(t *testing.T, r sdkmetric.Reader) []point {
	t.Helper()
	var rm metricdata.ResourceMetrics
	if err := r.Collect(context.Background(), &rm); err != nil {
		t.Fatal(err)
	}
	var out []point
	for _, sm := range rm.ScopeMetrics {
		for _, m := range sm.Metrics {
			h, ok := m.Data.(metricdata.Histogram[float64])
			if !ok {
				t.Errorf("%s is a %T, want a float64 histogram", m.Name, m.Data)
				continue
			}
			for _, dp := range h.DataPoints {
				var inBuckets uint64
				for _, n := range dp.BucketCounts {
					inBuckets += n
				}
				if inBuckets != dp.Count || len(dp.BucketCounts) != len(dp.Bounds)+1 || dp.Sum <= 0 {
					t.Errorf("%s %v: count %d, buckets %v (bounds %d), sum %v", m.Name, dp.Attributes.ToSlice(), dp.Count, dp.BucketCounts, len(dp.Bounds), dp.Sum)
				}
				out = append(out, point{
					Temporality: h.Temporality.String(),
					Name:        m.Name, Description: m.Description, Unit: m.Unit,
					Attributes: dp.Attributes.Encoded(attribute.DefaultEncoder()),
					Count:      dp.Count, Bounds: dp.Bounds,
				})
			}
		}
	}
	slices.SortFunc(out, func(a, b point) int {
		return cmp.Or(cmp.Compare(a.Name, b.Name), cmp.Compare(a.Attributes, b.Attributes))
	})
	return out
}

func total(ps []point) uint64 {
	var n uint64
	for _, p := range ps {
		n += p.Count
	}
	return n
}

// metricsOnly is a Telemetry recording the RPC metrics, spans off, built
// around New's internals so that a test can read the metrics back through
// a ManualReader: it returns the reader.
func metricsOnly(t *testing.T) (*Telemetry, *sdkmetric.ManualReader) {
	t.Helper()
	tel := &Telemetry{propagator: propagation.NewCompositeTextMapPropagator(propagation.TraceContext{}, propagation.Baggage{})}
	tel.serverMetrics, tel.clientMetrics = newRPCMetrics(false), newRPCMetrics(true)
	return tel, sdkmetric.NewManualReader(sdkmetric.WithProducer(&rpcProducer{metrics: []*rpcMetrics{tel.serverMetrics, tel.clientMetrics}}))
}

// streamServer adds streaming methods to testServer: each answers with the
// status of its (first) request once the client has sent everything.
type streamServer struct{ testServer }

func statusOf(req *testgrpc.StreamingOutputCallRequest) error {
	if st := req.GetResponseStatus(); st != nil {
		return status.Error(codes.Code(st.GetCode()), st.GetMessage())
	}
	return nil
}

func (s *streamServer) StreamingOutputCall(req *testgrpc.StreamingOutputCallRequest, ss testgrpc.TestService_StreamingOutputCallServer) error {
	for range req.GetResponseParameters() {
		if err := ss.Send(&testgrpc.StreamingOutputCallResponse{}); err != nil {
			return err
		}
	}
	return statusOf(req)
}

func (s *streamServer) StreamingInputCall(ss testgrpc.TestService_StreamingInputCallServer) error {
	for {
		if _, err := ss.Recv(); errors.Is(err, io.EOF) {
			return ss.SendAndClose(&testgrpc.StreamingInputCallResponse{})
		} else if err != nil {
			return err
		}
	}
}

func (s *streamServer) FullDuplexCall(ss testgrpc.TestService_FullDuplexCallServer) error {
	for {
		req, err := ss.Recv()
		if errors.Is(err, io.EOF) {
			return nil
		}
		if err != nil {
			return err
		}
		if err := statusOf(req); err != nil {
			return err
		}
		if err := ss.Send(&testgrpc.StreamingOutputCallResponse{}); err != nil {
			return err
		}
	}
}

// TestMetricsMatchOtelgrpc puts kit's interceptors and otelgrpc's stats
// handlers (metrics only) on the same loopback server and client, makes
// unary and streaming calls ending in several codes (a stream cancelled
// halfway included), and expects the same histograms from both: instrument
// names, descriptions, units, attributes (server.address and server.port
// included), counts and bucket boundaries.
func TestMetricsMatchOtelgrpc(t *testing.T) {
	tel, kitReader := metricsOnly(t)
	kitMP := sdkmetric.NewMeterProvider(sdkmetric.WithReader(kitReader)) // the reader collects only with a provider
	refReader := sdkmetric.NewManualReader()
	refMP := sdkmetric.NewMeterProvider(sdkmetric.WithReader(refReader))
	t.Cleanup(func() { _ = kitMP.Shutdown(context.Background()); _ = refMP.Shutdown(context.Background()) })
	refOpts := []otelgrpc.Option{
		otelgrpc.WithMeterProvider(refMP),
		otelgrpc.WithTracerProvider(tracenoop.NewTracerProvider()),
		otelgrpc.WithPropagators(tel.propagator),
	}

	cc := servePair(t, append(tel.ServerOptions(), grpc.StatsHandler(otelgrpc.NewServerHandler(refOpts...))),
		append(tel.DialOptions(), grpc.WithStatsHandler(otelgrpc.NewClientHandler(refOpts...))))
	calls := makeCalls(t, testgrpc.NewTestServiceClient(cc))

	// Server sides record when their handlers return, which may follow the
	// client's return; cancelled streams end on both sides a moment later.
	var got, want []point
	kittest.WaitFor(t, "every call counted by both", func() bool {
		got, want = points(t, kitReader), points(t, refReader)
		return total(got) == uint64(2*calls) && total(want) == uint64(2*calls)
	})
	if diff := gocmp.Diff(want, got); diff != "" {
		t.Errorf("histograms (-otelgrpc +kit):\n%s", diff)
	}
	for _, p := range got {
		if p.Unit != "s" || !slices.Equal(p.Bounds, durationBuckets) {
			t.Errorf("%s: unit %q, bounds %v", p.Name, p.Unit, p.Bounds)
		}
	}
}

// makeCalls makes unary and streaming calls ending in several codes (a
// stream cancelled halfway included) and returns how many.
func makeCalls(t *testing.T, client testgrpc.TestServiceClient) int {
	t.Helper()
	ctx := t.Context()
	calls := 0
	for _, code := range []codes.Code{codes.OK, codes.OK, codes.NotFound, codes.Internal, codes.Canceled, codes.Unauthenticated, codes.ResourceExhausted} {
		req := &testgrpc.SimpleRequest{}
		if code != codes.OK {
			req.ResponseStatus = &testgrpc.EchoStatus{Code: int32(code), Message: "no"}
		}
		_, _ = client.UnaryCall(ctx, req)
		calls++
	}
	_, _ = client.EmptyCall(ctx, &testgrpc.Empty{}) // UNIMPLEMENTED by the service
	calls++

	// Server streaming: to the end, and ending in a status.
	for _, st := range []*testgrpc.EchoStatus{nil, {Code: int32(codes.Aborted), Message: "no"}} {
		stream, err := client.StreamingOutputCall(ctx, &testgrpc.StreamingOutputCallRequest{
			ResponseParameters: make([]*testgrpc.ResponseParameters, 3), ResponseStatus: st})
		if err != nil {
			t.Fatal(err)
		}
		for {
			if _, err := stream.Recv(); err != nil {
				break
			}
		}
		calls++
	}
	// Client streaming.
	in, err := client.StreamingInputCall(ctx)
	if err != nil {
		t.Fatal(err)
	}
	for range 3 {
		if err := in.Send(&testgrpc.StreamingInputCallRequest{}); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := in.CloseAndRecv(); err != nil {
		t.Fatal(err)
	}
	calls++
	// Bidirectional: to the end, ending in a status, and cancelled halfway
	// (the client stops reading; its context ends the call).
	for i := range 3 {
		sctx, cancel := context.WithCancel(ctx)
		stream, err := client.FullDuplexCall(sctx)
		if err != nil {
			t.Fatal(err)
		}
		if err := stream.Send(&testgrpc.StreamingOutputCallRequest{}); err != nil {
			t.Fatal(err)
		}
		if _, err := stream.Recv(); err != nil {
			t.Fatal(err)
		}
		switch i {
		case 0:
			_ = stream.CloseSend()
			for {
				if _, err := stream.Recv(); err != nil {
					break
				}
			}
		case 1:
			_ = stream.Send(&testgrpc.StreamingOutputCallRequest{ResponseStatus: &testgrpc.EchoStatus{Code: int32(codes.FailedPrecondition)}})
			for {
				if _, err := stream.Recv(); err != nil {
					break
				}
			}
		case 2:
			cancel()
		}
		cancel()
		calls++
	}

	return calls
}

// servePair serves streamServer over loopback TCP with sopts and returns a
// client with dopts.
func servePair(t *testing.T, sopts []grpc.ServerOption, dopts []grpc.DialOption) *grpc.ClientConn {
	t.Helper()
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	s := grpc.NewServer(sopts...)
	testgrpc.RegisterTestServiceServer(s, &streamServer{})
	done := make(chan struct{})
	go func() {
		defer close(done)
		_ = s.Serve(lis)
	}()
	cc, err := grpc.NewClient(lis.Addr().String(), append(dopts, grpc.WithTransportCredentials(insecure.NewCredentials()))...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = cc.Close()
		s.Stop()
		<-done
	})
	return cc
}

// TestHistogram checks the buckets (a value on a bound falls in that
// bound's bucket, as in the OTel SDK), the sum, min and max, and counts
// made concurrently.
func TestHistogram(t *testing.T) {
	r := newRPCMetrics(false)
	h := r.add(attribute.NewSet(attribute.String("k", "v")))
	for _, v := range []float64{0.005, 0.0051, 0.5, 100} {
		h.observe(v)
	}
	p, ok := h.point(r.start, time.Now())
	if !ok {
		t.Fatal("no point")
	}
	want := make([]uint64, len(bucketBounds)+1)
	want[0], want[1], want[7], want[len(bucketBounds)] = 1, 1, 1, 1
	if diff := gocmp.Diff(want, p.BucketCounts); diff != "" {
		t.Errorf("buckets (-want +got):\n%s", diff)
	}
	if p.Count != 4 || math.Abs(p.Sum-100.5101) > 1e-9 {
		t.Errorf("count %d, sum %v", p.Count, p.Sum)
	}
	if lo, _ := p.Min.Value(); lo != 0.005 {
		t.Errorf("min %v", lo)
	}
	if hi, _ := p.Max.Value(); hi != 100 {
		t.Errorf("max %v", hi)
	}

	var wg sync.WaitGroup
	for range 8 {
		wg.Go(func() {
			for range 1000 {
				h.observe(0.001)
			}
		})
	}
	wg.Wait()
	if p, _ := h.point(r.start, time.Now()); p.Count != 8004 || p.BucketCounts[0] != 8001 {
		t.Errorf("after concurrent observations: count %d, first bucket %d", p.Count, p.BucketCounts[0])
	}
}

// TestSeriesOverflow: past maxSeries attribute sets, calls are counted in
// one series marked otel.metric.overflow, and the same set always gets the
// same histogram.
func TestSeriesOverflow(t *testing.T) {
	r := newRPCMetrics(true)
	first := r.add(attribute.NewSet(attribute.Int("i", 0)))
	if again := r.add(attribute.NewSet(attribute.Int("i", 0))); again != first {
		t.Error("the same attribute set got a second histogram")
	}
	for i := 1; i < maxSeries+10; i++ {
		r.add(attribute.NewSet(attribute.Int("i", i))).observe(0.001)
	}
	m, ok := r.collect(time.Now())
	if !ok {
		t.Fatal("nothing collected")
	}
	points := m.Data.(metricdata.Histogram[float64]).DataPoints
	last := points[len(points)-1]
	if len(r.series) != maxSeries+1 || !last.Attributes.HasValue("otel.metric.overflow") || last.Count != 10 {
		t.Errorf("%d series, last %v with %d calls; want %d, the overflow one with 10", len(r.series), last.Attributes.ToSlice(), last.Count, maxSeries+1)
	}
}

// calls adds up the calls of every series: methods, codes and overflow.
func TestCallsCountsEverySeries(t *testing.T) {
	r := newRPCMetrics(false)
	if n := r.calls(); n != 0 {
		t.Fatalf("%d calls before any", n)
	}
	start := time.Now()
	r.record(r.method("/a.S/One"), start, nil, nil)
	r.record(r.method("/a.S/One"), start, status.Error(codes.Unavailable, "x"), nil)
	r.record(r.method("/a.S/Two"), start, nil, nil)
	for i := range maxSeries + 5 {
		r.add(attribute.NewSet(attribute.Int("i", i))).observe(0.001)
	}
	if n, want := r.calls(), uint64(3+maxSeries+5); n != want {
		t.Errorf("calls = %d, want %d", n, want)
	}
}
