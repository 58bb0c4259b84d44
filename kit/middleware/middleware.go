package middleware

import (
	"context"
	"errors"
	"net/netip"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/peer"
	"google.golang.org/grpc/status"

	"github.com/grpckit/grpckit/kit/statuscode"
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

// CallerKey returns what per-caller state (limits, replay records) is kept
// by: "id:" and the identity set by [WithCaller], else the peer's network
// address — an IPv4 address, or the /64 network of an IPv6 one ([AddrKey])
// — else the peer's address as it is (a unix socket), else "". The prefix
// keeps identities and addresses apart: a token whose subject is
// "10.0.0.7" is not the host 10.0.0.7.
func CallerKey(ctx context.Context) string {
	if id, ok := ctx.Value(callerKey{}).(string); ok && id != "" {
		return "id:" + id
	}
	p, ok := peer.FromContext(ctx)
	if !ok || p.Addr == nil {
		return ""
	}
	if ap, err := netip.ParseAddrPort(p.Addr.String()); err == nil {
		return AddrKey(ap.Addr())
	}
	return Caller(ctx)
}

// AddrKey returns the key of a client address for per-client limits: an
// IPv4 address as it is, or the /64 network of an IPv6 address (one host
// commonly holds a whole /64, so per-address keys would let it take as
// many buckets as it likes). IPv4-mapped IPv6 addresses count as IPv4.
func AddrKey(ip netip.Addr) string {
	ip = ip.Unmap()
	if ip.Is4() {
		return ip.String()
	}
	if p, err := ip.WithZone("").Prefix(64); err == nil {
		return p.String()
	}
	return ip.String()
}

// UnknownMethod marks err, a server's answer to a call of a method it does
// not have, as such, so that the layers that label calls by method (the
// RPC metrics) do not take a name chosen by the caller as a label.
// status.FromError(err) and status.Code(err) see err's status unchanged.
func UnknownMethod(err error) error { return unknownMethodError{err} }

// IsUnknownMethod reports whether err was marked by [UnknownMethod].
func IsUnknownMethod(err error) bool {
	var u unknownMethodError
	return errors.As(err, &u)
}

type unknownMethodError struct{ error }

func (e unknownMethodError) GRPCStatus() *status.Status { return status.Convert(e.error) }
func (e unknownMethodError) Unwrap() error              { return e.error }

// Outcome is what a finished client call says about the health of its
// target, for the layers that judge it (the circuit breaker; kit_weighted
// applies the same rule to the status codes it sees).
type Outcome uint8

// The outcomes of [ClassifyOutcome].
const (
	// OutcomeNeutral says nothing about the target: the caller canceled
	// the call, or a client-side layer rejected it before it left
	// ([IsLocalRejection]).
	OutcomeNeutral Outcome = iota
	// OutcomeAnswered: the server answered ([statuscode.IsAnswer]): OK, an
	// application error such as NOT_FOUND, or RESOURCE_EXHAUSTED (a busy
	// server refusing the excess is up; it must never be cut off for it).
	OutcomeAnswered
	// OutcomeUnavailable: UNAVAILABLE, the target could not be reached or
	// refused the call. A failure.
	OutcomeUnavailable
	// OutcomeDeadline: DEADLINE_EXCEEDED, no answer in time. Whether it is
	// a failure depends on a [statuscode.DeadlineRule] and on whether the
	// target answered other calls meanwhile.
	OutcomeDeadline
)

// ClassifyOutcome returns the [Outcome] of a client call that ended with
// err (nil: OK).
func ClassifyOutcome(err error) Outcome {
	if err == nil {
		return OutcomeAnswered
	}
	if errors.Is(err, context.Canceled) || IsLocalRejection(err) {
		return OutcomeNeutral
	}
	switch code := status.Code(err); {
	case statuscode.IsAnswer(code):
		return OutcomeAnswered
	case code == codes.Unavailable:
		return OutcomeUnavailable
	case code == codes.DeadlineExceeded:
		return OutcomeDeadline
	default: // CANCELLED
		return OutcomeNeutral
	}
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
