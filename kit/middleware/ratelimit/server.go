package ratelimit

import (
	"context"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"time"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/metric"
	"golang.org/x/time/rate"
	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/durationpb"

	"github.com/grpckit/grpckit/kit/middleware"
)

// reserver is the part of a token bucket the server limiter takes tokens
// through; [*rate.Limiter] satisfies it. ReserveN takes n tokens at t, or
// promises them for later (the Reservation's DelayFrom(t) says when); the
// Reservation can be canceled to give them back. Safe for concurrent use.
type reserver interface {
	ReserveN(t time.Time, n int) *rate.Reservation
}

var _ reserver = (*rate.Limiter)(nil)

// Layers of the server limiter, in the order tokens are taken.
const (
	layerGlobal = iota
	layerMethod
	layerCaller
	numLayers
)

var layerNames = [numLayers]string{"global", "method", "caller"}

// Limiter applies the server's inbound limits: global, per method and per
// caller. All methods are safe for concurrent use.
type Limiter struct {
	logger  *slog.Logger
	limited metric.Int64Counter
	now     func() time.Time // time source; tests replace it before any call

	mu      sync.RWMutex
	cfg     Config                        // guarded by mu
	rules   middleware.MethodTable[Limit] // guarded by mu; compiled cfg.PerMethod
	global  *rate.Limiter                 // guarded by mu; nil: no global limit
	methods map[string]*rate.Limiter      // guarded by mu; buckets of limited methods seen
	callers callerBuckets                 // own lock, taken after mu when both are held
}

// New returns a Limiter enforcing cfg, or the error of cfg.Validate.
func New(cfg Config, opts ...Option) (*Limiter, error) {
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
	l := &Limiter{
		logger:  o.logger,
		limited: limited,
		now:     time.Now,
		methods: make(map[string]*rate.Limiter),
	}
	l.apply(cfg)
	return l, nil
}

// Config returns the configuration in effect.
func (l *Limiter) Config() Config {
	l.mu.RLock()
	defer l.mu.RUnlock()
	return l.cfg.clone()
}

// SetConfig validates cfg and puts it in effect at once. Buckets that stay
// limited keep their tokens and get the new rate and burst; buckets of
// limits removed are dropped. An invalid cfg is returned as an error and the
// previous configuration stays.
func (l *Limiter) SetConfig(cfg Config) error {
	if err := cfg.Validate(); err != nil {
		return err
	}
	l.apply(cfg)
	l.logger.LogAttrs(context.Background(), slog.LevelInfo, "ratelimit: server limits changed",
		slog.Float64("rps", cfg.RPS), slog.Int("burst", cfg.Burst),
		slog.Int("per_method", len(cfg.PerMethod)), slog.Float64("per_caller_rps", cfg.PerCaller.RPS))
	return nil
}

// apply puts the valid cfg in effect.
func (l *Limiter) apply(cfg Config) {
	cfg = cfg.clone()
	now := l.now()
	l.mu.Lock()
	defer l.mu.Unlock()
	l.cfg = cfg
	l.rules, _ = middleware.NewMethodTable(cfg.PerMethod) // validated by SetConfig
	switch global := (Limit{RPS: cfg.RPS, Burst: cfg.Burst}); {
	case !global.enabled():
		l.global = nil
	case l.global == nil:
		l.global = global.newBucket()
	default:
		update(l.global, global, now)
	}
	for method, b := range l.methods {
		if lim, ok := l.rules.Lookup(method); ok && lim.enabled() {
			update(b, lim, now)
		} else {
			delete(l.methods, method)
		}
	}
	l.callers.set(cfg.PerCaller, cfg.maxCallers(), now)
}

// methodBucket returns the bucket of method, creating it when the method is
// limited, or nil.
func (l *Limiter) methodBucket(method string) *rate.Limiter {
	l.mu.Lock()
	defer l.mu.Unlock()
	if b := l.methods[method]; b != nil {
		return b
	}
	lim, ok := l.rules.Lookup(method)
	if !ok || !lim.enabled() {
		return nil
	}
	b := lim.newBucket()
	l.methods[method] = b
	return b
}

// healthPrefix starts the methods of the gRPC health service, which the
// server's limits never apply to: a registry whose health checks were
// refused under load would take the instance out of service.
const healthPrefix = "/grpc.health.v1.Health/"

// allow takes a token for a call of method from every bucket that applies
// and returns nil, or returns the ResourceExhausted status the call is
// rejected with.
func (l *Limiter) allow(ctx context.Context, method string) *status.Status {
	if strings.HasPrefix(method, healthPrefix) {
		return nil
	}
	var buckets [numLayers]reserver
	l.mu.RLock()
	global, perMethod := l.global, l.methods[method]
	create := false
	if perMethod == nil {
		lim, ok := l.rules.Lookup(method)
		create = ok && lim.enabled()
	}
	perCaller := l.cfg.PerCaller.enabled()
	l.mu.RUnlock()

	if global != nil {
		buckets[layerGlobal] = global
	}
	if create {
		perMethod = l.methodBucket(method)
	}
	if perMethod != nil {
		buckets[layerMethod] = perMethod
	}
	if perCaller {
		if b := l.callers.get(middleware.CallerKey(ctx)); b != nil {
			buckets[layerCaller] = b
		}
	}
	if buckets == [numLayers]reserver{} {
		return nil
	}
	layer, delay := take(l.now(), &buckets)
	if layer < 0 {
		return nil
	}
	l.limited.Add(ctx, 1, metric.WithAttributes(
		attribute.String("layer", layerNames[layer]), attribute.String("method", method)))
	return rejection(fmt.Sprintf("ratelimit: %s limit exceeded calling %s", layerNames[layer], method), delay)
}

// take takes a token at now from every non-nil bucket. When all have one it
// returns layer -1; otherwise it gives every token back and returns the
// layer whose token comes last and how long until then.
func take(now time.Time, buckets *[numLayers]reserver) (layer int, delay time.Duration) {
	var rs [numLayers]*rate.Reservation
	layer = -1
	for i, b := range buckets {
		if b == nil {
			continue
		}
		rs[i] = b.ReserveN(now, 1)
		if d := rs[i].DelayFrom(now); d > delay {
			layer, delay = i, d
		}
	}
	if layer >= 0 {
		for _, r := range rs {
			if r != nil {
				r.CancelAt(now)
			}
		}
	}
	return layer, delay
}

// rejection returns a ResourceExhausted status with msg and, when delay is
// known, a RetryInfo saying to retry after delay.
func rejection(msg string, delay time.Duration) *status.Status {
	st := status.New(codes.ResourceExhausted, msg)
	if delay <= 0 || delay == rate.InfDuration {
		return st
	}
	if withInfo, err := st.WithDetails(&errdetails.RetryInfo{RetryDelay: durationpb.New(delay)}); err == nil {
		return withInfo
	}
	return st
}

// UnaryServerInterceptor returns an interceptor that rejects calls over a
// limit with codes.ResourceExhausted and RetryInfo, without waiting.
func (l *Limiter) UnaryServerInterceptor() grpc.UnaryServerInterceptor {
	return func(ctx context.Context, req any, info *grpc.UnaryServerInfo, handler grpc.UnaryHandler) (any, error) {
		if st := l.allow(ctx, info.FullMethod); st != nil {
			return nil, st.Err()
		}
		return handler(ctx, req)
	}
}

// StreamServerInterceptor returns an interceptor that rejects streams over a
// limit with codes.ResourceExhausted and RetryInfo, without waiting. A
// stream takes one token when it starts, whatever it carries.
func (l *Limiter) StreamServerInterceptor() grpc.StreamServerInterceptor {
	return func(srv any, ss grpc.ServerStream, info *grpc.StreamServerInfo, handler grpc.StreamHandler) error {
		if st := l.allow(ss.Context(), info.FullMethod); st != nil {
			return st.Err()
		}
		return handler(srv, ss)
	}
}
