package ratelimit

import (
	"fmt"
	"maps"
	"math"
	"slices"

	"golang.org/x/time/rate"

	"github.com/grpckit/grpckit/kit/middleware"
)

// Limit is a token bucket: RPS tokens per second, at most Burst at once.
type Limit struct {
	// RPS is the sustained rate, in calls per second. 0 means no limit.
	// Default 0.
	RPS float64 `yaml:"rps" json:"rps"`
	// Burst is the size of the bucket: how many calls may pass at once after
	// a quiet period. 0 means RPS rounded up, at least 1. Default 0.
	Burst int `yaml:"burst" json:"burst"`
}

// enabled reports whether l limits anything.
func (l Limit) enabled() bool { return l.RPS > 0 }

// burst returns the effective bucket size of l.
func (l Limit) burst() int {
	if l.Burst > 0 {
		return l.Burst
	}
	return int(math.Max(1, math.Ceil(l.RPS)))
}

// maxRPS bounds RPS so that burst() stays within an int.
const maxRPS = 1e9

func (l Limit) validate(field string) error {
	switch {
	case math.IsNaN(l.RPS) || l.RPS < 0 || l.RPS > maxRPS:
		return fmt.Errorf("ratelimit: %srps must be within [0, %g], got %v", field, maxRPS, l.RPS)
	case l.Burst < 0:
		return fmt.Errorf("ratelimit: %sburst must not be negative, got %d", field, l.Burst)
	}
	return nil
}

// newBucket returns a full token bucket for l.
func (l Limit) newBucket() *rate.Limiter {
	return rate.NewLimiter(rate.Limit(l.RPS), l.burst())
}

// Config is the ratelimit section of a service's configuration: the limits
// of the server's inbound calls. The zero value limits nothing.
type Config struct {
	// RPS is the global limit on calls per second. 0 means no limit.
	// Default 0.
	RPS float64 `yaml:"rps" json:"rps"`
	// Burst is the size of the global bucket. 0 means RPS rounded up, at
	// least 1. Default 0.
	Burst int `yaml:"burst" json:"burst"`
	// PerMethod limits each method named by its full name
	// ("/package.Service/Method"), and each method of a service named
	// "/package.Service/*" that has no entry of its own; every method has
	// its own bucket. An entry with rps 0 exempts its methods. Default none.
	PerMethod map[string]Limit `yaml:"per_method" json:"per_method,omitempty"`
	// PerCaller limits each caller ([middleware.CallerKey]: its identity,
	// else its IPv4 address or the /64 network of its IPv6 one) with a bucket of
	// its own. Default: no limit.
	PerCaller Limit `yaml:"per_caller" json:"per_caller"`
	// MaxCallers is the number of caller buckets kept; beyond it the least
	// recently seen caller's bucket is dropped (that caller then starts
	// again with a full bucket). 0 means the default, 10000.
	MaxCallers int `yaml:"max_callers" json:"max_callers"`
}

// DefaultMaxCallers is the default of [Config.MaxCallers].
const DefaultMaxCallers = 10000

// DefaultConfig returns the documented defaults of every [Config] field: no
// limit at all.
func DefaultConfig() Config {
	return Config{MaxCallers: DefaultMaxCallers}
}

// Validate reports the first invalid field of c, named as in YAML.
func (c Config) Validate() error {
	if err := (Limit{RPS: c.RPS, Burst: c.Burst}).validate(""); err != nil {
		return err
	}
	if err := validatePerMethod(c.PerMethod, "per_method"); err != nil {
		return err
	}
	if err := c.PerCaller.validate("per_caller."); err != nil {
		return err
	}
	if c.MaxCallers < 0 {
		return fmt.Errorf("ratelimit: max_callers must not be negative, got %d", c.MaxCallers)
	}
	return nil
}

// maxCallers returns the effective MaxCallers.
func (c Config) maxCallers() int {
	if c.MaxCallers == 0 {
		return DefaultMaxCallers
	}
	return c.MaxCallers
}

// clone returns c with a copy of its map.
func (c Config) clone() Config {
	c.PerMethod = maps.Clone(c.PerMethod)
	return c
}

// ClientConfig configures a [ClientLimiter]: limits of a client's outbound
// calls.
type ClientConfig struct {
	// PerMethod limits each method named by its full name, and each method
	// of a service named "/package.Service/*" that has no entry of its own;
	// every method has its own bucket. An entry with rps 0 exempts its
	// methods from Default. Default none.
	PerMethod map[string]Limit `yaml:"per_method" json:"per_method,omitempty"`
	// Default limits every other method, each with its own bucket. Default:
	// no limit.
	Default Limit `yaml:"default" json:"default"`
	// Wait makes a call without a token wait for one, unless the token would
	// come after the call's deadline: then the call fails at once. false
	// fails such calls at once. Default true.
	Wait bool `yaml:"wait" json:"wait"`
}

// DefaultClientConfig returns the documented defaults of every
// [ClientConfig] field: no limit, waiting.
func DefaultClientConfig() ClientConfig {
	return ClientConfig{Wait: true}
}

// Validate reports the first invalid field of c, named as in YAML.
func (c ClientConfig) Validate() error {
	if err := validatePerMethod(c.PerMethod, "per_method"); err != nil {
		return err
	}
	return c.Default.validate("default.")
}

// clone returns c with a copy of its map.
func (c ClientConfig) clone() ClientConfig {
	c.PerMethod = maps.Clone(c.PerMethod)
	return c
}

func validatePerMethod(m map[string]Limit, field string) error {
	for _, k := range slices.Sorted(maps.Keys(m)) {
		if middleware.CheckMethodPattern(k) != nil {
			return fmt.Errorf("ratelimit: %s key %q must be \"/package.Service/Method\" or \"/package.Service/*\"", field, k)
		}
		if err := m[k].validate(fmt.Sprintf("%s[%q].", field, k)); err != nil {
			return err
		}
	}
	return nil
}
