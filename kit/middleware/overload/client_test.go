package overload

import (
	"context"
	"errors"
	"fmt"
	"io"
	"math"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/grpckit/grpckit/kit/duration"
	"github.com/grpckit/grpckit/kit/internal/fakeclock"
	"github.com/grpckit/grpckit/kit/internal/kittest"
	testpbv1 "github.com/grpckit/grpckit/kit/internal/testpb/v1"
	"github.com/grpckit/grpckit/kit/middleware"
)

// capacity stands in for a target's capacity on the server side: its
// interceptors let calls through while its budget lasts and refuse the
// others with RESOURCE_EXHAUSTED, as an overloaded server does. It counts
// the calls that reached it.
type capacity struct {
	budget  atomic.Int64
	arrived atomic.Int64
}

var errOverCapacity = status.Error(codes.ResourceExhausted, "test: over capacity")

func (c *capacity) admit() error {
	c.arrived.Add(1)
	if c.budget.Add(-1) < 0 {
		return errOverCapacity
	}
	return nil
}

func (c *capacity) unary(ctx context.Context, req any, _ *grpc.UnaryServerInfo, handler grpc.UnaryHandler) (any, error) {
	if err := c.admit(); err != nil {
		return nil, err
	}
	return handler(ctx, req)
}

func (c *capacity) stream(srv any, ss grpc.ServerStream, _ *grpc.StreamServerInfo, handler grpc.StreamHandler) error {
	if err := c.admit(); err != nil {
		return err
	}
	return handler(srv, ss)
}

// serveCapacity starts the test service behind a capacity with no budget.
func serveCapacity(t *testing.T) (*kittest.Server, *capacity) {
	t.Helper()
	capa := &capacity{}
	srv := kittest.StartServer(t, (&kittest.Service{}).Register,
		grpc.ChainUnaryInterceptor(capa.unary), grpc.ChainStreamInterceptor(capa.stream))
	return srv, capa
}

func newClient(t *testing.T, cfg ClientConfig, opts ...Option) *Client {
	t.Helper()
	c, err := NewClient(cfg, opts...)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// dialThrough returns a client of srv's test service over a connection of
// target "passthrough:///"+name, through c's interceptors and then the
// interceptors of later.
func dialThrough(t *testing.T, srv *kittest.Server, name string, c *Client, later ...grpc.DialOption) testpbv1.TestServiceClient {
	t.Helper()
	opts := append([]grpc.DialOption{
		grpc.WithChainUnaryInterceptor(c.UnaryClientInterceptor()),
		grpc.WithChainStreamInterceptor(c.StreamClientInterceptor()),
	}, later...)
	return testpbv1.NewTestServiceClient(srv.Dial(t, name, opts...))
}

// throttleFor makes the throttle c will use for target, on a manual clock
// and a seeded random source. Call it before the first call to target.
func throttleFor(t *testing.T, c *Client, target string) (*Throttle, *fakeclock.Clock) {
	t.Helper()
	th, clk := newTestThrottle(t, c.Config().ThrottleConfig)
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.throttles[target] != nil {
		t.Fatalf("the client has a throttle for %s already", target)
	}
	c.throttles[target] = th
	return th, clk
}

// isThrottled reports whether err is a local refusal of the client, and
// fails the test unless such an error, and only such an error, has every
// property ErrThrottled promises.
func isThrottled(t *testing.T, err error) bool {
	t.Helper()
	is := errors.Is(err, ErrThrottled)
	local := middleware.IsLocalRejection(err)
	if is != local {
		t.Errorf("error %v: errors.Is(err, ErrThrottled) = %v but IsLocalRejection = %v", err, is, local)
	}
	if is && status.Code(err) != codes.ResourceExhausted {
		t.Errorf("local refusal %v has code %v, want ResourceExhausted", err, status.Code(err))
	}
	return is
}

func TestClientThrottlesWhenTargetRefuses(t *testing.T) {
	mp, reader := kittest.NewMeterProvider(t)
	cfg := DefaultClientConfig()
	cfg.K, cfg.Window, cfg.MinRequests = 2, duration.Duration(100*time.Millisecond), 20
	cl := newClient(t, cfg, WithMeterProvider(mp))
	srv, capa := serveCapacity(t)
	c := dialThrough(t, srv, "target", cl)
	th, clk := throttleFor(t, cl, "passthrough:///target")
	call := func() error {
		_, err := c.Echo(t.Context(), &testpbv1.EchoRequest{Message: "m"})
		return err
	}
	shed := 0

	// The target refuses everything. Below min_requests every call is
	// sent, and the server's refusal is no local one.
	for i := range cfg.MinRequests - 1 {
		err := call()
		if status.Code(err) != codes.ResourceExhausted || isThrottled(t, err) {
			t.Fatalf("call %d below min_requests: %v, want the server's RESOURCE_EXHAUSTED", i, err)
		}
	}
	if got := capa.arrived.Load(); got != int64(cfg.MinRequests-1) {
		t.Fatalf("%d calls reached the server, want all %d", got, cfg.MinRequests-1)
	}
	// Then the client refuses locally, almost always.
	for i := 0; shed == 0; i++ {
		if i == 50 {
			t.Fatalf("no call refused locally in 50 calls after min_requests, probability %v", th.Probability())
		}
		before := capa.arrived.Load()
		if isThrottled(t, call()) {
			shed++
			if capa.arrived.Load() != before {
				t.Error("a call refused locally reached the server")
			}
		}
	}

	// The target accepts one call per millisecond, the client asks for 4:
	// the share refused locally follows the throttle's probability.
	var want, variance float64
	got := 0
	for range 500 {
		capa.budget.Store(1)
		for range 4 {
			p := th.Probability()
			want += p
			variance += p * (1 - p)
			if isThrottled(t, call()) {
				got++
			}
		}
		clk.Advance(time.Millisecond)
	}
	shed += got
	if slack := 4*math.Sqrt(variance) + 5; math.Abs(float64(got)-want) > slack {
		t.Errorf("refused %d of 2000 calls locally, want the sum of the probabilities, %.1f ± %.1f", got, want, slack)
	}
	if p := th.Probability(); p < 0.3 || p > 0.7 {
		t.Errorf("Probability() with 1 call accepted of 4 asked = %v, want about 1 - K/4 = 0.5", p)
	}

	// The target accepts everything again: within one window the
	// probability is back to 0, and every call is sent.
	capa.budget.Store(math.MaxInt64 / 2)
	for tick := 0; th.Probability() > 0; tick++ {
		if tick > 100 {
			t.Fatalf("Probability() = %v 100ms (the window) after the target accepts again, want 0", th.Probability())
		}
		for range 4 {
			if isThrottled(t, call()) {
				shed++
			}
		}
		clk.Advance(time.Millisecond)
	}
	for i := range 100 {
		if err := call(); err != nil {
			t.Fatalf("call %d after the probability fell to 0: %v", i, err)
		}
	}
	if got := cl.Stats()[0].Probability; got != 0 {
		t.Errorf("Stats() probability = %v, want 0", got)
	}

	wantRefused := map[string]int64{"client " + echoMethod: int64(shed)}
	if diff := cmp.Diff(wantRefused, kittest.MetricSumsBy(t, reader, "grpckit.overload.refused", "side", "method")); diff != "" {
		t.Errorf("grpckit.overload.refused by side and method (-want +got):\n%s", diff)
	}
}

func TestClientThrottlesPerTarget(t *testing.T) {
	cfg := DefaultClientConfig()
	cfg.Window = duration.Duration(time.Minute) // no call leaves the window
	cl := newClient(t, cfg)
	busy, _ := serveCapacity(t)
	idle := kittest.StartServer(t, (&kittest.Service{}).Register)
	// b is dialed and called first; Stats sorts by target.
	b := dialThrough(t, idle, "b", cl)
	a := dialThrough(t, busy, "a", cl)

	throttledA := 0
	for i := range 40 {
		if _, err := b.Echo(t.Context(), &testpbv1.EchoRequest{Message: "m"}); err != nil {
			t.Fatalf("call %d to b, which accepts everything: %v", i, err)
		}
		_, err := a.Echo(t.Context(), &testpbv1.EchoRequest{Message: "m"})
		if status.Code(err) != codes.ResourceExhausted {
			t.Fatalf("call %d to a, which refuses everything: %v", i, err)
		}
		if isThrottled(t, err) {
			throttledA++
		}
	}
	if throttledA == 0 {
		t.Error("no call to a refused locally")
	}
	want := []ThrottleStats{
		{Target: "passthrough:///a", Requests: 40, Ended: int64(40 - throttledA), Accepts: 0, Probability: 40.0 / 41},
		{Target: "passthrough:///b", Requests: 40, Ended: 40, Accepts: 40, Probability: 0},
	}
	if diff := cmp.Diff(want, cl.Stats()); diff != "" {
		t.Errorf("Stats() (-want +got):\n%s", diff)
	}
}

// localError is the error of a later layer that refused a call locally,
// as a breaker does.
type localError struct{}

func (localError) Error() string        { return "test: refused locally" }
func (localError) LocalRejection() bool { return true }
func (localError) GRPCStatus() *status.Status {
	return status.New(codes.Unavailable, "test: refused locally")
}

func TestAccepted(t *testing.T) {
	for _, tc := range []struct {
		name string
		err  error
		want bool
	}{
		{"nil", nil, true},
		{"the caller canceled", context.Canceled, true},
		{"the caller canceled, wrapped", fmt.Errorf("calling: %w", context.Canceled), true},
		{"CANCELED", status.Error(codes.Canceled, "context canceled"), true},
		{"a later layer's local rejection", localError{}, true},
		{"this layer's local rejection", throttled, true},
		{"NOT_FOUND", status.Error(codes.NotFound, "no such item"), true},
		{"INTERNAL", status.Error(codes.Internal, "bug"), true},
		{"RESOURCE_EXHAUSTED from the server", status.Error(codes.ResourceExhausted, "busy"), false},
		{"DEADLINE_EXCEEDED", status.Error(codes.DeadlineExceeded, "too slow"), false},
		{"UNAVAILABLE (down is the breaker's business)", status.Error(codes.Unavailable, "down"), true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := accepted(tc.err); got != tc.want {
				t.Errorf("accepted(%v) = %v, want %v", tc.err, got, tc.want)
			}
		})
	}
}

func TestClientDisabled(t *testing.T) {
	cfg := DefaultClientConfig()
	cfg.Enabled = false
	cl := newClient(t, cfg)
	srv, capa := serveCapacity(t)
	c := dialThrough(t, srv, "target", cl)

	for i := range 100 {
		_, err := c.Echo(t.Context(), &testpbv1.EchoRequest{Message: "m"})
		if status.Code(err) != codes.ResourceExhausted || isThrottled(t, err) {
			t.Fatalf("call %d: %v, want the server's RESOURCE_EXHAUSTED", i, err)
		}
	}
	for i := range 5 {
		s, err := c.EchoStream(t.Context(), &testpbv1.EchoStreamRequest{Message: "m"})
		if err == nil {
			_, err = s.Recv()
		}
		if status.Code(err) != codes.ResourceExhausted || isThrottled(t, err) {
			t.Fatalf("stream %d: %v, want the server's RESOURCE_EXHAUSTED", i, err)
		}
	}
	if got := capa.arrived.Load(); got != 105 {
		t.Errorf("%d calls reached the server, want all 105", got)
	}
	if got := cl.Stats(); len(got) != 0 {
		t.Errorf("Stats() with throttling off = %+v, want no throttle", got)
	}

	cfg.Enabled = true
	if err := cl.SetConfig(cfg); err != nil {
		t.Fatal(err)
	}
	_, _ = c.Echo(t.Context(), &testpbv1.EchoRequest{Message: "m"})
	if got := cl.Stats(); len(got) != 1 || got[0].Requests != 1 {
		t.Errorf("Stats() after throttling was turned on and one call = %+v, want one throttle with 1 request", got)
	}
}

// counts waits until th counts the requests and accepts of want.
func counts(t *testing.T, th *Throttle, what string, want [2]int64) {
	t.Helper()
	var got [2]int64
	kittest.WaitFor(t, fmt.Sprintf("%s: requests and accepts %v", what, want), func() bool {
		got[0], _, got[1] = th.Counts()
		return got == want
	})
}

func TestClientStreamRecordsFinalStatusOnce(t *testing.T) {
	cl := newClient(t, DefaultClientConfig())
	svc := &kittest.Service{}
	srv := kittest.StartServer(t, svc.Register)
	c := dialThrough(t, srv, "target", cl)
	th, _ := throttleFor(t, cl, "passthrough:///target")
	drain := func(s grpc.ServerStreamingClient[testpbv1.EchoStreamResponse], err error) (int, error) {
		n := 0
		for err == nil {
			if _, err = s.Recv(); err == nil {
				n++
			}
		}
		if errors.Is(err, io.EOF) {
			err = nil
		}
		return n, err
	}

	// A stream that answers in full: accepted once, not once per message.
	n, err := drain(c.EchoStream(t.Context(), &testpbv1.EchoStreamRequest{Message: "m", Count: 3}))
	if n != 3 || err != nil {
		t.Fatalf("stream received %d messages and ended with %v, want 3 and OK", n, err)
	}
	counts(t, th, "an OK stream", [2]int64{1, 1})

	// A stream refused after its first message: its final status counts.
	svc.FailNext(1, status.Error(codes.ResourceExhausted, "busy"))
	n, err = drain(c.EchoStream(t.Context(), &testpbv1.EchoStreamRequest{Message: "m", Count: 3, FaultAfter: 1}))
	if n != 1 || status.Code(err) != codes.ResourceExhausted {
		t.Fatalf("stream received %d messages and ended with %v, want 1 and ResourceExhausted", n, err)
	}
	counts(t, th, "a stream refused after a message", [2]int64{2, 1})

	// A stream its caller cancels says nothing against the target.
	svc.Block(true)
	ctx, cancel := context.WithCancel(t.Context())
	s, err := c.EchoStream(ctx, &testpbv1.EchoStreamRequest{Message: "m", Count: 3, FaultAfter: 1})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.Recv(); err != nil {
		t.Fatal(err)
	}
	select {
	case <-svc.Blocked():
	case <-time.After(waitTimeout):
		t.Fatal("the stream never blocked")
	}
	cancel()
	if _, err = drain(s, nil); status.Code(err) != codes.Canceled {
		t.Fatalf("canceled stream ended with %v, want Canceled", err)
	}
	svc.Block(false)
	counts(t, th, "a canceled stream", [2]int64{3, 2})

	// grpc fails the creation of a stream with a compressor it does not
	// know, and calls OnFinish too: the failure (INTERNAL, an answer)
	// counts once.
	_, err = c.EchoStream(t.Context(), &testpbv1.EchoStreamRequest{Message: "m"}, grpc.UseCompressor("test-missing"))
	if status.Code(err) != codes.Internal {
		t.Fatalf("stream with an unknown compressor: %v, want Internal", err)
	}
	counts(t, th, "a stream whose creation failed in grpc", [2]int64{4, 3})

	// A later interceptor fails the creation without calling grpc, so
	// nothing calls OnFinish: the failure is still recorded.
	failing := dialThrough(t, srv, "failing", cl, grpc.WithChainStreamInterceptor(
		func(context.Context, *grpc.StreamDesc, *grpc.ClientConn, string, grpc.Streamer, ...grpc.CallOption) (grpc.ClientStream, error) {
			return nil, status.Error(codes.PermissionDenied, "test: no")
		}))
	th2, _ := throttleFor(t, cl, "passthrough:///failing")
	if _, err := failing.EchoStream(t.Context(), &testpbv1.EchoStreamRequest{Message: "m"}); status.Code(err) != codes.PermissionDenied {
		t.Fatalf("stream failed by a later interceptor: %v, want PermissionDenied", err)
	}
	counts(t, th2, "a stream whose creation failed in a later interceptor", [2]int64{1, 1})
	counts(t, th, "the first target, untouched", [2]int64{4, 3})
}

func TestClientThrottlesStreams(t *testing.T) {
	cl := newClient(t, DefaultClientConfig())
	srv, capa := serveCapacity(t)
	capa.budget.Store(math.MaxInt64 / 2)
	c := dialThrough(t, srv, "target", cl)
	th, _ := throttleFor(t, cl, "passthrough:///target")
	for range 100 {
		th.Allow()       // 100 requests...
		th.Record(false) // ...none accepted: probability 100/101
	}

	shed := 0
	for i := range 10 {
		s, err := c.EchoStream(t.Context(), &testpbv1.EchoStreamRequest{Message: "m"})
		if err != nil {
			if !isThrottled(t, err) {
				t.Fatalf("stream %d failed with %v, want a local refusal or OK", i, err)
			}
			shed++
			continue
		}
		for err == nil {
			_, err = s.Recv()
		}
		if !errors.Is(err, io.EOF) {
			t.Fatalf("stream %d ended with %v, want OK", i, err)
		}
	}
	if shed < 8 {
		t.Errorf("%d of 10 streams refused locally at a probability of 0.99, want at least 8", shed)
	}
	if got := capa.arrived.Load(); got != int64(10-shed) {
		t.Errorf("%d streams reached the server, want the %d not refused", got, 10-shed)
	}
}

func TestClientSetConfig(t *testing.T) {
	cfg := DefaultClientConfig()
	cfg.Window = duration.Duration(time.Minute)
	cl := newClient(t, cfg)
	srv := kittest.StartServer(t, (&kittest.Service{}).Register)
	th, _ := throttleFor(t, cl, "passthrough:///target")
	for i := range 40 {
		th.Allow()
		th.Record(i%4 == 0) // 10 of 40 accepted
	}
	good := cl.Config()
	before := cl.Stats()[0].Probability
	if before <= 0 {
		t.Fatalf("probability after 10 of 40 calls accepted = %v, want it above 0", before)
	}

	for _, tc := range []struct {
		name    string
		mutate  func(*ClientConfig)
		wantErr string
	}{
		{"NaN k", func(c *ClientConfig) { c.K = nan() }, "overload: k"},
		{"k below 1", func(c *ClientConfig) { c.K = 0.5 }, "overload: k"},
		{"zero window", func(c *ClientConfig) { c.Window = 0 }, "overload: window"},
		{"negative min_requests", func(c *ClientConfig) { c.MinRequests = -1 }, "overload: min_requests"},
		{"bad k while turned off", func(c *ClientConfig) { c.Enabled, c.K = false, 0 }, "overload: k"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			bad := good
			tc.mutate(&bad)
			err := cl.SetConfig(bad)
			if err == nil || !strings.HasPrefix(err.Error(), tc.wantErr) {
				t.Fatalf("SetConfig() = %v, want an error starting %q", err, tc.wantErr)
			}
			if diff := cmp.Diff(good, cl.Config()); diff != "" {
				t.Errorf("Config() after a refused SetConfig (-want +got):\n%s", diff)
			}
			if diff := cmp.Diff(good.ThrottleConfig, th.Config()); diff != "" {
				t.Errorf("the throttle's config after a refused SetConfig (-want +got):\n%s", diff)
			}
			if got := cl.Stats()[0].Probability; got != before {
				t.Errorf("Stats() probability after a refused SetConfig = %v, want %v as before", got, before)
			}
		})
	}

	// K 4 makes 10 accepts enough for 40 requests: the existing throttle
	// follows it at once, and a new target's throttle starts with it.
	next := good
	next.K = 4
	if err := cl.SetConfig(next); err != nil {
		t.Fatal(err)
	}
	if got := cl.Stats()[0].Probability; got != 0 {
		t.Errorf("Stats() probability after SetConfig with k 4 = %v, want 0", got)
	}
	other := dialThrough(t, srv, "other", cl)
	if _, err := other.Echo(t.Context(), &testpbv1.EchoRequest{Message: "m"}); err != nil {
		t.Fatal(err)
	}
	cl.mu.Lock()
	made := cl.throttles["passthrough:///other"]
	cl.mu.Unlock()
	if made == nil {
		t.Fatal("no throttle made for passthrough:///other")
	}
	if diff := cmp.Diff(next.ThrottleConfig, made.Config()); diff != "" {
		t.Errorf("config of a throttle made after SetConfig (-want +got):\n%s", diff)
	}
}
