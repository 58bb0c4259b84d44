package main

import (
	"errors"
	"fmt"
	"maps"
	"net"
	"slices"
	"time"

	"github.com/grpckit/grpckit/kit/duration"

	"github.com/grpckit/grpckit/kit/config"
	"github.com/grpckit/grpckit/services/gateway"
)

// Config is the gateway service's configuration: kit's standard sections
// and the gateway section.
type Config struct {
	config.Standard `yaml:",inline"`
	Gateway         Section `yaml:"gateway"`
}

// Section is the gateway section of [Config]. Listen and the http settings
// are read at start; the settings of [gateway.Config] (auth, limits,
// backend_timeout, max_body_bytes, routes, cors) are live.
type Section struct {
	// Listen is the HTTP listen address of the REST/JSON API. Default
	// "127.0.0.1:8080".
	Listen string `yaml:"listen"`
	// HTTP holds the HTTP server's timeouts and limits.
	HTTP HTTP `yaml:"http"`

	gateway.Config `yaml:",inline"`
}

// HTTP configures the HTTP server. Read at start.
type HTTP struct {
	// ReadHeaderTimeout bounds reading a request's headers. Default 5s.
	ReadHeaderTimeout duration.Duration `yaml:"read_header_timeout"`
	// ReadTimeout bounds reading a whole request, body included. Default
	// 30s.
	ReadTimeout duration.Duration `yaml:"read_timeout"`
	// WriteTimeout bounds serving a request, from the end of its headers to
	// the end of the answer; it must exceed gateway.backend_timeout.
	// Default 30s.
	WriteTimeout duration.Duration `yaml:"write_timeout"`
	// IdleTimeout is how long a keep-alive connection waits for its next
	// request. Default 2m.
	IdleTimeout duration.Duration `yaml:"idle_timeout"`
	// MaxHeaderBytes bounds the size of a request's headers. Default 65536.
	MaxHeaderBytes int `yaml:"max_header_bytes"`
}

// DefaultConfig returns the defaults of every setting.
func DefaultConfig() Config {
	return Config{
		Standard: config.DefaultStandard(),
		Gateway: Section{
			Listen: "127.0.0.1:8080",
			HTTP: HTTP{
				ReadHeaderTimeout: duration.Duration(5 * time.Second),
				ReadTimeout:       duration.Duration(30 * time.Second),
				WriteTimeout:      duration.Duration(30 * time.Second),
				IdleTimeout:       duration.Duration(2 * time.Minute),
				MaxHeaderBytes:    64 << 10,
			},
			Config: gateway.DefaultConfig(),
		},
	}
}

// Validate checks the gateway section (kit/config checks the standard ones).
func (c *Config) Validate() error {
	return c.Gateway.Validate()
}

// Validate reports every invalid field of s.
func (s *Section) Validate() error {
	var errs []error
	if _, _, err := net.SplitHostPort(s.Listen); err != nil {
		errs = append(errs, fmt.Errorf("gateway.listen %q: want host:port", s.Listen))
	}
	for _, d := range []struct {
		name string
		v    duration.Duration
	}{
		{"read_header_timeout", s.HTTP.ReadHeaderTimeout},
		{"read_timeout", s.HTTP.ReadTimeout},
		{"write_timeout", s.HTTP.WriteTimeout},
		{"idle_timeout", s.HTTP.IdleTimeout},
	} {
		if d.v <= 0 {
			errs = append(errs, fmt.Errorf("gateway.http.%s %v must be positive", d.name, d.v))
		}
	}
	if name, d := longestTimeout(s.Config); s.HTTP.WriteTimeout > 0 && s.HTTP.WriteTimeout <= d {
		errs = append(errs, fmt.Errorf("gateway.http.write_timeout %v must exceed %s %v", s.HTTP.WriteTimeout, name, d))
	}
	if s.HTTP.MaxHeaderBytes <= 0 {
		errs = append(errs, fmt.Errorf("gateway.http.max_header_bytes %d must be positive", s.HTTP.MaxHeaderBytes))
	}
	if err := s.Config.Validate(); err != nil {
		errs = append(errs, err)
	}
	return errors.Join(errs...)
}

// longestTimeout returns the longest deadline of c's backend calls, and
// the setting that gives it: gateway.backend_timeout or a route's timeout.
// The HTTP server's write timeout must exceed it, else a slow call drops
// the connection instead of answering 504.
func longestTimeout(c gateway.Config) (string, duration.Duration) {
	name, d := "gateway.backend_timeout", c.BackendTimeout
	for _, m := range slices.Sorted(maps.Keys(c.Routes)) {
		if t := c.Routes[m].Timeout; t > d {
			name, d = "gateway.routes."+m+".timeout", t
		}
	}
	return name, d
}
