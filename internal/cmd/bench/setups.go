package main

import (
	"context"
	"io"
	"log/slog"
	"net"
	"strings"
	"sync"
	"time"

	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/stats"

	"github.com/grpckit/grpckit/kit"
	"github.com/grpckit/grpckit/kit/duration"
	"github.com/grpckit/grpckit/kit/middleware/auth"
	"github.com/grpckit/grpckit/kit/middleware/breaker"
	"github.com/grpckit/grpckit/kit/middleware/dedupe"
	"github.com/grpckit/grpckit/kit/middleware/logging"
	"github.com/grpckit/grpckit/kit/middleware/overload"
	"github.com/grpckit/grpckit/kit/middleware/ratelimit"
	"github.com/grpckit/grpckit/kit/middleware/recovery"
	"github.com/grpckit/grpckit/kit/middleware/retry"
	"github.com/grpckit/grpckit/kit/middleware/telemetry"
	"github.com/grpckit/grpckit/kit/middleware/timeout"
	greeterv1 "github.com/grpckit/grpckit/proto/greeter/v1"
	"github.com/grpckit/grpckit/services/greeter"
)

// setups lists the measured configurations, bare grpc-go first.
func setups() []named {
	return []named{
		{"bare grpc-go", bare},
		{"bare grpc-go, 5s deadline per call (reference)", bareWithDeadline},
		{"bare grpc-go, no-op stats handlers (reference: grpc-go's own cost of a stats handler, which kit no longer pays)", layer(noopStats)},
		{"layer: telemetry (metrics)", layer(telemetryLayer)},
		{"layer: recovery", layer(recoveryLayer)},
		{"layer: logging (access log)", layer(loggingLayer)},
		{"layer: retry", layer(retryLayer)},
		{"layer: ratelimit (no limit set)", layer(ratelimitLayer)},
		{"layer: overload (adaptive limit + throttle)", layer(overloadLayer)},
		{"layer: timeout", layer(timeoutLayer)},
		{"layer: breaker", layer(breakerLayer)},
		{"layer: dedupe", layer(dedupeLayer)},
		{"layer: auth (JWT)", layer(authLayer)},
		{"layer: kit_weighted balancer", layer(balancerLayer)},
	}
}

// workload is the service a setup serves and the call it measures.
type workload struct {
	register func(grpc.ServiceRegistrar)
	caller   func(grpc.ClientConnInterface) caller
}

// sayHello is the greeter's SayHello with a 1-byte name.
var sayHello = workload{
	register: func(s grpc.ServiceRegistrar) {
		greeterv1.RegisterGreeterServiceServer(s, greeter.NewServer(nil, greeter.WithInstance("bench")))
	},
	caller: func(cc grpc.ClientConnInterface) caller {
		client := greeterv1.NewGreeterServiceClient(cc)
		return func(ctx context.Context) error {
			_, err := client.SayHello(ctx, request)
			return err
		}
	},
}

// pair serves the greeter with serverOpts and dials it with dialOpts.
func pair(serverOpts []grpc.ServerOption, dialOpts []grpc.DialOption) (caller, func(), error) {
	return pairOf(sayHello, serverOpts, dialOpts)
}

// pairOf serves w with serverOpts and dials it with dialOpts.
func pairOf(w workload, serverOpts []grpc.ServerOption, dialOpts []grpc.DialOption) (caller, func(), error) {
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, nil, err
	}
	srv := grpc.NewServer(serverOpts...)
	w.register(srv)
	go srv.Serve(lis)
	cc, err := grpc.NewClient("passthrough:///"+lis.Addr().String(),
		append([]grpc.DialOption{grpc.WithTransportCredentials(insecure.NewCredentials())}, dialOpts...)...)
	if err != nil {
		srv.Stop()
		return nil, nil, err
	}
	return w.caller(cc), func() { cc.Close(); srv.Stop() }, nil
}

// bareWithDeadline is bare grpc-go whose calls carry the 5s deadline that
// kit's client gives calls without one: grpc-go's own cost of a deadline
// (timers, the grpc-timeout header, the server's deadline context).
func bareWithDeadline() (caller, func(), error) { return withDeadline(bare)() }

// withDeadline gives every call of s a 5s deadline.
func withDeadline(s setup) setup {
	return func() (caller, func(), error) {
		call, cleanup, err := s()
		if err != nil {
			return nil, nil, err
		}
		return func(ctx context.Context) error {
			ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
			defer cancel()
			return call(ctx)
		}, cleanup, nil
	}
}

// noopStats installs stats handlers that do nothing on both sides: grpc-go's
// own cost of calling stats handlers, which kit's telemetry, recorded in its
// chain, does not pay.
func noopStats() ([]grpc.ServerOption, []grpc.DialOption, func(), error) {
	return []grpc.ServerOption{grpc.StatsHandler(noopHandler{})}, []grpc.DialOption{grpc.WithStatsHandler(noopHandler{})}, nothing, nil
}

type noopHandler struct{}

func (noopHandler) TagRPC(ctx context.Context, _ *stats.RPCTagInfo) context.Context   { return ctx }
func (noopHandler) HandleRPC(context.Context, stats.RPCStats)                         {}
func (noopHandler) TagConn(ctx context.Context, _ *stats.ConnTagInfo) context.Context { return ctx }
func (noopHandler) HandleConn(context.Context, stats.ConnStats)                       {}

// layerSetup returns one layer's server and client options (and a cleanup).
type layerSetup func() ([]grpc.ServerOption, []grpc.DialOption, func(), error)

func layer(l layerSetup) setup {
	return func() (caller, func(), error) {
		so, do, done, err := l()
		if err != nil {
			return nil, nil, err
		}
		call, cleanup, err := pair(so, do)
		if err != nil {
			done()
			return nil, nil, err
		}
		return call, func() { cleanup(); done() }, nil
	}
}

var quiet = slog.New(slog.NewTextHandler(io.Discard, nil))

func nothing() {}

func telemetryLayer() ([]grpc.ServerOption, []grpc.DialOption, func(), error) {
	cfg := telemetry.DefaultConfig()
	cfg.ServiceName = "bench"
	t, err := telemetry.New(context.Background(), cfg, telemetry.WithEnv(func(string) string { return "" }))
	if err != nil {
		return nil, nil, nil, err
	}
	return t.ServerOptions(), t.DialOptions(), func() { t.Shutdown(context.Background()) }, nil
}

func recoveryLayer() ([]grpc.ServerOption, []grpc.DialOption, func(), error) {
	r, err := recovery.New(recovery.DefaultConfig())
	if err != nil {
		return nil, nil, nil, err
	}
	return []grpc.ServerOption{grpc.UnaryInterceptor(r.UnaryServerInterceptor())}, nil, nothing, nil
}

func loggingLayer() ([]grpc.ServerOption, []grpc.DialOption, func(), error) {
	l, err := logging.New(logging.DefaultConfig(), logging.WithLogger(quiet))
	if err != nil {
		return nil, nil, nil, err
	}
	return []grpc.ServerOption{grpc.UnaryInterceptor(l.UnaryServerInterceptor())}, nil, nothing, nil
}

func retryLayer() ([]grpc.ServerOption, []grpc.DialOption, func(), error) {
	r, err := retry.New(retry.DefaultConfig())
	if err != nil {
		return nil, nil, nil, err
	}
	return []grpc.ServerOption{grpc.UnaryInterceptor(r.UnaryServerInterceptor())},
		[]grpc.DialOption{grpc.WithUnaryInterceptor(r.UnaryClientInterceptor())}, nothing, nil
}

func ratelimitLayer() ([]grpc.ServerOption, []grpc.DialOption, func(), error) {
	s, err := ratelimit.New(ratelimit.DefaultConfig())
	if err != nil {
		return nil, nil, nil, err
	}
	c, err := ratelimit.NewClient(ratelimit.DefaultClientConfig())
	if err != nil {
		return nil, nil, nil, err
	}
	return []grpc.ServerOption{grpc.UnaryInterceptor(s.UnaryServerInterceptor())},
		[]grpc.DialOption{grpc.WithUnaryInterceptor(c.UnaryClientInterceptor())}, nothing, nil
}

func overloadLayer() ([]grpc.ServerOption, []grpc.DialOption, func(), error) {
	s, err := overload.NewServer(overload.DefaultServerConfig())
	if err != nil {
		return nil, nil, nil, err
	}
	c, err := overload.NewClient(overload.DefaultClientConfig())
	if err != nil {
		return nil, nil, nil, err
	}
	return []grpc.ServerOption{grpc.UnaryInterceptor(s.UnaryServerInterceptor())},
		[]grpc.DialOption{grpc.WithUnaryInterceptor(c.UnaryClientInterceptor())}, nothing, nil
}

func timeoutLayer() ([]grpc.ServerOption, []grpc.DialOption, func(), error) {
	t, err := timeout.New(timeout.DefaultConfig())
	if err != nil {
		return nil, nil, nil, err
	}
	return []grpc.ServerOption{grpc.UnaryInterceptor(t.UnaryServerInterceptor())},
		[]grpc.DialOption{grpc.WithUnaryInterceptor(t.UnaryClientInterceptor())}, nothing, nil
}

func breakerLayer() ([]grpc.ServerOption, []grpc.DialOption, func(), error) {
	b, err := breaker.New(breaker.DefaultConfig())
	if err != nil {
		return nil, nil, nil, err
	}
	return nil, []grpc.DialOption{grpc.WithUnaryInterceptor(b.UnaryClientInterceptor())}, nothing, nil
}

func dedupeLayer() ([]grpc.ServerOption, []grpc.DialOption, func(), error) {
	cfg := dedupe.DefaultConfig()
	cfg.Methods = []string{"/greeter.v1.GreeterService/SayHello"}
	c, err := dedupe.New(cfg)
	if err != nil {
		return nil, nil, nil, err
	}
	st, err := dedupe.NewClient(dedupe.ClientConfig{Methods: []string{"/greeter.v1.GreeterService/SayHello"}})
	if err != nil {
		return nil, nil, nil, err
	}
	// Every call gets a fresh request id: the cache records, never replays.
	return []grpc.ServerOption{grpc.UnaryInterceptor(c.UnaryServerInterceptor())},
		[]grpc.DialOption{grpc.WithUnaryInterceptor(st.UnaryClientInterceptor())}, nothing, nil
}

func authLayer() ([]grpc.ServerOption, []grpc.DialOption, func(), error) {
	secret := strings.Repeat("s", 32)
	a, err := auth.New(auth.Config{HMACSecret: secret, Leeway: duration.Duration(30 * time.Second)})
	if err != nil {
		return nil, nil, nil, err
	}
	token, err := auth.IssueHS256(secret, "bench", time.Hour)
	if err != nil {
		return nil, nil, nil, err
	}
	return []grpc.ServerOption{grpc.UnaryInterceptor(a.UnaryServerInterceptor())},
		[]grpc.DialOption{grpc.WithPerRPCCredentials(auth.BearerToken(token, auth.AllowInsecure()))}, nothing, nil
}

func balancerLayer() ([]grpc.ServerOption, []grpc.DialOption, func(), error) {
	return nil, []grpc.DialOption{grpc.WithDefaultServiceConfig(`{"loadBalancingConfig":[{"kit_weighted":{}}]}`)}, nothing, nil
}

// traced makes kit's telemetry sample every call (AlwaysSample) into an
// in-memory exporter keeping the latest spans, so that recording them is
// measured but not shipping them.
func traced() (*telemetry.Telemetry, error) {
	cfg := telemetry.DefaultConfig()
	cfg.ServiceName, cfg.TracesSampler = "bench", "always_on"
	return telemetry.New(context.Background(), cfg, telemetry.WithSpanExporter(&memoryExporter{}))
}

// memoryExporter keeps the last spans it got in memory (a ring, so that a
// long run does not grow the heap).
type memoryExporter struct {
	mu    sync.Mutex
	spans [4096]sdktrace.ReadOnlySpan
	next  int
}

func (e *memoryExporter) ExportSpans(_ context.Context, spans []sdktrace.ReadOnlySpan) error {
	e.mu.Lock()
	defer e.mu.Unlock()
	for _, s := range spans {
		e.spans[e.next%len(e.spans)] = s
		e.next++
	}
	return nil
}

func (e *memoryExporter) Shutdown(context.Context) error { return nil }

// kitDefault is kit.NewServer and kit.NewClient with their default chains
// serving the greeter; tel, when set, makes the telemetry both share.
func kitDefault(tel func() (*telemetry.Telemetry, error)) setup { return kitDefaultOf(sayHello, tel) }

// kitDefaultOf is kitDefault serving w.
func kitDefaultOf(w workload, tel func() (*telemetry.Telemetry, error)) setup {
	return func() (caller, func(), error) {
		var opts []kit.Option
		var t *telemetry.Telemetry
		if tel != nil {
			var err error
			if t, err = tel(); err != nil {
				return nil, nil, err
			}
			opts = append(opts, kit.WithTelemetry(t))
		}
		sopts := []kit.ServerOption{kit.WithDrain(0), kit.WithLogger(quiet), kit.WithAdminAddress("")}
		copts := []kit.ClientOption{}
		for _, o := range opts {
			sopts, copts = append(sopts, o), append(copts, o)
		}
		srv, err := kit.NewServer(sopts...)
		if err != nil {
			return nil, nil, err
		}
		w.register(srv)
		lis, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return nil, nil, err
		}
		go srv.Serve(lis)
		cc, err := kit.NewClient("passthrough:///"+lis.Addr().String(), copts...)
		if err != nil {
			srv.Shutdown(context.Background())
			return nil, nil, err
		}
		return w.caller(cc), func() {
			cc.Close()
			srv.Shutdown(context.Background())
			if t != nil {
				t.Shutdown(context.Background())
			}
		}, nil
	}
}
