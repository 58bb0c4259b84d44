package logging

import (
	"context"
	"fmt"
	"log/slog"
	"sync/atomic"
	"time"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/metric"
	"go.opentelemetry.io/otel/metric/noop"
	"go.opentelemetry.io/otel/trace"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/peer"
	"google.golang.org/grpc/status"

	"github.com/grpckit/grpckit/kit/statuscode"
)

const scope = "github.com/grpckit/grpckit/kit/middleware/logging"

// Messages of access log records.
const (
	serverMessage = "grpc server call"
	clientMessage = "grpc client call"
)

// Option configures [New].
type Option interface{ apply(*options) }

type optionFunc func(*options)

func (f optionFunc) apply(o *options) { f(o) }

type options struct {
	logger        *slog.Logger
	meterProvider metric.MeterProvider
}

// WithLogger sets the logger access log records are written to. Default: a
// logger that discards everything. nil keeps the default.
func WithLogger(l *slog.Logger) Option {
	return optionFunc(func(o *options) {
		if l != nil {
			o.logger = l
		}
	})
}

// WithMeterProvider sets the provider of the grpckit.logging.slow counter.
// Default: a no-op provider, never the global one. nil keeps the default.
func WithMeterProvider(mp metric.MeterProvider) Option {
	return optionFunc(func(o *options) {
		if mp != nil {
			o.meterProvider = mp
		}
	})
}

// Logger makes the access log interceptors. All methods are safe for
// concurrent use.
type Logger struct {
	logger   *slog.Logger
	slow     metric.Int64Counter
	settings atomic.Pointer[settings]
}

// New returns a Logger configured by cfg, or the error of cfg.Validate.
func New(cfg Config, opts ...Option) (*Logger, error) {
	s, err := cfg.compile()
	if err != nil {
		return nil, err
	}
	o := options{logger: slog.New(slog.DiscardHandler), meterProvider: noop.NewMeterProvider()}
	for _, opt := range opts {
		opt.apply(&o)
	}
	slow, err := o.meterProvider.Meter(scope).Int64Counter("grpckit.logging.slow",
		metric.WithDescription("Calls slower than the slow threshold, by side (server, client) and method."),
		metric.WithUnit("{call}"))
	if err != nil {
		return nil, fmt.Errorf("logging: creating counter: %w", err)
	}
	l := &Logger{logger: o.logger, slow: slow}
	l.settings.Store(s)
	return l, nil
}

// Config returns the configuration in effect.
func (l *Logger) Config() Config { return l.settings.Load().cfg }

// SetConfig validates cfg and puts it in effect for calls that start
// afterwards. An invalid cfg is returned as an error and the previous
// configuration stays.
func (l *Logger) SetConfig(cfg Config) error {
	s, err := cfg.compile()
	if err != nil {
		return err
	}
	l.settings.Store(s)
	return nil
}

// enabled reports whether a call may be logged under s.
func (l *Logger) enabled(ctx context.Context, s *settings) bool {
	return l.logger.Enabled(ctx, s.level) || l.logger.Enabled(ctx, s.errLevel) ||
		(s.slow > 0 && l.logger.Enabled(ctx, s.slowLevel))
}

// logPanic, deferred, logs a call whose handler panicked as the INTERNAL the
// recovery layer (outside this one) turns it into, and panics on.
func (l *Logger) logPanic(ctx context.Context, s *settings, method string, start time.Time) {
	if r := recover(); r != nil {
		l.log(ctx, s, &call{msg: serverMessage, side: "server", method: method, peer: serverPeer(ctx), start: start,
			err: status.Error(codes.Internal, "internal error (panic)")})
		panic(r)
	}
}

// call is what the log record of one call says.
type call struct {
	msg    string
	side   string // "server" or "client"
	method string
	target string       // client only
	peer   fmt.Stringer // the other side's address, if known
	start  time.Time
	err    error
}

// log writes the record of c, which ended now, under s.
func (l *Logger) log(ctx context.Context, s *settings, c *call) {
	d := time.Since(c.start)
	level := s.level
	if c.err != nil {
		level = s.errLevel
	}
	if s.slow > 0 && d > s.slow {
		level = max(level, s.slowLevel)
		l.slow.Add(ctx, 1, metric.WithAttributes(attribute.String("side", c.side), attribute.String("method", c.method)))
	}
	if !l.logger.Enabled(ctx, level) {
		return
	}
	st, ok := status.FromError(c.err)
	if !ok {
		st = status.FromContextError(c.err)
	}
	// A record built here, with no program counter, spares the
	// runtime.Callers walk that Logger.LogAttrs makes for every line; the
	// source of an access log line is this function anyway.
	r := slog.NewRecord(time.Now(), level, c.msg, 0)
	r.AddAttrs(
		slog.String("method", c.method),
		slog.String("code", statuscode.Name(st.Code())),
		slog.Duration("duration", d))
	if c.peer != nil {
		r.AddAttrs(slog.String("peer", c.peer.String()))
	}
	if c.target != "" {
		r.AddAttrs(slog.String("target", c.target))
	}
	if sc := trace.SpanContextFromContext(ctx); sc.IsValid() {
		r.AddAttrs(slog.String("trace_id", sc.TraceID().String()))
	}
	if c.err != nil {
		r.AddAttrs(slog.String("error", st.Message()))
	}
	_ = l.logger.Handler().Handle(ctx, r)
}

// serverPeer returns the caller's address from ctx, or nil.
func serverPeer(ctx context.Context) fmt.Stringer {
	if p, ok := peer.FromContext(ctx); ok && p.Addr != nil {
		return p.Addr
	}
	return nil
}

// UnaryServerInterceptor returns an interceptor that logs each call when it
// returns.
func (l *Logger) UnaryServerInterceptor() grpc.UnaryServerInterceptor {
	return func(ctx context.Context, req any, info *grpc.UnaryServerInfo, handler grpc.UnaryHandler) (any, error) {
		s := l.settings.Load()
		if !l.enabled(ctx, s) {
			return handler(ctx, req)
		}
		start := time.Now()
		defer l.logPanic(ctx, s, info.FullMethod, start)
		resp, err := handler(ctx, req)
		l.log(ctx, s, &call{msg: serverMessage, side: "server", method: info.FullMethod, peer: serverPeer(ctx), start: start, err: err})
		return resp, err
	}
}

// StreamServerInterceptor returns an interceptor that logs each stream when
// its handler returns.
func (l *Logger) StreamServerInterceptor() grpc.StreamServerInterceptor {
	return func(srv any, ss grpc.ServerStream, info *grpc.StreamServerInfo, handler grpc.StreamHandler) error {
		ctx := ss.Context()
		s := l.settings.Load()
		if !l.enabled(ctx, s) {
			return handler(srv, ss)
		}
		start := time.Now()
		defer l.logPanic(ctx, s, info.FullMethod, start)
		err := handler(srv, ss)
		l.log(ctx, s, &call{msg: serverMessage, side: "server", method: info.FullMethod, peer: serverPeer(ctx), start: start, err: err})
		return err
	}
}

// clientPeer returns the address p was filled with, or nil.
func clientPeer(p *peer.Peer) fmt.Stringer {
	if p.Addr != nil {
		return p.Addr
	}
	return nil
}

// UnaryClientInterceptor returns an interceptor that logs each call when it
// returns.
func (l *Logger) UnaryClientInterceptor() grpc.UnaryClientInterceptor {
	return func(ctx context.Context, method string, req, reply any, cc *grpc.ClientConn, invoker grpc.UnaryInvoker, opts ...grpc.CallOption) error {
		s := l.settings.Load()
		if !l.enabled(ctx, s) {
			return invoker(ctx, method, req, reply, cc, opts...)
		}
		start := time.Now()
		var p peer.Peer
		err := invoker(ctx, method, req, reply, cc, append(opts[:len(opts):len(opts)], grpc.Peer(&p))...)
		l.log(ctx, s, &call{msg: clientMessage, side: "client", method: method, target: cc.Target(), peer: clientPeer(&p), start: start, err: err})
		return err
	}
}

// StreamClientInterceptor returns an interceptor that logs each stream when
// it ends ([grpc.OnFinish]), or when it could not be created.
func (l *Logger) StreamClientInterceptor() grpc.StreamClientInterceptor {
	return func(ctx context.Context, desc *grpc.StreamDesc, cc *grpc.ClientConn, method string, streamer grpc.Streamer, opts ...grpc.CallOption) (grpc.ClientStream, error) {
		s := l.settings.Load()
		if !l.enabled(ctx, s) {
			return streamer(ctx, desc, cc, method, opts...)
		}
		c := &call{msg: clientMessage, side: "client", method: method, target: cc.Target(), start: time.Now()}
		p := new(peer.Peer)
		var logged atomic.Bool
		finish := func(err error) {
			if logged.CompareAndSwap(false, true) {
				c.err, c.peer = err, clientPeer(p)
				l.log(ctx, s, c)
			}
		}
		cs, err := streamer(ctx, desc, cc, method, append(opts[:len(opts):len(opts)], grpc.Peer(p), grpc.OnFinish(finish))...)
		if err != nil {
			finish(err)
			return nil, err
		}
		return cs, nil
	}
}
