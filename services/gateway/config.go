package gateway

import (
	"errors"
	"fmt"
	"maps"
	"net/url"
	"slices"
	"strings"
	"time"

	"github.com/grpckit/grpckit/kit/duration"
	"github.com/grpckit/grpckit/kit/middleware"

	"github.com/grpckit/grpckit/kit/middleware/auth"
	"github.com/grpckit/grpckit/kit/middleware/ratelimit"
)

// Config holds the gateway's live settings: [Gateway.SetConfig] applies a
// new one to a running gateway. It is plain data with YAML tags, meant to be
// embedded in a service's configuration section.
type Config struct {
	// Auth says how the bearer tokens of requests are verified. It is not
	// part of the gateway section: the gateway service fills it from its
	// standard auth section (kit/config), as every kit service does.
	Auth auth.Config `yaml:"-" json:"-"`
	// Limits are the edge rate limits.
	Limits Limits `yaml:"limits"`
	// BackendTimeout is the deadline of each backend call a request makes,
	// counted from when the gateway starts it; a request's own cancellation
	// (the client going away) ends the call sooner. Default 5s.
	BackendTimeout duration.Duration `yaml:"backend_timeout"`
	// MaxBodyBytes bounds request bodies; a longer body is answered with 413.
	// Default 65536.
	MaxBodyBytes int64 `yaml:"max_body_bytes"`
	// Routes are the policies of routes, keyed by the gRPC method they call:
	// "/pkg.Service/Method", or "/pkg.Service/*" for every method of a
	// service (an exact entry wins). Routes without an entry follow the
	// service's declaration and the gateway-wide settings. Default none.
	Routes map[string]RoutePolicy `yaml:"routes"`
	// CORS lets web pages of other origins call the gateway. Default off.
	CORS CORS `yaml:"cors"`
}

// RoutePolicy is the policy of the routes of one method (or service).
type RoutePolicy struct {
	// Access is "" (as the service declares: a method it lists in its
	// auth.public_methods is public, every other needs a bearer token) or
	// "bearer" (a valid token even for a method the service declares
	// public). Which methods are public is declared once, by the service;
	// the gateway can only ask for more.
	Access string `yaml:"access"`
	// Limit bounds the requests of the route from all clients together;
	// rps 0 is off (the default).
	Limit ratelimit.Limit `yaml:"limit"`
	// PerClient bounds the requests of the route from each client (IPv4
	// address or IPv6 /64); rps 0 is off (the default). At most
	// limits.max_clients clients are tracked per route.
	PerClient ratelimit.Limit `yaml:"per_client"`
	// Timeout replaces backend_timeout for the route's backend calls; 0
	// keeps backend_timeout.
	Timeout duration.Duration `yaml:"timeout"`
}

// AccessBearer is the [RoutePolicy.Access] that asks for a bearer token.
const AccessBearer = "bearer"

// CORS is the gateway's answer to cross-origin requests (the Fetch
// standard's CORS protocol): preflight OPTIONS requests are answered 204
// for an allowed origin, and the answers to allowed origins carry
// Access-Control-Allow-Origin. Credentials are bearer tokens in the
// Authorization header, never cookies, so Access-Control-Allow-Credentials
// is not sent.
type CORS struct {
	// AllowedOrigins are the origins allowed, each "scheme://host[:port]",
	// or "*" for every origin. Default none: CORS off.
	AllowedOrigins []string `yaml:"allowed_origins"`
	// AllowedHeaders are the request headers a page may send. Default
	// Authorization, Content-Type, Idempotency-Key and traceparent.
	AllowedHeaders []string `yaml:"allowed_headers"`
	// MaxAge is how long a browser may cache a preflight answer. Default
	// 10m.
	MaxAge duration.Duration `yaml:"max_age"`
}

// Limits are the gateway's edge rate limits: every request takes a token
// from the bucket of its client IP and from the global bucket, and is
// answered 429 with Retry-After when either is empty. A limit with rps 0 is
// off.
type Limits struct {
	// Global limits all requests together. Default 1000 rps, burst 2000.
	Global ratelimit.Limit `yaml:"global"`
	// PerClient limits each client with a bucket of its own: an IPv4
	// address, or an IPv6 /64 network (a host commonly holds a whole /64).
	// Default 50 rps, burst 100.
	PerClient ratelimit.Limit `yaml:"per_client"`
	// MaxClients is the number of client buckets kept; beyond it the least
	// recently seen client's bucket is dropped (that client then starts
	// again with a full bucket). Default 10000.
	MaxClients int `yaml:"max_clients"`
	// TrustForwardedFor takes the client IP from the last address of the
	// X-Forwarded-For header, as a reverse proxy in front of the gateway
	// appends it, instead of the connection's peer address. Turn it on only
	// behind such a proxy: otherwise clients choose their own IP. Local
	// (`kit:"local"`): never from Consul KV. Default false.
	TrustForwardedFor bool `yaml:"trust_forwarded_for" kit:"local"`
}

// DefaultConfig returns the documented defaults of every [Config] field.
func DefaultConfig() Config {
	return Config{
		Auth: auth.DefaultConfig(),
		Limits: Limits{
			Global:     ratelimit.Limit{RPS: 1000, Burst: 2000},
			PerClient:  ratelimit.Limit{RPS: 50, Burst: 100},
			MaxClients: 10000,
		},
		BackendTimeout: duration.Duration(5 * time.Second),
		MaxBodyBytes:   64 << 10,
		CORS: CORS{
			AllowedHeaders: []string{"Authorization", "Content-Type", "Idempotency-Key", "Traceparent"},
			MaxAge:         duration.Duration(10 * time.Minute),
		},
	}
}

// maxBackendTimeout bounds Config.BackendTimeout.
const maxBackendTimeout = 10 * time.Minute

// Validate reports every invalid field of c, named as in YAML under the
// gateway section. It does not read the key files.
func (c Config) Validate() error {
	var errs []error
	if err := c.Auth.Validate(); err != nil {
		errs = append(errs, err)
	}
	for _, l := range []struct {
		name  string
		limit ratelimit.Limit
	}{{"global", c.Limits.Global}, {"per_client", c.Limits.PerClient}} {
		// ratelimit.Config checks a limit's rps and burst.
		if err := (ratelimit.Config{RPS: l.limit.RPS, Burst: l.limit.Burst}).Validate(); err != nil {
			errs = append(errs, fmt.Errorf("gateway.limits.%s: %w", l.name, err))
		}
	}
	if c.Limits.MaxClients <= 0 {
		errs = append(errs, fmt.Errorf("gateway.limits.max_clients %d must be positive", c.Limits.MaxClients))
	}
	if c.BackendTimeout <= 0 || time.Duration(c.BackendTimeout) > maxBackendTimeout {
		errs = append(errs, fmt.Errorf("gateway.backend_timeout %v is outside (0, %v]", c.BackendTimeout, maxBackendTimeout))
	}
	if c.MaxBodyBytes <= 0 {
		errs = append(errs, fmt.Errorf("gateway.max_body_bytes %d must be positive", c.MaxBodyBytes))
	}
	for _, m := range slices.Sorted(maps.Keys(c.Routes)) {
		errs = append(errs, c.Routes[m].validate("gateway.routes."+m))
		if err := middleware.CheckMethodPattern(m); err != nil {
			errs = append(errs, fmt.Errorf("gateway.routes: %q: %w", m, err))
		}
	}
	errs = append(errs, c.CORS.validate())
	return errors.Join(errs...)
}

// validate reports every invalid field of p, named under name.
func (p RoutePolicy) validate(name string) error {
	var errs []error
	if p.Access != "" && p.Access != AccessBearer {
		errs = append(errs, fmt.Errorf("%s.access %q: want \"\" (as the service declares) or %q", name, p.Access, AccessBearer))
	}
	for _, l := range []struct {
		name  string
		limit ratelimit.Limit
	}{{"limit", p.Limit}, {"per_client", p.PerClient}} {
		if err := (ratelimit.Config{RPS: l.limit.RPS, Burst: l.limit.Burst}).Validate(); err != nil {
			errs = append(errs, fmt.Errorf("%s.%s: %w", name, l.name, err))
		}
	}
	if p.Timeout < 0 || time.Duration(p.Timeout) > maxBackendTimeout {
		errs = append(errs, fmt.Errorf("%s.timeout %v is outside [0, %v]", name, p.Timeout, maxBackendTimeout))
	}
	return errors.Join(errs...)
}

// validate reports every invalid field of c.
func (c CORS) validate() error {
	var errs []error
	for _, o := range c.AllowedOrigins {
		if o == "*" {
			continue
		}
		u, err := url.Parse(o)
		if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || u.Path != "" ||
			u.RawQuery != "" || u.Fragment != "" || u.User != nil || strings.ToLower(o) != o {
			errs = append(errs, fmt.Errorf("gateway.cors.allowed_origins: %q: want \"*\" or scheme://host[:port] in lower case, as browsers send it", o))
		}
	}
	for _, h := range c.AllowedHeaders {
		if !validToken(h) {
			errs = append(errs, fmt.Errorf("gateway.cors.allowed_headers: %q is not a header name", h))
		}
	}
	if c.MaxAge < 0 || time.Duration(c.MaxAge) > 24*time.Hour {
		errs = append(errs, fmt.Errorf("gateway.cors.max_age %v is outside [0, 24h]", c.MaxAge))
	}
	return errors.Join(errs...)
}
