package timeout

import (
	"context"
	"fmt"
	"log/slog"
	"sync/atomic"
	"time"

	"go.opentelemetry.io/otel/metric"
	"google.golang.org/grpc"

	"github.com/grpckit/grpckit/kit/middleware"
)

const meterName = "github.com/grpckit/grpckit/kit/middleware/timeout"

// Timeouts applies a [Config] to gRPC calls through its interceptors. It is
// safe for concurrent use; [Timeouts.SetConfig] takes effect for calls that
// start afterwards.
type Timeouts struct {
	cfg     atomic.Pointer[compiled]
	logger  *slog.Logger
	applied metric.Int64Counter // client deadlines set because the caller set none
	capped  metric.Int64Counter // server deadlines shortened or set
}

// New returns Timeouts applying cfg, or an error when cfg is invalid (see
// [Config.Validate]).
func New(cfg Config, opts ...Option) (*Timeouts, error) {
	c, err := compile(cfg)
	if err != nil {
		return nil, err
	}
	o := defaultOptions()
	for _, opt := range opts {
		opt.apply(&o)
	}
	meter := o.meterProvider.Meter(meterName)
	t := &Timeouts{logger: o.logger}
	if t.applied, err = meter.Int64Counter("grpckit.timeout.deadlines_applied",
		metric.WithDescription("Client calls given a deadline because the caller set none."),
		metric.WithUnit("{call}")); err != nil {
		return nil, fmt.Errorf("timeout: %w", err)
	}
	if t.capped, err = meter.Int64Counter("grpckit.timeout.deadlines_capped",
		metric.WithDescription("Incoming calls whose deadline the server shortened or set to server_max."),
		metric.WithUnit("{call}")); err != nil {
		return nil, fmt.Errorf("timeout: %w", err)
	}
	t.cfg.Store(c)
	return t, nil
}

// Config returns the configuration in effect.
func (t *Timeouts) Config() Config { return t.cfg.Load().cfg }

// SetConfig validates cfg and, when it is valid, makes it the configuration
// of calls that start from now on. An invalid cfg is rejected with an error
// and the current configuration stays. Safe to call concurrently with calls.
func (t *Timeouts) SetConfig(cfg Config) error {
	c, err := compile(cfg)
	if err != nil {
		return err
	}
	t.cfg.Store(c)
	t.logger.LogAttrs(context.Background(), slog.LevelInfo, "timeout: config changed",
		slog.Duration("default", time.Duration(cfg.Default)), slog.Duration("server_max", time.Duration(cfg.ServerMax)),
		slog.Int("per_method", len(cfg.PerMethod)))
	return nil
}

// UnaryClientInterceptor returns an interceptor that gives a call without a
// deadline the one configured for its method (PerMethod, else Default).
func (t *Timeouts) UnaryClientInterceptor() grpc.UnaryClientInterceptor {
	return func(ctx context.Context, method string, req, reply any, cc *grpc.ClientConn, invoker grpc.UnaryInvoker, opts ...grpc.CallOption) error {
		if _, ok := ctx.Deadline(); !ok {
			if d, ok := t.cfg.Load().clientTimeout(method, false); ok {
				var cancel context.CancelFunc
				ctx, cancel = context.WithTimeout(ctx, d)
				defer cancel()
				t.applied.Add(ctx, 1)
			}
		}
		return invoker(ctx, method, req, reply, cc, opts...)
	}
}

// StreamClientInterceptor returns an interceptor that gives a stream without
// a deadline the one configured for its method in PerMethod; Default does not
// apply to streams. The deadline's resources are released when the stream
// ends (RecvMsg returns an error, io.EOF included) or the deadline passes.
func (t *Timeouts) StreamClientInterceptor() grpc.StreamClientInterceptor {
	return func(ctx context.Context, desc *grpc.StreamDesc, cc *grpc.ClientConn, method string, streamer grpc.Streamer, opts ...grpc.CallOption) (grpc.ClientStream, error) {
		if _, ok := ctx.Deadline(); ok {
			return streamer(ctx, desc, cc, method, opts...)
		}
		d, ok := t.cfg.Load().clientTimeout(method, true)
		if !ok {
			return streamer(ctx, desc, cc, method, opts...)
		}
		ctx, cancel := context.WithTimeout(ctx, d)
		cs, err := streamer(ctx, desc, cc, method, opts...)
		if err != nil {
			cancel()
			return nil, err
		}
		t.applied.Add(ctx, 1)
		return &cancelOnEnd{ClientStream: cs, cancel: cancel}, nil
	}
}

// cancelOnEnd releases a stream's deadline once the stream has ended.
type cancelOnEnd struct {
	grpc.ClientStream
	cancel context.CancelFunc
}

func (s *cancelOnEnd) RecvMsg(m any) error {
	err := s.ClientStream.RecvMsg(m)
	if err != nil {
		s.cancel()
	}
	return err
}

// serverContext returns ctx with its deadline capped at ServerMax; cancel is
// nil when ctx is returned unchanged.
func (t *Timeouts) serverContext(ctx context.Context, stream bool) (context.Context, context.CancelFunc) {
	limit := time.Duration(t.cfg.Load().cfg.ServerMax)
	if limit <= 0 {
		return ctx, nil
	}
	dl, ok := ctx.Deadline()
	if ok && time.Until(dl) <= limit || !ok && stream {
		// Within the cap; or a stream without a deadline, which may be a
		// long-lived watch and is left alone.
		return ctx, nil
	}
	ctx, cancel := context.WithTimeout(ctx, limit)
	t.capped.Add(ctx, 1)
	return ctx, cancel
}

// UnaryServerInterceptor returns an interceptor that caps the deadline of an
// incoming call at ServerMax, and sets it when the call has none.
func (t *Timeouts) UnaryServerInterceptor() grpc.UnaryServerInterceptor {
	return func(ctx context.Context, req any, _ *grpc.UnaryServerInfo, handler grpc.UnaryHandler) (any, error) {
		ctx, cancel := t.serverContext(ctx, false)
		if cancel != nil {
			defer cancel()
		}
		return handler(ctx, req)
	}
}

// StreamServerInterceptor returns an interceptor that caps the deadline of
// an incoming stream at ServerMax. A stream that arrives without a deadline
// keeps none: it may be a long-lived watch.
func (t *Timeouts) StreamServerInterceptor() grpc.StreamServerInterceptor {
	return func(srv any, ss grpc.ServerStream, _ *grpc.StreamServerInfo, handler grpc.StreamHandler) error {
		ctx, cancel := t.serverContext(ss.Context(), true)
		if cancel == nil {
			return handler(srv, ss)
		}
		defer cancel()
		return handler(srv, middleware.ServerStreamWithContext(ss, ctx))
	}
}
