package dedupe

import (
	"context"
	"crypto/sha256"
	"errors"

	"google.golang.org/protobuf/proto"
)

// ErrRequestIDReused is returned by [Journal.Claim] when the request id of a
// call is already recorded for a different request (another body under the
// same caller, method and id). [Cache.UnaryServerInterceptor] answers such a
// call with codes.InvalidArgument and this error's text, and a handler that
// uses a [Journal] should do the same.
var ErrRequestIDReused = errors.New("dedupe: request id reused with a different request")

// Request is what a deduplicated call is known by on the server: the caller,
// the method and the request id make its key; Hash tells a repeat of the
// same request from another request under a reused id.
type Request struct {
	// Caller is the key of the caller
	// ([github.com/grpckit/grpckit/kit/middleware.CallerKey]): "id:" and
	// the token's subject when the auth layer runs first, else the peer's
	// IPv4 address or IPv6 /64 network.
	Caller string
	// Method is the full method name, "/user.v1.UserService/CreateUser".
	Method string
	// ID is the request id, 1 to 128 bytes of printable ASCII.
	ID string
	// Hash is [HashRequest] of the request message.
	Hash [sha256.Size]byte
}

type requestKey struct{}

// NewContext returns ctx carrying r, as [Cache.UnaryServerInterceptor]
// gives it to the handler. Tests and handlers called outside gRPC use it.
func NewContext(ctx context.Context, r Request) context.Context {
	return context.WithValue(ctx, requestKey{}, r)
}

// FromContext returns the deduplicated call of the server handler's ctx:
// [Cache.UnaryServerInterceptor] sets it on every unary call that carries a
// valid request id, whether or not its method is in [Config.Methods], so
// that a handler can record the call's result with its own write (see
// [Journal]). ok is false for a call without request id.
func FromContext(ctx context.Context) (r Request, ok bool) {
	r, ok = ctx.Value(requestKey{}).(Request)
	return r, ok
}

// HashRequest returns the SHA-256 of the deterministic wire encoding of
// req (proto.MarshalOptions{Deterministic: true}), or the zero hash when req
// is not a proto message or cannot be encoded. Two decodings of the same
// request bytes by one program hash the same; a program built with another
// version of the message's schema may encode unknown fields in another
// order, so a retry that crosses such an upgrade may be refused as
// [ErrRequestIDReused].
func HashRequest(req any) [sha256.Size]byte {
	m, ok := req.(proto.Message)
	if !ok {
		return [sha256.Size]byte{}
	}
	b, err := proto.MarshalOptions{Deterministic: true, AllowPartial: true}.Marshal(m)
	if err != nil {
		return [sha256.Size]byte{}
	}
	return sha256.Sum256(b)
}

// sameRequest reports whether hashes a and b are of the same request; the
// zero hash (unknown) matches any.
func sameRequest(a, b [sha256.Size]byte) bool {
	return a == b || a == [sha256.Size]byte{} || b == [sha256.Size]byte{}
}
