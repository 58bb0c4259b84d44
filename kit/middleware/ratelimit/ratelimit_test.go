package ratelimit

import (
	"context"
	"errors"
	"io"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/grpckit/grpckit/kit/internal/fakeclock"

	"github.com/google/go-cmp/cmp"
	"go.uber.org/goleak"
	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/peer"
	"google.golang.org/grpc/status"

	"github.com/grpckit/grpckit/kit/internal/kittest"
	testpbv1 "github.com/grpckit/grpckit/kit/internal/testpb/v1"
	"github.com/grpckit/grpckit/kit/middleware"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

const (
	echo       = testpbv1.TestService_Echo_FullMethodName
	echoStream = testpbv1.TestService_EchoStream_FullMethodName
)

// withCaller stands in for the auth layer: it takes the caller's identity
// from the "caller" metadata key.
func withCaller(ctx context.Context) context.Context {
	if v := metadata.ValueFromIncomingContext(ctx, "caller"); len(v) > 0 {
		return middleware.WithCaller(ctx, v[0])
	}
	return ctx
}

type callerStream struct {
	grpc.ServerStream
	ctx context.Context
}

func (s callerStream) Context() context.Context { return s.ctx }

// serve starts srv behind the server limiter l (when not nil) and returns
// a client through the client limiter cl (when not nil).
func serve(t *testing.T, srv *kittest.Service, l *Limiter, cl *ClientLimiter) testpbv1.TestServiceClient {
	t.Helper()
	var sopts []grpc.ServerOption
	if l != nil {
		sopts = append(sopts,
			grpc.ChainUnaryInterceptor(func(ctx context.Context, req any, _ *grpc.UnaryServerInfo, h grpc.UnaryHandler) (any, error) {
				return h(withCaller(ctx), req)
			}, l.UnaryServerInterceptor()),
			grpc.ChainStreamInterceptor(func(srv any, ss grpc.ServerStream, _ *grpc.StreamServerInfo, h grpc.StreamHandler) error {
				return h(srv, callerStream{ss, withCaller(ss.Context())})
			}, l.StreamServerInterceptor()))
	}
	var dopts []grpc.DialOption
	if cl != nil {
		dopts = append(dopts, grpc.WithUnaryInterceptor(cl.UnaryClientInterceptor()), grpc.WithStreamInterceptor(cl.StreamClientInterceptor()))
	}
	return testpbv1.NewTestServiceClient(kittest.Serve(t, srv.Register, sopts, dopts...))
}

func newLimiter(t *testing.T, cfg Config, opts ...Option) (*Limiter, *fakeclock.Clock) {
	t.Helper()
	l, err := New(cfg, opts...)
	if err != nil {
		t.Fatal(err)
	}
	clk := fakeclock.New(time.Unix(1_000_000_000, 0))
	l.now = clk.Now
	return l, clk
}

// outcome is what a test sees of one call: its code, the limit named in
// the message, and the RetryInfo delay.
type outcome struct {
	Code  codes.Code
	Layer string
	Retry time.Duration
}

func outcomeOf(err error) outcome {
	st := status.Convert(err)
	o := outcome{Code: st.Code()}
	for _, layer := range []string{"global", "method", "caller", "client"} {
		if st.Code() == codes.ResourceExhausted && strings.Contains(st.Message(), "ratelimit: "+layer+" limit exceeded") {
			o.Layer = layer
		}
	}
	for _, d := range st.Details() {
		if ri, ok := d.(*errdetails.RetryInfo); ok {
			o.Retry = ri.GetRetryDelay().AsDuration()
		}
	}
	return o
}

func hello(ctx context.Context, c testpbv1.TestServiceClient, caller string) outcome {
	if caller != "" {
		ctx = metadata.AppendToOutgoingContext(ctx, "caller", caller)
	}
	_, err := c.Echo(ctx, &testpbv1.EchoRequest{Message: "ada"})
	return outcomeOf(err)
}

func stream(ctx context.Context, c testpbv1.TestServiceClient) outcome {
	s, err := c.EchoStream(ctx, &testpbv1.EchoStreamRequest{Message: "ada"})
	for err == nil {
		_, err = s.Recv()
	}
	if errors.Is(err, io.EOF) {
		err = nil
	}
	return outcomeOf(err)
}

var ok = outcome{Code: codes.OK}

func limited(layer string, retry time.Duration) outcome {
	return outcome{Code: codes.ResourceExhausted, Layer: layer, Retry: retry}
}

func TestServerGlobalLimitRecoversAfterRetryDelay(t *testing.T) {
	srv := &kittest.Service{}
	l, clk := newLimiter(t, Config{RPS: 2, Burst: 2, MaxCallers: 10})
	c := serve(t, srv, l, nil)
	ctx := t.Context()

	got := []outcome{hello(ctx, c, ""), hello(ctx, c, ""), stream(ctx, c)}
	clk.Advance(499 * time.Millisecond)
	got = append(got, hello(ctx, c, ""))
	clk.Advance(time.Millisecond)
	got = append(got, hello(ctx, c, ""), hello(ctx, c, ""))
	want := []outcome{ok, ok, limited("global", 500*time.Millisecond), limited("global", time.Millisecond), ok, limited("global", 500*time.Millisecond)}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("outcomes (-want +got):\n%s", diff)
	}
	if n := srv.Calls(); n != 3 {
		t.Errorf("handler ran %d times, want 3", n)
	}
}

func TestServerPerMethodLimitsAreIndependent(t *testing.T) {
	l, _ := newLimiter(t, Config{MaxCallers: 10, PerMethod: map[string]Limit{
		echo:                       {RPS: 1, Burst: 1},
		"/testpb.v1.TestService/*": {RPS: 1, Burst: 2},
	}})
	c := serve(t, &kittest.Service{}, l, nil)
	ctx := t.Context()

	got := []outcome{hello(ctx, c, ""), hello(ctx, c, ""), stream(ctx, c), stream(ctx, c), stream(ctx, c), hello(ctx, c, "")}
	want := []outcome{ok, limited("method", time.Second), ok, ok, limited("method", time.Second), limited("method", time.Second)}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("outcomes (-want +got):\n%s", diff)
	}
}

func TestServerPerCallerLimitsAreIndependent(t *testing.T) {
	l, clk := newLimiter(t, Config{MaxCallers: 10, PerCaller: Limit{RPS: 0.5, Burst: 1}})
	c := serve(t, &kittest.Service{}, l, nil)
	ctx := t.Context()

	got := []outcome{hello(ctx, c, "alice"), hello(ctx, c, "alice"), hello(ctx, c, "bob"), hello(ctx, c, "bob")}
	clk.Advance(2 * time.Second)
	got = append(got, hello(ctx, c, "alice"))
	want := []outcome{ok, limited("caller", 2*time.Second), ok, limited("caller", 2*time.Second), ok}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("outcomes (-want +got):\n%s", diff)
	}
	if n := l.callers.len(); n != 2 {
		t.Errorf("%d caller buckets, want 2", n)
	}
}

func TestServerRejectedCallGivesTokensBack(t *testing.T) {
	l, _ := newLimiter(t, Config{RPS: 1, Burst: 2, MaxCallers: 10, PerCaller: Limit{RPS: 1, Burst: 1}})
	c := serve(t, &kittest.Service{}, l, nil)
	ctx := t.Context()

	// alice's second call is refused by her own bucket and must not spend a
	// global token: bob still gets the second one, carol none.
	got := []outcome{hello(ctx, c, "alice"), hello(ctx, c, "alice"), hello(ctx, c, "bob"), hello(ctx, c, "carol")}
	want := []outcome{ok, limited("caller", time.Second), ok, limited("global", time.Second)}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("outcomes (-want +got):\n%s", diff)
	}
}

func TestServerSetConfigAtRunTime(t *testing.T) {
	l, clk := newLimiter(t, DefaultConfig())
	c := serve(t, &kittest.Service{}, l, nil)
	ctx := t.Context()
	for range 5 {
		if o := hello(ctx, c, ""); o != ok {
			t.Fatalf("unlimited call: %+v", o)
		}
	}

	// Lower: a global and a per-method limit.
	lowered := Config{RPS: 1, Burst: 1, MaxCallers: 10, PerMethod: map[string]Limit{echoStream: {RPS: 0.5, Burst: 1}}}
	if err := l.SetConfig(lowered); err != nil {
		t.Fatal(err)
	}
	got := []outcome{hello(ctx, c, ""), hello(ctx, c, "")}
	clk.Advance(time.Second)
	got = append(got, stream(ctx, c), stream(ctx, c))

	// Raise the rates: the buckets keep their (empty) state, refill faster.
	raised := Config{RPS: 4, Burst: 1, MaxCallers: 10, PerMethod: map[string]Limit{echoStream: {RPS: 2, Burst: 1}}}
	if err := l.SetConfig(raised); err != nil {
		t.Fatal(err)
	}
	got = append(got, stream(ctx, c))
	clk.Advance(250 * time.Millisecond)
	got = append(got, hello(ctx, c, ""))

	// An invalid config is refused and the previous one stays.
	if err := l.SetConfig(Config{RPS: -1, MaxCallers: 10}); err == nil {
		t.Error("SetConfig accepted rps -1")
	}
	if diff := cmp.Diff(raised, l.Config()); diff != "" {
		t.Errorf("config after a refused change (-want +got):\n%s", diff)
	}

	// Lift every limit.
	if err := l.SetConfig(DefaultConfig()); err != nil {
		t.Fatal(err)
	}
	got = append(got, hello(ctx, c, ""), hello(ctx, c, ""), stream(ctx, c), stream(ctx, c))

	want := []outcome{
		ok, limited("global", time.Second),
		ok, limited("method", 2*time.Second),
		limited("method", 500*time.Millisecond), // both buckets were kept empty: 250ms global, 500ms method
		ok,
		ok, ok, ok, ok,
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("outcomes (-want +got):\n%s", diff)
	}
}

func TestCallerBucketsKeepTheMostRecent(t *testing.T) {
	var cb callerBuckets
	now := time.Unix(1_000_000_000, 0)
	cb.set(Limit{RPS: 1, Burst: 1}, 2, now)
	a := cb.get("a")
	cb.get("b")
	if cb.get("a") != a {
		t.Fatal("a second get returned another bucket")
	}
	cb.get("c") // drops b, the least recently used
	var ids []string
	for e := cb.lru.Front(); e != nil; e = e.Next() {
		ids = append(ids, e.Value.(*callerBucket).id)
	}
	if diff := cmp.Diff([]string{"c", "a"}, ids); diff != "" {
		t.Errorf("callers kept (-want +got):\n%s", diff)
	}
	cb.set(Limit{RPS: 3, Burst: 5}, 1, now)
	if cb.len() != 1 || cb.get("c").Burst() != 5 {
		t.Errorf("after set: %d buckets, burst %d; want 1 bucket of burst 5", cb.len(), cb.get("c").Burst())
	}
	cb.set(Limit{}, 10, now)
	if cb.len() != 0 || cb.get("c") != nil {
		t.Error("buckets kept after the per-caller limit was lifted")
	}
}

func newClientLimiter(t *testing.T, cfg ClientConfig, opts ...Option) *ClientLimiter {
	t.Helper()
	l, err := NewClient(cfg, opts...)
	if err != nil {
		t.Fatal(err)
	}
	return l
}

func withTimeout(t *testing.T, d time.Duration) context.Context {
	ctx, cancel := context.WithTimeout(t.Context(), d)
	t.Cleanup(cancel)
	return ctx
}

func TestClientWaitsWithinTheDeadline(t *testing.T) {
	srv := &kittest.Service{}
	cl := newClientLimiter(t, ClientConfig{Default: Limit{RPS: 20, Burst: 1}, Wait: true})
	c := serve(t, srv, nil, cl)

	got := []outcome{hello(withTimeout(t, 5*time.Second), c, ""), hello(withTimeout(t, 5*time.Second), c, "")}
	if diff := cmp.Diff([]outcome{ok, ok}, got); diff != "" {
		t.Errorf("outcomes (-want +got):\n%s", diff)
	}
	if n := srv.Calls(); n != 2 {
		t.Errorf("server saw %d calls, want 2", n)
	}
}

func TestClientFailsFastWhenTheTokenComesAfterTheDeadline(t *testing.T) {
	srv := &kittest.Service{}
	cl := newClientLimiter(t, ClientConfig{Default: Limit{RPS: 0.01, Burst: 1}, Wait: true})
	c := serve(t, srv, nil, cl)

	if o := hello(t.Context(), c, ""); o != ok {
		t.Fatalf("first call: %+v", o)
	}
	start := time.Now()
	_, err := c.Echo(withTimeout(t, time.Minute), &testpbv1.EchoRequest{Message: "ada"})
	if elapsed := time.Since(start); elapsed > 30*time.Second {
		t.Errorf("the call waited %v instead of failing at once", elapsed)
	}
	o := outcomeOf(err)
	if o.Code != codes.ResourceExhausted || o.Layer != "client" || o.Retry < 90*time.Second {
		t.Errorf("outcome %+v, want ResourceExhausted from the client limit, retry after ~100s", o)
	}
	if !errors.Is(err, ErrLimited) {
		t.Error("the error does not match ErrLimited")
	}
	var lr interface{ LocalRejection() bool }
	if !errors.As(err, &lr) || !lr.LocalRejection() {
		t.Error("the error does not report a local rejection")
	}
	if n := srv.Calls(); n != 1 {
		t.Errorf("server saw %d calls, want 1", n)
	}
}

func TestClientWithoutWaitFailsAtOnce(t *testing.T) {
	srv := &kittest.Service{}
	cl := newClientLimiter(t, ClientConfig{PerMethod: map[string]Limit{echo: {RPS: 20, Burst: 1}}, Wait: false})
	c := serve(t, srv, nil, cl)
	ctx := withTimeout(t, 5*time.Second)

	got := []outcome{hello(ctx, c, ""), hello(ctx, c, ""), stream(ctx, c), stream(ctx, c)}
	// The token comes 50ms after the first call took one.
	if r := got[1].Retry; r <= 0 || r > 50*time.Millisecond {
		t.Errorf("retry delay %v, want within (0, 50ms]", r)
	}
	got[1].Retry = 0
	want := []outcome{ok, {Code: codes.ResourceExhausted, Layer: "client"}, ok, ok}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("outcomes (-want +got):\n%s", diff)
	}
}

func TestClientCanceledWhileWaiting(t *testing.T) {
	cl := newClientLimiter(t, ClientConfig{Default: Limit{RPS: 0.01, Burst: 1}, Wait: true})
	c := serve(t, &kittest.Service{}, nil, cl)
	if o := stream(t.Context(), c); o != ok { // takes the stream method's only token
		t.Fatalf("first stream: %+v", o)
	}

	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan outcome, 1)
	go func() { done <- stream(ctx, c) }()
	cancel()
	if o := <-done; o.Code != codes.Canceled {
		t.Errorf("outcome %+v, want Canceled", o)
	}
}

func TestClientSetConfigAtRunTime(t *testing.T) {
	cl := newClientLimiter(t, ClientConfig{Default: Limit{RPS: 0.01, Burst: 1}})
	c := serve(t, &kittest.Service{}, nil, cl)
	ctx := t.Context()

	got := []outcome{hello(ctx, c, ""), outcomeCode(hello(ctx, c, ""))}
	if err := cl.SetConfig(ClientConfig{PerMethod: map[string]Limit{"bad": {}}}); err == nil {
		t.Error("SetConfig accepted a bad method key")
	}
	if err := cl.SetConfig(ClientConfig{PerMethod: map[string]Limit{echo: {RPS: 0}}, Default: Limit{RPS: 0.01, Burst: 1}}); err != nil {
		t.Fatal(err)
	}
	got = append(got, hello(ctx, c, ""), hello(ctx, c, ""), stream(ctx, c), outcomeCode(stream(ctx, c)))
	want := []outcome{ok, {Code: codes.ResourceExhausted}, ok, ok, ok, {Code: codes.ResourceExhausted}}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("outcomes (-want +got):\n%s", diff)
	}
}

func outcomeCode(o outcome) outcome { return outcome{Code: o.Code} }

func TestLimitedCounted(t *testing.T) {
	mp, reader := kittest.NewMeterProvider(t)

	l, _ := newLimiter(t, Config{MaxCallers: 10, PerMethod: map[string]Limit{echo: {RPS: 1, Burst: 1}}}, WithMeterProvider(mp))
	cl := newClientLimiter(t, ClientConfig{PerMethod: map[string]Limit{echoStream: {RPS: 0.01, Burst: 1}}}, WithMeterProvider(mp))
	c := serve(t, &kittest.Service{}, l, cl)
	ctx := t.Context()
	for range 3 {
		hello(ctx, c, "")
		stream(ctx, c)
	}

	got := kittest.MetricSumsBy(t, reader, "grpckit.ratelimit.limited", "layer", "method")
	want := map[string]int64{"method " + echo: 2, "client " + echoStream: 2}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("limited calls (-want +got):\n%s", diff)
	}
}

func TestAllocations(t *testing.T) {
	info := &grpc.UnaryServerInfo{FullMethod: echo}
	handler := func(context.Context, any) (any, error) { return nil, nil }
	ctx := t.Context()
	for _, tc := range []struct {
		name string
		cfg  Config
		max  float64
	}{
		{"no limits", DefaultConfig(), 0},
		{"unlimited method", Config{MaxCallers: 1, PerMethod: map[string]Limit{echoStream: {RPS: 1}, "/other.Service/*": {RPS: 1}}}, 0},
		// One Reservation per bucket.
		{"global and method", Config{RPS: 1e9, MaxCallers: 1, PerMethod: map[string]Limit{echo: {RPS: 1e9}}}, 2},
	} {
		t.Run(tc.name, func(t *testing.T) {
			l, _ := newLimiter(t, tc.cfg)
			interceptor := l.UnaryServerInterceptor()
			if n := testing.AllocsPerRun(100, func() { interceptor(ctx, nil, info, handler) }); n > tc.max {
				t.Errorf("%v allocations per call, want at most %v", n, tc.max)
			}
		})
	}
}

// TestServerNeverLimitsHealthChecks: a registry's health checks pass
// however tight the limits are, or a loaded instance would be taken out of
// service.
func TestServerNeverLimitsHealthChecks(t *testing.T) {
	l, _ := newLimiter(t, Config{RPS: 0.001, Burst: 1, PerMethod: map[string]Limit{"/grpc.health.v1.Health/*": {RPS: 0.001}}})
	intercept := l.UnaryServerInterceptor()
	call := func(method string) codes.Code {
		_, err := intercept(t.Context(), nil, &grpc.UnaryServerInfo{FullMethod: method},
			func(context.Context, any) (any, error) { return "ok", nil })
		return status.Code(err)
	}
	for i := range 5 {
		if code := call("/grpc.health.v1.Health/Check"); code != codes.OK {
			t.Fatalf("health check %d: %v", i, code)
		}
	}
	if a, b := call(echo), call(echo); a != codes.OK || b != codes.ResourceExhausted {
		t.Errorf("other calls under the same limit: %v then %v, want OK then ResourceExhausted", a, b)
	}
}

// Anonymous callers over IPv6 share their /64's bucket: a host cannot
// take a fresh bucket per address of its network.
func TestServerPerCallerIPv6CountsTheSlash64(t *testing.T) {
	l, _ := newLimiter(t, Config{MaxCallers: 10, PerCaller: Limit{RPS: 0.5, Burst: 1}})
	call := func(ip string) error {
		ctx := peer.NewContext(t.Context(), &peer.Peer{Addr: &net.TCPAddr{IP: net.ParseIP(ip), Port: 4000}})
		_, err := l.UnaryServerInterceptor()(ctx, nil, &grpc.UnaryServerInfo{FullMethod: echo}, func(context.Context, any) (any, error) { return "ok", nil })
		return err
	}
	if err := call("2001:db8:0:1::a"); err != nil {
		t.Fatalf("first caller of 2001:db8:0:1::/64: %v", err)
	}
	if err := call("2001:db8:0:1::b"); status.Code(err) != codes.ResourceExhausted {
		t.Errorf("another address of the same /64: %v, want RESOURCE_EXHAUSTED", err)
	}
	if err := call("2001:db8:0:2::a"); err != nil {
		t.Errorf("a caller of another /64: %v, want served", err)
	}
	if n := l.callers.len(); n != 2 {
		t.Errorf("%d caller buckets, want 2", n)
	}
}
