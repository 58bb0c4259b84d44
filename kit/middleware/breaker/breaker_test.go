package breaker

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"go.opentelemetry.io/otel/attribute"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	"go.opentelemetry.io/otel/sdk/metric/metricdata"
	"go.uber.org/goleak"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/status"
	"google.golang.org/grpc/test/bufconn"

	"github.com/grpckit/grpckit/kit/duration"
	greeterv1 "github.com/grpckit/grpckit/proto/greeter/v1"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

const (
	target       = "passthrough:///bufnet"
	sayHello     = "/greeter.v1.GreeterService/SayHello"
	streamHellos = "/greeter.v1.GreeterService/StreamHellos"
)

// fakeGreeter answers every call with the error stored in fail (nil: OK),
// or, when block is set, waits for the call's end. calls counts the calls
// that reached it.
type fakeGreeter struct {
	greeterv1.UnimplementedGreeterServiceServer
	fail    atomic.Pointer[error]
	block   atomic.Bool
	started chan struct{}
	calls   atomic.Int32
}

func newFakeGreeter() *fakeGreeter { return &fakeGreeter{started: make(chan struct{}, 100)} }

func (f *fakeGreeter) setFail(code codes.Code) {
	var err error
	if code != codes.OK {
		err = status.Error(code, "fake "+code.String())
	}
	f.fail.Store(&err)
}

func (f *fakeGreeter) answer(ctx context.Context) error {
	f.calls.Add(1)
	if f.block.Load() {
		f.started <- struct{}{}
		<-ctx.Done()
		return status.FromContextError(ctx.Err()).Err()
	}
	if p := f.fail.Load(); p != nil {
		return *p
	}
	return nil
}

func (f *fakeGreeter) SayHello(ctx context.Context, req *greeterv1.SayHelloRequest) (*greeterv1.SayHelloResponse, error) {
	if err := f.answer(ctx); err != nil {
		return nil, err
	}
	return &greeterv1.SayHelloResponse{Message: "hello " + req.GetName()}, nil
}

func (f *fakeGreeter) StreamHellos(req *greeterv1.StreamHellosRequest, stream grpc.ServerStreamingServer[greeterv1.StreamHellosResponse]) error {
	if err := stream.Send(&greeterv1.StreamHellosResponse{Message: "hello " + req.GetName(), Sequence: 1}); err != nil {
		return err
	}
	return f.answer(stream.Context())
}

// serve starts srv on a bufconn listener and returns a client whose conn
// passes through the interceptors of b, after the extra interceptors.
func serve(t *testing.T, srv greeterv1.GreeterServiceServer, b *Breakers, unary ...grpc.UnaryClientInterceptor) greeterv1.GreeterServiceClient {
	t.Helper()
	lis := bufconn.Listen(1 << 20)
	gs := grpc.NewServer()
	greeterv1.RegisterGreeterServiceServer(gs, srv)
	go gs.Serve(lis)
	t.Cleanup(gs.Stop)
	cc, err := grpc.NewClient(target,
		grpc.WithContextDialer(func(ctx context.Context, _ string) (net.Conn, error) { return lis.DialContext(ctx) }),
		grpc.WithTransportCredentials(insecure.NewCredentials()),
		grpc.WithChainUnaryInterceptor(append([]grpc.UnaryClientInterceptor{b.UnaryClientInterceptor()}, unary...)...),
		grpc.WithChainStreamInterceptor(b.StreamClientInterceptor()))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cc.Close() })
	return greeterv1.NewGreeterServiceClient(cc)
}

func newBreakers(t *testing.T, cfg Config, opts ...Option) *Breakers {
	t.Helper()
	b, err := New(cfg, opts...)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func call(t *testing.T, c greeterv1.GreeterServiceClient) error {
	t.Helper()
	_, err := c.SayHello(t.Context(), &greeterv1.SayHelloRequest{Name: "ada"})
	return err
}

// state returns the state of the breaker of (target, method), "" if none.
func state(b *Breakers, method string) State {
	for _, s := range b.States() {
		if s.Target == target && s.Method == method {
			return s
		}
	}
	return State{}
}

// waitFor polls cond until it holds, failing the test after 5s.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	tick := time.NewTicker(time.Millisecond)
	defer tick.Stop()
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		<-tick.C
	}
}

func consecutiveOnly(n uint32, openTimeout time.Duration) Config {
	cfg := DefaultConfig()
	cfg.ConsecutiveFailures = n
	cfg.FailureRatio = 0
	cfg.OpenTimeout = duration.Duration(openTimeout)
	return cfg
}

func TestOpensAfterConsecutiveFailuresAndFailsFast(t *testing.T) {
	srv := newFakeGreeter()
	srv.setFail(codes.Unavailable)
	b := newBreakers(t, consecutiveOnly(3, time.Hour))
	c := serve(t, srv, b)

	for i := range 3 {
		if err := call(t, c); status.Code(err) != codes.Unavailable || !strings.Contains(err.Error(), "fake") {
			t.Fatalf("call %d: got %v, want the server's Unavailable", i, err)
		}
	}
	err := call(t, c)
	if status.Code(err) != codes.Unavailable {
		t.Fatalf("call on open breaker: code %v, want Unavailable", status.Code(err))
	}
	for _, want := range []string{"circuit breaker is open", target, sayHello} {
		if msg := status.Convert(err).Message(); !strings.Contains(msg, want) {
			t.Errorf("message %q does not contain %q", msg, want)
		}
	}
	if got := srv.calls.Load(); got != 3 {
		t.Errorf("server saw %d calls, want 3 (the open breaker must not pass calls)", got)
	}
	want := State{Target: target, Method: sayHello, State: "open"}
	if diff := cmp.Diff(want, state(b, sayHello)); diff != "" {
		t.Errorf("States (-want +got):\n%s", diff)
	}
}

func TestHalfOpensAfterOpenTimeoutThenCloses(t *testing.T) {
	srv := newFakeGreeter()
	srv.setFail(codes.Unavailable)
	b := newBreakers(t, consecutiveOnly(2, 20*time.Millisecond))
	c := serve(t, srv, b)

	call(t, c)
	call(t, c)
	if got := state(b, sayHello).State; got != "open" {
		t.Fatalf("state after 2 failures = %q, want open", got)
	}
	waitFor(t, "half-open", func() bool { return state(b, sayHello).State == "half-open" })

	// A failing probe opens the breaker again.
	if err := call(t, c); !strings.Contains(err.Error(), "fake") {
		t.Fatalf("probe: %v, want the server's error", err)
	}
	if got := state(b, sayHello).State; got != "open" {
		t.Fatalf("state after a failed probe = %q, want open", got)
	}
	waitFor(t, "half-open again", func() bool { return state(b, sayHello).State == "half-open" })

	srv.setFail(codes.OK)
	if err := call(t, c); err != nil {
		t.Fatalf("probe: %v", err)
	}
	if got := state(b, sayHello).State; got != "closed" {
		t.Fatalf("state after a good probe = %q, want closed", got)
	}
	if err := call(t, c); err != nil {
		t.Fatalf("call on closed breaker: %v", err)
	}
}

func TestHalfOpenLetsOnlyConfiguredProbesThrough(t *testing.T) {
	srv := newFakeGreeter()
	srv.setFail(codes.Unavailable)
	b := newBreakers(t, consecutiveOnly(1, 20*time.Millisecond))
	c := serve(t, srv, b)

	call(t, c)
	waitFor(t, "half-open", func() bool { return state(b, sayHello).State == "half-open" })

	srv.block.Store(true)
	ctx, cancel := context.WithCancel(t.Context())
	probe := make(chan error, 1)
	go func() {
		_, err := c.SayHello(ctx, &greeterv1.SayHelloRequest{Name: "probe"})
		probe <- err
	}()
	<-srv.started
	err := call(t, c)
	if status.Code(err) != codes.Unavailable || !strings.Contains(err.Error(), "half-open") {
		t.Errorf("second call while probing: %v, want Unavailable naming half-open", err)
	}
	// A canceled probe counts as neither outcome: the next probe may go.
	cancel()
	if err := <-probe; status.Code(err) != codes.Canceled {
		t.Fatalf("probe: %v, want Canceled", err)
	}
	srv.block.Store(false)
	srv.setFail(codes.OK)
	if err := call(t, c); err != nil {
		t.Fatalf("probe after a canceled one: %v", err)
	}
	if got := state(b, sayHello).State; got != "closed" {
		t.Errorf("state = %q, want closed", got)
	}
}

func TestIgnoresApplicationErrorsAndCancellations(t *testing.T) {
	srv := newFakeGreeter()
	b := newBreakers(t, consecutiveOnly(2, time.Hour))
	c := serve(t, srv, b)

	for _, code := range []codes.Code{codes.NotFound, codes.InvalidArgument, codes.AlreadyExists, codes.Internal, codes.PermissionDenied} {
		srv.setFail(code)
		for range 3 {
			if err := call(t, c); status.Code(err) != code {
				t.Fatalf("got %v, want %v", err, code)
			}
		}
	}
	srv.block.Store(true)
	for range 3 {
		ctx, cancel := context.WithCancel(t.Context())
		errc := make(chan error, 1)
		go func() {
			_, err := c.SayHello(ctx, &greeterv1.SayHelloRequest{Name: "ada"})
			errc <- err
		}()
		<-srv.started
		cancel()
		if err := <-errc; status.Code(err) != codes.Canceled {
			t.Fatalf("got %v, want Canceled", err)
		}
	}
	want := State{Target: target, Method: sayHello, State: "closed", Counts: Counts{
		Requests: 18, TotalSuccesses: 15, TotalExclusions: 3, ConsecutiveSuccesses: 15,
	}}
	if diff := cmp.Diff(want, state(b, sayHello)); diff != "" {
		t.Errorf("States (-want +got):\n%s", diff)
	}
}

// limitedErr imitates a client rate limiter's rejection.
type limitedErr struct{}

func (limitedErr) Error() string              { return "limited" }
func (limitedErr) GRPCStatus() *status.Status { return status.New(codes.ResourceExhausted, "limited") }
func (limitedErr) LocalRejection() bool       { return true }

func TestIgnoresLocalRejections(t *testing.T) {
	srv := newFakeGreeter()
	b := newBreakers(t, consecutiveOnly(1, time.Hour))
	reject := func(context.Context, string, any, any, *grpc.ClientConn, grpc.UnaryInvoker, ...grpc.CallOption) error {
		return fmt.Errorf("wrapped: %w", limitedErr{})
	}
	c := serve(t, srv, b, reject)
	for range 3 {
		if err := call(t, c); status.Code(err) != codes.ResourceExhausted {
			t.Fatalf("got %v, want ResourceExhausted", err)
		}
	}
	want := State{Target: target, Method: sayHello, State: "closed", Counts: Counts{Requests: 3, TotalExclusions: 3}}
	if diff := cmp.Diff(want, state(b, sayHello)); diff != "" {
		t.Errorf("States (-want +got):\n%s", diff)
	}
}

// recvAll reads a stream to its end and returns its final error (nil: OK).
func recvAll(t *testing.T, ctx context.Context, c greeterv1.GreeterServiceClient) error {
	t.Helper()
	s, err := c.StreamHellos(ctx, &greeterv1.StreamHellosRequest{Name: "ada"})
	if err != nil {
		return err
	}
	for {
		if _, err := s.Recv(); err != nil {
			if errors.Is(err, io.EOF) {
				return nil
			}
			return err
		}
	}
}

func TestStreamFinalStatusCounts(t *testing.T) {
	srv := newFakeGreeter()
	b := newBreakers(t, consecutiveOnly(2, time.Hour))
	c := serve(t, srv, b)

	// Application errors and OK streams are successes.
	srv.setFail(codes.NotFound)
	if err := recvAll(t, t.Context(), c); status.Code(err) != codes.NotFound {
		t.Fatalf("got %v, want NotFound", err)
	}
	srv.setFail(codes.OK)
	if err := recvAll(t, t.Context(), c); err != nil {
		t.Fatal(err)
	}
	// A canceled stream counts as neither.
	srv.block.Store(true)
	ctx, cancel := context.WithCancel(t.Context())
	s, err := c.StreamHellos(ctx, &greeterv1.StreamHellosRequest{Name: "ada"})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.Recv(); err != nil {
		t.Fatal(err)
	}
	<-srv.started
	cancel()
	waitFor(t, "the canceled stream to be counted", func() bool { return state(b, streamHellos).TotalExclusions == 1 })
	srv.block.Store(false)

	// Failures at the end of the stream (after a message) trip the breaker.
	srv.setFail(codes.Unavailable)
	for range 2 {
		if err := recvAll(t, t.Context(), c); status.Code(err) != codes.Unavailable {
			t.Fatalf("got %v, want Unavailable", err)
		}
	}
	calls := srv.calls.Load()
	err = recvAll(t, t.Context(), c)
	if status.Code(err) != codes.Unavailable || !strings.Contains(err.Error(), "circuit breaker is open") {
		t.Fatalf("stream on open breaker: %v", err)
	}
	if got := srv.calls.Load(); got != calls {
		t.Errorf("server saw %d streams, want %d", got, calls)
	}
	want := State{Target: target, Method: streamHellos, State: "open"}
	if diff := cmp.Diff(want, state(b, streamHellos)); diff != "" {
		t.Errorf("States (-want +got):\n%s", diff)
	}
	if got := state(b, sayHello); got != (State{}) {
		t.Errorf("unary breaker exists without unary calls: %+v", got)
	}
}

func TestFailureRatioWithMinimumVolume(t *testing.T) {
	cfg := DefaultConfig()
	cfg.ConsecutiveFailures = 0
	cfg.FailureRatio = 0.5
	cfg.MinRequests = 6
	srv := newFakeGreeter()
	b := newBreakers(t, cfg)
	c := serve(t, srv, b)

	// fail, ok, fail, ok, fail: 3 of 5 failed, but fewer than 6 calls.
	for i := range 5 {
		srv.setFail([]codes.Code{codes.Unavailable, codes.OK}[i%2])
		call(t, c)
	}
	if got := state(b, sayHello).State; got != "closed" {
		t.Fatalf("state below min_requests = %q, want closed", got)
	}
	srv.setFail(codes.OK)
	call(t, c) // 3 of 6 failed, but gobreaker checks the ratio only when a call fails
	if got := state(b, sayHello).State; got != "closed" {
		t.Fatalf("state after a success = %q, want closed", got)
	}
	srv.setFail(codes.DeadlineExceeded)
	call(t, c) // 4 of 7 failed
	if got := state(b, sayHello).State; got != "open" {
		t.Fatalf("state at 4 of 7 failures = %q, want open", got)
	}
}

func TestReadyToTrip(t *testing.T) {
	cfg := Config{ConsecutiveFailures: 5, FailureRatio: 0.5, MinRequests: 10}
	for _, tc := range []struct {
		name                             string
		cfg                              Config
		failures, successes, consecutive uint32
		want                             bool
	}{
		{"below both", cfg, 4, 10, 4, false},
		{"consecutive", cfg, 5, 100, 5, true},
		{"ratio below volume", cfg, 5, 4, 1, false},
		{"ratio at volume", cfg, 5, 5, 1, true},
		{"ratio under threshold", cfg, 4, 6, 1, false},
		{"consecutive off", Config{FailureRatio: 0.5, MinRequests: 100}, 50, 0, 50, false},
		{"ratio off", Config{ConsecutiveFailures: 3}, 90, 10, 2, false},
		{"min requests 0", Config{FailureRatio: 1}, 1, 0, 1, true},
		{"nothing finished", Config{FailureRatio: 1}, 0, 0, 0, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := tc.cfg.readyToTrip(tc.failures, tc.successes, tc.consecutive); got != tc.want {
				t.Errorf("readyToTrip(%d, %d, %d) = %v, want %v", tc.failures, tc.successes, tc.consecutive, got, tc.want)
			}
		})
	}
}

func TestSetConfig(t *testing.T) {
	srv := newFakeGreeter()
	srv.setFail(codes.Unavailable)
	b := newBreakers(t, consecutiveOnly(1, time.Hour))
	c := serve(t, srv, b)
	call(t, c)
	if got := state(b, sayHello).State; got != "open" {
		t.Fatalf("state = %q, want open", got)
	}

	bad := consecutiveOnly(3, 0)
	if err := b.SetConfig(bad); err == nil || !strings.Contains(err.Error(), "breaker: open_timeout") {
		t.Errorf("SetConfig(invalid) = %v, want an error naming open_timeout", err)
	}
	if diff := cmp.Diff(consecutiveOnly(1, time.Hour), b.Config()); diff != "" {
		t.Errorf("config after a rejected SetConfig (-want +got):\n%s", diff)
	}
	// The same config changes nothing.
	if err := b.SetConfig(consecutiveOnly(1, time.Hour)); err != nil {
		t.Fatal(err)
	}
	if got := state(b, sayHello).State; got != "open" {
		t.Fatalf("state after SetConfig(same) = %q, want open", got)
	}
	// A new config rebuilds existing breakers, closed.
	if err := b.SetConfig(consecutiveOnly(3, time.Hour)); err != nil {
		t.Fatal(err)
	}
	if got := state(b, sayHello).State; got != "closed" {
		t.Fatalf("state after SetConfig = %q, want closed", got)
	}
	for range 2 {
		call(t, c)
	}
	if got := state(b, sayHello).State; got != "closed" {
		t.Fatalf("state after 2 failures with consecutive_failures 3 = %q, want closed", got)
	}
	call(t, c)
	if got := state(b, sayHello).State; got != "open" {
		t.Fatalf("state after 3 failures = %q, want open", got)
	}
}

func TestTransitionsCounted(t *testing.T) {
	reader := sdkmetric.NewManualReader()
	mp := sdkmetric.NewMeterProvider(sdkmetric.WithReader(reader))
	t.Cleanup(func() { mp.Shutdown(context.Background()) })

	srv := newFakeGreeter()
	srv.setFail(codes.Unavailable)
	b := newBreakers(t, consecutiveOnly(1, 20*time.Millisecond), WithMeterProvider(mp))
	c := serve(t, srv, b)
	call(t, c)
	waitFor(t, "half-open", func() bool { return state(b, sayHello).State == "half-open" })
	srv.setFail(codes.OK)
	call(t, c)

	var rm metricdata.ResourceMetrics
	if err := reader.Collect(t.Context(), &rm); err != nil {
		t.Fatal(err)
	}
	got := map[string]int64{}
	for _, sm := range rm.ScopeMetrics {
		for _, m := range sm.Metrics {
			if m.Name != "grpckit.breaker.transitions" {
				continue
			}
			for _, dp := range m.Data.(metricdata.Sum[int64]).DataPoints {
				from, _ := dp.Attributes.Value("from")
				to, _ := dp.Attributes.Value("to")
				method, _ := dp.Attributes.Value("method")
				tgt, _ := dp.Attributes.Value(attribute.Key("target"))
				got[tgt.AsString()+" "+method.AsString()+" "+from.AsString()+">"+to.AsString()] = dp.Value
			}
		}
	}
	prefix := target + " " + sayHello + " "
	want := map[string]int64{prefix + "closed>open": 1, prefix + "open>half-open": 1, prefix + "half-open>closed": 1}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("transitions (-want +got):\n%s", diff)
	}
}

func TestUnaryAllocations(t *testing.T) {
	cc, err := grpc.NewClient(target, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	defer cc.Close()
	interceptor := newBreakers(t, DefaultConfig()).UnaryClientInterceptor()
	invoker := func(context.Context, string, any, any, *grpc.ClientConn, ...grpc.CallOption) error { return nil }
	ctx := t.Context()
	// gobreaker's Allow returns a closure: one allocation per call.
	if n := testing.AllocsPerRun(100, func() { interceptor(ctx, sayHello, nil, nil, cc, invoker) }); n > 1 {
		t.Errorf("%v allocations per call, want at most 1", n)
	}
}
