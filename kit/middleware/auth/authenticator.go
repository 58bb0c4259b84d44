package auth

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/golang-jwt/jwt/v5"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"

	"github.com/grpckit/grpckit/kit/middleware"
)

// maxTokenLen bounds the tokens parsed, so that a caller cannot make the
// server decode arbitrarily large headers.
const maxTokenLen = 8 << 10

// cacheSize bounds the verified-token cache of one config.
const cacheSize = 4096

// Option configures [New].
type Option interface{ apply(*options) }

type optionFunc func(*options)

func (f optionFunc) apply(o *options) { f(o) }

type options struct {
	logger *slog.Logger
	now    func() time.Time
}

var defaultOptions = options{
	logger: slog.New(slog.NewTextHandler(io.Discard, nil)),
	now:    time.Now,
}

// WithLogger sets the logger that reports rejected calls (at debug level,
// with the method, the peer and the reason; never the token). Default:
// discard.
func WithLogger(l *slog.Logger) Option {
	return optionFunc(func(o *options) {
		if l != nil {
			o.logger = l
		}
	})
}

// Authenticator checks the bearer tokens of incoming calls. Its methods are
// safe for concurrent use; [Authenticator.SetConfig] swaps the config while
// calls are being checked.
type Authenticator struct {
	logger *slog.Logger
	now    func() time.Time
	state  atomic.Pointer[state]
}

// state is an immutable snapshot of one config, with its verified-token
// cache.
type state struct {
	cfg    Config
	keys   keySet
	algs   map[string]bool
	public middleware.MethodTable[struct{}]
	parser *jwt.Parser

	mu    sync.RWMutex
	cache map[string]*verified // guarded by mu; at most cacheSize entries
}

// verified is a token whose signature and claims checked out.
type verified struct {
	subject   string
	claims    jwt.MapClaims
	expiresAt time.Time
}

// New validates cfg, reads its key files, and returns an Authenticator.
func New(cfg Config, opts ...Option) (*Authenticator, error) {
	o := defaultOptions
	for _, opt := range opts {
		opt.apply(&o)
	}
	a := &Authenticator{logger: o.logger, now: o.now}
	if err := a.SetConfig(cfg); err != nil {
		return nil, err
	}
	return a, nil
}

// SetConfig validates cfg, reads its key files and makes it current for the
// calls checked from then on (key rotation). On error the current config
// stays. Tokens verified under the previous config are verified again.
func (a *Authenticator) SetConfig(cfg Config) error {
	if err := cfg.Validate(); err != nil {
		return err
	}
	keys, err := loadKeys(cfg)
	if err != nil {
		return err
	}
	cfg.PublicKeyFiles = append([]string(nil), cfg.PublicKeyFiles...)
	cfg.PublicMethods = append([]string(nil), cfg.PublicMethods...)
	public, err := middleware.NewMethodSet(append(append([]string(nil), alwaysPublic...), cfg.PublicMethods...)...)
	if err != nil {
		return fmt.Errorf("auth: public_methods: %w", err)
	}
	s := &state{
		cfg:    cfg,
		keys:   keys,
		algs:   map[string]bool{},
		public: public,
		cache:  map[string]*verified{},
	}
	algs := keys.algorithms()
	for _, alg := range algs {
		s.algs[alg] = true
	}
	popts := []jwt.ParserOption{
		jwt.WithValidMethods(algs),
		jwt.WithLeeway(time.Duration(cfg.Leeway)),
		jwt.WithExpirationRequired(),
		jwt.WithIssuedAt(),
		jwt.WithTimeFunc(a.now),
	}
	if cfg.Issuer != "" {
		popts = append(popts, jwt.WithIssuer(cfg.Issuer))
	}
	if cfg.Audience != "" {
		popts = append(popts, jwt.WithAudience(cfg.Audience))
	}
	s.parser = jwt.NewParser(popts...)
	a.state.Store(s)
	return nil
}

// Config returns the current config.
func (a *Authenticator) Config() Config { return a.state.Load().cfg }

// IsPublic reports whether fullMethod ("/pkg.Service/Method") needs no
// token under the current config.
func (a *Authenticator) IsPublic(fullMethod string) bool {
	return a.state.Load().isPublic(fullMethod)
}

// Verify checks token (without the "Bearer " prefix) under the current
// config and returns its claims, or one of the Err* values of this package.
func (a *Authenticator) Verify(token string) (jwt.MapClaims, error) {
	v, err := a.state.Load().verify(token, a.now())
	if err != nil {
		return nil, err
	}
	return v.claims, nil
}

func (s *state) verify(token string, now time.Time) (*verified, error) {
	if len(s.algs) == 0 {
		return nil, ErrNoKey
	}
	if len(token) > maxTokenLen {
		return nil, ErrMalformedToken
	}
	s.mu.RLock()
	v, ok := s.cache[token]
	s.mu.RUnlock()
	if ok {
		// Signature, nbf, iat, iss and aud were checked when the token was
		// cached; only time moved.
		if now.After(v.expiresAt.Add(time.Duration(s.cfg.Leeway))) {
			return nil, ErrExpired
		}
		return v, nil
	}

	claims := jwt.MapClaims{}
	t, err := s.parser.ParseWithClaims(token, claims, s.keys.keyFunc)
	if err != nil {
		return nil, s.reason(t, err)
	}
	if err := checkTimeRange(claims); err != nil {
		return nil, err
	}
	sub, err := claims.GetSubject()
	if err != nil || sub == "" {
		return nil, ErrMissingClaim
	}
	if _, hmac := t.Method.(*jwt.SigningMethodHMAC); strings.HasPrefix(sub, ServicePrefix) && !hmac {
		// Service identities are signed with the deployment's own secret
		// (ServiceToken); an identity provider's key does not make one.
		return nil, ErrInvalidToken
	}
	exp, err := claims.GetExpirationTime()
	if err != nil || exp == nil {
		return nil, ErrMissingClaim
	}
	v = &verified{subject: sub, claims: claims, expiresAt: exp.Time}
	s.mu.Lock()
	if len(s.cache) >= cacheSize {
		clear(s.cache) // cheap and rare: tokens are few and long-lived
	}
	s.cache[token] = v
	s.mu.Unlock()
	return v, nil
}

// reason maps a jwt error to one of the Err* values.
func (s *state) reason(t *jwt.Token, err error) error {
	switch {
	case errors.Is(err, jwt.ErrTokenMalformed):
		return ErrMalformedToken
	case t != nil && (t.Method == nil || !s.algs[t.Method.Alg()]), errors.Is(err, ErrAlgorithm):
		return ErrAlgorithm
	case errors.Is(err, jwt.ErrTokenSignatureInvalid), errors.Is(err, jwt.ErrTokenUnverifiable):
		return ErrBadSignature
	case errors.Is(err, jwt.ErrTokenRequiredClaimMissing):
		return ErrMissingClaim
	case errors.Is(err, jwt.ErrTokenExpired):
		return ErrExpired
	case errors.Is(err, jwt.ErrTokenNotValidYet), errors.Is(err, jwt.ErrTokenUsedBeforeIssued):
		return ErrNotYetValid
	case errors.Is(err, jwt.ErrTokenInvalidIssuer):
		return ErrWrongIssuer
	case errors.Is(err, jwt.ErrTokenInvalidAudience):
		return ErrWrongAudience
	}
	return ErrInvalidToken
}

// bearerToken returns the token of the authorization metadata.
func bearerToken(ctx context.Context) (string, error) {
	vals := metadata.ValueFromIncomingContext(ctx, "authorization")
	switch len(vals) {
	case 0:
		return "", ErrMissingToken
	case 1:
	default:
		return "", ErrMalformedHeader
	}
	return parseBearer(vals[0])
}

// parseBearer extracts the token of an "authorization" value: the scheme
// "Bearer" (any case), one or more spaces, and a non-empty token.
func parseBearer(h string) (string, error) {
	const scheme = "bearer "
	if len(h) < len(scheme) || !strings.EqualFold(h[:len(scheme)], scheme) {
		return "", ErrMalformedHeader
	}
	tok := strings.TrimLeft(h[len(scheme):], " ")
	if tok == "" || strings.ContainsAny(tok, " \t") {
		return "", ErrMalformedHeader
	}
	return tok, nil
}

// authenticate returns ctx carrying the caller and claims of the call's
// token, or a codes.Unauthenticated error.
func (a *Authenticator) authenticate(ctx context.Context, method string) (context.Context, error) {
	s := a.state.Load()
	if s.isPublic(method) {
		// A valid token on a public call still names the caller (and is
		// forwarded); anything else leaves the call anonymous.
		if tok, err := bearerToken(ctx); err == nil {
			if v, err := s.verify(tok, a.now()); err == nil {
				return withIdentity(ctx, tok, v), nil
			}
		}
		return ctx, nil
	}
	tok, err := bearerToken(ctx)
	var v *verified
	if err == nil {
		v, err = s.verify(tok, a.now())
	}
	if err != nil {
		a.logger.LogAttrs(ctx, slog.LevelDebug, "auth: call rejected",
			slog.String("method", method),
			slog.String("peer", middleware.Caller(ctx)),
			slog.String("reason", err.Error()))
		return nil, status.Error(codes.Unauthenticated, err.Error())
	}
	return withIdentity(ctx, tok, v), nil
}

// withIdentity returns ctx carrying the caller and token of v.
func withIdentity(ctx context.Context, tok string, v *verified) context.Context {
	ctx = middleware.WithCaller(ctx, v.subject)
	return context.WithValue(ctx, identityKey{}, &identity{token: tok, v: v})
}

// UnaryServerInterceptor returns the interceptor that authenticates unary
// calls.
func (a *Authenticator) UnaryServerInterceptor() grpc.UnaryServerInterceptor {
	return func(ctx context.Context, req any, info *grpc.UnaryServerInfo, handler grpc.UnaryHandler) (any, error) {
		ctx, err := a.authenticate(ctx, info.FullMethod)
		if err != nil {
			return nil, err
		}
		return handler(ctx, req)
	}
}

// StreamServerInterceptor returns the interceptor that authenticates
// streaming calls, before the handler reads or writes any message.
func (a *Authenticator) StreamServerInterceptor() grpc.StreamServerInterceptor {
	return func(srv any, ss grpc.ServerStream, info *grpc.StreamServerInfo, handler grpc.StreamHandler) error {
		ctx, err := a.authenticate(ss.Context(), info.FullMethod)
		if err != nil {
			return err
		}
		if ctx != ss.Context() {
			ss = middleware.ServerStreamWithContext(ss, ctx)
		}
		return handler(srv, ss)
	}
}

// isPublic reports whether method needs no token.
func (s *state) isPublic(method string) bool {
	_, ok := s.public.Lookup(method)
	return ok
}
