package retry_test

import (
	"context"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	yaml "go.yaml.in/yaml/v3"
	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/durationpb"

	"github.com/grpckit/grpckit/kit/duration"
	"github.com/grpckit/grpckit/kit/internal/kittest"
	testpbv1 "github.com/grpckit/grpckit/kit/internal/testpb/v1"
	"github.com/grpckit/grpckit/kit/middleware/retry"
)

var errUnavailable = status.Error(codes.Unavailable, "test: unavailable")

func TestConfigValidate(t *testing.T) {
	with := func(f func(*retry.Config)) retry.Config {
		c := retry.DefaultConfig()
		f(&c)
		return c
	}
	for _, tc := range []struct {
		name    string
		cfg     retry.Config
		wantErr string // prefix; "" means valid
	}{
		{"defaults", retry.DefaultConfig(), ""},
		{"one attempt", with(func(c *retry.Config) { c.MaxAttempts = 1 }), ""},
		{"codes any case", with(func(c *retry.Config) { c.Codes = []string{"unavailable", "Resource_Exhausted", "ABORTED"} }), ""},
		{"no codes", with(func(c *retry.Config) { c.Codes = nil }), ""},
		{"methods", with(func(c *retry.Config) { c.Methods = map[string]bool{create: true, testService: false} }), ""},
		{"zero budget", with(func(c *retry.Config) { c.BudgetRatio, c.BudgetMinRetriesPerSecond = 0, 0 }), ""},
		{"zero attempts", retry.Config{}, "retry: max_attempts:"},
		{"too many attempts", with(func(c *retry.Config) { c.MaxAttempts = 11 }), "retry: max_attempts:"},
		{"unknown code", with(func(c *retry.Config) { c.Codes = []string{"UNAVAILABLE", "SOMETIMES"} }), "retry: codes:"},
		{"code OK", with(func(c *retry.Config) { c.Codes = []string{"OK"} }), "retry: codes:"},
		{"numeric code", with(func(c *retry.Config) { c.Codes = []string{"14"} }), "retry: codes:"},
		{"zero backoff", with(func(c *retry.Config) { c.InitialBackoff = 0 }), "retry: initial_backoff:"},
		{"max below initial", with(func(c *retry.Config) { c.MaxBackoff = duration.Duration(time.Millisecond) }), "retry: max_backoff:"},
		{"multiplier below 1", with(func(c *retry.Config) { c.Multiplier = 0.5 }), "retry: multiplier:"},
		{"jitter 1", with(func(c *retry.Config) { c.Jitter = 1 }), "retry: jitter:"},
		{"negative jitter", with(func(c *retry.Config) { c.Jitter = -0.1 }), "retry: jitter:"},
		{"negative ratio", with(func(c *retry.Config) { c.BudgetRatio = -1 }), "retry: budget_ratio:"},
		{"negative min retries", with(func(c *retry.Config) { c.BudgetMinRetriesPerSecond = -1 }), "retry: budget_min_retries_per_second:"},
		{"bad method", with(func(c *retry.Config) { c.Methods = map[string]bool{"Create": true} }), "retry: methods:"},
		{"hedged methods", with(func(c *retry.Config) { c.Hedging.Methods = []string{echo, testService} }), ""},
		{"hedging set", with(func(c *retry.Config) {
			c.Hedging = retry.HedgingConfig{MaxAttempts: 3, Delay: duration.Duration(time.Millisecond), Quantile: 0.5}
		}), ""},
		{"one hedging attempt", with(func(c *retry.Config) { c.Hedging.MaxAttempts = 1 }), "retry: hedging: max_attempts:"},
		{"too many hedging attempts", with(func(c *retry.Config) { c.Hedging.MaxAttempts = 11 }), "retry: hedging: max_attempts:"},
		{"negative hedging delay", with(func(c *retry.Config) { c.Hedging.Delay = -1 }), "retry: hedging: delay:"},
		{"quantile 1", with(func(c *retry.Config) { c.Hedging.Quantile = 1 }), "retry: hedging: quantile:"},
		{"negative quantile", with(func(c *retry.Config) { c.Hedging.Quantile = -0.5 }), "retry: hedging: quantile:"},
		{"negative min delay", with(func(c *retry.Config) { c.Hedging.MinDelay = -1 }), "retry: hedging: min_delay:"},
		{"bad hedged method", with(func(c *retry.Config) { c.Hedging.Methods = []string{"Echo"} }), "retry: hedging: methods:"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := tc.cfg.Validate()
			if tc.wantErr == "" {
				if err != nil {
					t.Fatalf("Validate() = %v, want nil", err)
				}
			} else if err == nil || !strings.HasPrefix(err.Error(), tc.wantErr) {
				t.Fatalf("Validate() = %v, want an error starting with %q", err, tc.wantErr)
			}
			if _, nerr := retry.New(tc.cfg); (nerr == nil) != (err == nil) {
				t.Errorf("New error %v disagrees with Validate error %v", nerr, err)
			}
		})
	}
}

func TestRetriesUnavailableThenSucceeds(t *testing.T) {
	svc := &kittest.Service{}
	svc.FailNext(2, errUnavailable)
	r := newRetrier(t, fastConfig())
	c := testpbv1.NewTestServiceClient(kittest.Serve(t, svc.Register, nil, grpc.WithUnaryInterceptor(r.UnaryClientInterceptor())))
	resp, err := c.Echo(t.Context(), &testpbv1.EchoRequest{Message: "Ada"})
	if err != nil {
		t.Fatalf("Echo: %v", err)
	}
	if resp.GetMessage() != "Ada" {
		t.Errorf("message = %q", resp.GetMessage())
	}
	if diff := cmp.Diff([]string{"", "2", "3"}, attempts(svc)); diff != "" {
		t.Errorf("attempt metadata per call (-want +got):\n%s", diff)
	}
}

// TestWhichCallsRetry runs calls against a service failing every call and
// counts the attempts that reach it.
func TestWhichCallsRetry(t *testing.T) {
	forced := func(m map[string]bool) retry.Config { c := fastConfig(); c.Methods = m; return c }
	notFound := status.Error(codes.NotFound, "test: no such user")
	for _, tc := range []struct {
		name   string
		cfg    retry.Config
		method string
		err    error
		dedupe bool                                  // install the dedupe client interceptor for the method, outside retry
		ctx    func(context.Context) context.Context // nil: unchanged
		want   int
	}{
		{name: "Echo is NO_SIDE_EFFECTS", cfg: fastConfig(), method: echo, err: errUnavailable, want: 3},
		{name: "Put is IDEMPOTENT", cfg: fastConfig(), method: put, err: errUnavailable, want: 3},
		{name: "Create is not idempotent", cfg: fastConfig(), method: create, err: errUnavailable, want: 1},
		{name: "Create configured", cfg: forced(map[string]bool{create: true}), method: create, err: errUnavailable, want: 3},
		{name: "Create configured by service", cfg: forced(map[string]bool{testService: true}), method: create, err: errUnavailable, want: 3},
		{name: "Create protected by dedupe", cfg: fastConfig(), method: create, err: errUnavailable, dedupe: true, want: 3},
		{name: "configured false beats dedupe", cfg: forced(map[string]bool{create: false}), method: create, err: errUnavailable, dedupe: true, want: 1},
		{name: "configured false beats idempotency", cfg: forced(map[string]bool{testService: false}), method: echo, err: errUnavailable, want: 1},
		{name: "exact beats service", cfg: forced(map[string]bool{testService: false, echo: true}), method: echo, err: errUnavailable, want: 3},
		{name: "NotFound is not retried", cfg: fastConfig(), method: echo, err: notFound, want: 1},
		{name: "configured code", cfg: func() retry.Config { c := fastConfig(); c.Codes = []string{"UNAVAILABLE", "NOT_FOUND"}; return c }(), method: echo, err: notFound, want: 3},
		{name: "context without retries", cfg: fastConfig(), method: echo, err: errUnavailable, ctx: retry.WithoutRetries, want: 1},
		{name: "max attempts 1", cfg: func() retry.Config { c := fastConfig(); c.MaxAttempts = 1; return c }(), method: echo, err: errUnavailable, want: 1},
		{name: "max attempts 5", cfg: func() retry.Config { c := fastConfig(); c.MaxAttempts = 5; return c }(), method: echo, err: errUnavailable, want: 5},
	} {
		t.Run(tc.name, func(t *testing.T) {
			svc := &kittest.Service{}
			svc.Fail(tc.err)
			r := newRetrier(t, tc.cfg)
			chain := []grpc.UnaryClientInterceptor{r.UnaryClientInterceptor()}
			if tc.dedupe {
				chain = append([]grpc.UnaryClientInterceptor{mustStamper(tc.method).UnaryClientInterceptor()}, chain...)
			}
			c := testpbv1.NewTestServiceClient(kittest.Serve(t, svc.Register, nil, grpc.WithChainUnaryInterceptor(chain...)))
			ctx := t.Context()
			if tc.ctx != nil {
				ctx = tc.ctx(ctx)
			}
			var err error
			switch tc.method {
			case echo:
				_, err = c.Echo(ctx, &testpbv1.EchoRequest{Message: "m"})
			case put:
				_, err = c.Put(ctx, &testpbv1.PutRequest{Key: "k", Value: "v"})
			case create:
				_, err = c.Create(ctx, &testpbv1.CreateRequest{Key: "k", Value: "v"})
			}
			if status.Code(err) != status.Code(tc.err) {
				t.Errorf("error = %v, want code %v", err, status.Code(tc.err))
			}
			if got := svc.Calls(); got != tc.want {
				t.Errorf("server received %d attempts, want %d", got, tc.want)
			}
		})
	}
}

// TestDeadline checks that no retry runs past the caller's deadline: a
// backoff that does not end before it ends the call with the last error.
func TestDeadline(t *testing.T) {
	pushback := func(d time.Duration) error {
		st, err := status.New(codes.Unavailable, "test: come back later").WithDetails(&errdetails.RetryInfo{RetryDelay: durationpb.New(d)})
		if err != nil {
			t.Fatal(err)
		}
		return st.Err()
	}
	for _, tc := range []struct {
		name       string
		backoff    time.Duration // initial; doubles, no jitter
		deadline   time.Duration // 0: none
		err        error
		want       int
		minElapsed time.Duration
	}{
		// The first attempt fails at once; its 600ms backoff fits in 1s, the
		// second one's 1.2s does not.
		{"backoff fits once", 600 * time.Millisecond, time.Second, errUnavailable, 2, 600 * time.Millisecond},
		{"backoff never fits", 600 * time.Millisecond, 500 * time.Millisecond, errUnavailable, 1, 0},
		{"pushback beyond deadline", time.Millisecond, 500 * time.Millisecond, pushback(time.Second), 1, 0},
		{"pushback beyond max backoff", time.Millisecond, 0, pushback(5 * time.Second), 1, 0},
		{"pushback honoured", time.Millisecond, 0, pushback(100 * time.Millisecond), 3, 200 * time.Millisecond},
	} {
		t.Run(tc.name, func(t *testing.T) {
			svc := &kittest.Service{}
			svc.Fail(tc.err)
			cfg := retry.DefaultConfig()
			cfg.InitialBackoff, cfg.MaxBackoff, cfg.Jitter = duration.Duration(tc.backoff), duration.Duration(2*time.Second), 0
			r := newRetrier(t, cfg)
			c := testpbv1.NewTestServiceClient(kittest.Serve(t, svc.Register, nil, grpc.WithUnaryInterceptor(r.UnaryClientInterceptor())))
			ctx := t.Context()
			if tc.deadline > 0 {
				var cancel context.CancelFunc
				ctx, cancel = context.WithTimeout(ctx, tc.deadline)
				defer cancel()
			}
			start := time.Now()
			_, err := c.Echo(ctx, &testpbv1.EchoRequest{Message: "a"})
			elapsed := time.Since(start)
			if status.Code(err) != codes.Unavailable {
				t.Errorf("error = %v, want the last attempt's UNAVAILABLE", err)
			}
			if got := svc.Calls(); got != tc.want {
				t.Errorf("server received %d attempts, want %d", got, tc.want)
			}
			if tc.deadline > 0 && elapsed >= tc.deadline {
				t.Errorf("call took %v, not less than its deadline %v", elapsed, tc.deadline)
			}
			if elapsed < tc.minElapsed {
				t.Errorf("call took %v, less than the %v of waits", elapsed, tc.minElapsed)
			}
		})
	}
}

// TestResourceExhaustedNeedsRetryInfo: by default a server's refusal with
// RESOURCE_EXHAUSTED is retried after its RetryInfo pushback, and one
// without RetryInfo (grpc-go's own, for a message over the size limit) is
// not retried at all.
func TestResourceExhaustedNeedsRetryInfo(t *testing.T) {
	withInfo, err := status.New(codes.ResourceExhausted, "test: busy").WithDetails(&errdetails.RetryInfo{RetryDelay: durationpb.New(30 * time.Millisecond)})
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name       string
		err        error
		want       int
		minElapsed time.Duration
	}{
		{"with RetryInfo", withInfo.Err(), 3, 60 * time.Millisecond},
		{"without RetryInfo", status.Error(codes.ResourceExhausted, "grpc: received message larger than max"), 1, 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			svc := &kittest.Service{}
			svc.Fail(tc.err)
			cfg := retry.DefaultConfig()
			cfg.InitialBackoff = duration.Duration(time.Millisecond)
			r := newRetrier(t, cfg)
			c := testpbv1.NewTestServiceClient(kittest.Serve(t, svc.Register, nil, grpc.WithUnaryInterceptor(r.UnaryClientInterceptor())))
			start := time.Now()
			_, err := c.Echo(t.Context(), &testpbv1.EchoRequest{Message: "a"})
			if status.Code(err) != codes.ResourceExhausted {
				t.Errorf("error = %v, want RESOURCE_EXHAUSTED", err)
			}
			if got := svc.Calls(); got != tc.want {
				t.Errorf("server received %d attempts, want %d", got, tc.want)
			}
			if elapsed := time.Since(start); elapsed < tc.minElapsed {
				t.Errorf("call took %v, less than the %v of pushbacks", elapsed, tc.minElapsed)
			}
		})
	}
}

// TestCancelDuringBackoff checks that a backoff ends when the caller cancels.
func TestCancelDuringBackoff(t *testing.T) {
	svc := &kittest.Service{}
	svc.Fail(errUnavailable)
	cfg := retry.DefaultConfig()
	cfg.InitialBackoff, cfg.MaxBackoff = duration.Duration(time.Hour), duration.Duration(time.Hour)
	r := newRetrier(t, cfg)
	// failed hears of each attempt's failure, inside the retry layer.
	failed := make(chan error, 1)
	attempt := func(ctx context.Context, method string, req, reply any, cc *grpc.ClientConn, invoker grpc.UnaryInvoker, opts ...grpc.CallOption) error {
		err := invoker(ctx, method, req, reply, cc, opts...)
		failed <- err
		return err
	}
	c := testpbv1.NewTestServiceClient(kittest.Serve(t, svc.Register, nil, grpc.WithChainUnaryInterceptor(r.UnaryClientInterceptor(), attempt)))
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan error, 1)
	go func() {
		_, err := c.Echo(ctx, &testpbv1.EchoRequest{Message: "a"})
		done <- err
	}()
	if err := <-failed; status.Code(err) != codes.Unavailable {
		t.Fatalf("first attempt: %v, want UNAVAILABLE", err)
	}
	// The first attempt has failed; the call is backing off for an hour.
	cancel()
	if err := <-done; status.Code(err) != codes.Canceled {
		t.Errorf("error = %v, want CANCELED", err)
	}
	if got := svc.Calls(); got != 1 {
		t.Errorf("server received %d attempts, want 1", got)
	}
}

// TestServerMarksContext checks that a server that received a retried call
// does not retry its own calls, and tells the next server not to either.
func TestServerMarksContext(t *testing.T) {
	for _, tc := range []struct {
		name        string
		md          []string // outgoing metadata of the call to the front server
		wantCalls   int      // calls reaching the back server
		wantNoRetry bool     // they carry retry.NoRetryKey
	}{
		{"first attempt", nil, 3, false},
		{"attempt 1", []string{retry.AttemptKey, "1"}, 3, false},
		{"retried call", []string{retry.AttemptKey, "2"}, 1, true},
		{"no-retry mark", []string{retry.NoRetryKey, "1"}, 1, true},
		{"garbage attempt", []string{retry.AttemptKey, "x2"}, 3, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			// back: a service that is always unavailable.
			back := &kittest.Service{}
			back.Fail(errUnavailable)
			// front: a service that relays its calls to back, retrying.
			r := newRetrier(t, fastConfig())
			front := &kittest.Service{Next: testpbv1.NewTestServiceClient(
				kittest.Serve(t, back.Register, nil, grpc.WithUnaryInterceptor(r.UnaryClientInterceptor())))}
			c := testpbv1.NewTestServiceClient(kittest.Serve(t, front.Register, []grpc.ServerOption{grpc.UnaryInterceptor(r.UnaryServerInterceptor())}))

			ctx := metadata.AppendToOutgoingContext(t.Context(), tc.md...)
			if _, err := c.Echo(ctx, &testpbv1.EchoRequest{Message: "m"}); status.Code(err) != codes.Unavailable {
				t.Fatalf("Echo error = %v, want UNAVAILABLE", err)
			}
			if got := back.Calls(); got != tc.wantCalls {
				t.Errorf("back server received %d calls, want %d", got, tc.wantCalls)
			}
			if got := noRetry(back)[0]; got != tc.wantNoRetry {
				t.Errorf("first call to back carried %s: %v, want %v", retry.NoRetryKey, got, tc.wantNoRetry)
			}
		})
	}
}

// TestStreamServerMarksContext checks the stream server interceptor.
func TestStreamServerMarksContext(t *testing.T) {
	r := newRetrier(t, fastConfig())
	allowed := make(chan bool, 1)
	probe := func(srv any, ss grpc.ServerStream, _ *grpc.StreamServerInfo, handler grpc.StreamHandler) error {
		allowed <- retry.RetriesAllowed(ss.Context())
		return handler(srv, ss)
	}
	c := testpbv1.NewTestServiceClient(kittest.Serve(t, (&kittest.Service{}).Register,
		[]grpc.ServerOption{grpc.ChainStreamInterceptor(r.StreamServerInterceptor(), probe)}))
	for _, tc := range []struct {
		md   []string
		want bool
	}{
		{nil, true},
		{[]string{retry.AttemptKey, "3"}, false},
		{[]string{retry.NoRetryKey, "1"}, false},
	} {
		stream, err := c.EchoStream(metadata.AppendToOutgoingContext(t.Context(), tc.md...), &testpbv1.EchoStreamRequest{Message: "a", Count: 1})
		if err != nil {
			t.Fatal(err)
		}
		if _, err := receiveAll(stream); err != nil {
			t.Fatal(err)
		}
		if got := <-allowed; got != tc.want {
			t.Errorf("with metadata %q: RetriesAllowed = %v, want %v", tc.md, got, tc.want)
		}
	}
}

func TestSetConfig(t *testing.T) {
	svc := &kittest.Service{}
	svc.Fail(errUnavailable)
	r := newRetrier(t, fastConfig(), retry.WithLogger(nil), retry.WithMeterProvider(nil))
	c := testpbv1.NewTestServiceClient(kittest.Serve(t, svc.Register, nil, grpc.WithUnaryInterceptor(r.UnaryClientInterceptor())))
	attempts := func() int {
		t.Helper()
		before := svc.Calls()
		c.Echo(t.Context(), &testpbv1.EchoRequest{Message: "a"})
		return svc.Calls() - before
	}
	if err := r.SetConfig(retry.Config{}); err == nil {
		t.Fatal("SetConfig(invalid) = nil, want an error")
	}
	if got := attempts(); got != 3 {
		t.Errorf("after a rejected config: %d attempts, want 3", got)
	}
	cfg := fastConfig()
	cfg.MaxAttempts = 2
	if err := r.SetConfig(cfg); err != nil {
		t.Fatalf("SetConfig: %v", err)
	}
	if got := attempts(); got != 2 {
		t.Errorf("after SetConfig: %d attempts, want 2", got)
	}
}

func TestConfigYAML(t *testing.T) {
	const doc = `
max_attempts: 4
codes: [UNAVAILABLE, resource_exhausted]
initial_backoff: 20ms
max_backoff: 2s
multiplier: 1.5
jitter: 0.1
budget_ratio: 0.2
budget_min_retries_per_second: 5
methods:
  /testpb.v1.TestService/Create: true
  /testpb.v1.TestService/*: false
hedging:
  methods: [/testpb.v1.TestService/Echo]
  max_attempts: 3
  quantile: 0.9
  min_delay: 2ms
`
	got := retry.DefaultConfig()
	if err := yaml.Unmarshal([]byte(doc), &got); err != nil {
		t.Fatalf("Unmarshal: %v", err)
	}
	want := retry.Config{
		MaxAttempts: 4, Codes: []string{"UNAVAILABLE", "resource_exhausted"},
		InitialBackoff: duration.Duration(20 * time.Millisecond), MaxBackoff: duration.Duration(2 * time.Second), Multiplier: 1.5, Jitter: 0.1,
		BudgetRatio: 0.2, BudgetMinRetriesPerSecond: 5,
		Methods: map[string]bool{create: true, testService: false},
		Hedging: retry.HedgingConfig{Methods: []string{echo}, MaxAttempts: 3, Quantile: 0.9, MinDelay: duration.Duration(2 * time.Millisecond)},
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("decoded config (-want +got):\n%s", diff)
	}
	if err := got.Validate(); err != nil {
		t.Errorf("Validate: %v", err)
	}
}

// localRejection stands for an open breaker's or a client limiter's error.
type localRejection struct{}

func (localRejection) Error() string { return "breaker open" }
func (localRejection) GRPCStatus() *status.Status {
	return status.New(codes.Unavailable, "breaker open")
}
func (localRejection) LocalRejection() bool { return true }

func TestLocalRejectionsAreNotRetried(t *testing.T) {
	r := newRetrier(t, fastConfig())
	var attempts atomic.Int32
	reject := func(ctx context.Context, method string, req, reply any, cc *grpc.ClientConn, invoker grpc.UnaryInvoker, opts ...grpc.CallOption) error {
		attempts.Add(1)
		return localRejection{}
	}
	c := testpbv1.NewTestServiceClient(kittest.Serve(t, (&kittest.Service{}).Register, nil, grpc.WithChainUnaryInterceptor(r.UnaryClientInterceptor(), reject)))
	_, err := c.Echo(t.Context(), &testpbv1.EchoRequest{Message: "Ada"})
	if status.Code(err) != codes.Unavailable || attempts.Load() != 1 {
		t.Errorf("err %v after %d attempts; want UNAVAILABLE after 1 (a local rejection is not retried)", err, attempts.Load())
	}
}
