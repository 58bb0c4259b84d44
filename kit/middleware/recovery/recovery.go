package recovery

import (
	"context"
	"fmt"
	"log/slog"
	"runtime/debug"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/metric"
	"go.opentelemetry.io/otel/metric/noop"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

const scope = "github.com/grpckit/grpckit/kit/middleware/recovery"

// Config is the (empty) recovery section of a service's configuration; it
// exists so that recovery has the shape of every other middleware package.
type Config struct{}

// DefaultConfig returns the default [Config].
func DefaultConfig() Config { return Config{} }

// Validate reports whether c is valid; every Config is.
func (c Config) Validate() error { return nil }

// Option configures [New].
type Option interface{ apply(*options) }

type optionFunc func(*options)

func (f optionFunc) apply(o *options) { f(o) }

type options struct {
	logger        *slog.Logger
	meterProvider metric.MeterProvider
}

// WithLogger sets the logger panics are written to, at Error with the
// method, panic value and stack. Default: a logger that discards
// everything. nil keeps the default.
func WithLogger(l *slog.Logger) Option {
	return optionFunc(func(o *options) {
		if l != nil {
			o.logger = l
		}
	})
}

// WithMeterProvider sets the provider of the grpckit.recovery.panics
// counter. Default: a no-op provider, never the global one. nil keeps the
// default.
func WithMeterProvider(mp metric.MeterProvider) Option {
	return optionFunc(func(o *options) {
		if mp != nil {
			o.meterProvider = mp
		}
	})
}

// Recoverer makes the interceptors that recover panics. Safe for concurrent
// use.
type Recoverer struct {
	logger *slog.Logger
	panics metric.Int64Counter
}

// errInternal is what the caller of a call that panicked gets.
var errInternal = status.Error(codes.Internal, "internal error")

// New returns a Recoverer, or the error of cfg.Validate.
func New(cfg Config, opts ...Option) (*Recoverer, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	o := options{logger: slog.New(slog.DiscardHandler), meterProvider: noop.NewMeterProvider()}
	for _, opt := range opts {
		opt.apply(&o)
	}
	panics, err := o.meterProvider.Meter(scope).Int64Counter("grpckit.recovery.panics",
		metric.WithDescription("Panics in gRPC handlers turned into codes.Internal, by method."),
		metric.WithUnit("{panic}"))
	if err != nil {
		return nil, fmt.Errorf("recovery: creating counter: %w", err)
	}
	return &Recoverer{logger: o.logger, panics: panics}, nil
}

// Config returns the (empty) configuration.
func (r *Recoverer) Config() Config { return Config{} }

// SetConfig validates cfg; there is nothing to change.
func (r *Recoverer) SetConfig(cfg Config) error { return cfg.Validate() }

// UnaryServerInterceptor returns an interceptor that turns a panic of the
// rest of the chain into codes.Internal.
func (r *Recoverer) UnaryServerInterceptor() grpc.UnaryServerInterceptor {
	return func(ctx context.Context, req any, info *grpc.UnaryServerInfo, handler grpc.UnaryHandler) (resp any, err error) {
		defer func() {
			if p := recover(); p != nil {
				r.recovered(ctx, info.FullMethod, p)
				resp, err = nil, errInternal
			}
		}()
		return handler(ctx, req)
	}
}

// StreamServerInterceptor returns an interceptor that turns a panic of the
// rest of the chain into codes.Internal.
func (r *Recoverer) StreamServerInterceptor() grpc.StreamServerInterceptor {
	return func(srv any, ss grpc.ServerStream, info *grpc.StreamServerInfo, handler grpc.StreamHandler) (err error) {
		defer func() {
			if p := recover(); p != nil {
				r.recovered(ss.Context(), info.FullMethod, p)
				err = errInternal
			}
		}()
		return handler(srv, ss)
	}
}

// recovered logs and counts the panic p of a call of method.
func (r *Recoverer) recovered(ctx context.Context, method string, p any) {
	r.panics.Add(ctx, 1, metric.WithAttributes(attribute.String("method", method)))
	r.logger.LogAttrs(ctx, slog.LevelError, "recovery: panic in gRPC handler",
		slog.String("method", method),
		slog.String("panic", fmt.Sprint(p)),
		slog.String("stack", string(debug.Stack())))
}
