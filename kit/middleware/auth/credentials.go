package auth

import (
	"context"
	"errors"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/status"
)

// CredentialsOption configures [BearerToken] and [TokenSource].
type CredentialsOption interface{ applyCredentials(*credentialsOptions) }

type credentialsOptionFunc func(*credentialsOptions)

func (f credentialsOptionFunc) applyCredentials(o *credentialsOptions) { f(o) }

type credentialsOptions struct {
	allowInsecure bool
}

// AllowInsecure lets the token be sent over connections without transport
// security (plaintext, e.g. on loopback or inside a trusted network). By
// default the credentials require transport security, and grpc-go fails
// calls on an insecure connection with codes.Unauthenticated rather than
// send the token in clear.
func AllowInsecure() CredentialsOption {
	return credentialsOptionFunc(func(o *credentialsOptions) { o.allowInsecure = true })
}

// BearerToken returns per-RPC credentials (for grpc.WithPerRPCCredentials or
// grpc.PerRPCCredentials) that send "authorization: Bearer <token>" with
// every call.
func BearerToken(token string, opts ...CredentialsOption) credentials.PerRPCCredentials {
	return TokenSource(func(context.Context) (string, error) { return token, nil }, opts...)
}

// TokenSource returns per-RPC credentials that call source for the token of
// each call, with the call's ctx; source is called concurrently and should
// cache its token until it nears expiry. An error from source fails the
// call: a gRPC status error with its own code, a context error with
// Canceled or DeadlineExceeded, any other error (and an empty token) with
// codes.Unauthenticated.
func TokenSource(source func(ctx context.Context) (string, error), opts ...CredentialsOption) credentials.PerRPCCredentials {
	var o credentialsOptions
	for _, opt := range opts {
		opt.applyCredentials(&o)
	}
	return &bearer{source: source, allowInsecure: o.allowInsecure}
}

type bearer struct {
	source        func(ctx context.Context) (string, error)
	allowInsecure bool
}

func (b *bearer) GetRequestMetadata(ctx context.Context, _ ...string) (map[string]string, error) {
	tok, err := b.source(ctx)
	if err != nil {
		if _, ok := status.FromError(err); ok {
			return nil, err
		}
		if errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
			return nil, status.FromContextError(err).Err()
		}
		return nil, status.Error(codes.Unauthenticated, "auth: token source: "+err.Error())
	}
	if tok == "" {
		return nil, status.Error(codes.Unauthenticated, "auth: token source returned an empty token")
	}
	return map[string]string{"authorization": "Bearer " + tok}, nil
}

func (b *bearer) RequireTransportSecurity() bool { return !b.allowInsecure }
