package svcmain

import (
	"flag"
	"fmt"
	"log/slog"
	"net/http"
	"os"
	"strings"
	"time"

	"github.com/grpckit/grpckit/kit"
	"github.com/grpckit/grpckit/kit/registry"
	"github.com/grpckit/grpckit/kit/registry/consul"
)

// Flags are the settings every example service reads.
type Flags struct {
	Listen    string
	Admin     string
	Advertise string
	Consul    string
	Drain     time.Duration
	LogLevel  string
	Probe     string

	envErr error // a malformed environment default, reported by Logger
}

// Register defines the common flags on fs, defaulting to the environment.
func Register(fs *flag.FlagSet) *Flags {
	f := &Flags{}
	fs.StringVar(&f.Listen, "listen", Env("GRPCKIT_SERVER_LISTEN", "127.0.0.1:0"), "gRPC listen address (env GRPCKIT_SERVER_LISTEN)")
	fs.StringVar(&f.Admin, "admin", Env("GRPCKIT_SERVER_ADMIN", "127.0.0.1:0"), "admin HTTP listen address, empty for none (env GRPCKIT_SERVER_ADMIN)")
	fs.StringVar(&f.Advertise, "advertise", Env("GRPCKIT_REGISTRY_ADVERTISE", ""), "host registered in Consul; default: the listen host, or the machine's first IPv4 (env GRPCKIT_REGISTRY_ADVERTISE)")
	fs.StringVar(&f.Consul, "consul", Env("GRPCKIT_REGISTRY_ADDRESS", Env("CONSUL_HTTP_ADDR", "127.0.0.1:8500")), `Consul agent address, "off" to run without registering (env GRPCKIT_REGISTRY_ADDRESS, CONSUL_HTTP_ADDR)`)
	drain := Env("GRPCKIT_SERVER_DRAIN", "3s")
	d, err := time.ParseDuration(drain)
	if err != nil {
		f.envErr = fmt.Errorf("GRPCKIT_SERVER_DRAIN=%q: %w", drain, err)
	}
	fs.DurationVar(&f.Drain, "drain", d, "how long to keep serving after deregistering (env GRPCKIT_SERVER_DRAIN)")
	fs.StringVar(&f.Probe, "probe", "", "GET this URL, exit 0 on a 2xx answer and 1 otherwise, and do nothing else (container health checks)")
	fs.StringVar(&f.LogLevel, "log-level", Env("GRPCKIT_LOG_LEVEL", "info"), "debug, info, warn or error (env GRPCKIT_LOG_LEVEL)")
	return f
}

// RunProbe does the -probe check and exits when -probe is set; otherwise it
// returns at once. Images without a shell use it as their health check.
func (f *Flags) RunProbe() {
	if f.Probe == "" {
		return
	}
	c := http.Client{Timeout: 3 * time.Second}
	resp, err := c.Get(f.Probe)
	if err != nil {
		fmt.Fprintln(os.Stderr, "probe:", err)
		os.Exit(1)
	}
	resp.Body.Close()
	if resp.StatusCode/100 != 2 {
		fmt.Fprintln(os.Stderr, "probe:", resp.Status)
		os.Exit(1)
	}
	os.Exit(0)
}

// Env returns the environment variable key, or def when it is unset.
func Env(key, def string) string {
	if v, ok := os.LookupEnv(key); ok {
		return v
	}
	return def
}

// Logger returns a text logger on stderr at the configured level, tagged
// with service. It fails on a bad level or a malformed environment variable.
func (f *Flags) Logger(service string) (*slog.Logger, error) {
	if f.envErr != nil {
		return nil, f.envErr
	}
	var level slog.Level
	if err := level.UnmarshalText([]byte(f.LogLevel)); err != nil {
		return nil, fmt.Errorf("log level %q: want debug, info, warn or error", f.LogLevel)
	}
	return slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: level})).With("service", service), nil
}

// Registry returns the Consul registry, or nil when Consul is "off".
func (f *Flags) Registry(logger *slog.Logger) (*consul.Registry, error) {
	if strings.EqualFold(f.Consul, "off") {
		return nil, nil
	}
	return consul.NewFromAddress(f.Consul, consul.WithLogger(logger))
}

// Server returns a kit server for service, registered in reg when it is not nil.
func (f *Flags) Server(service string, reg *consul.Registry, logger *slog.Logger) (*kit.Server, error) {
	opts := []kit.ServerOption{
		kit.WithServiceName(service),
		kit.WithAddress(f.Listen),
		kit.WithAdminAddress(f.Admin),
		kit.WithDrain(f.Drain),
		kit.WithLogger(logger),
	}
	if reg != nil {
		opts = append(opts, kit.WithRegistrar(reg, registry.Instance{Name: service, Address: f.Advertise}))
	}
	return kit.NewServer(opts...)
}

// Fatal logs err (on slog.Default when logger is nil) and exits with status 1.
func Fatal(logger *slog.Logger, msg string, err error) {
	if logger == nil {
		logger = slog.Default()
	}
	logger.Error(msg, "error", err)
	os.Exit(1)
}
