package breaker

import (
	"errors"
	"fmt"
	"math"
	"time"

	"github.com/grpckit/grpckit/kit/duration"
	"github.com/grpckit/grpckit/kit/statuscode"
)

// Config is the breaker section of a service's configuration. The zero value
// is not valid; start from [DefaultConfig].
type Config struct {
	// ConsecutiveFailures opens a breaker when this many failures follow one
	// another. 0 turns this trigger off. Default 5.
	ConsecutiveFailures uint32 `yaml:"consecutive_failures" json:"consecutive_failures"`
	// FailureRatio opens a breaker when the share of failures among the calls
	// that finished in the current Interval reaches it (0 to 1), provided at
	// least MinRequests calls finished. 0 turns this trigger off. Default 0.5.
	FailureRatio float64 `yaml:"failure_ratio" json:"failure_ratio"`
	// MinRequests is the number of finished calls in the current Interval
	// below which FailureRatio is not applied. Default 20.
	MinRequests uint32 `yaml:"min_requests" json:"min_requests"`
	// Interval is the period after which a closed breaker clears its counts.
	// 0 never clears them. Default 10s.
	Interval duration.Duration `yaml:"interval" json:"interval"`
	// OpenTimeout is how long a breaker stays open before it turns half-open
	// and lets probe calls through. Must be positive. Default 5s.
	OpenTimeout duration.Duration `yaml:"open_timeout" json:"open_timeout"`
	// HalfOpenRequests is the number of probe calls a half-open breaker lets
	// through; that many successes close it. At least 1. Default 1.
	HalfOpenRequests uint32 `yaml:"half_open_requests" json:"half_open_requests"`
	// DeadlineExceeded is what a DEADLINE_EXCEEDED counts for: "when_silent"
	// (a failure only when no call of the same target and method got an
	// answer while the timed-out call was out, else neither success nor
	// failure), "failure" (always, as before when_silent) or "ignore"
	// (never). See [statuscode.DeadlineRule]. Default "when_silent".
	DeadlineExceeded statuscode.DeadlineRule `yaml:"deadline_exceeded" json:"deadline_exceeded"`
}

// DefaultConfig returns the documented defaults of every [Config] field.
func DefaultConfig() Config {
	return Config{
		ConsecutiveFailures: 5,
		FailureRatio:        0.5,
		MinRequests:         20,
		Interval:            duration.Duration(10 * time.Second),
		OpenTimeout:         duration.Duration(5 * time.Second),
		HalfOpenRequests:    1,
		DeadlineExceeded:    statuscode.DeadlineWhenSilent,
	}
}

// Validate reports the first invalid field of c, named as in YAML.
func (c Config) Validate() error {
	switch {
	case math.IsNaN(c.FailureRatio) || c.FailureRatio < 0 || c.FailureRatio > 1:
		return fmt.Errorf("breaker: failure_ratio must be within [0, 1], got %v", c.FailureRatio)
	case c.Interval < 0:
		return fmt.Errorf("breaker: interval must not be negative, got %v", c.Interval)
	case c.OpenTimeout <= 0:
		return fmt.Errorf("breaker: open_timeout must be positive, got %v", c.OpenTimeout)
	case c.HalfOpenRequests < 1:
		return errors.New("breaker: half_open_requests must be at least 1")
	}
	if err := c.DeadlineExceeded.Validate(); err != nil {
		return fmt.Errorf("breaker: deadline_exceeded: %w", err)
	}
	return nil
}

// readyToTrip returns gobreaker's ReadyToTrip for c.
func (c Config) readyToTrip(failures, successes, consecutive uint32) bool {
	if c.ConsecutiveFailures > 0 && consecutive >= c.ConsecutiveFailures {
		return true
	}
	n := failures + successes
	return c.FailureRatio > 0 && n > 0 && n >= c.MinRequests &&
		float64(failures)/float64(n) >= c.FailureRatio
}
