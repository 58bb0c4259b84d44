package timeout

import (
	"fmt"
	"maps"
	"time"

	"github.com/grpckit/grpckit/kit/duration"

	"github.com/grpckit/grpckit/kit/middleware"
)

// Config is the timeout section of a service's configuration. The zero value
// of a field is meaningful ("none"); start from [DefaultConfig] for the
// defaults.
type Config struct {
	// Default is the deadline a unary client call gets when its context has
	// none. 0 means none. Default: 5s.
	Default duration.Duration `yaml:"default" json:"default"`
	// PerMethod overrides Default for full method names
	// ("/user.v1.UserService/GetUser") or whole services
	// ("/user.v1.UserService/*"); an exact name wins over its service. A
	// value of 0 means no deadline for that method. Entries also apply to
	// streaming calls. Default: none.
	PerMethod map[string]duration.Duration `yaml:"per_method" json:"per_method"`
	// ServerMax caps the deadline of an incoming call at this long after its
	// arrival; a unary call that arrives without a deadline gets this one (a
	// stream without one keeps none: it may be a long-lived watch). 0 means
	// no cap. Default: 30s.
	ServerMax duration.Duration `yaml:"server_max" json:"server_max"`
}

// DefaultConfig returns the defaults documented on [Config].
func DefaultConfig() Config {
	return Config{Default: duration.Duration(5 * time.Second), ServerMax: duration.Duration(30 * time.Second)}
}

// Validate reports the first invalid field of c: durations must not be
// negative and PerMethod keys must be "/pkg.Service/Method" or
// "/pkg.Service/*".
func (c Config) Validate() error {
	_, err := compile(c)
	return err
}

// compiled is a validated Config ready for lookups; it is never modified
// after compile returns.
type compiled struct {
	cfg       Config
	perMethod middleware.MethodTable[duration.Duration]
}

func compile(c Config) (*compiled, error) {
	if c.Default < 0 {
		return nil, fmt.Errorf("timeout: default: must not be negative, got %v", c.Default)
	}
	if c.ServerMax < 0 {
		return nil, fmt.Errorf("timeout: server_max: must not be negative, got %v", c.ServerMax)
	}
	for m, d := range c.PerMethod {
		if d < 0 {
			return nil, fmt.Errorf("timeout: per_method[%q]: must not be negative, got %v", m, d)
		}
	}
	t, err := middleware.NewMethodTable(c.PerMethod)
	if err != nil {
		return nil, fmt.Errorf("timeout: per_method: %w", err)
	}
	c.PerMethod = maps.Clone(c.PerMethod)
	return &compiled{cfg: c, perMethod: t}, nil
}

// clientTimeout returns the deadline to give a call of method whose context
// has none; ok is false when it gets none.
func (c *compiled) clientTimeout(method string, stream bool) (time.Duration, bool) {
	d, ok := c.perMethod.Lookup(method)
	if !ok {
		if stream {
			return 0, false
		}
		d = c.cfg.Default
	}
	return time.Duration(d), d > 0
}
