package retry

import (
	"context"
	"strconv"

	"google.golang.org/grpc"
	"google.golang.org/grpc/metadata"

	"github.com/grpckit/grpckit/kit/middleware"
)

// AttemptKey is the metadata key that carries the attempt number of a
// retried call ("2" for the first retry); first attempts do not carry it.
const AttemptKey = "grpckit-attempt"

// NoRetryKey is the metadata key ("1") of a call made by a handler whose own
// call must not cause retries; the server handling it does not retry its
// own outgoing calls either, so the mark travels down the whole call chain.
const NoRetryKey = "grpckit-no-retry"

type noRetriesKey struct{}

// WithoutRetries returns ctx marked so that calls made with it (or a context
// derived from it) through a [Retrier] are not retried, and carry
// [NoRetryKey].
func WithoutRetries(ctx context.Context) context.Context {
	return context.WithValue(ctx, noRetriesKey{}, true)
}

// RetriesAllowed reports whether calls made with ctx may be retried, that is
// ctx is not marked by [WithoutRetries].
func RetriesAllowed(ctx context.Context) bool {
	off, _ := ctx.Value(noRetriesKey{}).(bool)
	return !off
}

// serverContext returns ctx marked [WithoutRetries] when the incoming call
// is a retry or carries [NoRetryKey]; ok is false when ctx is unchanged.
func serverContext(ctx context.Context) (context.Context, bool) {
	if v := metadata.ValueFromIncomingContext(ctx, AttemptKey); len(v) > 0 {
		if n, ok := parseAttempt(v[0]); ok && n > 1 {
			return WithoutRetries(ctx), true
		}
	}
	if v := metadata.ValueFromIncomingContext(ctx, NoRetryKey); len(v) > 0 {
		return WithoutRetries(ctx), true
	}
	return ctx, false
}

// parseAttempt reads an attempt number: decimal digits, 1 to 999.
func parseAttempt(s string) (int, bool) {
	if len(s) == 0 || len(s) > 3 {
		return 0, false
	}
	n, err := strconv.Atoi(s)
	if err != nil || n < 1 || s[0] < '0' || s[0] > '9' {
		return 0, false
	}
	return n, true
}

// UnaryServerInterceptor returns an interceptor that marks the context of
// an incoming call that is a retry (metadata [AttemptKey] above 1) or comes
// from a handler that must not retry ([NoRetryKey]) with [WithoutRetries],
// so that the calls the handler makes with it are not retried.
func (r *Retrier) UnaryServerInterceptor() grpc.UnaryServerInterceptor {
	return func(ctx context.Context, req any, _ *grpc.UnaryServerInfo, handler grpc.UnaryHandler) (any, error) {
		ctx, _ = serverContext(ctx)
		return handler(ctx, req)
	}
}

// StreamServerInterceptor is [Retrier.UnaryServerInterceptor] for streams.
func (r *Retrier) StreamServerInterceptor() grpc.StreamServerInterceptor {
	return func(srv any, ss grpc.ServerStream, _ *grpc.StreamServerInfo, handler grpc.StreamHandler) error {
		if ctx, ok := serverContext(ss.Context()); ok {
			ss = middleware.ServerStreamWithContext(ss, ctx)
		}
		return handler(srv, ss)
	}
}
