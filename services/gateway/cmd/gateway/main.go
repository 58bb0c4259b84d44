// Command gateway runs the generic REST/JSON gateway. It serves HTTP on
// gateway.listen (default 127.0.0.1:8080) the routes of the services it
// discovers in Consul, learnt from the google.api.http annotations of their
// protos through gRPC server reflection, and calls them through
// consul:///<name>. It runs a kit server (gRPC health, admin endpoints)
// that registers in Consul as "gateway", with the HTTP address in the Meta
// key "http". Every setting comes from kit/config: defaults, -config FILE,
// GRPCKIT_* variables, flags and the Consul key grpckit/gateway (-h lists
// them, -print-config shows the result).
//
//	GRPCKIT_AUTH_HMAC_SECRET="$SECRET" gateway -registry.address 127.0.0.1:8500
//
// (the secret through the environment rather than a flag, which ps shows)
//
// It runs on kit/service: on SIGTERM or SIGINT the gateway leaves Consul,
// keeps serving HTTP through the drain window (without keep-alives), then
// stops the HTTP server gracefully within server.shutdown_timeout.
package main

import (
	"context"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"slices"
	"time"

	"google.golang.org/grpc"

	"github.com/grpckit/grpckit/kit/config"
	"github.com/grpckit/grpckit/kit/service"
	"github.com/grpckit/grpckit/services/gateway"
)

func main() {
	service.Main("gateway", DefaultConfig(), func(s *service.Service[Config]) error {
		_, err := setup(s)
		return err
	})
}

// setup makes the gateway's backend clients and handler and listens on
// gateway.listen; the runtime serves it beside the kit server (gRPC health,
// admin) and registers its address in Consul under the Meta key "http".
func setup(s *service.Service[Config]) (net.Addr, error) {
	cfg := s.Value()
	hs, cleanup, err := newHTTPServer(s, cfg)
	if err != nil {
		return nil, err
	}
	s.OnStop(func(context.Context) error { cleanup(); return nil })
	addr, err := s.HTTP("http", cfg.Gateway.Listen, hs)
	if err != nil {
		return nil, fmt.Errorf("gateway.listen: %w", err)
	}
	return addr, nil
}

// newHTTPServer returns the HTTP server of the gateway, with its backend
// clients sharing srv's telemetry (one trace spans the HTTP request and the
// backend calls; /metrics shows the gateway's series) and its live
// configuration followed; cleanup stops following.
func newHTTPServer(svc *service.Service[Config], cfg Config) (_ *http.Server, cleanup func(), err error) {
	var closers []func()
	closeAll := func() {
		for _, c := range slices.Backward(closers) {
			c()
		}
	}
	defer func() {
		if err != nil {
			closeAll()
		}
	}()
	gw, err := gateway.New(gatewayConfig(cfg), gateway.WithLogger(svc.Logger), gateway.WithTelemetry(svc.Server.Telemetry()))
	if err != nil {
		return nil, nil, err
	}
	if svc.Registry == nil {
		svc.Logger.Warn("registry.address is off: no service is discovered, so the gateway serves no route")
	} else {
		// The backends' clients share the server's telemetry: one trace
		// spans the HTTP request and the backend calls.
		learner := gateway.NewLearner(gw, gateway.ConsulCatalog(svc.Registry.Client()), svc.Registry,
			func(name string) (grpc.ClientConnInterface, error) { return svc.Client("consul:///" + name) },
			svc.Name, "consul")
		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan struct{})
		go func() {
			defer close(done)
			learner.Run(ctx)
		}()
		closers = append(closers, func() { cancel(); <-done })
	}
	if !cfg.Auth.Enabled() {
		svc.Logger.Warn("auth has no key (auth.disabled): every request that needs a token is refused with 401")
	}
	h := cfg.Gateway.HTTP // read at start only
	closers = append(closers, svc.Config.Subscribe(func(s *config.Snapshot[Config]) {
		next := gatewayConfig(s.Value)
		if name, d := longestTimeout(next); h.WriteTimeout > 0 && d >= h.WriteTimeout {
			// The HTTP server keeps the write timeout it started with: a longer
			// backend timeout would drop connections instead of answering 504.
			svc.Logger.Error("gateway configuration change refused: the backend timeouts must stay below the http.write_timeout the server started with",
				"version", s.Version, "setting", name, "timeout", d, "write_timeout", h.WriteTimeout)
			return
		}
		if err := gw.SetConfig(next); err != nil {
			svc.Logger.Error("gateway configuration change refused", "version", s.Version, "error", err)
		}
	}))
	return &http.Server{
		Handler:           gw,
		ReadHeaderTimeout: time.Duration(h.ReadHeaderTimeout),
		ReadTimeout:       time.Duration(h.ReadTimeout),
		WriteTimeout:      time.Duration(h.WriteTimeout),
		IdleTimeout:       time.Duration(h.IdleTimeout),
		MaxHeaderBytes:    h.MaxHeaderBytes,
		ErrorLog:          slog.NewLogLogger(svc.Logger.Handler(), slog.LevelWarn),
	}, closeAll, nil
}

// gatewayConfig returns the gateway's settings in cfg: its section, and the
// standard auth section that verifies the tokens of requests (the same keys
// the services check the forwarded tokens with).
func gatewayConfig(cfg Config) gateway.Config {
	g := cfg.Gateway.Config
	g.Auth = cfg.Auth
	return g
}
