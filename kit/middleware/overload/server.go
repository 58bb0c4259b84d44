package overload

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/metric"
	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/durationpb"

	"github.com/grpckit/grpckit/kit/duration"
	"github.com/grpckit/grpckit/kit/middleware"
)

// ServerConfig configures a server's overload layer ([Server]): its
// [Limiter] and the pushback its refusals carry. The zero value is not
// valid; start from [DefaultServerConfig].
type ServerConfig struct {
	LimiterConfig `yaml:",inline"`
	// RetryAfter is the delay the google.rpc.RetryInfo of a refusal asks
	// the caller to wait before it retries, at least 1ms. kit's retry
	// layer waits at least that long, and does not retry when it is longer
	// than its max_backoff or the call's deadline. Default 100ms.
	RetryAfter duration.Duration `yaml:"retry_after" json:"retry_after"`
	// ExemptMethods are methods the limit never applies to, as full names
	// ("/pkg.Service/Method") or whole services ("/pkg.Service/*"): calls
	// that wait on purpose (long polls, watches as streams) would hold
	// places without using the server and weigh on its latency. The gRPC
	// health and reflection services are always exempt. Default none.
	ExemptMethods []string `yaml:"exempt_methods" json:"exempt_methods"`
}

// DefaultServerConfig returns the documented defaults of every
// [ServerConfig] field: an adaptive limit.
func DefaultServerConfig() ServerConfig {
	return ServerConfig{LimiterConfig: DefaultLimiterConfig(), RetryAfter: duration.Duration(100 * time.Millisecond)}
}

// Validate reports the first invalid field of c, named as in YAML.
func (c ServerConfig) Validate() error { return wrap("", c.validate()) }

func (c ServerConfig) validate() error {
	if err := c.LimiterConfig.validate(); err != nil {
		return err
	}
	if time.Duration(c.RetryAfter) < time.Millisecond {
		return fmt.Errorf("retry_after must be at least 1ms, got %v", c.RetryAfter)
	}
	if _, err := middleware.NewMethodSet(c.ExemptMethods...); err != nil {
		return fmt.Errorf("exempt_methods: %w", err)
	}
	return nil
}

// alwaysExempt reports whether the limit never applies to method, whatever
// the configuration: the gRPC health service (a registry whose health
// checks were refused under load would take a busy instance out of service
// and move its load to the others) and server reflection (the tools of an
// operator looking into a busy server).
func alwaysExempt(method string) bool {
	return strings.HasPrefix(method, "/grpc.health.v1.Health/") || strings.HasPrefix(method, "/grpc.reflection.")
}

// Server is the server side of the overload layer: it bounds the calls the
// server runs at once with a [Limiter] and refuses the excess at once with
// RESOURCE_EXHAUSTED and a RetryInfo, rather than letting it queue into its
// deadline. Calls of the gRPC health and reflection services are never
// refused.
//
// A call holds its place until its handler returns. A unary call's latency
// is a sample of the server's load unless its caller canceled it; a
// stream's is not (its duration is the caller's business), but it holds a
// place like any call: exempt long-lived streams (watches) with
// ServerConfig.ExemptMethods.
//
// All methods are safe for concurrent use.
type Server struct {
	limiter *Limiter
	logger  *slog.Logger
	refused metric.Int64Counter

	mu  sync.Mutex // serializes SetConfig
	cfg atomic.Pointer[serverState]
}

// serverState is a configuration in force and what is derived from it.
type serverState struct {
	cfg    ServerConfig
	exempt middleware.MethodTable[struct{}] // cfg.ExemptMethods
	refuse error                            // the error of every refusal
}

// NewServer returns a Server for cfg, or the error of cfg.Validate.
func NewServer(cfg ServerConfig, opts ...Option) (*Server, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	o := defaultOptions(opts)
	limiter, err := NewLimiter(cfg.LimiterConfig)
	if err != nil {
		return nil, err
	}
	refused, err := newRefusedCounter(o.meterProvider)
	if err != nil {
		return nil, fmt.Errorf("overload: creating counter: %w", err)
	}
	s := &Server{limiter: limiter, logger: o.logger, refused: refused}
	s.cfg.Store(newServerState(cfg))
	// The series exists from the start, so that dashboards see 0, not
	// nothing, before the first refusal.
	refused.Add(context.Background(), 0, metric.WithAttributes(attribute.String("side", "server")))
	if err := s.observe(o.meterProvider); err != nil {
		return nil, err
	}
	return s, nil
}

func newServerState(cfg ServerConfig) *serverState {
	st := status.New(codes.ResourceExhausted, "overload: the server is at its concurrency limit")
	if d, err := st.WithDetails(&errdetails.RetryInfo{RetryDelay: durationpb.New(time.Duration(cfg.RetryAfter))}); err == nil {
		st = d
	}
	exempt, _ := middleware.NewMethodSet(cfg.ExemptMethods...) // validated
	cfg.ExemptMethods = slices.Clone(cfg.ExemptMethods)
	return &serverState{cfg: cfg, exempt: exempt, refuse: st.Err()}
}

// observe registers the limit and the calls in flight as gauges.
func (s *Server) observe(mp metric.MeterProvider) error {
	meter := mp.Meter(scope)
	limit, err := meter.Int64ObservableGauge("grpckit.overload.limit",
		metric.WithDescription("The server's concurrency limit: calls it runs at once before it refuses more (0: no limit)."),
		metric.WithUnit("{call}"))
	if err != nil {
		return fmt.Errorf("overload: creating gauge: %w", err)
	}
	inFlight, err := meter.Int64ObservableGauge("grpckit.overload.in_flight",
		metric.WithDescription("Calls the server's overload layer let through and that are still running."),
		metric.WithUnit("{call}"))
	if err != nil {
		return fmt.Errorf("overload: creating gauge: %w", err)
	}
	_, err = meter.RegisterCallback(func(_ context.Context, o metric.Observer) error {
		o.ObserveInt64(limit, int64(s.limiter.Limit()))
		o.ObserveInt64(inFlight, int64(s.limiter.InFlight()))
		return nil
	}, limit, inFlight)
	if err != nil {
		return fmt.Errorf("overload: registering gauges: %w", err)
	}
	return nil
}

// Config returns the configuration in force.
func (s *Server) Config() ServerConfig {
	cfg := s.cfg.Load().cfg
	cfg.ExemptMethods = slices.Clone(cfg.ExemptMethods)
	return cfg
}

// SetConfig validates cfg as a whole and applies it at once (see
// [Limiter.SetConfig]), or returns the error and keeps the configuration
// in force.
func (s *Server) SetConfig(cfg ServerConfig) error {
	if err := cfg.Validate(); err != nil {
		return err
	}
	s.mu.Lock()
	// A change of retry_after or exempt_methods alone leaves the limiter
	// alone: SetConfig would restart its window and end a probe.
	if cfg.LimiterConfig != s.limiter.Config() {
		if err := s.limiter.SetConfig(cfg.LimiterConfig); err != nil {
			s.mu.Unlock()
			return err
		}
	}
	s.cfg.Store(newServerState(cfg))
	s.mu.Unlock()
	s.logger.LogAttrs(context.Background(), slog.LevelInfo, "overload: server limit changed",
		slog.String("mode", string(cfg.Mode)), slog.Int("limit", s.limiter.Limit()))
	return nil
}

// Limiter returns the server's limiter, to read its limit and calls in
// flight.
func (s *Server) Limiter() *Limiter { return s.limiter }

// ServerStats is what a [Server] is doing now.
type ServerStats struct {
	Mode     Mode  `json:"mode"`
	Limit    int   `json:"limit"` // 0: no limit (mode off)
	InFlight int   `json:"in_flight"`
	Refused  int64 `json:"refused"` // since the server started
}

// Stats returns the mode, limit, calls in flight and refusals.
func (s *Server) Stats() ServerStats {
	return ServerStats{
		Mode:     s.Config().Mode,
		Limit:    s.limiter.Limit(),
		InFlight: s.limiter.InFlight(),
		Refused:  s.limiter.Refused(),
	}
}

// admit asks the limiter to start a call of method: unless the call is
// exempt (held false), end it with s.limiter.release(t, ...); err is the
// refusal.
func (s *Server) admit(ctx context.Context, method string) (t ticket, held bool, err error) {
	st := s.cfg.Load()
	if _, ok := st.exempt.Lookup(method); ok || alwaysExempt(method) {
		return ticket{}, false, nil
	}
	t, ok := s.limiter.acquire()
	if !ok {
		s.refused.Add(ctx, 1, metric.WithAttributes(attribute.String("side", "server"), attribute.String("method", method)))
		return ticket{}, false, st.refuse
	}
	return t, true, nil
}

// UnaryServerInterceptor returns an interceptor that refuses calls beyond
// the limit and measures the latency of the others.
func (s *Server) UnaryServerInterceptor() grpc.UnaryServerInterceptor {
	return func(ctx context.Context, req any, info *grpc.UnaryServerInfo, handler grpc.UnaryHandler) (any, error) {
		t, held, err := s.admit(ctx, info.FullMethod)
		if err != nil {
			return nil, err
		}
		if !held {
			return handler(ctx, req)
		}
		sample := false // a panic is no sample
		defer func() { s.limiter.release(t, sample) }()
		resp, err := handler(ctx, req)
		// A call its caller canceled ended for a reason of its own.
		sample = !errors.Is(ctx.Err(), context.Canceled)
		return resp, err
	}
}

// StreamServerInterceptor returns an interceptor that refuses streams
// beyond the limit. A stream holds its place until its handler returns; its
// duration is no sample.
func (s *Server) StreamServerInterceptor() grpc.StreamServerInterceptor {
	return func(srv any, ss grpc.ServerStream, info *grpc.StreamServerInfo, handler grpc.StreamHandler) error {
		t, held, err := s.admit(ss.Context(), info.FullMethod)
		if err != nil {
			return err
		}
		if held {
			defer s.limiter.release(t, false)
		}
		return handler(srv, ss)
	}
}
