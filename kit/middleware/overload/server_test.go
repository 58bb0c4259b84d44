package overload

import (
	"context"
	"errors"
	"io"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	"go.opentelemetry.io/otel/sdk/metric/metricdata"
	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/health"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/status"

	"github.com/grpckit/grpckit/kit/duration"
	"github.com/grpckit/grpckit/kit/internal/kittest"
	testpbv1 "github.com/grpckit/grpckit/kit/internal/testpb/v1"
	"github.com/grpckit/grpckit/kit/middleware/recovery"
)

const (
	echoMethod       = testpbv1.TestService_Echo_FullMethodName
	echoStreamMethod = testpbv1.TestService_EchoStream_FullMethodName
)

// waitTimeout bounds every wait of these tests for something another
// goroutine does.
const waitTimeout = 10 * time.Second

// heldService is the test service with handlers that wait for the test:
// each Echo call, and each EchoStream after its first message, reports its
// method on started and waits until Release is called or its context ends.
// An Echo of "panic" panics at once.
type heldService struct {
	testpbv1.UnimplementedTestServiceServer
	started chan string
	release chan struct{}
	// Release lets every call held now or later answer.
	Release func()
}

var _ testpbv1.TestServiceServer = (*heldService)(nil)

// newHeldService returns a heldService released when the test ends, before
// the server stops.
func newHeldService(t *testing.T) *heldService {
	s := &heldService{started: make(chan string, 100), release: make(chan struct{})}
	s.Release = sync.OnceFunc(func() { close(s.release) })
	t.Cleanup(s.Release)
	return s
}

func (s *heldService) hold(ctx context.Context, method string) error {
	select {
	case s.started <- method:
	case <-ctx.Done():
		return status.FromContextError(ctx.Err()).Err()
	}
	select {
	case <-s.release:
		return nil
	case <-ctx.Done():
		return status.FromContextError(ctx.Err()).Err()
	}
}

func (s *heldService) Echo(ctx context.Context, req *testpbv1.EchoRequest) (*testpbv1.EchoResponse, error) {
	if req.GetMessage() == "panic" {
		panic("test: the handler panics")
	}
	if err := s.hold(ctx, echoMethod); err != nil {
		return nil, err
	}
	return &testpbv1.EchoResponse{Message: req.GetMessage()}, nil
}

func (s *heldService) EchoStream(req *testpbv1.EchoStreamRequest, stream grpc.ServerStreamingServer[testpbv1.EchoStreamResponse]) error {
	if err := stream.Send(&testpbv1.EchoStreamResponse{Message: req.GetMessage(), Sequence: 1}); err != nil {
		return err
	}
	return s.hold(stream.Context(), echoStreamMethod)
}

// waitStarted waits until a call of svc is held and returns its method.
func (s *heldService) waitStarted(t *testing.T) string {
	t.Helper()
	select {
	case m := <-s.started:
		return m
	case <-time.After(waitTimeout):
		t.Fatalf("no call held after %v", waitTimeout)
		return ""
	}
}

func newServer(t *testing.T, cfg ServerConfig, opts ...Option) *Server {
	t.Helper()
	s, err := NewServer(cfg, opts...)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// fixedServer is a server config with a fixed limit of n and a RetryAfter
// of retryAfter.
func fixedServer(n int, retryAfter time.Duration) ServerConfig {
	cfg := DefaultServerConfig()
	cfg.Mode, cfg.FixedLimit = ModeFixed, n
	cfg.RetryAfter = duration.Duration(retryAfter)
	return cfg
}

// serveOverload serves svc and grpc-go's health service behind a recovery
// interceptor and then s's, and returns a client of svc and of health.
func serveOverload(t *testing.T, s *Server, svc testpbv1.TestServiceServer) (testpbv1.TestServiceClient, healthpb.HealthClient) {
	t.Helper()
	rec, err := recovery.New(recovery.DefaultConfig())
	if err != nil {
		t.Fatal(err)
	}
	cc := kittest.Serve(t, func(r grpc.ServiceRegistrar) {
		testpbv1.RegisterTestServiceServer(r, svc)
		healthpb.RegisterHealthServer(r, health.NewServer())
	}, []grpc.ServerOption{
		grpc.ChainUnaryInterceptor(rec.UnaryServerInterceptor(), s.UnaryServerInterceptor()),
		grpc.ChainStreamInterceptor(rec.StreamServerInterceptor(), s.StreamServerInterceptor()),
	})
	return testpbv1.NewTestServiceClient(cc), healthpb.NewHealthClient(cc)
}

// holdCalls starts n Echo calls and returns once svc holds all of them;
// each call's error is sent on the channel when it ends.
func holdCalls(t *testing.T, c testpbv1.TestServiceClient, svc *heldService, n int) <-chan error {
	t.Helper()
	done := make(chan error, n)
	for range n {
		go func() {
			_, err := c.Echo(t.Context(), &testpbv1.EchoRequest{Message: "held"})
			done <- err
		}()
	}
	for range n {
		if m := svc.waitStarted(t); m != echoMethod {
			t.Fatalf("held a call of %s, want %s", m, echoMethod)
		}
	}
	return done
}

// waitDone waits for n calls of done to end and fails the test for each
// that failed.
func waitDone(t *testing.T, done <-chan error, n int) {
	t.Helper()
	for range n {
		select {
		case err := <-done:
			if err != nil {
				t.Errorf("held call ended with %v, want OK", err)
			}
		case <-time.After(waitTimeout):
			t.Fatalf("held call not ended %v after its release", waitTimeout)
		}
	}
}

// outcome is what a caller sees of a call: its code and the delay of its
// RetryInfo, if any.
type outcome struct {
	Code       codes.Code
	RetryAfter time.Duration
}

func outcomeOf(err error) outcome {
	st := status.Convert(err)
	o := outcome{Code: st.Code()}
	for _, d := range st.Details() {
		if ri, ok := d.(*errdetails.RetryInfo); ok {
			o.RetryAfter = ri.GetRetryDelay().AsDuration()
		}
	}
	return o
}

var answered = outcome{Code: codes.OK}

func refused(retryAfter time.Duration) outcome {
	return outcome{Code: codes.ResourceExhausted, RetryAfter: retryAfter}
}

// echo makes an Echo call that must not wait: it fails with
// DEADLINE_EXCEEDED if the server queued it.
func echo(t *testing.T, c testpbv1.TestServiceClient, msg string) outcome {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), waitTimeout)
	defer cancel()
	_, err := c.Echo(ctx, &testpbv1.EchoRequest{Message: msg})
	return outcomeOf(err)
}

// gauges collects reader and returns the value of every int64 gauge by
// instrument name.
func gauges(t *testing.T, reader sdkmetric.Reader) map[string]int64 {
	t.Helper()
	var rm metricdata.ResourceMetrics
	if err := reader.Collect(context.Background(), &rm); err != nil {
		t.Fatal(err)
	}
	got := make(map[string]int64)
	for _, sm := range rm.ScopeMetrics {
		for _, m := range sm.Metrics {
			if g, ok := m.Data.(metricdata.Gauge[int64]); ok {
				for _, dp := range g.DataPoints {
					got[m.Name] += dp.Value
				}
			}
		}
	}
	return got
}

func TestServerRefusesBeyondFixedLimit(t *testing.T) {
	mp, reader := kittest.NewMeterProvider(t)
	s := newServer(t, fixedServer(3, 250*time.Millisecond), WithMeterProvider(mp))
	svc := newHeldService(t)
	c, _ := serveOverload(t, s, svc)

	done := holdCalls(t, c, svc, 3)
	if diff := cmp.Diff(ServerStats{Mode: ModeFixed, Limit: 3, InFlight: 3}, s.Stats()); diff != "" {
		t.Errorf("Stats() with 3 calls held (-want +got):\n%s", diff)
	}
	wantGauges := map[string]int64{"grpckit.overload.limit": 3, "grpckit.overload.in_flight": 3}
	if diff := cmp.Diff(wantGauges, gauges(t, reader)); diff != "" {
		t.Errorf("gauges with 3 calls held (-want +got):\n%s", diff)
	}

	got := []outcome{echo(t, c, "fourth"), echo(t, c, "fifth")}
	if diff := cmp.Diff([]outcome{refused(250 * time.Millisecond), refused(250 * time.Millisecond)}, got); diff != "" {
		t.Errorf("calls beyond the limit (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff(ServerStats{Mode: ModeFixed, Limit: 3, InFlight: 3, Refused: 2}, s.Stats()); diff != "" {
		t.Errorf("Stats() after 2 refusals (-want +got):\n%s", diff)
	}
	// The series without a method is there from the start, at 0.
	wantRefused := map[string]int64{"server ": 0, "server " + echoMethod: 2}
	if diff := cmp.Diff(wantRefused, kittest.MetricSumsBy(t, reader, "grpckit.overload.refused", "side", "method")); diff != "" {
		t.Errorf("grpckit.overload.refused by side and method (-want +got):\n%s", diff)
	}

	svc.Release()
	waitDone(t, done, 3)
	// A unary call releases its place before its answer is sent.
	if got := s.Stats().InFlight; got != 0 {
		t.Errorf("InFlight after the held calls answered = %d, want 0", got)
	}
	for i := range 5 {
		if got := echo(t, c, "after"); got != answered {
			t.Errorf("call %d after the release: %+v, want OK", i, got)
		}
	}
	if diff := cmp.Diff(ServerStats{Mode: ModeFixed, Limit: 3, InFlight: 0, Refused: 2}, s.Stats()); diff != "" {
		t.Errorf("Stats() at the end (-want +got):\n%s", diff)
	}
	wantGauges = map[string]int64{"grpckit.overload.limit": 3, "grpckit.overload.in_flight": 0}
	if diff := cmp.Diff(wantGauges, gauges(t, reader)); diff != "" {
		t.Errorf("gauges at the end (-want +got):\n%s", diff)
	}
}

func TestServerNeverRefusesHealth(t *testing.T) {
	s := newServer(t, fixedServer(1, 100*time.Millisecond))
	svc := newHeldService(t)
	c, hc := serveOverload(t, s, svc)
	done := holdCalls(t, c, svc, 1)

	if got := echo(t, c, "second"); got != refused(100*time.Millisecond) {
		t.Fatalf("second call at a limit of 1: %+v, want refused", got)
	}
	for i := range 5 {
		resp, err := hc.Check(t.Context(), &healthpb.HealthCheckRequest{})
		if err != nil || resp.GetStatus() != healthpb.HealthCheckResponse_SERVING {
			t.Errorf("health check %d at the limit = %v, %v; want SERVING", i, resp.GetStatus(), err)
		}
	}
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	w, err := hc.Watch(ctx, &healthpb.HealthCheckRequest{})
	if err != nil {
		t.Fatal(err)
	}
	if resp, err := w.Recv(); err != nil || resp.GetStatus() != healthpb.HealthCheckResponse_SERVING {
		t.Errorf("health watch at the limit = %v, %v; want SERVING", resp.GetStatus(), err)
	}
	if got := s.Stats().Refused; got != 1 {
		t.Errorf("Refused = %d, want 1: health calls are not refused", got)
	}
	svc.Release()
	waitDone(t, done, 1)
}

func TestServerRefusesStreamsAtTheLimit(t *testing.T) {
	s := newServer(t, fixedServer(2, 100*time.Millisecond))
	svc := newHeldService(t)
	c, _ := serveOverload(t, s, svc)
	done := holdCalls(t, c, svc, 2)

	stream, err := c.EchoStream(t.Context(), &testpbv1.EchoStreamRequest{Message: "m"})
	if err == nil {
		_, err = stream.Recv()
	}
	if got := outcomeOf(err); got != refused(100*time.Millisecond) {
		t.Errorf("stream at the limit: %+v, want refused", got)
	}
	if got := s.Stats().Refused; got != 1 {
		t.Errorf("Refused = %d, want 1", got)
	}

	svc.Release()
	waitDone(t, done, 2)
	stream, err = c.EchoStream(t.Context(), &testpbv1.EchoStreamRequest{Message: "m"})
	for err == nil {
		_, err = stream.Recv()
	}
	if !errors.Is(err, io.EOF) {
		t.Errorf("stream after the release ended with %v, want OK", err)
	}
}

// TestServerStreamHoldsPlace: a running stream holds one of the places,
// unless its method is exempt.
func TestServerStreamHoldsPlace(t *testing.T) {
	for _, tc := range []struct {
		name   string
		exempt []string
		unary  int // unary calls admitted beside the stream
	}{
		{"counted", nil, 1},
		{"exempt", []string{echoStreamMethod}, 2},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cfg := fixedServer(2, 100*time.Millisecond)
			cfg.ExemptMethods = tc.exempt
			s := newServer(t, cfg)
			svc := newHeldService(t)
			c, _ := serveOverload(t, s, svc)

			stream, err := c.EchoStream(t.Context(), &testpbv1.EchoStreamRequest{Message: "m"})
			if err != nil {
				t.Fatal(err)
			}
			if _, err := stream.Recv(); err != nil {
				t.Fatalf("first message of the stream: %v", err)
			}
			if m := svc.waitStarted(t); m != echoStreamMethod {
				t.Fatalf("held a call of %s, want the stream", m)
			}
			done := holdCalls(t, c, svc, tc.unary)
			if diff := cmp.Diff(ServerStats{Mode: ModeFixed, Limit: 2, InFlight: 2}, s.Stats()); diff != "" {
				t.Errorf("Stats() with a stream and the unary calls held (-want +got):\n%s", diff)
			}
			if got := echo(t, c, "excess"); got != refused(100*time.Millisecond) {
				t.Errorf("unary call beyond the limit: %+v, want refused", got)
			}

			svc.Release()
			waitDone(t, done, tc.unary)
			for err == nil {
				_, err = stream.Recv()
			}
			if !errors.Is(err, io.EOF) {
				t.Errorf("stream ended with %v, want OK", err)
			}
			kittest.WaitFor(t, "the stream's place to be released", func() bool { return s.Stats().InFlight == 0 })
		})
	}
}

func TestServerPanicReleasesPlace(t *testing.T) {
	s := newServer(t, fixedServer(1, 100*time.Millisecond))
	svc := newHeldService(t)
	c, _ := serveOverload(t, s, svc)

	for i := range 3 {
		if got := echo(t, c, "panic"); got.Code != codes.Internal {
			t.Fatalf("call %d that panics: %+v, want Internal from the recovery layer", i, got)
		}
		if got := s.Stats().InFlight; got != 0 {
			t.Fatalf("InFlight after call %d panicked = %d, want 0", i, got)
		}
	}
	// The only place is free: a call is admitted and held.
	done := holdCalls(t, c, svc, 1)
	if got := s.Stats(); got.InFlight != 1 || got.Refused != 0 {
		t.Errorf("Stats() after 3 panics and one call held = %+v, want 1 in flight and none refused", got)
	}
	svc.Release()
	waitDone(t, done, 1)
}

func TestServerSetConfig(t *testing.T) {
	s := newServer(t, fixedServer(1, 100*time.Millisecond))
	svc := newHeldService(t)
	c, _ := serveOverload(t, s, svc)
	done := holdCalls(t, c, svc, 1)
	held := 1
	good := s.Config()

	for _, tc := range []struct {
		name    string
		mutate  func(*ServerConfig)
		wantErr string
	}{
		{"negative min_limit", func(c *ServerConfig) { c.MinLimit = -1 }, "overload: min_limit"},
		{"NaN smoothing", func(c *ServerConfig) { c.Smoothing = nan() }, "overload: smoothing"},
		{"min_limit above max_limit", func(c *ServerConfig) { c.MinLimit, c.MaxLimit = 50, 10 }, "overload: max_limit"},
		{"zero retry_after", func(c *ServerConfig) { c.RetryAfter = 0 }, "overload: retry_after"},
		{"bad mode with a good retry_after", func(c *ServerConfig) { c.Mode, c.RetryAfter = "on", duration.Duration(time.Second) }, "overload: mode"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			bad := good
			tc.mutate(&bad)
			err := s.SetConfig(bad)
			if err == nil || !strings.HasPrefix(err.Error(), tc.wantErr) {
				t.Fatalf("SetConfig() = %v, want an error starting %q", err, tc.wantErr)
			}
			if diff := cmp.Diff(good, s.Config()); diff != "" {
				t.Errorf("Config() after a refused SetConfig (-want +got):\n%s", diff)
			}
			if got := echo(t, c, "refused"); got != refused(100*time.Millisecond) {
				t.Errorf("call at the limit after a refused SetConfig: %+v, want refused as before", got)
			}
		})
	}

	// Off: everything through.
	off := good
	off.Mode = ModeOff
	if err := s.SetConfig(off); err != nil {
		t.Fatal(err)
	}
	done2 := holdCalls(t, c, svc, 3)
	held += 3
	if got := s.Stats(); got.Mode != ModeOff || got.Limit != 0 || got.InFlight != held {
		t.Errorf("Stats() in off mode with %d calls held = %+v", held, got)
	}

	// Back to a limit, below the calls in flight, with another RetryAfter:
	// the next call is refused with it.
	fixed := fixedServer(2, 300*time.Millisecond)
	if err := s.SetConfig(fixed); err != nil {
		t.Fatal(err)
	}
	if got := echo(t, c, "refused"); got != refused(300*time.Millisecond) {
		t.Errorf("first call after the switch to a fixed limit of 2 with %d in flight: %+v, want refused after 300ms", held, got)
	}
	if diff := cmp.Diff(fixed, s.Config()); diff != "" {
		t.Errorf("Config() (-want +got):\n%s", diff)
	}

	svc.Release()
	waitDone(t, done, 1)
	waitDone(t, done2, 3)
	if got := echo(t, c, "after"); got != answered {
		t.Errorf("call after the release: %+v, want OK", got)
	}
}

func TestExemptMethods(t *testing.T) {
	for method, want := range map[string]bool{
		"/grpc.health.v1.Health/Check":                                   true,
		"/grpc.health.v1.Health/Watch":                                   true,
		"/grpc.reflection.v1.ServerReflection/ServerReflectionInfo":      true,
		"/grpc.reflection.v1alpha.ServerReflection/ServerReflectionInfo": true,
		"/testpb.v1.TestService/Echo":                                    false,
		"/grpc.health.v1.HealthX/Check":                                  false,
	} {
		if got := alwaysExempt(method); got != want {
			t.Errorf("alwaysExempt(%q) = %v, want %v", method, got, want)
		}
	}
}

func TestServerConfigExemptMethods(t *testing.T) {
	cfg := DefaultServerConfig()
	cfg.ExemptMethods = []string{"/pkg.Svc/Watch", "/pkg.Other/*"}
	if err := cfg.Validate(); err != nil {
		t.Fatalf("valid exempt_methods refused: %v", err)
	}
	cfg.ExemptMethods = []string{"Watch"}
	if err := cfg.Validate(); err == nil || !strings.Contains(err.Error(), "overload: exempt_methods") {
		t.Errorf("Validate() with a malformed method = %v, want an error naming exempt_methods", err)
	}
}
