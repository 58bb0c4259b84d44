package dedupe_test

import (
	"context"
	"regexp"
	"strings"
	"sync"
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
	"github.com/grpckit/grpckit/kit/middleware"
	"github.com/grpckit/grpckit/kit/middleware/dedupe"
	greeterv1 "github.com/grpckit/grpckit/proto/greeter/v1"
	userv1 "github.com/grpckit/grpckit/proto/user/v1"
	"github.com/grpckit/grpckit/services/greeter"
	"github.com/grpckit/grpckit/services/user"
)

func TestConfigValidate(t *testing.T) {
	for _, tc := range []struct {
		name    string
		cfg     dedupe.Config
		wantErr string // prefix; "" means valid
	}{
		{"defaults", dedupe.DefaultConfig(), ""},
		{"methods", dedupe.Config{TTL: duration.Duration(time.Minute), MaxEntries: 1, Methods: []string{createUser, "/greeter.v1.GreeterService/*"}}, ""},
		{"zero ttl", dedupe.Config{MaxEntries: 1}, "dedupe: ttl:"},
		{"zero entries", dedupe.Config{TTL: duration.Duration(time.Minute)}, "dedupe: max_entries:"},
		{"negative entries", dedupe.Config{TTL: duration.Duration(time.Minute), MaxEntries: -1}, "dedupe: max_entries:"},
		{"bad method", dedupe.Config{TTL: duration.Duration(time.Minute), MaxEntries: 1, Methods: []string{"CreateUser"}}, "dedupe: methods:"},
		{"wildcard method name", dedupe.Config{TTL: duration.Duration(time.Minute), MaxEntries: 1, Methods: []string{"/*/CreateUser"}}, "dedupe: methods:"},
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
	if _, err := dedupe.NewClient(dedupe.ClientConfig{Methods: []string{"CreateUser"}}); err == nil {
		t.Error("NewClient accepted the method pattern CreateUser")
	}
	s := stamper(t, "/user.v1.UserService/CreateUser")
	if err := s.SetConfig(dedupe.ClientConfig{Methods: []string{"CreateUser"}}); err == nil {
		t.Error("SetConfig accepted the method pattern CreateUser")
	}
	if got := s.Config().Methods; len(got) != 1 || got[0] != "/user.v1.UserService/CreateUser" {
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

// idRecorder records the request id of every call a server receives.
type idRecorder struct {
	mu  sync.Mutex
	ids []string
}

func (r *idRecorder) unary(ctx context.Context, req any, _ *grpc.UnaryServerInfo, handler grpc.UnaryHandler) (any, error) {
	md, _ := metadata.FromIncomingContext(ctx)
	r.mu.Lock()
	r.ids = append(r.ids, strings.Join(md.Get(dedupe.RequestIDKey), ","))
	r.mu.Unlock()
	return handler(ctx, req)
}

func (r *idRecorder) get() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]string(nil), r.ids...)
}

var hexID = regexp.MustCompile(`^[0-9a-f]{32}$`)

func TestClientStampsRequestID(t *testing.T) {
	for _, tc := range []struct {
		name          string
		methods       []string
		twice         bool     // two dedupe interceptors in the chain
		md            []string // outgoing metadata set by the caller
		wantID        string   // "hex": a fresh id; "": none; else this id
		wantProtected bool
	}{
		{name: "listed method", methods: []string{sayHello}, wantID: "hex", wantProtected: true},
		{name: "listed service", methods: []string{"/greeter.v1.GreeterService/*"}, wantID: "hex", wantProtected: true},
		{name: "other method", methods: []string{createUser}, wantID: "", wantProtected: false},
		{name: "no methods", wantID: "", wantProtected: false},
		{name: "caller's id kept", methods: []string{sayHello}, md: []string{dedupe.RequestIDKey, "my-key-1"}, wantID: "my-key-1", wantProtected: true},
		{name: "nested interceptors keep one id", methods: []string{sayHello}, twice: true, wantID: "hex", wantProtected: true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var rec idRecorder
			protected := make(chan bool, 1)
			probe := func(ctx context.Context, method string, req, reply any, cc *grpc.ClientConn, invoker grpc.UnaryInvoker, opts ...grpc.CallOption) error {
				protected <- dedupe.Protected(ctx)
				return invoker(ctx, method, req, reply, cc, opts...)
			}
			chain := []grpc.UnaryClientInterceptor{stamper(t, tc.methods...).UnaryClientInterceptor(), probe}
			if tc.twice {
				chain = append([]grpc.UnaryClientInterceptor{stamper(t, tc.methods...).UnaryClientInterceptor()}, chain...)
			}
			conn := serve(t, func(s *grpc.Server) { greeterv1.RegisterGreeterServiceServer(s, greeter.NewServer(nil)) },
				[]grpc.ServerOption{grpc.UnaryInterceptor(rec.unary)}, grpc.WithChainUnaryInterceptor(chain...))
			ctx := metadata.AppendToOutgoingContext(t.Context(), tc.md...)
			if _, err := greeterv1.NewGreeterServiceClient(conn).SayHello(ctx, &greeterv1.SayHelloRequest{Name: "a"}); err != nil {
				t.Fatalf("SayHello: %v", err)
			}
			got := rec.get()[0]
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
	var rec idRecorder
	var n atomic.Int32
	failTwice := func(ctx context.Context, req any, _ *grpc.UnaryServerInfo, handler grpc.UnaryHandler) (any, error) {
		if n.Add(1) <= 2 {
			return nil, status.Error(codes.Unavailable, "test: not yet")
		}
		return handler(ctx, req)
	}
	conn := serve(t, func(s *grpc.Server) { greeterv1.RegisterGreeterServiceServer(s, greeter.NewServer(nil)) },
		[]grpc.ServerOption{grpc.ChainUnaryInterceptor(rec.unary, failTwice)},
		grpc.WithChainUnaryInterceptor(stamper(t, sayHello).UnaryClientInterceptor(), newRetrier(t).UnaryClientInterceptor()))
	c := greeterv1.NewGreeterServiceClient(conn)
	for range 2 {
		if _, err := c.SayHello(t.Context(), &greeterv1.SayHelloRequest{Name: "a"}); err != nil {
			t.Fatalf("SayHello: %v", err)
		}
	}
	ids := rec.get()
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

// TestLostResponse retries a CreateUser whose response was lost: with the
// dedupe cache the retry gets the first call's response and one user
// exists; without it the retry runs CreateUser again, which fails.
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
			mp, reader := meter(t)
			var serverOpts []grpc.ServerOption
			if tc.serverCache {
				cache := newCache(t, dedupe.Config{TTL: duration.Duration(time.Minute), MaxEntries: 100, Methods: []string{createUser}}, dedupe.WithMeterProvider(mp))
				serverOpts = append(serverOpts, grpc.UnaryInterceptor(cache.UnaryServerInterceptor()))
			}
			conn := serve(t, func(s *grpc.Server) { userv1.RegisterUserServiceServer(s, user.NewServer(openStore(t))) }, serverOpts,
				grpc.WithChainUnaryInterceptor(
					stamper(t, createUser).UnaryClientInterceptor(), // outermost: one id for all attempts
					newRetrier(t).UnaryClientInterceptor(),
					loseFirstResponse(),
				))
			c := userv1.NewUserServiceClient(conn)
			resp, err := c.CreateUser(t.Context(), &userv1.CreateUserRequest{Name: "Ada", Email: "ada@example.com"})
			if status.Code(err) != tc.wantCode {
				t.Fatalf("CreateUser error = %v, want code %v", err, tc.wantCode)
			}
			list, err := c.ListUsers(t.Context(), &userv1.ListUsersRequest{})
			if err != nil {
				t.Fatalf("ListUsers: %v", err)
			}
			if len(list.GetUsers()) != 1 {
				t.Fatalf("%d users exist, want 1: %v", len(list.GetUsers()), list.GetUsers())
			}
			if tc.wantCode == codes.OK {
				if diff := cmp.Diff(list.GetUsers()[0], resp.GetUser(), protocmp.Transform()); diff != "" {
					t.Errorf("replayed response differs from the stored user (-stored +got):\n%s", diff)
				}
			}
			if got := sums(t, reader)["grpckit.dedupe.replays"]; got != tc.wantReplays {
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

// waitFor polls cond until it holds or 10s have passed.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(time.Millisecond)
	}
}

// TestDuplicatesWait sends three calls with one request id while the first
// is running: one gives up at its deadline, the other gets the first's
// result, and the handler runs once.
func TestDuplicatesWait(t *testing.T) {
	mp, reader := meter(t)
	cache := newCache(t, dedupe.Config{TTL: duration.Duration(time.Minute), MaxEntries: 100, Methods: []string{createUser}}, dedupe.WithMeterProvider(mp))
	g := newGate()
	conn := serve(t, func(s *grpc.Server) { userv1.RegisterUserServiceServer(s, user.NewServer(openStore(t))) },
		[]grpc.ServerOption{grpc.ChainUnaryInterceptor(cache.UnaryServerInterceptor(), g.unary)})
	c := userv1.NewUserServiceClient(conn)
	ctx := metadata.AppendToOutgoingContext(t.Context(), dedupe.RequestIDKey, "req-1")
	req := &userv1.CreateUserRequest{Name: "Ada", Email: "ada@example.com"}

	type result struct {
		resp *userv1.CreateUserResponse
		err  error
	}
	first, second := make(chan result, 1), make(chan result, 1)
	go func() {
		resp, err := c.CreateUser(ctx, req)
		first <- result{resp, err}
	}()
	<-g.entered
	go func() {
		resp, err := c.CreateUser(ctx, req)
		second <- result{resp, err}
	}()
	waitFor(t, "the duplicate to wait", func() bool { return sums(t, reader)["grpckit.dedupe.waits"] == 1 })

	impatient, cancel := context.WithTimeout(ctx, 50*time.Millisecond)
	defer cancel()
	if _, err := c.CreateUser(impatient, req); status.Code(err) != codes.DeadlineExceeded {
		t.Errorf("duplicate with a short deadline: error = %v, want DEADLINE_EXCEEDED", err)
	}

	close(g.release)
	r1, r2 := <-first, <-second
	if r1.err != nil || r2.err != nil {
		t.Fatalf("CreateUser errors: %v, %v", r1.err, r2.err)
	}
	if diff := cmp.Diff(r1.resp, r2.resp, protocmp.Transform()); diff != "" {
		t.Errorf("the duplicate's response differs (-first +duplicate):\n%s", diff)
	}
	if got := g.runs.Load(); got != 1 {
		t.Errorf("handler ran %d times, want 1", got)
	}
	if got := sums(t, reader)["grpckit.dedupe.waits"]; got != 2 {
		t.Errorf("grpckit.dedupe.waits = %d, want 2", got)
	}
}

// TestWhichResultsAreRemembered fails the first call of a request id with
// a code, lets the second through, and checks whether the second ran.
func TestWhichResultsAreRemembered(t *testing.T) {
	for _, tc := range []struct {
		code     codes.Code
		wantRuns int32 // handler runs for the two calls
	}{
		{codes.OK, 1},
		{codes.AlreadyExists, 1},
		{codes.InvalidArgument, 1},
		{codes.NotFound, 1},
		{codes.Internal, 1},
		{codes.Unavailable, 2},
		{codes.DeadlineExceeded, 2},
		{codes.ResourceExhausted, 2},
		{codes.Canceled, 2},
		{codes.Aborted, 2},
	} {
		t.Run(tc.code.String(), func(t *testing.T) {
			cache := newCache(t, dedupe.Config{TTL: duration.Duration(time.Minute), MaxEntries: 100, Methods: []string{"/greeter.v1.GreeterService/*"}})
			var runs atomic.Int32
			failFirst := func(ctx context.Context, req any, _ *grpc.UnaryServerInfo, handler grpc.UnaryHandler) (any, error) {
				if runs.Add(1) == 1 && tc.code != codes.OK {
					return nil, status.Error(tc.code, "test: first run fails")
				}
				return handler(ctx, req)
			}
			conn := serve(t, func(s *grpc.Server) { greeterv1.RegisterGreeterServiceServer(s, greeter.NewServer(nil)) },
				[]grpc.ServerOption{grpc.ChainUnaryInterceptor(cache.UnaryServerInterceptor(), failFirst)})
			c := greeterv1.NewGreeterServiceClient(conn)
			ctx := metadata.AppendToOutgoingContext(t.Context(), dedupe.RequestIDKey, "req-1")
			_, err1 := c.SayHello(ctx, &greeterv1.SayHelloRequest{Name: "a"})
			_, err2 := c.SayHello(ctx, &greeterv1.SayHelloRequest{Name: "a"})
			if got := runs.Load(); got != tc.wantRuns {
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
	cache := newCache(t, dedupe.Config{TTL: duration.Duration(time.Minute), MaxEntries: 100, Methods: []string{sayHello}})
	var runs atomic.Int32
	// Plays the auth layer: the caller comes from metadata "test-caller".
	auth := func(ctx context.Context, req any, _ *grpc.UnaryServerInfo, handler grpc.UnaryHandler) (any, error) {
		md, _ := metadata.FromIncomingContext(ctx)
		if v := md.Get("test-caller"); len(v) > 0 {
			ctx = middleware.WithCaller(ctx, v[0])
		}
		return handler(ctx, req)
	}
	count := func(ctx context.Context, req any, _ *grpc.UnaryServerInfo, handler grpc.UnaryHandler) (any, error) {
		runs.Add(1)
		return handler(ctx, req)
	}
	conn := serve(t, func(s *grpc.Server) { greeterv1.RegisterGreeterServiceServer(s, greeter.NewServer(nil)) },
		[]grpc.ServerOption{grpc.ChainUnaryInterceptor(auth, cache.UnaryServerInterceptor(), count)})
	c := greeterv1.NewGreeterServiceClient(conn)
	for _, tc := range []struct {
		name     string
		md       []string
		wantRuns int32
	}{
		{"first", []string{dedupe.RequestIDKey, "r1", "test-caller", "alice"}, 1},
		{"duplicate", []string{dedupe.RequestIDKey, "r1", "test-caller", "alice"}, 0},
		{"other caller", []string{dedupe.RequestIDKey, "r1", "test-caller", "bob"}, 1},
		{"other id", []string{dedupe.RequestIDKey, "r2", "test-caller", "alice"}, 1},
		{"no id", []string{"test-caller", "alice"}, 1},
		{"no id again", []string{"test-caller", "alice"}, 1},
	} {
		before := runs.Load()
		if _, err := c.SayHello(metadata.AppendToOutgoingContext(t.Context(), tc.md...), &greeterv1.SayHelloRequest{Name: "a"}); err != nil {
			t.Fatalf("%s: SayHello: %v", tc.name, err)
		}
		if got := runs.Load() - before; got != tc.wantRuns {
			t.Errorf("%s: handler ran %d times, want %d", tc.name, got, tc.wantRuns)
		}
	}
	// StreamHellos is not deduplicated (not listed, and streams never are).
	for range 2 {
		stream, err := c.StreamHellos(metadata.AppendToOutgoingContext(t.Context(), dedupe.RequestIDKey, "r1"), &greeterv1.StreamHellosRequest{Name: "a", Count: 1})
		if err != nil {
			t.Fatal(err)
		}
		if _, err := stream.Recv(); err != nil {
			t.Fatalf("StreamHellos: %v", err)
		}
	}
}

func TestInvalidRequestID(t *testing.T) {
	cache := newCache(t, dedupe.Config{TTL: duration.Duration(time.Minute), MaxEntries: 100, Methods: []string{sayHello}})
	conn := serve(t, func(s *grpc.Server) { greeterv1.RegisterGreeterServiceServer(s, greeter.NewServer(nil)) },
		[]grpc.ServerOption{grpc.UnaryInterceptor(cache.UnaryServerInterceptor())})
	c := greeterv1.NewGreeterServiceClient(conn)
	for _, id := range []string{strings.Repeat("x", 129), "has space"} {
		ctx := metadata.AppendToOutgoingContext(t.Context(), dedupe.RequestIDKey, id)
		if _, err := c.SayHello(ctx, &greeterv1.SayHelloRequest{Name: "a"}); status.Code(err) != codes.InvalidArgument {
			t.Errorf("request id %q: error = %v, want INVALID_ARGUMENT", id, err)
		}
	}
	ctx := metadata.AppendToOutgoingContext(t.Context(), dedupe.RequestIDKey, strings.Repeat("x", 128))
	if _, err := c.SayHello(ctx, &greeterv1.SayHelloRequest{Name: "a"}); err != nil {
		t.Errorf("128-byte request id: %v", err)
	}
}

func TestSetConfig(t *testing.T) {
	cache := newCache(t, dedupe.DefaultConfig(), dedupe.WithLogger(nil), dedupe.WithMeterProvider(nil))
	var runs atomic.Int32
	count := func(ctx context.Context, req any, _ *grpc.UnaryServerInfo, handler grpc.UnaryHandler) (any, error) {
		runs.Add(1)
		return handler(ctx, req)
	}
	conn := serve(t, func(s *grpc.Server) { greeterv1.RegisterGreeterServiceServer(s, greeter.NewServer(nil)) },
		[]grpc.ServerOption{grpc.ChainUnaryInterceptor(cache.UnaryServerInterceptor(), count)})
	c := greeterv1.NewGreeterServiceClient(conn)
	twice := func(id string) int32 {
		t.Helper()
		before := runs.Load()
		ctx := metadata.AppendToOutgoingContext(t.Context(), dedupe.RequestIDKey, id)
		for range 2 {
			if _, err := c.SayHello(ctx, &greeterv1.SayHelloRequest{Name: "a"}); err != nil {
				t.Fatalf("SayHello: %v", err)
			}
		}
		return runs.Load() - before
	}
	if got := twice("a"); got != 2 {
		t.Errorf("with no methods configured: %d runs, want 2", got)
	}
	if err := cache.SetConfig(dedupe.Config{TTL: duration.Duration(time.Minute), MaxEntries: 0, Methods: []string{sayHello}}); err == nil {
		t.Fatal("SetConfig(invalid) = nil, want an error")
	}
	if got := twice("b"); got != 2 {
		t.Errorf("after a rejected config: %d runs, want 2", got)
	}
	cfg := dedupe.DefaultConfig()
	cfg.Methods = []string{sayHello}
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
methods: [/user.v1.UserService/CreateUser, /orders.v1.OrderService/*]
`
	got := dedupe.DefaultConfig()
	if err := yaml.Unmarshal([]byte(doc), &got); err != nil {
		t.Fatalf("Unmarshal: %v", err)
	}
	want := dedupe.Config{TTL: duration.Duration(90 * time.Second), MaxEntries: 500, Methods: []string{createUser, "/orders.v1.OrderService/*"}}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("decoded config (-want +got):\n%s", diff)
	}
	if err := got.Validate(); err != nil {
		t.Errorf("Validate: %v", err)
	}
}
