package auth

import (
	"context"
	"errors"
	"sync"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/metadata"
)

// Forward returns per-RPC credentials for the outgoing calls of a service
// that propagate identities: a call made with the context of an incoming
// call that a token authenticated carries that same token, so the service
// it calls sees the original caller (and checks it again); a call made for
// an incoming call without one (a public method called anonymously) carries
// no token; a call made outside any incoming gRPC call (a background job,
// an HTTP handler) carries the token of fallback, the service's own
// identity (nil: no token). A call whose outgoing metadata already has
// "authorization" keeps it.
//
// Unlike [BearerToken], Forward does not require transport security: it
// passes on, to the services of the same deployment, a token that reached
// this service over the same kind of connection. Use TLS between hosts
// that do not share a trusted network, and never give these credentials to
// a client of a third party's service.
func Forward(fallback func(ctx context.Context) (string, error)) credentials.PerRPCCredentials {
	return &forward{fallback: fallback}
}

type forward struct {
	fallback func(ctx context.Context) (string, error)
}

func (f *forward) GetRequestMetadata(ctx context.Context, _ ...string) (map[string]string, error) {
	if md, ok := metadata.FromOutgoingContext(ctx); ok && len(md.Get("authorization")) > 0 {
		return nil, nil // the caller chose the token of this call
	}
	if tok, ok := incomingToken(ctx); ok {
		return map[string]string{"authorization": "Bearer " + tok}, nil
	}
	if f.fallback == nil || grpc.ServerTransportStreamFromContext(ctx) != nil || ctx.Value(anonymousKey{}) != nil {
		// An incoming call without a verified token (a public method)
		// stays anonymous downstream: the service's own identity would
		// lend its rights to anyone who can call a public method.
		return nil, nil
	}
	tok, err := f.fallback(ctx)
	if err == nil && tok == "" {
		return nil, nil // the service has no identity of its own
	}
	return (&bearer{source: func(context.Context) (string, error) { return tok, err }}).GetRequestMetadata(ctx)
}

func (f *forward) RequireTransportSecurity() bool { return false }

// anonymousKey marks the context of a call made for an anonymous caller.
type anonymousKey struct{}

// Anonymous returns a context whose outgoing calls carry no token through
// [Forward], not even the service's own identity: for the calls an HTTP
// handler makes for a caller without credentials (the gateway serving a
// public route), which the service's identity must not be lent to. A token
// the caller puts in the outgoing metadata is still sent.
func Anonymous(ctx context.Context) context.Context {
	return context.WithValue(ctx, anonymousKey{}, true)
}

// serviceTokenTTL is how long a service's own tokens live; they are
// renewed when less than a quarter of it is left.
const serviceTokenTTL = time.Hour

// ServicePrefix begins the subject of the tokens [ServiceToken] makes:
// "service:greeter" is the greeter service acting on its own behalf.
const ServicePrefix = "service:"

// ServiceToken returns a token source for the service name's own identity,
// for [Forward]: HS256 tokens signed with the HMAC secret of the config
// current returns (called for each token; the service's live auth
// section), with the subject [ServicePrefix]+name and that config's issuer
// and audience, valid for an hour and renewed before they expire or when
// the secret, issuer or audience change (key rotation). It returns nil when
// name is empty, and no token ("") while the config has no HMAC secret: a
// service whose tokens come from an identity provider gets its own tokens
// from there. [Forward] sends no token when its fallback gives "".
func ServiceToken(current func() Config, name string) func(ctx context.Context) (string, error) {
	if current == nil || name == "" {
		return nil
	}
	var (
		mu      sync.Mutex
		token   string
		signer  Config // the settings token was made with
		renewAt time.Time
	)
	return func(context.Context) (string, error) {
		cfg := current()
		if cfg.HMACSecret == "" {
			return "", nil
		}
		mu.Lock()
		defer mu.Unlock()
		now := time.Now()
		same := cfg.HMACSecret == signer.HMACSecret && cfg.Issuer == signer.Issuer && cfg.Audience == signer.Audience
		if token != "" && same && now.Before(renewAt) {
			return token, nil
		}
		opts := []IssueOption{WithIssuedAt(now)}
		if cfg.Issuer != "" {
			opts = append(opts, WithIssuer(cfg.Issuer))
		}
		if cfg.Audience != "" {
			opts = append(opts, WithAudience(cfg.Audience))
		}
		tok, err := IssueHS256(cfg.HMACSecret, ServicePrefix+name, serviceTokenTTL, opts...)
		if err != nil {
			return "", errors.Join(errors.New("auth: service token"), err)
		}
		token, signer, renewAt = tok, cfg, now.Add(serviceTokenTTL*3/4)
		return token, nil
	}
}
