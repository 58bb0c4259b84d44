package retry_test

import (
	"context"
	"errors"
	"io"
	"slices"
	"sync"
	"testing"
	"time"

	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	"go.opentelemetry.io/otel/sdk/metric/metricdata"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/peer"
	"google.golang.org/grpc/status"

	"github.com/grpckit/grpckit/kit/duration"
	"github.com/grpckit/grpckit/kit/internal/kittest"
	testpbv1 "github.com/grpckit/grpckit/kit/internal/testpb/v1"
	"github.com/grpckit/grpckit/kit/middleware/retry"
)

// attemptServer answers each attempt of a call as its behaviour for that
// attempt number says (by retry.AttemptKey; 1 when absent), and reports
// every attempt that ended because its context did.
type attemptServer struct {
	testpbv1.UnimplementedTestServiceServer
	// behave returns the error of attempt n, or nil to answer, and how
	// long it waits first: hold (until the attempt's context ends), or a
	// duration.
	behave func(n int) (wait time.Duration, err error)

	mu        sync.Mutex
	attempts  []int
	cancelled chan int // attempts whose context ended while they waited
}

// hold is a wait that ends only with the attempt's context.
const hold = time.Duration(-1)

func newAttemptServer(behave func(n int) (time.Duration, error)) *attemptServer {
	return &attemptServer{behave: behave, cancelled: make(chan int, 16)}
}

func attemptOf(ctx context.Context) int {
	if v := metadata.ValueFromIncomingContext(ctx, retry.AttemptKey); len(v) > 0 {
		switch v[0] {
		case "2":
			return 2
		case "3":
			return 3
		}
		return 99
	}
	return 1
}

func (s *attemptServer) serve(ctx context.Context) (int, error) {
	n := attemptOf(ctx)
	s.mu.Lock()
	s.attempts = append(s.attempts, n)
	s.mu.Unlock()
	grpc.SetHeader(ctx, metadata.Pairs("attempt", string(rune('0'+n))))
	grpc.SetTrailer(ctx, metadata.Pairs("attempt", string(rune('0'+n))))
	wait, err := s.behave(n)
	var timeout <-chan time.Time
	if wait > 0 {
		timeout = time.After(wait)
	}
	if wait != 0 {
		select {
		case <-ctx.Done():
			s.cancelled <- n
			return n, status.FromContextError(ctx.Err()).Err()
		case <-timeout:
		}
	}
	return n, err
}

func (s *attemptServer) Echo(ctx context.Context, req *testpbv1.EchoRequest) (*testpbv1.EchoResponse, error) {
	n, err := s.serve(ctx)
	if err != nil {
		return nil, err
	}
	return &testpbv1.EchoResponse{Message: req.GetMessage(), Server: string(rune('0' + n))}, nil
}

func (s *attemptServer) Create(ctx context.Context, req *testpbv1.CreateRequest) (*testpbv1.CreateResponse, error) {
	if _, err := s.serve(ctx); err != nil {
		return nil, err
	}
	return &testpbv1.CreateResponse{Item: &testpbv1.Item{Key: req.GetKey()}}, nil
}

func (s *attemptServer) EchoStream(req *testpbv1.EchoStreamRequest, stream grpc.ServerStreamingServer[testpbv1.EchoStreamResponse]) error {
	n, err := s.serve(stream.Context())
	if err != nil {
		return err
	}
	for i := range 3 {
		if err := stream.Send(&testpbv1.EchoStreamResponse{Message: req.GetMessage(), Sequence: int32(i), Server: string(rune('0' + n))}); err != nil {
			return err
		}
	}
	return nil
}

func (s *attemptServer) seen() []int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]int(nil), s.attempts...)
}

// holdFirst holds the first attempt and answers the others at once.
func holdFirst(n int) (time.Duration, error) {
	if n == 1 {
		return hold, nil
	}
	return 0, nil
}

// hedgeConfig hedges methods after a fixed delay.
func hedgeConfig(delay time.Duration, methods ...string) retry.Config {
	cfg := fastConfig()
	cfg.Hedging.Methods = methods
	cfg.Hedging.Delay = duration.Duration(delay)
	return cfg
}

// dialHedged serves srv and returns a client through r, with a metric
// reader of r's counters.
func dialHedged(t *testing.T, srv *attemptServer, cfg retry.Config) (testpbv1.TestServiceClient, *sdkmetric.ManualReader) {
	t.Helper()
	reader := sdkmetric.NewManualReader()
	r := newRetrier(t, cfg, retry.WithMeterProvider(sdkmetric.NewMeterProvider(sdkmetric.WithReader(reader))))
	cc := kittest.Serve(t, func(s grpc.ServiceRegistrar) { testpbv1.RegisterTestServiceServer(s, srv) }, nil,
		grpc.WithUnaryInterceptor(r.UnaryClientInterceptor()), grpc.WithStreamInterceptor(r.StreamClientInterceptor()))
	return testpbv1.NewTestServiceClient(cc), reader
}

// counter returns the sum of the named counter.
func counter(t *testing.T, reader *sdkmetric.ManualReader, name string) int64 {
	t.Helper()
	var rm metricdata.ResourceMetrics
	if err := reader.Collect(context.Background(), &rm); err != nil {
		t.Fatal(err)
	}
	var sum int64
	for _, sm := range rm.ScopeMetrics {
		for _, m := range sm.Metrics {
			if m.Name == name {
				for _, dp := range m.Data.(metricdata.Sum[int64]).DataPoints {
					sum += dp.Value
				}
			}
		}
	}
	return sum
}

// A first attempt that does not answer is hedged after the delay; the
// hedge's answer wins, with its header, and the first attempt is cancelled
// before the call returns.
func TestHedgeWinsAndCancelsTheLoser(t *testing.T) {
	srv := newAttemptServer(holdFirst)
	client, reader := dialHedged(t, srv, hedgeConfig(20*time.Millisecond, echo))
	var header, trailer metadata.MD
	var p peer.Peer
	var finished []error
	start := time.Now()
	resp, err := client.Echo(t.Context(), &testpbv1.EchoRequest{Message: "x"}, grpc.Header(&header), grpc.Trailer(&trailer), grpc.Peer(&p),
		grpc.OnFinish(func(err error) { finished = append(finished, err) }))
	if err != nil {
		t.Fatal(err)
	}
	if len(trailer.Get("attempt")) != 1 || trailer.Get("attempt")[0] != "2" || p.Addr == nil {
		t.Errorf("trailer %v, peer %v; want the hedge's", trailer, p.Addr)
	}
	if len(finished) != 1 || finished[0] != nil {
		t.Errorf("OnFinish called with %v, want once with nil", finished)
	}
	if took := time.Since(start); took < 20*time.Millisecond {
		t.Errorf("answered in %v, before the hedging delay", took)
	}
	if resp.GetServer() != "2" || len(header.Get("attempt")) != 1 || header.Get("attempt")[0] != "2" {
		t.Errorf("answer from attempt %q with header %v, want the hedge's (2)", resp.GetServer(), header)
	}
	select {
	case n := <-srv.cancelled:
		if n != 1 {
			t.Errorf("attempt %d cancelled, want 1", n)
		}
	case <-time.After(5 * time.Second):
		t.Error("the server never saw the first attempt cancelled")
	}
	if sent, won := counter(t, reader, "grpckit.retry.hedges"), counter(t, reader, "grpckit.retry.hedges_won"); sent != 1 || won != 1 {
		t.Errorf("hedges sent %d, won %d; want 1 and 1", sent, won)
	}
}

// A first attempt that answers before the delay is the only one.
func TestFastCallIsNotHedged(t *testing.T) {
	srv := newAttemptServer(func(int) (time.Duration, error) { return 0, nil })
	client, reader := dialHedged(t, srv, hedgeConfig(time.Second, echo))
	for range 10 {
		if _, err := client.Echo(t.Context(), &testpbv1.EchoRequest{Message: "x"}); err != nil {
			t.Fatal(err)
		}
	}
	if got := len(srv.seen()); got != 10 {
		t.Errorf("%d attempts for 10 fast calls", got)
	}
	if sent := counter(t, reader, "grpckit.retry.hedges"); sent != 0 {
		t.Errorf("%d hedges sent", sent)
	}
}

// Hedging is never applied where it could run a call twice that must not:
// a method without idempotency_level, a method retry.methods forbids, a
// call whose context forbids retries, nor past the deadline.
func TestHedgeOnlyWhereSafe(t *testing.T) {
	for _, tc := range []struct {
		name string
		cfg  func() retry.Config
		call func(context.Context, testpbv1.TestServiceClient) error
	}{
		{"not idempotent", func() retry.Config { return hedgeConfig(10*time.Millisecond, testService) }, func(ctx context.Context, c testpbv1.TestServiceClient) error {
			_, err := c.Create(ctx, &testpbv1.CreateRequest{Key: "k"})
			return err
		}},
		{"forbidden by retry.methods", func() retry.Config {
			cfg := hedgeConfig(10*time.Millisecond, echo)
			cfg.Methods = map[string]bool{echo: false}
			return cfg
		}, func(ctx context.Context, c testpbv1.TestServiceClient) error {
			_, err := c.Echo(ctx, &testpbv1.EchoRequest{Message: "x"})
			return err
		}},
		{"context without retries", func() retry.Config { return hedgeConfig(10*time.Millisecond, echo) }, func(ctx context.Context, c testpbv1.TestServiceClient) error {
			_, err := c.Echo(retry.WithoutRetries(ctx), &testpbv1.EchoRequest{Message: "x"})
			return err
		}},
		{"deadline before the delay", func() retry.Config { return hedgeConfig(time.Second, echo) }, func(ctx context.Context, c testpbv1.TestServiceClient) error {
			_, err := c.Echo(ctx, &testpbv1.EchoRequest{Message: "x"})
			return err
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			srv := newAttemptServer(holdFirst)
			client, reader := dialHedged(t, srv, tc.cfg())
			ctx, cancel := context.WithTimeout(t.Context(), 200*time.Millisecond)
			defer cancel()
			if err := tc.call(ctx, client); status.Code(err) != codes.DeadlineExceeded {
				t.Errorf("call = %v, want DEADLINE_EXCEEDED (the one attempt held)", err)
			}
			if got := srv.seen(); len(got) != 1 {
				t.Errorf("attempts %v, want only the first", got)
			}
			if sent := counter(t, reader, "grpckit.retry.hedges"); sent != 0 {
				t.Errorf("%d hedges sent", sent)
			}
		})
	}
	// retry.methods true makes a method without idempotency_level safe.
	cfg := hedgeConfig(10*time.Millisecond, create)
	cfg.Methods = map[string]bool{create: true}
	srv := newAttemptServer(holdFirst)
	client, _ := dialHedged(t, srv, cfg)
	if _, err := client.Create(t.Context(), &testpbv1.CreateRequest{Key: "k"}); err != nil {
		t.Errorf("Create with retry.methods true: %v, want the hedge's answer", err)
	}
}

// Hedges spend the target's retry budget: with one token, one call is
// hedged and the next is not.
func TestHedgesSpendTheBudget(t *testing.T) {
	cfg := hedgeConfig(10*time.Millisecond, echo)
	cfg.BudgetRatio, cfg.BudgetMinRetriesPerSecond = 0, 0.001 // one token saved up, none earned
	srv := newAttemptServer(holdFirst)
	client, reader := dialHedged(t, srv, cfg)
	if _, err := client.Echo(t.Context(), &testpbv1.EchoRequest{Message: "x"}); err != nil {
		t.Fatalf("first call: %v, want the hedge's answer", err)
	}
	ctx, cancel := context.WithTimeout(t.Context(), 200*time.Millisecond)
	defer cancel()
	if _, err := client.Echo(ctx, &testpbv1.EchoRequest{Message: "x"}); status.Code(err) != codes.DeadlineExceeded {
		t.Errorf("second call: %v, want DEADLINE_EXCEEDED (no token left to hedge)", err)
	}
	if sent, refused := counter(t, reader, "grpckit.retry.hedges"), counter(t, reader, "grpckit.retry.budget_refusals"); sent != 1 || refused == 0 {
		t.Errorf("hedges sent %d, budget refusals %d; want 1 and some", sent, refused)
	}
}

// At most MaxAttempts attempts, each a delay apart; a retried failure
// sends the next at once; an error that is not retried ends the call.
func TestHedgeAttemptsAndFailures(t *testing.T) {
	t.Run("three attempts", func(t *testing.T) {
		cfg := hedgeConfig(10*time.Millisecond, echo)
		cfg.Hedging.MaxAttempts = 3
		srv := newAttemptServer(func(n int) (time.Duration, error) {
			if n < 3 {
				return hold, nil
			}
			return 0, nil
		})
		client, _ := dialHedged(t, srv, cfg)
		resp, err := client.Echo(t.Context(), &testpbv1.EchoRequest{Message: "x"})
		if err != nil || resp.GetServer() != "3" {
			t.Fatalf("Echo = %v, %v; want attempt 3's answer", resp, err)
		}
		if got := srv.seen(); len(got) != 3 {
			t.Errorf("attempts %v, want 3", got)
		}
		for range 2 {
			<-srv.cancelled // both losers cancelled
		}
	})
	t.Run("retried failure hedges at once", func(t *testing.T) {
		srv := newAttemptServer(func(n int) (time.Duration, error) {
			if n == 1 {
				return 0, errUnavailable
			}
			return 0, nil
		})
		client, _ := dialHedged(t, srv, hedgeConfig(time.Hour, echo))
		resp, err := client.Echo(t.Context(), &testpbv1.EchoRequest{Message: "x"})
		if err != nil || resp.GetServer() != "2" {
			t.Fatalf("Echo = %v, %v; want attempt 2's answer at once", resp, err)
		}
	})
	t.Run("fatal error ends the call", func(t *testing.T) {
		srv := newAttemptServer(func(n int) (time.Duration, error) {
			if n == 1 {
				return hold, nil
			}
			return 0, status.Error(codes.InvalidArgument, "bad")
		})
		client, _ := dialHedged(t, srv, hedgeConfig(10*time.Millisecond, echo))
		if _, err := client.Echo(t.Context(), &testpbv1.EchoRequest{Message: "x"}); status.Code(err) != codes.InvalidArgument {
			t.Fatalf("Echo = %v, want the hedge's INVALID_ARGUMENT", err)
		}
		if n := <-srv.cancelled; n != 1 {
			t.Errorf("attempt %d cancelled, want 1", n)
		}
	})
	t.Run("all retried failures", func(t *testing.T) {
		srv := newAttemptServer(func(int) (time.Duration, error) { return 0, errUnavailable })
		client, _ := dialHedged(t, srv, hedgeConfig(10*time.Millisecond, echo))
		if _, err := client.Echo(t.Context(), &testpbv1.EchoRequest{Message: "x"}); !errors.Is(err, errUnavailable) && status.Code(err) != codes.Unavailable {
			t.Fatalf("Echo = %v, want UNAVAILABLE", err)
		}
		if got := srv.seen(); len(got) != 2 {
			t.Errorf("attempts %v, want 2 (MaxAttempts)", got)
		}
	})
}

// Without a fixed delay, the delay is the method's latency quantile: the
// first calls teach it, then a call slower than that is hedged.
func TestHedgeDelayFromLatency(t *testing.T) {
	cfg := hedgeConfig(0, echo)
	// The floor keeps the fast calls that teach the delay from being
	// hedged on a busy machine (the delay is their p95: one in 20 passes it).
	cfg.Hedging.MinDelay = duration.Duration(100 * time.Millisecond)
	var slow sync.Mutex
	slowFirst := false
	srv := newAttemptServer(func(n int) (time.Duration, error) {
		slow.Lock()
		defer slow.Unlock()
		if slowFirst && n == 1 {
			return hold, nil
		}
		return 0, nil
	})
	client, reader := dialHedged(t, srv, cfg)
	for range 40 {
		if _, err := client.Echo(t.Context(), &testpbv1.EchoRequest{Message: "x"}); err != nil {
			t.Fatal(err)
		}
	}
	if sent := counter(t, reader, "grpckit.retry.hedges"); sent != 0 {
		t.Fatalf("%d hedges while learning fast calls", sent)
	}
	slow.Lock()
	slowFirst = true
	slow.Unlock()
	ctx, cancel := context.WithTimeout(t.Context(), 5*time.Second)
	defer cancel()
	resp, err := client.Echo(ctx, &testpbv1.EchoRequest{Message: "x"})
	if err != nil || resp.GetServer() != "2" {
		t.Fatalf("Echo = %v, %v; want the hedge's answer", resp, err)
	}
}

// A server-streaming call is hedged until its first message: the hedge's
// stream is the one read.
func TestHedgeServerStream(t *testing.T) {
	srv := newAttemptServer(holdFirst)
	client, reader := dialHedged(t, srv, hedgeConfig(20*time.Millisecond, testpbv1.TestService_EchoStream_FullMethodName))
	stream, err := client.EchoStream(t.Context(), &testpbv1.EchoStreamRequest{Message: "x", Count: 3})
	if err != nil {
		t.Fatal(err)
	}
	var got []int32
	for {
		m, err := stream.Recv()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		if m.GetServer() != "2" {
			t.Errorf("message from attempt %q, want 2", m.GetServer())
		}
		got = append(got, m.GetSequence())
	}
	if len(got) != 3 || got[0] != 0 || got[2] != 2 {
		t.Errorf("messages %v, want 0, 1, 2", got)
	}
	if n := <-srv.cancelled; n != 1 {
		t.Errorf("attempt %d cancelled, want 1", n)
	}
	if won := counter(t, reader, "grpckit.retry.hedges_won"); won != 1 {
		t.Errorf("hedges won %d, want 1", won)
	}
}

// dialWithInner is dialHedged with interceptors inside retry, as kit's
// throttle, breaker and rate limiter are.
func dialWithInner(t *testing.T, srv *attemptServer, cfg retry.Config, unary grpc.UnaryClientInterceptor, stream grpc.StreamClientInterceptor) testpbv1.TestServiceClient {
	t.Helper()
	r := newRetrier(t, cfg)
	opts := []grpc.DialOption{grpc.WithChainUnaryInterceptor(r.UnaryClientInterceptor()), grpc.WithChainStreamInterceptor(r.StreamClientInterceptor())}
	if unary != nil {
		opts = append(opts, grpc.WithChainUnaryInterceptor(unary))
	}
	if stream != nil {
		opts = append(opts, grpc.WithChainStreamInterceptor(stream))
	}
	cc := kittest.Serve(t, func(s grpc.ServiceRegistrar) { testpbv1.RegisterTestServiceServer(s, srv) }, nil, opts...)
	return testpbv1.NewTestServiceClient(cc)
}

func attemptOut(ctx context.Context) string {
	md, _ := metadata.FromOutgoingContext(ctx)
	if v := md.Get(retry.AttemptKey); len(v) > 0 {
		return v[0]
	}
	return "1"
}

// A hedge that a client-side layer refuses stops the hedging; the first
// attempt goes on and answers.
func TestLocallyRefusedHedgeLeavesTheFirst(t *testing.T) {
	srv := newAttemptServer(func(n int) (time.Duration, error) {
		if n == 1 {
			return 100 * time.Millisecond, nil
		}
		return 0, nil
	})
	refuse := func(ctx context.Context, method string, req, reply any, cc *grpc.ClientConn, invoker grpc.UnaryInvoker, opts ...grpc.CallOption) error {
		if attemptOut(ctx) != "1" {
			return localRejection{}
		}
		return invoker(ctx, method, req, reply, cc, opts...)
	}
	client := dialWithInner(t, srv, hedgeConfig(10*time.Millisecond, echo), refuse, nil)
	resp, err := client.Echo(t.Context(), &testpbv1.EchoRequest{Message: "x"})
	if err != nil || resp.GetServer() != "1" {
		t.Fatalf("Echo = %v, %v; want the first attempt's answer", resp, err)
	}
}

// A hedged stream retries a first attempt that fails to open, and a hedge
// that fails to open leaves the first attempt to answer.
func TestHedgedStreamOpenFailures(t *testing.T) {
	stream := testpbv1.TestService_EchoStream_FullMethodName
	read := func(t *testing.T, client testpbv1.TestServiceClient) string {
		t.Helper()
		st, err := client.EchoStream(t.Context(), &testpbv1.EchoStreamRequest{Message: "x", Count: 3})
		if err != nil {
			t.Fatal(err)
		}
		from := ""
		for {
			m, err := st.Recv()
			if err == io.EOF {
				return from
			}
			if err != nil {
				t.Fatal(err)
			}
			from = m.GetServer()
		}
	}
	t.Run("first open fails once", func(t *testing.T) {
		var failed sync.Once
		failOpen := func(ctx context.Context, desc *grpc.StreamDesc, cc *grpc.ClientConn, method string, streamer grpc.Streamer, opts ...grpc.CallOption) (grpc.ClientStream, error) {
			var err error
			failed.Do(func() { err = errUnavailable })
			if err != nil {
				return nil, err
			}
			return streamer(ctx, desc, cc, method, opts...)
		}
		srv := newAttemptServer(func(int) (time.Duration, error) { return 0, nil })
		client := dialWithInner(t, srv, hedgeConfig(time.Second, stream), nil, failOpen)
		if from := read(t, client); from != "2" {
			t.Errorf("messages from attempt %q, want 2 (the retry of a failed open)", from)
		}
	})
	t.Run("hedge fails to open", func(t *testing.T) {
		failHedge := func(ctx context.Context, desc *grpc.StreamDesc, cc *grpc.ClientConn, method string, streamer grpc.Streamer, opts ...grpc.CallOption) (grpc.ClientStream, error) {
			if attemptOut(ctx) != "1" {
				return nil, errUnavailable
			}
			return streamer(ctx, desc, cc, method, opts...)
		}
		srv := newAttemptServer(func(n int) (time.Duration, error) { return 100 * time.Millisecond, nil })
		client := dialWithInner(t, srv, hedgeConfig(10*time.Millisecond, stream), nil, failHedge)
		if from := read(t, client); from != "1" {
			t.Errorf("messages from attempt %q, want 1", from)
		}
	})
}

// A panic in an attempt reaches the caller's goroutine, after every
// attempt has ended.
func TestHedgePanicReachesTheCaller(t *testing.T) {
	srv := newAttemptServer(holdFirst)
	boom := func(ctx context.Context, method string, req, reply any, cc *grpc.ClientConn, invoker grpc.UnaryInvoker, opts ...grpc.CallOption) error {
		if attemptOut(ctx) != "1" {
			// Only an attempt the server holds can be seen cancelled.
			kittest.WaitFor(t, "the server to hold attempt 1", func() bool { return slices.Contains(srv.seen(), 1) })
			panic("boom")
		}
		return invoker(ctx, method, req, reply, cc, opts...)
	}
	client := dialWithInner(t, srv, hedgeConfig(10*time.Millisecond, echo), boom, nil)
	defer func() {
		if p := recover(); p != "boom" {
			t.Errorf("recovered %v, want the attempt's panic", p)
		}
		if n := <-srv.cancelled; n != 1 {
			t.Errorf("attempt %d cancelled, want 1", n)
		}
	}()
	client.Echo(t.Context(), &testpbv1.EchoRequest{Message: "x"})
	t.Error("the call returned")
}

// Once a hedge was refused on the client side, no further attempt is sent,
// not even after another attempt's retried failure.
func TestLocalRefusalStopsHedgingForGood(t *testing.T) {
	srv := newAttemptServer(func(n int) (time.Duration, error) { return 50 * time.Millisecond, errUnavailable })
	refuse := func(ctx context.Context, method string, req, reply any, cc *grpc.ClientConn, invoker grpc.UnaryInvoker, opts ...grpc.CallOption) error {
		if attemptOut(ctx) != "1" {
			return localRejection{}
		}
		return invoker(ctx, method, req, reply, cc, opts...)
	}
	cfg := hedgeConfig(10*time.Millisecond, echo)
	cfg.Hedging.MaxAttempts = 3
	client := dialWithInner(t, srv, cfg, refuse, nil)
	if _, err := client.Echo(t.Context(), &testpbv1.EchoRequest{Message: "x"}); status.Code(err) != codes.Unavailable || errors.Is(err, localRejection{}) {
		t.Errorf("Echo = %v, want the first attempt's UNAVAILABLE", err)
	}
	if got := srv.seen(); len(got) != 1 {
		t.Errorf("attempts that reached the server: %v, want only the first", got)
	}
}

// A hedged stream that cannot be opened calls the caller's OnFinish once,
// with the error.
func TestHedgedStreamOpenFailureFinishes(t *testing.T) {
	failOpen := func(ctx context.Context, desc *grpc.StreamDesc, cc *grpc.ClientConn, method string, streamer grpc.Streamer, opts ...grpc.CallOption) (grpc.ClientStream, error) {
		return nil, status.Error(codes.PermissionDenied, "no")
	}
	srv := newAttemptServer(func(int) (time.Duration, error) { return 0, nil })
	client := dialWithInner(t, srv, hedgeConfig(10*time.Millisecond, testpbv1.TestService_EchoStream_FullMethodName), nil, failOpen)
	var finished []error
	_, err := client.EchoStream(t.Context(), &testpbv1.EchoStreamRequest{Message: "x"}, grpc.OnFinish(func(err error) { finished = append(finished, err) }))
	if status.Code(err) != codes.PermissionDenied {
		t.Fatalf("EchoStream = %v, want PERMISSION_DENIED", err)
	}
	if len(finished) != 1 || status.Code(finished[0]) != codes.PermissionDenied {
		t.Errorf("OnFinish called with %v, want once with PERMISSION_DENIED", finished)
	}
}
