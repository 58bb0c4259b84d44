package config

import (
	"errors"
	"fmt"
	"log/slog"
	"reflect"
	"strings"
	"time"

	"github.com/grpckit/grpckit/kit/registry"

	"github.com/grpckit/grpckit/kit/duration"

	"github.com/grpckit/grpckit/kit/balancer"
	"github.com/grpckit/grpckit/kit/middleware/auth"
	"github.com/grpckit/grpckit/kit/middleware/breaker"
	"github.com/grpckit/grpckit/kit/middleware/logging"
	"github.com/grpckit/grpckit/kit/middleware/overload"
	"github.com/grpckit/grpckit/kit/middleware/ratelimit"
	"github.com/grpckit/grpckit/kit/middleware/retry"
	"github.com/grpckit/grpckit/kit/middleware/telemetry"
	"github.com/grpckit/grpckit/kit/middleware/timeout"
)

// Standard holds the sections every kit service has. A service's config
// struct embeds it inline and adds its own sections:
//
//	type Config struct {
//		config.Standard `yaml:",inline"`
//		Store Store `yaml:"store" json:"store"`
//	}
//
// The live sections (ratelimit, overload, timeout, retry, breaker,
// balancer, log levels, auth keys and public methods) take effect on a
// running service when a [Store] built with kit.WithConfig changes; server,
// registry and telemetry are read at start, and so is whether auth is on.
//
// Settings that change the security boundary carry the struct tag
// `kit:"local"` and come from the defaults, the file, the environment or
// the flags only: server.listen, server.admin, server.pprof, server.reflection, the whole
// registry section (the Consul agent and token) and the whole auth section.
// A Consul KV document that sets one is refused as a whole ([LocalError]).
type Standard struct {
	Server    Server           `yaml:"server" json:"server"`
	Registry  Registry         `yaml:"registry" kit:"local" json:"registry"`
	RateLimit ratelimit.Config `yaml:"ratelimit" json:"ratelimit"`
	Overload  overload.Config  `yaml:"overload" json:"overload"`
	Timeout   timeout.Config   `yaml:"timeout" json:"timeout"`
	Retry     retry.Config     `yaml:"retry" json:"retry"`
	Breaker   breaker.Config   `yaml:"breaker" json:"breaker"`
	Balancer  balancer.Config  `yaml:"balancer" json:"balancer"`
	Log       Log              `yaml:"log" json:"log"`
	Telemetry telemetry.Config `yaml:"telemetry" json:"telemetry"`
	Auth      auth.Config      `yaml:"auth" kit:"local" json:"auth"`
}

// Server is the server section: where a service listens. Read at start.
type Server struct {
	// Listen is the gRPC listen address. Default "127.0.0.1:0" (a free port
	// on loopback).
	Listen string `yaml:"listen" kit:"local" json:"listen"`
	// Admin is the admin HTTP listen address (/healthz, /metrics,
	// /debug/kit, pprof when Pprof is on); "" turns it off. Local: never
	// from Consul KV. Default "127.0.0.1:0".
	Admin string `yaml:"admin" kit:"local" json:"admin"`
	// Drain is how long a stopping server keeps serving after it left the
	// registry, so that watchers see it go. Default 3s.
	Drain duration.Duration `yaml:"drain" json:"drain"`
	// ShutdownTimeout bounds the whole shutdown under Run (deregistration,
	// drain, graceful stop). Default 15s.
	ShutdownTimeout duration.Duration `yaml:"shutdown_timeout" json:"shutdown_timeout"`
	// MaxConcurrentStreams caps the calls one client connection may have
	// open at once (HTTP/2 SETTINGS_MAX_CONCURRENT_STREAMS); beyond it a
	// client's new calls wait for a stream to end. grpc-go's own default is
	// unlimited, which lets one connection hold as many handler goroutines
	// as it likes. Read at start. Default 1000.
	MaxConcurrentStreams uint32 `yaml:"max_concurrent_streams" json:"max_concurrent_streams"`
	// Pprof mounts net/http/pprof's /debug/pprof/ on the admin listener.
	// Off by default: its cmdline page shows the command line, secrets
	// given as flags included. Read at start. Local: never from Consul KV.
	// Default false.
	Pprof bool `yaml:"pprof" kit:"local" json:"pprof"`
	// Reflection serves gRPC server reflection, which lists every method
	// and message of the service to anyone who can connect (grpcurl needs
	// it without the protos). The local stack turns it on. Read at start.
	// Local: never from Consul KV. Default false.
	Reflection bool `yaml:"reflection" kit:"local" json:"reflection"`
}

// Registry is the registry section: the Consul agent and how the service
// registers. Read at start. Local (`kit:"local"` on the section): every
// field comes from the defaults, the file, the environment or the flags,
// never from Consul KV.
type Registry struct {
	// Address is the Consul agent's HTTP address; "" means CONSUL_HTTP_ADDR,
	// else 127.0.0.1:8500; "off" runs without Consul (no registration, no
	// KV source). Default "".
	Address string `yaml:"address" json:"address"`
	// Token is the Consul ACL token; "" means CONSUL_HTTP_TOKEN. Masked by
	// Print. With Consul's ACLs on, a token Consul does not know, or one
	// without the rights the service needs (service:write on its name to
	// register, key:read on grpckit/<name>), fails the start with an error
	// wrapping consul.ErrACLRefused (kit/registry/consul).
	Token string `yaml:"token" kit:"secret,local" json:"-"`
	// Advertise is the host registered in Consul; "" means the listen host,
	// or the machine's first IPv4 when the service listens on every
	// interface. Default "".
	Advertise string `yaml:"advertise" json:"advertise"`
	// Tags and Meta are registered with the instance.
	Tags []string          `yaml:"tags" json:"tags"`
	Meta map[string]string `yaml:"meta" json:"meta"`
	// Weights are the instance's balancing weights by health state; 0 means
	// 1. Default 0 and 0.
	Weights registry.Weights `yaml:"weights" json:"weights"`
}

// Log is the log section. Level is live; Format is read at start.
type Log struct {
	// Level is the level of the service's logger: "debug", "info", "warn"
	// or "error". Default "info".
	Level string `yaml:"level" json:"level"`
	// Format is "text" or "json". Default "text".
	Format string `yaml:"format" json:"format"`
	// Access configures the access log of the server's calls (live).
	Access logging.Config `yaml:"access" json:"access"`
}

// DefaultStandard returns the documented defaults of every standard section.
func DefaultStandard() Standard {
	return Standard{
		Server: Server{
			Listen:               "127.0.0.1:0",
			Admin:                "127.0.0.1:0",
			Drain:                duration.Duration(3 * time.Second),
			ShutdownTimeout:      duration.Duration(15 * time.Second),
			MaxConcurrentStreams: 1000,
		},
		RateLimit: ratelimit.DefaultConfig(),
		Overload:  overload.DefaultConfig(),
		Timeout:   timeout.DefaultConfig(),
		Retry:     retry.DefaultConfig(),
		Breaker:   breaker.DefaultConfig(),
		Balancer:  *balancer.DefaultConfig(),
		Log:       Log{Level: "info", Format: "text", Access: logging.DefaultConfig()},
		Telemetry: telemetry.DefaultConfig(),
		Auth:      auth.DefaultConfig(),
	}
}

// Sections returns s; through embedding, it gives kit the standard
// sections of any config struct.
func (s *Standard) Sections() *Standard { return s }

// Validate reports every invalid field of the standard sections: it calls
// the Validate method of every section, so a section added to Standard is
// validated without a line here.
func (s *Standard) Validate() error {
	var errs []error
	v := reflect.ValueOf(s).Elem()
	for i := range v.NumField() {
		sec, ok := v.Field(i).Addr().Interface().(interface{ Validate() error })
		if !ok {
			continue // every section has one (TestEveryStandardSectionValidates)
		}
		if err := sec.Validate(); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

// Validate reports every invalid field of the server section.
func (s *Server) Validate() error {
	var errs []error
	if s.Listen == "" {
		errs = append(errs, errors.New("server.listen must not be empty"))
	}
	if s.Drain < 0 {
		errs = append(errs, fmt.Errorf("server.drain %v must not be negative", s.Drain))
	}
	if s.ShutdownTimeout <= 0 {
		errs = append(errs, fmt.Errorf("server.shutdown_timeout %v must be positive", s.ShutdownTimeout))
	}
	if s.MaxConcurrentStreams == 0 {
		errs = append(errs, errors.New("server.max_concurrent_streams must be at least 1"))
	}
	return errors.Join(errs...)
}

// Validate reports every invalid field of the registry section.
func (r *Registry) Validate() error {
	if r.Weights.Passing < 0 || r.Weights.Warning < 0 {
		return fmt.Errorf("registry.weights %+v must not be negative", r.Weights)
	}
	return nil
}

// Validate reports every invalid field of the log section.
func (l *Log) Validate() error {
	var errs []error
	if _, err := l.level(); err != nil {
		errs = append(errs, err)
	}
	if f := l.Format; f != "text" && f != "json" {
		errs = append(errs, fmt.Errorf("log.format %q: want text or json", f))
	}
	if err := l.Access.Validate(); err != nil {
		errs = append(errs, err)
	}
	return errors.Join(errs...)
}

// ConsulOff reports whether the registry section turns Consul off.
func (r Registry) ConsulOff() bool { return strings.EqualFold(r.Address, "off") }

// level parses Level.
func (l Log) level() (slog.Level, error) {
	var v slog.Level
	if err := v.UnmarshalText([]byte(l.Level)); err != nil {
		return 0, fmt.Errorf("log.level %q: want debug, info, warn or error", l.Level)
	}
	return v, nil
}
