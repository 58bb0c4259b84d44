package gateway

import (
	"errors"
	"fmt"
	"time"

	"github.com/grpckit/grpckit/kit/duration"

	"github.com/grpckit/grpckit/kit/middleware/auth"
	"github.com/grpckit/grpckit/kit/middleware/ratelimit"
)

// Config holds the gateway's live settings: [Gateway.SetConfig] applies a
// new one to a running gateway. It is plain data with YAML tags, meant to be
// embedded in a service's configuration section.
type Config struct {
	// Auth says how bearer tokens of write requests are verified. Like
	// every setting of the security boundary it carries `kit:"local"`: set
	// from the file, the environment or the flags, never from Consul KV.
	Auth Auth `yaml:"auth" kit:"local"`
	// Limits are the edge rate limits.
	Limits Limits `yaml:"limits"`
	// BackendTimeout is the deadline of each backend call a request makes,
	// counted from when the gateway starts it; a request's own cancellation
	// (the client going away) ends the call sooner. Default 5s.
	BackendTimeout duration.Duration `yaml:"backend_timeout"`
	// MaxBodyBytes bounds request bodies; a longer body is answered with 413.
	// Default 65536.
	MaxBodyBytes int64 `yaml:"max_body_bytes"`
}

// Auth configures the verification of the bearer JSON Web Tokens that
// write requests (POST, PATCH, DELETE) must carry. Reads are public. With
// no key configured every write is refused with 401.
type Auth struct {
	// HMACSecret is the shared secret of HS256/HS384/HS512 tokens, at least
	// [auth.MinHMACSecretLen] bytes. A secret: masked by -print-config.
	// Default "" (no HMAC key).
	HMACSecret string `yaml:"hmac_secret" kit:"secret,local"`
	// PublicKeyFiles are PEM files of RSA, ECDSA or Ed25519 public keys (or
	// certificates) that may sign tokens; see [auth.Config.PublicKeyFiles].
	// Default none.
	PublicKeyFiles []string `yaml:"public_key_files" kit:"local"`
	// Issuer, when set, must equal the token's iss claim. Default "".
	Issuer string `yaml:"issuer" kit:"local"`
	// Audience, when set, must be one of the token's aud values. Default "".
	Audience string `yaml:"audience" kit:"local"`
	// Leeway is the clock skew tolerated on exp, nbf and iat. Default 30s;
	// at most 5m.
	Leeway duration.Duration `yaml:"leeway" kit:"local"`
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
		Auth: Auth{Leeway: duration.Duration(30 * time.Second)},
		Limits: Limits{
			Global:     ratelimit.Limit{RPS: 1000, Burst: 2000},
			PerClient:  ratelimit.Limit{RPS: 50, Burst: 100},
			MaxClients: 10000,
		},
		BackendTimeout: duration.Duration(5 * time.Second),
		MaxBodyBytes:   64 << 10,
	}
}

// maxBackendTimeout bounds Config.BackendTimeout.
const maxBackendTimeout = 10 * time.Minute

// Validate reports every invalid field of c, named as in YAML under the
// gateway section. It does not read the key files.
func (c Config) Validate() error {
	var errs []error
	if err := c.Auth.config().Validate(); err != nil {
		errs = append(errs, fmt.Errorf("gateway.auth: %w", err))
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
	return errors.Join(errs...)
}

// config returns the kit/middleware/auth configuration of a.
func (a Auth) config() auth.Config {
	return auth.Config{
		Issuer:         a.Issuer,
		Audience:       a.Audience,
		HMACSecret:     a.HMACSecret,
		PublicKeyFiles: a.PublicKeyFiles,
		Leeway:         a.Leeway,
	}
}

// Enabled reports whether a configures a verification key; without one
// every write request is refused.
func (a Auth) Enabled() bool { return a.config().Enabled() }
