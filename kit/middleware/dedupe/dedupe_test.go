package dedupe_test

import (
	"context"
	"regexp"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	yaml "go.yaml.in/yaml/v3"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/testing/protocmp"

	"github.com/grpckit/grpckit/kit/duration"
	"github.com/grpckit/grpckit/kit/internal/kittest"
	testpbv1 "github.com/grpckit/grpckit/kit/internal/testpb/v1"
	"github.com/grpckit/grpckit/kit/middleware"
	"github.com/grpckit/grpckit/kit/middleware/dedupe"
)

func TestConfigValidate(t *testing.T) {
	for _, tc := range []struct {
		name    string
		cfg     dedupe.Config
		wantErr string // prefix; "" means valid
	}{
		{"defaults", dedupe.DefaultConfig(), ""},
		{"methods", dedupe.Config{TTL: duration.Duration(time.Minute), MaxEntries: 1, Methods: []string{create, testService}}, ""},
		{"zero ttl", dedupe.Config{MaxEntries: 1}, "dedupe: ttl:"},
		{"zero entries", dedupe.Config{TTL: duration.Duration(time.Minute)}, "dedupe: max_entries:"},
		{"negative entries", dedupe.Config{TTL: duration.Duration(time.Minute), MaxEntries: -1}, "dedupe: max_entries:"},
		{"bad method", dedupe.Config{TTL: duration.Duration(time.Minute), MaxEntries: 1, Methods: []string{"Create"}}, "dedupe: methods:"},
		{"wildcard method name", dedupe.Config{TTL: duration.Duration(time.Minute), MaxEntries: 1, Methods: []string{"/*/Create"}}, "dedupe: methods:"},
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
			if _, nerr := dedupe.New(tc.cfg); (nerr == nil) != (err == nil) {
				t.Errorf("New error %v disagrees with Validate error %v", nerr, err)
			}
		})
	}
}

func TestNewClientRefusesBadPattern(t *testing.T) {
	if _, err := dedupe.NewClient(dedupe.ClientConfig{Methods: []string{"Create"}}); err == nil {
		t.Error("NewClient accepted the method pattern Create")
	}
	s := stamper(t, "/testpb.v1.TestService/Create")
	if err := s.SetConfig(dedupe.ClientConfig{Methods: []string{"Create"}}); err == nil {
		t.Error("SetConfig accepted the method pattern Create")
	}
	if got := s.Config().Methods; len(got) != 1 || got[0] != "/testpb.v1.TestService/Create" {
		t.Errorf("after a refused SetConfig, Config().Methods = %q", got)
	}
}

// stamper returns the client side of dedupe for methods.
func stamper(t testing.TB, methods ...string) *dedupe.Stamper {
	t.Helper()
	s, err := dedupe.NewClient(dedupe.ClientConfig{Methods: methods})
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// requestIDs returns the request id of every call svc received, "" when a
// call had none.
func requestIDs(svc *kittest.Service) []string {
	var ids []string
	for _, md := range svc.Metadata() {
		ids = append(ids, strings.Join(md.Get(dedupe.RequestIDKey), ","))
	}
	return ids
}

var hexID = regexp.MustCompile(`^[0-9a-f]{32}$`)

func TestClientStampsRequestID(t *testing.T) {
	for _, tc := range []struct {
		name          string
		methods       []string
		twice         bool     // two dedupe interceptors in the chain
		md            []string // outgoing metadata set by the caller
		withID        *string  // the caller stamps with WithRequestID(ctx, *withID)
		wantID        string   // "hex": a fresh id; "": none; else this id
		wantProtected bool
	}{
		{name: "listed method", methods: []string{echo}, wantID: "hex", wantProtected: true},
		{name: "listed service", methods: []string{testService}, wantID: "hex", wantProtected: true},
		{name: "other method", methods: []string{create}, wantID: "", wantProtected: false},
		{name: "no methods", wantID: "", wantProtected: false},
		{name: "caller's id kept", methods: []string{echo}, md: []string{dedupe.RequestIDKey, "my-key-1"}, wantID: "my-key-1", wantProtected: true},
		{name: "nested interceptors keep one id", methods: []string{echo}, twice: true, wantID: "hex", wantProtected: true},
		{name: "caller stamps its id", withID: ptr("my-key-2"), wantID: "my-key-2", wantProtected: true},
		{name: "caller stamps a new id", withID: ptr(""), wantID: "hex", wantProtected: true},
		{name: "caller's invalid id replaced", withID: ptr("bad key"), wantID: "hex", wantProtected: true},
		{name: "stamped by the caller, kept by the stamper", methods: []string{echo}, withID: ptr("my-key-3"), wantID: "my-key-3", wantProtected: true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			svc := &kittest.Service{}
			protected := make(chan bool, 1)
			probe := func(ctx context.Context, method string, req, reply any, cc *grpc.ClientConn, invoker grpc.UnaryInvoker, opts ...grpc.CallOption) error {
				protected <- dedupe.Protected(ctx)
				return invoker(ctx, method, req, reply, cc, opts...)
			}
			chain := []grpc.UnaryClientInterceptor{stamper(t, tc.methods...).UnaryClientInterceptor(), probe}
			if tc.twice {
				chain = append([]grpc.UnaryClientInterceptor{stamper(t, tc.methods...).UnaryClientInterceptor()}, chain...)
			}
			conn := kittest.Serve(t, svc.Register, nil, grpc.WithChainUnaryInterceptor(chain...))
			ctx := metadata.AppendToOutgoingContext(t.Context(), tc.md...)
			if tc.withID != nil {
				ctx = dedupe.WithRequestID(ctx, *tc.withID)
			}
			if _, err := testpbv1.NewTestServiceClient(conn).Echo(ctx, &testpbv1.EchoRequest{Message: "a"}); err != nil {
				t.Fatalf("Echo: %v", err)
			}
			got := requestIDs(svc)[0]
			switch tc.wantID {
			case "hex":
				if !hexID.MatchString(got) {
					t.Errorf("request id = %q, want 32 hex digits", got)
				}
			default:
				if got != tc.wantID {
					t.Errorf("request id = %q, want %q", got, tc.wantID)
				}
			}
			if got := <-protected; got != tc.wantProtected {
				t.Errorf("Protected = %v, want %v", got, tc.wantProtected)
			}
		})
	}
}

// TestRetriesKeepRequestID checks that the attempts of one call carry one
// id, and that two calls get two ids.
func TestRetriesKeepRequestID(t *testing.T) {
	svc := &kittest.Service{}
	svc.FailNext(2, status.Error(codes.Unavailable, "test: not yet"))
	conn := kittest.Serve(t, svc.Register, nil,
		grpc.WithChainUnaryInterceptor(stamper(t, echo).UnaryClientInterceptor(), newRetrier(t).UnaryClientInterceptor()))
	c := testpbv1.NewTestServiceClient(conn)
	for range 2 {
		if _, err := c.Echo(t.Context(), &testpbv1.EchoRequest{Message: "a"}); err != nil {
			t.Fatalf("Echo: %v", err)
		}
	}
	ids := requestIDs(svc)
	if len(ids) != 4 || ids[0] != ids[1] || ids[1] != ids[2] || ids[2] == ids[3] {
		t.Errorf("request ids per attempt = %q, want three attempts of one id, then another id", ids)
	}
}

// loseFirstResponse is a client interceptor that lets the first call reach
// the server and then reports UNAVAILABLE instead of its response, as when a
// connection breaks after the server has done the work.
func loseFirstResponse() grpc.UnaryClientInterceptor {
	var lost atomic.Bool
	return func(ctx context.Context, method string, req, reply any, cc *grpc.ClientConn, invoker grpc.UnaryInvoker, opts ...grpc.CallOption) error {
		err := invoker(ctx, method, req, reply, cc, opts...)
		if err == nil && lost.CompareAndSwap(false, true) {
			return status.Error(codes.Unavailable, "test: response lost")
		}
		return err
	}
}

// TestLostResponse retries a Create whose response was lost: with the
// dedupe cache the retry gets the first call's response and the store was
// written once; without it the retry runs Create again, which fails.
func TestLostResponse(t *testing.T) {
	for _, tc := range []struct {
		name        string
		serverCache bool
		wantCode    codes.Code
		wantReplays int64
	}{
		{"deduplicated", true, codes.OK, 1},
		{"not deduplicated", false, codes.AlreadyExists, 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			mp, reader := kittest.NewMeterProvider(t)
			var serverOpts []grpc.ServerOption
			if tc.serverCache {
				cache := newCache(t, dedupe.Config{TTL: duration.Duration(time.Minute), MaxEntries: 100, Methods: []string{create}}, dedupe.WithMeterProvider(mp))
				serverOpts = append(serverOpts, grpc.UnaryInterceptor(cache.UnaryServerInterceptor()))
			}
			store := &kittest.Store{}
			svc := &kittest.Service{Store: store}
			conn := kittest.Serve(t, svc.Register, serverOpts,
				grpc.WithChainUnaryInterceptor(
					stamper(t, create).UnaryClientInterceptor(), // outermost: one id for all attempts
					newRetrier(t).UnaryClientInterceptor(),
					loseFirstResponse(),
				))
			resp, err := testpbv1.NewTestServiceClient(conn).Create(t.Context(), &testpbv1.CreateRequest{Key: "ada", Value: "Ada"})
			if status.Code(err) != tc.wantCode {
				t.Fatalf("Create error = %v, want code %v", err, tc.wantCode)
			}
			if got := store.Writes(); got != 1 {
				t.Fatalf("%d writes, want 1: %v", got, store.Items())
			}
			if tc.wantCode == codes.OK {
				if diff := cmp.Diff(store.Items()[0], resp.GetItem(), protocmp.Transform()); diff != "" {
					t.Errorf("replayed response differs from the stored item (-stored +got):\n%s", diff)
				}
			}
			if got := kittest.MetricSums(t, reader)["grpckit.dedupe.replays"]; got != tc.wantReplays {
				t.Errorf("grpckit.dedupe.replays = %d, want %d", got, tc.wantReplays)
			}
		})
	}
}

// gate is a server interceptor that holds each call until released, and
// counts the calls that reach the handler.
type gate struct {
	entered chan struct{}
	release chan struct{}
	runs    atomic.Int32
}

func newGate() *gate { return &gate{entered: make(chan struct{}, 10), release: make(chan struct{})} }

func (g *gate) unary(ctx context.Context, req any, _ *grpc.UnaryServerInfo, handler grpc.UnaryHandler) (any, error) {
	g.runs.Add(1)
	g.entered <- struct{}{}
	<-g.release
	return handler(ctx, req)
}

// TestDuplicatesWait sends three calls with one request id while the first
// is running: one gives up at its deadline, the other gets the first's
// result, and the handler runs once.
func TestDuplicatesWait(t *testing.T) {
	mp, reader := kittest.NewMeterProvider(t)
	cache := newCache(t, dedupe.Config{TTL: duration.Duration(time.Minute), MaxEntries: 100, Methods: []string{create}}, dedupe.WithMeterProvider(mp))
	g := newGate()
	store := &kittest.Store{}
	svc := &kittest.Service{Store: store}
	conn := kittest.Serve(t, svc.Register, []grpc.ServerOption{grpc.ChainUnaryInterceptor(cache.UnaryServerInterceptor(), g.unary)})
	c := testpbv1.NewTestServiceClient(conn)
	ctx := metadata.AppendToOutgoingContext(t.Context(), dedupe.RequestIDKey, "req-1")
	req := &testpbv1.CreateRequest{Key: "ada", Value: "Ada"}

	type result struct {
		resp *testpbv1.CreateResponse
		err  error
	}
	first, second := make(chan result, 1), make(chan result, 1)
	go func() {
		resp, err := c.Create(ctx, req)
		first <- result{resp, err}
	}()
	<-g.entered
	go func() {
		resp, err := c.Create(ctx, req)
		second <- result{resp, err}
	}()
	kittest.WaitFor(t, "the duplicate to wait", func() bool { return kittest.MetricSums(t, reader)["grpckit.dedupe.waits"] == 1 })

	impatient, cancel := context.WithTimeout(ctx, 50*time.Millisecond)
	defer cancel()
	if _, err := c.Create(impatient, req); status.Code(err) != codes.DeadlineExceeded {
		t.Errorf("duplicate with a short deadline: error = %v, want DEADLINE_EXCEEDED", err)
	}

	close(g.release)
	r1, r2 := <-first, <-second
	if r1.err != nil || r2.err != nil {
		t.Fatalf("Create errors: %v, %v", r1.err, r2.err)
	}
	if diff := cmp.Diff(r1.resp, r2.resp, protocmp.Transform()); diff != "" {
		t.Errorf("the duplicate's response differs (-first +duplicate):\n%s", diff)
	}
	if got, writes := g.runs.Load(), store.Writes(); got != 1 || writes != 1 {
		t.Errorf("handler ran %d times and wrote %d times, want 1 and 1", got, writes)
	}
	if got := kittest.MetricSums(t, reader)["grpckit.dedupe.waits"]; got != 2 {
		t.Errorf("grpckit.dedupe.waits = %d, want 2", got)
	}
}

// TestWhichResultsAreRemembered fails the first call of a request id with
// a code, lets the second through, and checks whether the second ran.
func TestWhichResultsAreRemembered(t *testing.T) {
	for _, tc := range []struct {
		code     codes.Code
		wantRuns int // handler runs for the two calls
	}{
		{codes.OK, 1},
		{codes.AlreadyExists, 1},
		{codes.InvalidArgument, 1},
		{codes.NotFound, 1},
		{codes.Internal, 2},
		{codes.Unknown, 2},
		{codes.DataLoss, 2},
		{codes.Unavailable, 2},
		{codes.DeadlineExceeded, 2},
		{codes.ResourceExhausted, 2},
		{codes.Canceled, 2},
		{codes.Aborted, 2},
	} {
		t.Run(tc.code.String(), func(t *testing.T) {
			cache := newCache(t, dedupe.Config{TTL: duration.Duration(time.Minute), MaxEntries: 100, Methods: []string{testService}})
			svc := &kittest.Service{}
			if tc.code != codes.OK {
				svc.FailNext(1, status.Error(tc.code, "test: first run fails"))
			}
			conn := kittest.Serve(t, svc.Register, []grpc.ServerOption{grpc.UnaryInterceptor(cache.UnaryServerInterceptor())})
			c := testpbv1.NewTestServiceClient(conn)
			ctx := metadata.AppendToOutgoingContext(t.Context(), dedupe.RequestIDKey, "req-1")
			_, err1 := c.Echo(ctx, &testpbv1.EchoRequest{Message: "a"})
			_, err2 := c.Echo(ctx, &testpbv1.EchoRequest{Message: "a"})
			if got := svc.Calls(); got != tc.wantRuns {
				t.Errorf("handler ran %d times, want %d", got, tc.wantRuns)
			}
			if tc.wantRuns == 1 {
				if diff := cmp.Diff(status.Convert(err1).Proto(), status.Convert(err2).Proto(), protocmp.Transform()); diff != "" {
					t.Errorf("replayed status differs (-first +second):\n%s", diff)
				}
			} else if err2 != nil {
				t.Errorf("second call: %v, want it to run and succeed", err2)
			}
		})
	}
}

// TestKey checks that the same request id from another caller or for
// another method is another call, and calls without id or of other
// methods are not deduplicated.
func TestKey(t *testing.T) {
	cache := newCache(t, dedupe.Config{TTL: duration.Duration(time.Minute), MaxEntries: 100, Methods: []string{echo}})
	// Plays the auth layer: the caller comes from metadata "test-caller".
	auth := func(ctx context.Context, req any, _ *grpc.UnaryServerInfo, handler grpc.UnaryHandler) (any, error) {
		md, _ := metadata.FromIncomingContext(ctx)
		if v := md.Get("test-caller"); len(v) > 0 {
			ctx = middleware.WithCaller(ctx, v[0])
		}
		return handler(ctx, req)
	}
	svc := &kittest.Service{}
	conn := kittest.Serve(t, svc.Register, []grpc.ServerOption{grpc.ChainUnaryInterceptor(auth, cache.UnaryServerInterceptor())})
	c := testpbv1.NewTestServiceClient(conn)
	for _, tc := range []struct {
		name     string
		md       []string
		wantRuns int
	}{
		{"first", []string{dedupe.RequestIDKey, "r1", "test-caller", "alice"}, 1},
		{"duplicate", []string{dedupe.RequestIDKey, "r1", "test-caller", "alice"}, 0},
		{"other caller", []string{dedupe.RequestIDKey, "r1", "test-caller", "bob"}, 1},
		{"other id", []string{dedupe.RequestIDKey, "r2", "test-caller", "alice"}, 1},
		{"no id", []string{"test-caller", "alice"}, 1},
		{"no id again", []string{"test-caller", "alice"}, 1},
	} {
		before := svc.Calls()
		if _, err := c.Echo(metadata.AppendToOutgoingContext(t.Context(), tc.md...), &testpbv1.EchoRequest{Message: "a"}); err != nil {
			t.Fatalf("%s: Echo: %v", tc.name, err)
		}
		if got := svc.Calls() - before; got != tc.wantRuns {
			t.Errorf("%s: handler ran %d times, want %d", tc.name, got, tc.wantRuns)
		}
	}
	// EchoStream is not deduplicated (not listed, and streams never are).
	for range 2 {
		stream, err := c.EchoStream(metadata.AppendToOutgoingContext(t.Context(), dedupe.RequestIDKey, "r1"), &testpbv1.EchoStreamRequest{Message: "a", Count: 1})
		if err != nil {
			t.Fatal(err)
		}
		if _, err := stream.Recv(); err != nil {
			t.Fatalf("EchoStream: %v", err)
		}
	}
}

func TestInValidRequestID(t *testing.T) {
	cache := newCache(t, dedupe.Config{TTL: duration.Duration(time.Minute), MaxEntries: 100, Methods: []string{echo}})
	conn := kittest.Serve(t, (&kittest.Service{}).Register, []grpc.ServerOption{grpc.UnaryInterceptor(cache.UnaryServerInterceptor())})
	c := testpbv1.NewTestServiceClient(conn)
	for _, id := range []string{strings.Repeat("x", 129), "has space"} {
		ctx := metadata.AppendToOutgoingContext(t.Context(), dedupe.RequestIDKey, id)
		if _, err := c.Echo(ctx, &testpbv1.EchoRequest{Message: "a"}); status.Code(err) != codes.InvalidArgument {
			t.Errorf("request id %q: error = %v, want INVALID_ARGUMENT", id, err)
		}
	}
	ctx := metadata.AppendToOutgoingContext(t.Context(), dedupe.RequestIDKey, strings.Repeat("x", 128))
	if _, err := c.Echo(ctx, &testpbv1.EchoRequest{Message: "a"}); err != nil {
		t.Errorf("128-byte request id: %v", err)
	}
}

func TestSetConfig(t *testing.T) {
	cache := newCache(t, dedupe.DefaultConfig(), dedupe.WithLogger(nil), dedupe.WithMeterProvider(nil))
	svc := &kittest.Service{}
	conn := kittest.Serve(t, svc.Register, []grpc.ServerOption{grpc.UnaryInterceptor(cache.UnaryServerInterceptor())})
	c := testpbv1.NewTestServiceClient(conn)
	twice := func(id string) int {
		t.Helper()
		before := svc.Calls()
		ctx := metadata.AppendToOutgoingContext(t.Context(), dedupe.RequestIDKey, id)
		for range 2 {
			if _, err := c.Echo(ctx, &testpbv1.EchoRequest{Message: "a"}); err != nil {
				t.Fatalf("Echo: %v", err)
			}
		}
		return svc.Calls() - before
	}
	if got := twice("a"); got != 2 {
		t.Errorf("with no methods configured: %d runs, want 2", got)
	}
	if err := cache.SetConfig(dedupe.Config{TTL: duration.Duration(time.Minute), MaxEntries: 0, Methods: []string{echo}}); err == nil {
		t.Fatal("SetConfig(invalid) = nil, want an error")
	}
	if got := twice("b"); got != 2 {
		t.Errorf("after a rejected config: %d runs, want 2", got)
	}
	cfg := dedupe.DefaultConfig()
	cfg.Methods = []string{echo}
	if err := cache.SetConfig(cfg); err != nil {
		t.Fatalf("SetConfig: %v", err)
	}
	if got := twice("c"); got != 1 {
		t.Errorf("after SetConfig: %d runs, want 1", got)
	}
}

func TestConfigYAML(t *testing.T) {
	const doc = `
ttl: 90s
max_entries: 500
methods: [/testpb.v1.TestService/Create, /orders.v1.OrderService/*]
`
	got := dedupe.DefaultConfig()
	if err := yaml.Unmarshal([]byte(doc), &got); err != nil {
		t.Fatalf("Unmarshal: %v", err)
	}
	want := dedupe.Config{TTL: duration.Duration(90 * time.Second), MaxEntries: 500, Methods: []string{create, "/orders.v1.OrderService/*"}}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("decoded config (-want +got):\n%s", diff)
	}
	if err := got.Validate(); err != nil {
		t.Errorf("Validate: %v", err)
	}
}

func ptr[T any](v T) *T { return &v }
