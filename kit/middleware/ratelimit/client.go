package ratelimit

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/metric"
	"golang.org/x/time/rate"
	"google.golang.org/grpc"
	"google.golang.org/grpc/status"

	"github.com/grpckit/grpckit/kit/middleware"
)

// ErrLimited is matched (with errors.Is) by the errors a [ClientLimiter]
// rejects calls with. Those errors are gRPC status errors with
// codes.ResourceExhausted.
var ErrLimited = errors.New("ratelimit: client rate limit exceeded")

// ClientLimiter limits a client's outbound calls, with a bucket per method.
// All methods are safe for concurrent use.
type ClientLimiter struct {
	logger  *slog.Logger
	limited metric.Int64Counter

	mu      sync.RWMutex
	cfg     ClientConfig                  // guarded by mu
	rules   middleware.MethodTable[Limit] // guarded by mu; compiled cfg.PerMethod
	methods map[string]*rate.Limiter      // guarded by mu; buckets of limited methods seen
}

// NewClient returns a ClientLimiter enforcing cfg, or the error of
// cfg.Validate.
func NewClient(cfg ClientConfig, opts ...Option) (*ClientLimiter, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	o := defaultOptions()
	for _, opt := range opts {
		opt.apply(&o)
	}
	limited, err := newLimitedCounter(o.meterProvider)
	if err != nil {
		return nil, fmt.Errorf("ratelimit: creating counter: %w", err)
	}
	l := &ClientLimiter{
		logger:  o.logger,
		limited: limited,
		methods: make(map[string]*rate.Limiter),
	}
	l.apply(cfg)
	return l, nil
}

// Config returns the configuration in effect.
func (l *ClientLimiter) Config() ClientConfig {
	l.mu.RLock()
	defer l.mu.RUnlock()
	return l.cfg.clone()
}

// SetConfig validates cfg and puts it in effect at once. Buckets that stay
// limited keep their tokens and get the new rate and burst; buckets of
// methods no longer limited are dropped. An invalid cfg is returned as an
// error and the previous configuration stays.
func (l *ClientLimiter) SetConfig(cfg ClientConfig) error {
	if err := cfg.Validate(); err != nil {
		return err
	}
	l.apply(cfg)
	l.logger.LogAttrs(context.Background(), slog.LevelInfo, "ratelimit: client limits changed",
		slog.Float64("default_rps", cfg.Default.RPS), slog.Int("per_method", len(cfg.PerMethod)),
		slog.Bool("wait", cfg.Wait))
	return nil
}

func (l *ClientLimiter) apply(cfg ClientConfig) {
	cfg = cfg.clone()
	now := time.Now()
	l.mu.Lock()
	defer l.mu.Unlock()
	l.cfg = cfg
	l.rules, _ = middleware.NewMethodTable(cfg.PerMethod) // validated by SetConfig
	for method, b := range l.methods {
		if lim := l.limitLocked(method); lim.enabled() {
			update(b, lim, now)
		} else {
			delete(l.methods, method)
		}
	}
}

// limitLocked returns the limit of method.
func (l *ClientLimiter) limitLocked(method string) Limit {
	if lim, ok := l.rules.Lookup(method); ok {
		return lim
	}
	return l.cfg.Default
}

// bucket returns the bucket of method, or nil when it is not limited, and
// whether to wait for a token.
func (l *ClientLimiter) bucket(method string) (*rate.Limiter, bool) {
	l.mu.RLock()
	b, wait := l.methods[method], l.cfg.Wait
	limited := b != nil || l.limitLocked(method).enabled()
	l.mu.RUnlock()
	if b != nil || !limited {
		return b, wait
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	if b = l.methods[method]; b == nil {
		if lim := l.limitLocked(method); lim.enabled() {
			b = lim.newBucket()
			l.methods[method] = b
		}
	}
	return b, l.cfg.Wait
}

// allow takes a token for a call of method, waiting for it within ctx's
// deadline when configured to, and returns nil; or returns the error the
// call fails with.
func (l *ClientLimiter) allow(ctx context.Context, method string) error {
	b, wait := l.bucket(method)
	if b == nil {
		return nil
	}
	if wait {
		// Wait fails at once when the token would come after the deadline.
		err := b.Wait(ctx)
		if err == nil {
			return nil
		}
		if ctxErr := ctx.Err(); ctxErr != nil {
			return status.FromContextError(ctxErr).Err()
		}
	} else if b.Allow() {
		return nil
	}
	// How long until a token, for RetryInfo: reserve one and give it back.
	now := time.Now()
	r := b.ReserveN(now, 1)
	delay := r.DelayFrom(now)
	r.CancelAt(now)

	l.limited.Add(ctx, 1, metric.WithAttributes(
		attribute.String("layer", "client"), attribute.String("method", method)))
	reason := "no token"
	if wait {
		reason = "no token before the call's deadline"
	}
	return &limitError{st: rejection(fmt.Sprintf("ratelimit: client limit exceeded calling %s: %s", method, reason), delay)}
}

// limitError is a client rejection: a gRPC status error that matches
// ErrLimited and tells the circuit breaker the call never left the process.
type limitError struct{ st *status.Status }

func (e *limitError) Error() string              { return e.st.String() }
func (e *limitError) GRPCStatus() *status.Status { return e.st }
func (e *limitError) Is(target error) bool       { return target == ErrLimited }

// LocalRejection reports that the call was rejected before it was sent.
func (e *limitError) LocalRejection() bool { return true }

// UnaryClientInterceptor returns an interceptor that takes a token before
// each call, waiting for it or failing with codes.ResourceExhausted as
// configured.
func (l *ClientLimiter) UnaryClientInterceptor() grpc.UnaryClientInterceptor {
	return func(ctx context.Context, method string, req, reply any, cc *grpc.ClientConn, invoker grpc.UnaryInvoker, opts ...grpc.CallOption) error {
		if err := l.allow(ctx, method); err != nil {
			return err
		}
		return invoker(ctx, method, req, reply, cc, opts...)
	}
}

// StreamClientInterceptor returns an interceptor that takes a token before
// each stream is created, waiting for it or failing with
// codes.ResourceExhausted as configured.
func (l *ClientLimiter) StreamClientInterceptor() grpc.StreamClientInterceptor {
	return func(ctx context.Context, desc *grpc.StreamDesc, cc *grpc.ClientConn, method string, streamer grpc.Streamer, opts ...grpc.CallOption) (grpc.ClientStream, error) {
		if err := l.allow(ctx, method); err != nil {
			return nil, err
		}
		return streamer(ctx, desc, cc, method, opts...)
	}
}
