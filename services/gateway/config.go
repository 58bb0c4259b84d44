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
	return errors.Join(errs...)
}
