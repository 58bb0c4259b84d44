// Package svcmain holds what the example services' main functions share:
// the configuration through kit/config (defaults, -config file,
// GRPCKIT_* environment, flags, the Consul key grpckit/<service>), the
// logger whose level follows it, the Consul registry, and kit servers and
// clients driven by the configuration.
package svcmain

import (
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"net/http"
	"os"
	"time"

	"google.golang.org/grpc"

	"github.com/grpckit/grpckit/kit"
	"github.com/grpckit/grpckit/kit/config"
	"github.com/grpckit/grpckit/kit/registry"
	"github.com/grpckit/grpckit/kit/registry/consul"
)

// Service is a started service's configuration, logger and registry.
type Service[T any] struct {
	Name     string
	Config   *config.Store[T]
	Logger   *slog.Logger
	Registry *consul.Registry // nil when registry.address is "off"

	server *kit.Server // the last made by Server; shows the clients on its /debug/kit
}

// Start loads the configuration of service from args and the environment,
// exiting when asked for -h, -print-config or -probe, or when the
// configuration is invalid.
func Start[T any](service string, defaults T, args []string) *Service[T] {
	if len(args) == 2 && (args[0] == "-probe" || args[0] == "--probe") {
		probe(args[1])
	}
	fs := flag.NewFlagSet(service, flag.ContinueOnError)
	fs.String("probe", "", "GET this URL, exit 0 on a 2xx answer and 1 otherwise, and do nothing else (container health checks; must be the only flag)")
	boot := slog.New(slog.NewTextHandler(os.Stderr, nil))
	store, err := config.Load(service, defaults, config.WithFlags(fs, args), config.WithLogger(boot))
	switch {
	case errors.Is(err, config.ErrPrinted), errors.Is(err, flag.ErrHelp):
		os.Exit(0)
	case err != nil:
		Fatal(boot, "configuration", err)
	}
	logger, err := store.Logger(os.Stderr)
	if err != nil {
		Fatal(boot, "logger", err)
	}
	s := &Service[T]{Name: service, Config: store, Logger: logger}
	if std := store.Standard(); !std.Registry.ConsulOff() {
		c, err := config.NewConsulClient(std.Registry)
		if err != nil {
			Fatal(logger, "consul client", err)
		}
		s.Registry = consul.New(c, consul.WithLogger(logger))
	}
	return s
}

// Server returns a kit server configured by the standard sections and
// registered in the registry, if any.
func (s *Service[T]) Server(opts ...kit.ServerOption) (*kit.Server, error) {
	std := s.Config.Standard()
	o := []kit.ServerOption{kit.WithServiceName(s.Name), kit.WithConfig(s.Config), kit.WithLogger(s.Logger)}
	if s.Registry != nil {
		o = append(o, kit.WithRegistrar(s.Registry, registry.Instance{
			Name: s.Name, Address: std.Registry.Advertise, Tags: std.Registry.Tags, Meta: std.Registry.Meta,
			Weights: std.Registry.Weights,
		}))
	}
	srv, err := kit.NewServer(append(o, opts...)...)
	if err == nil {
		s.server = srv
	}
	return srv, err
}

// Client returns a kit client for target configured by the standard
// sections, discovering through the registry, if any, and shown on the
// admin page of the server made by Server.
func (s *Service[T]) Client(target string, opts ...kit.ClientOption) (*grpc.ClientConn, error) {
	o := []kit.ClientOption{kit.WithConfig(s.Config), kit.WithLogger(s.Logger)}
	if s.server != nil {
		o = append(o, kit.WithAdminOf(s.server))
	}
	if s.Registry != nil {
		o = append(o, kit.WithDiscovery(s.Registry))
	}
	return kit.NewClient(target, append(o, opts...)...)
}

// Close stops the configuration's watches and the registry.
func (s *Service[T]) Close() {
	s.Config.Close()
	if s.Registry != nil {
		s.Registry.Close()
	}
}

// probe GETs url and exits 0 on a 2xx answer, 1 otherwise. Images without a
// shell use it as their health check.
func probe(url string) {
	c := http.Client{Timeout: 3 * time.Second}
	resp, err := c.Get(url)
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

// Fatal logs err and exits with status 1.
func Fatal(logger *slog.Logger, msg string, err error) {
	logger.Error(msg, "error", err)
	os.Exit(1)
}
