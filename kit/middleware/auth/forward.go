package auth

import (
	"context"
	"errors"
	"sync"
	"time"

	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/metadata"
)

// Forward returns per-RPC credentials for the outgoing calls of a service
// that propagate identities: a call made with the context of an incoming
// call that a token authenticated carries that same token, so the service
// it calls sees the original caller (and checks it again); any other call
// carries the token of fallback, the service's own identity (nil: no token).
// A call whose outgoing metadata already has "authorization" keeps it.
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
	if f.fallback == nil {
		return nil, nil
	}
	return (&bearer{source: f.fallback}).GetRequestMetadata(ctx)
}

func (f *forward) RequireTransportSecurity() bool { return false }

// serviceTokenTTL is how long a service's own tokens live; they are
// renewed when less than a quarter of it is left.
const serviceTokenTTL = time.Hour

// ServicePrefix begins the subject of the tokens [ServiceToken] makes:
// "service:greeter" is the greeter service acting on its own behalf.
const ServicePrefix = "service:"

// ServiceToken returns a token source for the service name's own identity,
// for [Forward]: HS256 tokens signed with cfg's HMAC secret, with the
// subject [ServicePrefix]+name, cfg's issuer and audience, valid for an
// hour and renewed before they expire. It returns nil when cfg has no HMAC
// secret: a service whose tokens come from an identity provider gets its
// own tokens from there.
func ServiceToken(cfg Config, name string) func(ctx context.Context) (string, error) {
	if cfg.HMACSecret == "" || name == "" {
		return nil
	}
	var opts []IssueOption
	if cfg.Issuer != "" {
		opts = append(opts, WithIssuer(cfg.Issuer))
	}
	if cfg.Audience != "" {
		opts = append(opts, WithAudience(cfg.Audience))
	}
	var (
		mu      sync.Mutex
		token   string
		renewAt time.Time
	)
	return func(context.Context) (string, error) {
		mu.Lock()
		defer mu.Unlock()
		now := time.Now()
		if token != "" && now.Before(renewAt) {
			return token, nil
		}
		tok, err := IssueHS256(cfg.HMACSecret, ServicePrefix+name, serviceTokenTTL, append(opts, WithIssuedAt(now))...)
		if err != nil {
			return "", errors.Join(errors.New("auth: service token"), err)
		}
		token, renewAt = tok, now.Add(serviceTokenTTL*3/4)
		return token, nil
	}
}
