package dedupe

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"slices"
	"sync/atomic"

	"google.golang.org/grpc"
	"google.golang.org/grpc/metadata"

	"github.com/grpckit/grpckit/kit/middleware"
)

// RequestIDKey is the metadata key that carries a call's request id.
const RequestIDKey = "grpckit-request-id"

// maxIDLen bounds the request ids the server accepts, in bytes.
const maxIDLen = 128

type requestIDKey struct{}

// ClientConfig is the client side of dedupe: which methods' calls carry a
// request id. The zero ClientConfig stamps no call.
type ClientConfig struct {
	// Methods are full method names ("/user.v1.UserService/CreateUser") or
	// whole services ("/user.v1.UserService/*"). Default: none.
	Methods []string `yaml:"methods" json:"methods"`
}

// Validate reports the first invalid field of c.
func (c ClientConfig) Validate() error {
	_, err := compileClient(c)
	return err
}

type compiledClient struct {
	cfg     ClientConfig
	methods middleware.MethodTable[struct{}]
}

func compileClient(c ClientConfig) (*compiledClient, error) {
	t, err := methodTable(c.Methods)
	if err != nil {
		return nil, err
	}
	c.Methods = slices.Clone(c.Methods)
	return &compiledClient{cfg: c, methods: t}, nil
}

// Stamper is the client side of dedupe: it gives each call of the
// configured methods one request id and marks its context [Protected].
// Calls of other methods pass through untouched. An id already in the
// outgoing metadata, or stamped by another Stamper further out, is kept.
//
// Install it outside (before) the retry interceptor so that every attempt
// of a call carries the same id. Safe for concurrent use.
type Stamper struct {
	cfg atomic.Pointer[compiledClient]
}

// NewClient returns a Stamper, or the error of cfg.Validate. A Stamper logs
// and counts nothing, so it takes no options.
func NewClient(cfg ClientConfig) (*Stamper, error) {
	c, err := compileClient(cfg)
	if err != nil {
		return nil, err
	}
	s := &Stamper{}
	s.cfg.Store(c)
	return s, nil
}

// Config returns the configuration in force.
func (s *Stamper) Config() ClientConfig {
	c := s.cfg.Load().cfg
	c.Methods = slices.Clone(c.Methods)
	return c
}

// SetConfig replaces the configuration, or returns the error of
// cfg.Validate and keeps the current one. Safe to call concurrently with
// calls.
func (s *Stamper) SetConfig(cfg ClientConfig) error {
	c, err := compileClient(cfg)
	if err != nil {
		return err
	}
	s.cfg.Store(c)
	return nil
}

// UnaryClientInterceptor returns the interceptor that stamps request ids.
func (s *Stamper) UnaryClientInterceptor() grpc.UnaryClientInterceptor {
	return func(ctx context.Context, method string, req, reply any, cc *grpc.ClientConn, invoker grpc.UnaryInvoker, opts ...grpc.CallOption) error {
		if _, ok := s.cfg.Load().methods.Lookup(method); !ok {
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

// StreamClientInterceptor returns nil: streams are not deduplicated.
func (s *Stamper) StreamClientInterceptor() grpc.StreamClientInterceptor { return nil }

// Protected reports whether ctx is the context of a call that
// a [Stamper] has given a request id, so that running it twice
// on a deduplicating server has the effect of running it once.
func Protected(ctx context.Context) bool {
	_, ok := ctx.Value(requestIDKey{}).(string)
	return ok
}

// RequestID returns the request id a [Stamper] gave the call of
// ctx, or "" when ctx is not [Protected].
func RequestID(ctx context.Context) string {
	id, _ := ctx.Value(requestIDKey{}).(string)
	return id
}

// WithRequestID returns a context whose outgoing calls carry the request id
// id (a new random one when id is ""), as a [Stamper] gives them: in the
// metadata under [RequestIDKey], and [Protected], so that kit's retries may
// repeat a call that is not idempotent. For a caller that chooses which
// calls to protect at run time, such as the gateway (the client's
// Idempotency-Key, else a new id). An invalid id (see [ValidRequestID]) is
// replaced by a new one.
func WithRequestID(ctx context.Context, id string) context.Context {
	if !ValidRequestID(id) {
		id = newRequestID()
	}
	return context.WithValue(metadata.AppendToOutgoingContext(ctx, RequestIDKey, id), requestIDKey{}, id)
}

// newRequestID returns 128 random bits in hex.
func newRequestID() string {
	var b [16]byte
	rand.Read(b[:]) // never fails (crypto/rand, Go 1.24+)
	return hex.EncodeToString(b[:])
}

// ValidRequestID reports whether id is a request id the server accepts: 1
// to 128 bytes of printable ASCII without spaces (for an id that comes from
// outside, such as an HTTP Idempotency-Key).
func ValidRequestID(id string) bool {
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
