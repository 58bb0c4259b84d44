package dedupe

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"

	"google.golang.org/grpc"
	"google.golang.org/grpc/metadata"

	"github.com/grpckit/grpckit/kit/middleware"
)

// RequestIDKey is the metadata key that carries a call's request id.
const RequestIDKey = "grpckit-request-id"

// maxIDLen bounds the request ids the server accepts, in bytes.
const maxIDLen = 128

type requestIDKey struct{}

// UnaryClientInterceptor returns an interceptor that gives each call of
// methods one request id and marks its context [Protected]. methods are full
// method names ("/user.v1.UserService/CreateUser") or whole services
// ("/user.v1.UserService/*"); calls of other methods pass through untouched.
// An id already in the outgoing metadata, or stamped by another instance of
// this interceptor further out, is kept. It panics when a pattern is not
// well-formed, as regexp.MustCompile does.
//
// Install it outside (before) the retry interceptor so that every attempt of
// a call carries the same id. The returned interceptor is safe for
// concurrent use.
func UnaryClientInterceptor(methods ...string) grpc.UnaryClientInterceptor {
	set := make(map[string]struct{}, len(methods))
	for _, m := range methods {
		set[m] = struct{}{}
	}
	table, err := middleware.NewMethodTable(set)
	if err != nil {
		panic(fmt.Sprintf("dedupe: UnaryClientInterceptor: %v", err))
	}
	return func(ctx context.Context, method string, req, reply any, cc *grpc.ClientConn, invoker grpc.UnaryInvoker, opts ...grpc.CallOption) error {
		if _, ok := table.Lookup(method); !ok {
			return invoker(ctx, method, req, reply, cc, opts...)
		}
		if _, ok := ctx.Value(requestIDKey{}).(string); !ok {
			if ids := metadata.ValueFromOutgoingContext(ctx, RequestIDKey); len(ids) > 0 && ids[0] != "" {
				ctx = context.WithValue(ctx, requestIDKey{}, ids[0])
			} else {
				id := newRequestID()
				ctx = context.WithValue(metadata.AppendToOutgoingContext(ctx, RequestIDKey, id), requestIDKey{}, id)
			}
		}
		return invoker(ctx, method, req, reply, cc, opts...)
	}
}

// Protected reports whether ctx is the context of a call that
// [UnaryClientInterceptor] has given a request id, so that running it twice
// on a deduplicating server has the effect of running it once.
func Protected(ctx context.Context) bool {
	_, ok := ctx.Value(requestIDKey{}).(string)
	return ok
}

// RequestID returns the request id [UnaryClientInterceptor] gave the call of
// ctx, or "" when ctx is not [Protected].
func RequestID(ctx context.Context) string {
	id, _ := ctx.Value(requestIDKey{}).(string)
	return id
}

// newRequestID returns 128 random bits in hex.
func newRequestID() string {
	var b [16]byte
	rand.Read(b[:]) // never fails (crypto/rand, Go 1.24+)
	return hex.EncodeToString(b[:])
}

// validRequestID reports whether id is a request id the server accepts: 1 to
// maxIDLen bytes of printable ASCII without spaces.
func validRequestID(id string) bool {
	if id == "" || len(id) > maxIDLen {
		return false
	}
	for i := 0; i < len(id); i++ {
		if id[i] <= ' ' || id[i] > '~' {
			return false
		}
	}
	return true
}
