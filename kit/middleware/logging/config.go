package logging

import (
	"fmt"
	"log/slog"
	"time"

	"github.com/grpckit/grpckit/kit/duration"
)

// Config is the access log part of a service's configuration.
type Config struct {
	// Level is the level of the records of successful calls: "debug",
	// "info", "warn" or "error" (any text [slog.Level.UnmarshalText]
	// accepts, such as "info+2"). Default "debug": a service logging at info
	// writes no line per successful call, which costs about 7% of a call's
	// latency; set "info" for a line per call.
	Level string `yaml:"level" json:"level"`
	// ErrorLevel is the level of the records of failed calls (any code but
	// OK), never below Level. Default "info".
	ErrorLevel string `yaml:"error_level" json:"error_level"`
	// SlowThreshold makes calls that take longer than it log at Warn.
	// 0 turns this off. Default 0.
	SlowThreshold duration.Duration `yaml:"slow_threshold" json:"slow_threshold"`
}

// DefaultConfig returns the documented defaults of every [Config] field.
func DefaultConfig() Config {
	return Config{Level: "debug", ErrorLevel: "info"}
}

// Validate reports the first invalid field of c, named as in YAML.
func (c Config) Validate() error {
	_, err := c.compile()
	return err
}

// settings are a valid Config in the form the interceptors use.
type settings struct {
	cfg       Config
	level     slog.Level    // of records of successful calls
	errLevel  slog.Level    // of records of failed calls
	slow      time.Duration // 0: off
	slowLevel slog.Level    // of records of slow calls
}

func (c Config) compile() (*settings, error) {
	var level slog.Level
	if err := level.UnmarshalText([]byte(c.Level)); err != nil {
		return nil, fmt.Errorf("logging: level %q: want debug, info, warn or error", c.Level)
	}
	errLevel := level
	if c.ErrorLevel != "" {
		if err := errLevel.UnmarshalText([]byte(c.ErrorLevel)); err != nil {
			return nil, fmt.Errorf("logging: error_level %q: want debug, info, warn or error", c.ErrorLevel)
		}
		errLevel = max(errLevel, level)
	}
	if c.SlowThreshold < 0 {
		return nil, fmt.Errorf("logging: slow_threshold must not be negative, got %v", c.SlowThreshold)
	}
	return &settings{
		cfg:       c,
		level:     level,
		errLevel:  errLevel,
		slow:      time.Duration(c.SlowThreshold),
		slowLevel: max(level, slog.LevelWarn),
	}, nil
}
