package breaker

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"go.uber.org/goleak"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/status"

	"github.com/grpckit/grpckit/kit/duration"
	"github.com/grpckit/grpckit/kit/internal/kittest"
	testpbv1 "github.com/grpckit/grpckit/kit/internal/testpb/v1"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

const (
	target     = kittest.Target
	echo       = testpbv1.TestService_Echo_FullMethodName
	echoStream = testpbv1.TestService_EchoStream_FullMethodName
)

// fake returns the error the service answers with for code: nil for OK,
// else a status error whose message says it came from the server.
func fake(code codes.Code) error {
	if code == codes.OK {
		return nil
	}
	return status.Error(code, "fake "+code.String())
}

// serve starts svc on a bufconn listener and returns a client whose conn
// passes through the interceptors of b, after the extra interceptors.
func serve(t *testing.T, svc *kittest.Service, b *Breakers, unary ...grpc.UnaryClientInterceptor) testpbv1.TestServiceClient {
	t.Helper()
	cc := kittest.Serve(t, svc.Register, nil,
		grpc.WithChainUnaryInterceptor(append([]grpc.UnaryClientInterceptor{b.UnaryClientInterceptor()}, unary...)...),
		grpc.WithChainStreamInterceptor(b.StreamClientInterceptor()))
	return testpbv1.NewTestServiceClient(cc)
}

func newBreakers(t *testing.T, cfg Config, opts ...Option) *Breakers {
	t.Helper()
	b, err := New(cfg, opts...)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func call(t *testing.T, c testpbv1.TestServiceClient) error {
	t.Helper()
	_, err := c.Echo(t.Context(), &testpbv1.EchoRequest{Message: "ada"})
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

func consecutiveOnly(n uint32, openTimeout time.Duration) Config {
	cfg := DefaultConfig()
	cfg.ConsecutiveFailures = n
	cfg.FailureRatio = 0
	cfg.OpenTimeout = duration.Duration(openTimeout)
	return cfg
}

func TestOpensAfterConsecutiveFailuresAndFailsFast(t *testing.T) {
	srv := &kittest.Service{}
	srv.Fail(fake(codes.Unavailable))
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
	for _, want := range []string{"circuit breaker is open", target, echo} {
		if msg := status.Convert(err).Message(); !strings.Contains(msg, want) {
			t.Errorf("message %q does not contain %q", msg, want)
		}
	}
	if got := srv.Calls(); got != 3 {
		t.Errorf("server saw %d calls, want 3 (the open breaker must not pass calls)", got)
	}
	want := State{Target: target, Method: echo, State: "open"}
	if diff := cmp.Diff(want, state(b, echo)); diff != "" {
		t.Errorf("States (-want +got):\n%s", diff)
	}
}

func TestHalfOpensAfterOpenTimeoutThenCloses(t *testing.T) {
	srv := &kittest.Service{}
	srv.Fail(fake(codes.Unavailable))
	b := newBreakers(t, consecutiveOnly(2, 20*time.Millisecond))
	c := serve(t, srv, b)

	call(t, c)
	call(t, c)
	if got := state(b, echo).State; got != "open" {
		t.Fatalf("state after 2 failures = %q, want open", got)
	}
	kittest.WaitFor(t, "half-open", func() bool { return state(b, echo).State == "half-open" })

	// A failing probe opens the breaker again.
	if err := call(t, c); !strings.Contains(err.Error(), "fake") {
		t.Fatalf("probe: %v, want the server's error", err)
	}
	if got := state(b, echo).State; got != "open" {
		t.Fatalf("state after a failed probe = %q, want open", got)
	}
	kittest.WaitFor(t, "half-open again", func() bool { return state(b, echo).State == "half-open" })

	srv.Fail(nil)
	if err := call(t, c); err != nil {
		t.Fatalf("probe: %v", err)
	}
	if got := state(b, echo).State; got != "closed" {
		t.Fatalf("state after a good probe = %q, want closed", got)
	}
	if err := call(t, c); err != nil {
		t.Fatalf("call on closed breaker: %v", err)
	}
}

func TestHalfOpenLetsOnlyConfiguredProbesThrough(t *testing.T) {
	srv := &kittest.Service{}
	srv.Fail(fake(codes.Unavailable))
	b := newBreakers(t, consecutiveOnly(1, 20*time.Millisecond))
	c := serve(t, srv, b)

	call(t, c)
	kittest.WaitFor(t, "half-open", func() bool { return state(b, echo).State == "half-open" })

	srv.Block(true)
	ctx, cancel := context.WithCancel(t.Context())
	probe := make(chan error, 1)
	go func() {
		_, err := c.Echo(ctx, &testpbv1.EchoRequest{Message: "probe"})
		probe <- err
	}()
	<-srv.Blocked()
	err := call(t, c)
	if status.Code(err) != codes.Unavailable || !strings.Contains(err.Error(), "half-open") {
		t.Errorf("second call while probing: %v, want Unavailable naming half-open", err)
	}
	// A canceled probe counts as neither outcome: the next probe may go.
	cancel()
	if err := <-probe; status.Code(err) != codes.Canceled {
		t.Fatalf("probe: %v, want Canceled", err)
	}
	srv.Block(false)
	srv.Fail(nil)
	if err := call(t, c); err != nil {
		t.Fatalf("probe after a canceled one: %v", err)
	}
	if got := state(b, echo).State; got != "closed" {
		t.Errorf("state = %q, want closed", got)
	}
}

func TestIgnoresApplicationErrorsAndCancellations(t *testing.T) {
	srv := &kittest.Service{}
	b := newBreakers(t, consecutiveOnly(2, time.Hour))
	c := serve(t, srv, b)

	for _, code := range []codes.Code{codes.NotFound, codes.InvalidArgument, codes.AlreadyExists, codes.Internal, codes.PermissionDenied} {
		srv.Fail(fake(code))
		for range 3 {
			if err := call(t, c); status.Code(err) != code {
				t.Fatalf("got %v, want %v", err, code)
			}
		}
	}
	srv.Block(true)
	for range 3 {
		ctx, cancel := context.WithCancel(t.Context())
		errc := make(chan error, 1)
		go func() {
			_, err := c.Echo(ctx, &testpbv1.EchoRequest{Message: "ada"})
			errc <- err
		}()
		<-srv.Blocked()
		cancel()
		if err := <-errc; status.Code(err) != codes.Canceled {
			t.Fatalf("got %v, want Canceled", err)
		}
	}
	want := State{Target: target, Method: echo, State: "closed", Counts: Counts{
		Requests: 18, TotalSuccesses: 15, TotalExclusions: 3, ConsecutiveSuccesses: 15,
	}}
	if diff := cmp.Diff(want, state(b, echo)); diff != "" {
		t.Errorf("States (-want +got):\n%s", diff)
	}
}

// limitedErr imitates a client rate limiter's rejection.
type limitedErr struct{}

func (limitedErr) Error() string              { return "limited" }
func (limitedErr) GRPCStatus() *status.Status { return status.New(codes.ResourceExhausted, "limited") }
func (limitedErr) LocalRejection() bool       { return true }

func TestIgnoresLocalRejections(t *testing.T) {
	srv := &kittest.Service{}
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
	want := State{Target: target, Method: echo, State: "closed", Counts: Counts{Requests: 3, TotalExclusions: 3}}
	if diff := cmp.Diff(want, state(b, echo)); diff != "" {
		t.Errorf("States (-want +got):\n%s", diff)
	}
}

// streamReq asks for a stream that meets the server's faults after its
// first message.
var streamReq = &testpbv1.EchoStreamRequest{Message: "ada", FaultAfter: 1}

// recvAll reads a stream to its end and returns its final error (nil: OK).
func recvAll(t *testing.T, ctx context.Context, c testpbv1.TestServiceClient) error {
	t.Helper()
	s, err := c.EchoStream(ctx, streamReq)
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
	srv := &kittest.Service{}
	b := newBreakers(t, consecutiveOnly(2, time.Hour))
	c := serve(t, srv, b)

	// Application errors and OK streams are successes.
	srv.Fail(fake(codes.NotFound))
	if err := recvAll(t, t.Context(), c); status.Code(err) != codes.NotFound {
		t.Fatalf("got %v, want NotFound", err)
	}
	srv.Fail(nil)
	if err := recvAll(t, t.Context(), c); err != nil {
		t.Fatal(err)
	}
	// A canceled stream counts as neither.
	srv.Block(true)
	ctx, cancel := context.WithCancel(t.Context())
	s, err := c.EchoStream(ctx, streamReq)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.Recv(); err != nil {
		t.Fatal(err)
	}
	<-srv.Blocked()
	cancel()
	kittest.WaitFor(t, "the canceled stream to be counted", func() bool { return state(b, echoStream).TotalExclusions == 1 })
	srv.Block(false)

	// Failures at the end of the stream (after a message) trip the breaker.
	srv.Fail(fake(codes.Unavailable))
	for range 2 {
		if err := recvAll(t, t.Context(), c); status.Code(err) != codes.Unavailable {
			t.Fatalf("got %v, want Unavailable", err)
		}
	}
	calls := srv.Calls()
	err = recvAll(t, t.Context(), c)
	if status.Code(err) != codes.Unavailable || !strings.Contains(err.Error(), "circuit breaker is open") {
		t.Fatalf("stream on open breaker: %v", err)
	}
	if got := srv.Calls(); got != calls {
		t.Errorf("server saw %d streams, want %d", got, calls)
	}
	want := State{Target: target, Method: echoStream, State: "open"}
	if diff := cmp.Diff(want, state(b, echoStream)); diff != "" {
		t.Errorf("States (-want +got):\n%s", diff)
	}
	if got := state(b, echo); got != (State{}) {
		t.Errorf("unary breaker exists without unary calls: %+v", got)
	}
}

func TestFailureRatioWithMinimumVolume(t *testing.T) {
	cfg := DefaultConfig()
	cfg.ConsecutiveFailures = 0
	cfg.FailureRatio = 0.5
	cfg.MinRequests = 6
	srv := &kittest.Service{}
	b := newBreakers(t, cfg)
	c := serve(t, srv, b)

	// fail, ok, fail, ok, fail: 3 of 5 failed, but fewer than 6 calls.
	for i := range 5 {
		srv.Fail(fake([]codes.Code{codes.Unavailable, codes.OK}[i%2]))
		call(t, c)
	}
	if got := state(b, echo).State; got != "closed" {
		t.Fatalf("state below min_requests = %q, want closed", got)
	}
	srv.Fail(nil)
	call(t, c) // 3 of 6 failed, but gobreaker checks the ratio only when a call fails
	if got := state(b, echo).State; got != "closed" {
		t.Fatalf("state after a success = %q, want closed", got)
	}
	srv.Fail(fake(codes.Unavailable))
	call(t, c) // 4 of 7 failed
	if got := state(b, echo).State; got != "open" {
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
	srv := &kittest.Service{}
	srv.Fail(fake(codes.Unavailable))
	b := newBreakers(t, consecutiveOnly(1, time.Hour))
	c := serve(t, srv, b)
	call(t, c)
	if got := state(b, echo).State; got != "open" {
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
	if got := state(b, echo).State; got != "open" {
		t.Fatalf("state after SetConfig(same) = %q, want open", got)
	}
	// A new config rebuilds existing breakers, closed.
	if err := b.SetConfig(consecutiveOnly(3, time.Hour)); err != nil {
		t.Fatal(err)
	}
	if got := state(b, echo).State; got != "closed" {
		t.Fatalf("state after SetConfig = %q, want closed", got)
	}
	for range 2 {
		call(t, c)
	}
	if got := state(b, echo).State; got != "closed" {
		t.Fatalf("state after 2 failures with consecutive_failures 3 = %q, want closed", got)
	}
	call(t, c)
	if got := state(b, echo).State; got != "open" {
		t.Fatalf("state after 3 failures = %q, want open", got)
	}
}

func TestTransitionsCounted(t *testing.T) {
	mp, reader := kittest.NewMeterProvider(t)

	srv := &kittest.Service{}
	srv.Fail(fake(codes.Unavailable))
	b := newBreakers(t, consecutiveOnly(1, 20*time.Millisecond), WithMeterProvider(mp))
	c := serve(t, srv, b)
	call(t, c)
	kittest.WaitFor(t, "half-open", func() bool { return state(b, echo).State == "half-open" })
	srv.Fail(nil)
	call(t, c)

	got := kittest.MetricSumsBy(t, reader, "grpckit.breaker.transitions", "target", "method", "from", "to")
	prefix := target + " " + echo + " "
	want := map[string]int64{prefix + "closed open": 1, prefix + "open half-open": 1, prefix + "half-open closed": 1}
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
	if n := testing.AllocsPerRun(100, func() { interceptor(ctx, echo, nil, nil, cc, invoker) }); n > 1 {
		t.Errorf("%v allocations per call, want at most 1", n)
	}
}
