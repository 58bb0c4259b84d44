package overload

import (
	"errors"
	"fmt"
	"math"
	"time"

	"github.com/grpckit/grpckit/kit/duration"
)

// Mode is how a [Limiter] bounds concurrent calls.
type Mode string

// The modes of a [Limiter].
const (
	// ModeOff lets every call through; in-flight calls are still counted.
	ModeOff Mode = "off"
	// ModeFixed allows at most LimiterConfig.FixedLimit calls at once.
	ModeFixed Mode = "fixed"
	// ModeAdaptive finds the limit from observed latency.
	ModeAdaptive Mode = "adaptive"
)

// maxLimit bounds every limit so that arithmetic on it stays exact.
const maxLimit = 1 << 30

// LimiterConfig configures a [Limiter]. The zero value is not valid; start
// from [DefaultLimiterConfig].
type LimiterConfig struct {
	// Mode is off, fixed or adaptive. Default adaptive.
	Mode Mode `yaml:"mode" json:"mode"`
	// FixedLimit is the limit in fixed mode, at least 1. Default 100.
	FixedLimit int `yaml:"fixed_limit" json:"fixed_limit"`
	// InitialLimit is the adaptive limit before any sample, within
	// [MinLimit, MaxLimit]; slow start doubles it per window with headroom.
	// Default 10.
	InitialLimit int `yaml:"initial_limit" json:"initial_limit"`
	// MinLimit is the floor of the adaptive limit, at least 1. Default 4.
	MinLimit int `yaml:"min_limit" json:"min_limit"`
	// MaxLimit is the ceiling of the adaptive limit, at least MinLimit.
	// Default 1000.
	MaxLimit int `yaml:"max_limit" json:"max_limit"`
	// Smoothing is the weight of each window's new estimate against the
	// current limit when the limit rises after slow start, within (0, 1];
	// 1 follows every window at once. Falls are never smoothed. Default
	// 0.5.
	Smoothing float64 `yaml:"smoothing" json:"smoothing"`
	// Tolerance is how many times the long-term baseline latency a window's
	// latency may reach before it counts as congestion, at least 1.
	// Default 1.25.
	Tolerance float64 `yaml:"tolerance" json:"tolerance"`
	// Window is the shortest duration of a sample window; the limit is
	// updated once per window. Must be positive. Default 100ms.
	Window duration.Duration `yaml:"window" json:"window"`
	// MinSamples is the number of samples a window needs before it updates
	// the limit; a window with fewer is extended. At least 1. Default 10.
	MinSamples int `yaml:"min_samples" json:"min_samples"`
	// BaselineWindows is the number of windows the long-term baseline
	// latency averages over (an exponential average), at least 1.
	// Default 600.
	BaselineWindows int `yaml:"baseline_windows" json:"baseline_windows"`
	// ProbeInterval is the least time between two probes of the latency
	// without queueing (see the package comment), which happens only at
	// the close of a window in which calls were refused. Probes closer
	// together happen near the floor (every 5 windows at most), and once
	// at the start. 0: no periodic probes. Not negative. Default 30s.
	ProbeInterval duration.Duration `yaml:"probe_interval" json:"probe_interval"`
}

// DefaultLimiterConfig returns the documented defaults of every
// [LimiterConfig] field.
func DefaultLimiterConfig() LimiterConfig {
	return LimiterConfig{
		Mode:            ModeAdaptive,
		FixedLimit:      100,
		InitialLimit:    10,
		MinLimit:        4,
		MaxLimit:        1000,
		Smoothing:       0.5,
		Tolerance:       1.25,
		Window:          duration.Duration(100 * time.Millisecond),
		MinSamples:      10,
		BaselineWindows: 600,
		ProbeInterval:   duration.Duration(30 * time.Second),
	}
}

// Validate reports the first invalid field of c, named as in YAML. Every
// field is checked whatever the mode, so that a switch of mode at run time
// cannot expose a bad value.
func (c LimiterConfig) Validate() error { return wrap("", c.validate()) }

func (c LimiterConfig) validate() error {
	switch {
	case c.Mode != ModeOff && c.Mode != ModeFixed && c.Mode != ModeAdaptive:
		return fmt.Errorf("mode must be off, fixed or adaptive, got %q", c.Mode)
	case c.FixedLimit < 1 || c.FixedLimit > maxLimit:
		return fmt.Errorf("fixed_limit must be within [1, %d], got %d", maxLimit, c.FixedLimit)
	case c.MinLimit < 1 || c.MinLimit > maxLimit:
		return fmt.Errorf("min_limit must be within [1, %d], got %d", maxLimit, c.MinLimit)
	case c.MaxLimit < c.MinLimit || c.MaxLimit > maxLimit:
		return fmt.Errorf("max_limit must be within [min_limit (%d), %d], got %d", c.MinLimit, maxLimit, c.MaxLimit)
	case c.InitialLimit < c.MinLimit || c.InitialLimit > c.MaxLimit:
		return fmt.Errorf("initial_limit must be within [min_limit (%d), max_limit (%d)], got %d", c.MinLimit, c.MaxLimit, c.InitialLimit)
	case math.IsNaN(c.Smoothing) || c.Smoothing <= 0 || c.Smoothing > 1:
		return fmt.Errorf("smoothing must be within (0, 1], got %v", c.Smoothing)
	case math.IsNaN(c.Tolerance) || math.IsInf(c.Tolerance, 0) || c.Tolerance < 1:
		return fmt.Errorf("tolerance must be a finite number of at least 1, got %v", c.Tolerance)
	case c.Window <= 0:
		return fmt.Errorf("window must be positive, got %v", c.Window)
	case c.MinSamples < 1:
		return fmt.Errorf("min_samples must be at least 1, got %d", c.MinSamples)
	case c.BaselineWindows < 1:
		return fmt.Errorf("baseline_windows must be at least 1, got %d", c.BaselineWindows)
	case c.ProbeInterval < 0:
		return fmt.Errorf("probe_interval must not be negative, got %v", c.ProbeInterval)
	}
	return nil
}

// numBuckets is the number of buckets a [Throttle]'s window is cut into.
const numBuckets = 20

// minThrottleWindow is the shortest ThrottleConfig.Window.
const minThrottleWindow = time.Millisecond

// ThrottleConfig configures a [Throttle]. The zero value is not valid;
// start from [DefaultThrottleConfig].
type ThrottleConfig struct {
	// K sets when the client starts refusing locally: once the target
	// accepts fewer than 1/K of the calls that ended. At least 1 (1
	// throttles hardest). Default 2.
	K float64 `yaml:"k" json:"k"`
	// Window is the sliding window requests and accepts are counted over
	// (in 20 buckets, so the oldest bucket leaves it in steps of a
	// twentieth), at least 1ms. It bounds how long a throttle remembers
	// an overload: half a second after the target accepts again, the client
	// sends all its calls. Default 500ms.
	Window duration.Duration `yaml:"window" json:"window"`
	// MinRequests is the number of requests in the window below which no
	// call is refused. Not negative. Default 20.
	MinRequests int `yaml:"min_requests" json:"min_requests"`
}

// DefaultThrottleConfig returns the documented defaults of every
// [ThrottleConfig] field.
func DefaultThrottleConfig() ThrottleConfig {
	return ThrottleConfig{
		K:           2,
		Window:      duration.Duration(500 * time.Millisecond),
		MinRequests: 20,
	}
}

// Validate reports the first invalid field of c, named as in YAML.
func (c ThrottleConfig) Validate() error { return wrap("", c.validate()) }

func (c ThrottleConfig) validate() error {
	switch {
	case math.IsNaN(c.K) || math.IsInf(c.K, 0) || c.K < 1:
		return fmt.Errorf("k must be a finite number of at least 1, got %v", c.K)
	case time.Duration(c.Window) < minThrottleWindow:
		return fmt.Errorf("window must be at least %v, got %v", minThrottleWindow, c.Window)
	case c.MinRequests < 0:
		return fmt.Errorf("min_requests must not be negative, got %d", c.MinRequests)
	}
	return nil
}

// Config is the overload section of a service's configuration: the server
// side's limit and the client side's throttle.
type Config struct {
	Server ServerConfig `yaml:"server" json:"server"`
	Client ClientConfig `yaml:"client" json:"client"`
}

// DefaultConfig returns the documented defaults of both sides: an adaptive
// server limit and client throttling, both on.
func DefaultConfig() Config {
	return Config{Server: DefaultServerConfig(), Client: DefaultClientConfig()}
}

// Validate reports the invalid fields of both sides, named with their
// place in the configuration (overload.server.min_limit).
func (c Config) Validate() error {
	return errors.Join(wrap("server.", c.Server.validate()), wrap("client.", c.Client.validate()))
}

// wrap names the package and the place of the field that err, a message
// starting with the field's YAML name, is about: "overload: " + place +
// err. nil stays nil.
func wrap(place string, err error) error {
	if err == nil {
		return nil
	}
	return fmt.Errorf("overload: %s%w", place, err)
}
