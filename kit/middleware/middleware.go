package middleware

import (
	"context"
	"errors"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/peer"
	"google.golang.org/grpc/status"
)

type callerKey struct{}

// WithCaller returns ctx carrying the identity of the caller of an incoming
// call (the auth layer sets the token's subject).
func WithCaller(ctx context.Context, id string) context.Context {
	return context.WithValue(ctx, callerKey{}, id)
}

// Caller returns the caller identity set by [WithCaller], else the address
// of the peer without its port, else "".
func Caller(ctx context.Context) string {
	if id, ok := ctx.Value(callerKey{}).(string); ok && id != "" {
		return id
	}
	if p, ok := peer.FromContext(ctx); ok && p.Addr != nil {
		addr := p.Addr.String()
		for i := len(addr) - 1; i >= 0; i-- {
			if addr[i] == ':' {
				return addr[:i]
			}
		}
		return addr
	}
	return ""
}

// IsAvailabilityFailure reports whether err says the called service was
// not available (UNAVAILABLE, DEADLINE_EXCEEDED, RESOURCE_EXHAUSTED), as
// opposed to an application error or the caller giving up.
func IsAvailabilityFailure(err error) bool {
	if err == nil || errors.Is(err, context.Canceled) {
		return false
	}
	switch status.Code(err) {
	case codes.Unavailable, codes.DeadlineExceeded, codes.ResourceExhausted:
		return true
	}
	return false
}

// IsLocalRejection reports whether err is the refusal of a client-side layer
// (an open circuit breaker, a client rate limit): the call never left the
// client, so retrying it at once is pointless and it says nothing about the
// target's health. Such errors have a method LocalRejection() bool.
func IsLocalRejection(err error) bool {
	var lr interface{ LocalRejection() bool }
	return errors.As(err, &lr) && lr.LocalRejection()
}

// ServerStreamWithContext returns ss with ctx as its Context, for stream
// interceptors that hand the handler a derived context.
func ServerStreamWithContext(ss grpc.ServerStream, ctx context.Context) grpc.ServerStream {
	return &serverStream{ServerStream: ss, ctx: ctx}
}

type serverStream struct {
	grpc.ServerStream
	ctx context.Context
}

func (s *serverStream) Context() context.Context { return s.ctx }
