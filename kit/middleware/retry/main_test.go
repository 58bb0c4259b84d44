package retry_test

import (
	"context"
	"net"
	"path/filepath"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"go.uber.org/goleak"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/test/bufconn"

	"github.com/grpckit/grpckit/kit/duration"
	"github.com/grpckit/grpckit/kit/middleware/dedupe"
	"github.com/grpckit/grpckit/kit/middleware/retry"
	"github.com/grpckit/grpckit/services/user"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

const (
	sayHello     = "/greeter.v1.GreeterService/SayHello"
	streamHellos = "/greeter.v1.GreeterService/StreamHellos"
	createUser   = "/user.v1.UserService/CreateUser"
	getUser      = "/user.v1.UserService/GetUser"
	updateUser   = "/user.v1.UserService/UpdateUser"
)

// fastConfig is the default config with backoffs short enough for tests.
func fastConfig() retry.Config {
	cfg := retry.DefaultConfig()
	cfg.InitialBackoff = duration.Duration(time.Millisecond)
	cfg.MaxBackoff = duration.Duration(2 * time.Millisecond)
	return cfg
}

func newRetrier(t testing.TB, cfg retry.Config, opts ...retry.Option) *retry.Retrier {
	t.Helper()
	r, err := retry.New(cfg, opts...)
	if err != nil {
		t.Fatalf("retry.New: %v", err)
	}
	return r
}

// serve starts a grpc server on a new bufconn listener, registers services
// with register and returns a dialer for it; everything stops on cleanup.
func serve(t testing.TB, register func(*grpc.Server), opts ...grpc.ServerOption) *bufconn.Listener {
	t.Helper()
	lis := bufconn.Listen(1 << 20)
	gs := grpc.NewServer(opts...)
	register(gs)
	served := make(chan error, 1)
	go func() { served <- gs.Serve(lis) }()
	t.Cleanup(func() {
		gs.Stop()
		if err := <-served; err != nil {
			t.Errorf("Serve: %v", err)
		}
	})
	return lis
}

// dial returns a client connection to lis named target; it closes on
// cleanup (registered after the server's, so it runs first).
func dial(t testing.TB, lis *bufconn.Listener, target string, opts ...grpc.DialOption) *grpc.ClientConn {
	t.Helper()
	opts = append([]grpc.DialOption{
		grpc.WithContextDialer(func(ctx context.Context, _ string) (net.Conn, error) { return lis.DialContext(ctx) }),
		grpc.WithTransportCredentials(insecure.NewCredentials()),
	}, opts...)
	conn, err := grpc.NewClient("passthrough:///"+target, opts...)
	if err != nil {
		t.Fatalf("grpc.NewClient: %v", err)
	}
	t.Cleanup(func() { conn.Close() })
	return conn
}

// openStore opens a user store on SQLite in t.TempDir.
func openStore(t testing.TB) *user.SQLStore {
	t.Helper()
	s, err := user.OpenSQLite(context.Background(), filepath.Join(t.TempDir(), "users.db"))
	if err != nil {
		t.Fatalf("OpenSQLite: %v", err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

// faults is a server interceptor pair that counts the calls a server
// receives, records their attempt metadata and fails them as fail says.
type faults struct {
	fail func(n int64) error // n: 1-based number of the call; nil error: let it through

	n        atomic.Int64
	mu       sync.Mutex
	attempts []string // metadata retry.AttemptKey of each call, "" when absent
	noRetry  []bool   // whether each call carried retry.NoRetryKey
}

func (f *faults) record(ctx context.Context) error {
	md, _ := metadata.FromIncomingContext(ctx)
	f.mu.Lock()
	f.attempts = append(f.attempts, first(md.Get(retry.AttemptKey)))
	f.noRetry = append(f.noRetry, len(md.Get(retry.NoRetryKey)) > 0)
	f.mu.Unlock()
	n := f.n.Add(1)
	if f.fail == nil {
		return nil
	}
	return f.fail(n)
}

func (f *faults) unary(ctx context.Context, req any, _ *grpc.UnaryServerInfo, handler grpc.UnaryHandler) (any, error) {
	if err := f.record(ctx); err != nil {
		return nil, err
	}
	return handler(ctx, req)
}

func (f *faults) stream(srv any, ss grpc.ServerStream, _ *grpc.StreamServerInfo, handler grpc.StreamHandler) error {
	if err := f.record(ss.Context()); err != nil {
		return err
	}
	return handler(srv, ss)
}

func (f *faults) serverOptions() []grpc.ServerOption {
	return []grpc.ServerOption{grpc.ChainUnaryInterceptor(f.unary), grpc.ChainStreamInterceptor(f.stream)}
}

func (f *faults) calls() int { return int(f.n.Load()) }

func (f *faults) seenAttempts() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return slices.Clone(f.attempts)
}

func (f *faults) seenNoRetry() []bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	return slices.Clone(f.noRetry)
}

func first(v []string) string {
	if len(v) == 0 {
		return ""
	}
	return v[0]
}

// always fails every call with err.
func always(err error) func(int64) error { return func(int64) error { return err } }

// firstN fails the first n calls with err.
func firstN(n int64, err error) func(int64) error {
	return func(i int64) error {
		if i <= n {
			return err
		}
		return nil
	}
}

// mustStamper returns the client side of dedupe for methods.
func mustStamper(methods ...string) *dedupe.Stamper {
	s, err := dedupe.NewClient(dedupe.ClientConfig{Methods: methods})
	if err != nil {
		panic(err)
	}
	return s
}
