package dedupe_test

import (
	"context"
	"net"
	"path/filepath"
	"testing"
	"time"

	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	"go.opentelemetry.io/otel/sdk/metric/metricdata"
	"go.uber.org/goleak"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
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
	createUser = "/user.v1.UserService/CreateUser"
	listUsers  = "/user.v1.UserService/ListUsers"
	sayHello   = "/greeter.v1.GreeterService/SayHello"
)

// serve starts a grpc server on a new bufconn listener, registers services
// with register and returns a client connection to it; both stop on
// cleanup.
func serve(t *testing.T, register func(*grpc.Server), serverOpts []grpc.ServerOption, dialOpts ...grpc.DialOption) *grpc.ClientConn {
	t.Helper()
	lis := bufconn.Listen(1 << 20)
	gs := grpc.NewServer(serverOpts...)
	register(gs)
	served := make(chan error, 1)
	go func() { served <- gs.Serve(lis) }()
	dialOpts = append([]grpc.DialOption{
		grpc.WithContextDialer(func(ctx context.Context, _ string) (net.Conn, error) { return lis.DialContext(ctx) }),
		grpc.WithTransportCredentials(insecure.NewCredentials()),
	}, dialOpts...)
	conn, err := grpc.NewClient("passthrough:///bufnet", dialOpts...)
	if err != nil {
		t.Fatalf("grpc.NewClient: %v", err)
	}
	t.Cleanup(func() {
		conn.Close()
		gs.Stop()
		if err := <-served; err != nil {
			t.Errorf("Serve: %v", err)
		}
	})
	return conn
}

// openStore opens a user store on SQLite in t.TempDir.
func openStore(t *testing.T) *user.SQLStore {
	t.Helper()
	s, err := user.OpenSQLite(t.Context(), filepath.Join(t.TempDir(), "users.db"))
	if err != nil {
		t.Fatalf("OpenSQLite: %v", err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

func newCache(t *testing.T, cfg dedupe.Config, opts ...dedupe.Option) *dedupe.Cache {
	t.Helper()
	c, err := dedupe.New(cfg, opts...)
	if err != nil {
		t.Fatalf("dedupe.New: %v", err)
	}
	return c
}

func newRetrier(t *testing.T) *retry.Retrier {
	t.Helper()
	cfg := retry.DefaultConfig()
	cfg.InitialBackoff, cfg.MaxBackoff = duration.Duration(time.Millisecond), duration.Duration(2*time.Millisecond)
	r, err := retry.New(cfg)
	if err != nil {
		t.Fatalf("retry.New: %v", err)
	}
	return r
}

// meter returns a meter provider with a manual reader, shut down on cleanup.
func meter(t *testing.T) (*sdkmetric.MeterProvider, *sdkmetric.ManualReader) {
	reader := sdkmetric.NewManualReader()
	mp := sdkmetric.NewMeterProvider(sdkmetric.WithReader(reader))
	t.Cleanup(func() { mp.Shutdown(context.Background()) })
	return mp, reader
}

// sums returns the value of every int64 sum reader has collected, by name.
func sums(t *testing.T, reader sdkmetric.Reader) map[string]int64 {
	t.Helper()
	var rm metricdata.ResourceMetrics
	if err := reader.Collect(context.Background(), &rm); err != nil {
		t.Fatalf("Collect: %v", err)
	}
	got := make(map[string]int64)
	for _, sm := range rm.ScopeMetrics {
		for _, m := range sm.Metrics {
			if s, ok := m.Data.(metricdata.Sum[int64]); ok {
				for _, dp := range s.DataPoints {
					got[m.Name] += dp.Value
				}
			}
		}
	}
	return got
}
