// Command gateway runs the REST/JSON gateway of the example services. It
// serves the HTTP API on gateway.listen (default 127.0.0.1:8080), reaches
// the greeter and user services through consul:///greeter and
// consul:///user, and runs a kit server (gRPC health, admin endpoints) that
// registers in Consul as "gateway", with the HTTP address in the Meta key
// "http". Every setting comes from kit/config: defaults, -config FILE,
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

	"github.com/grpckit/grpckit/kit"
	"github.com/grpckit/grpckit/kit/config"
	"github.com/grpckit/grpckit/kit/service"
	greeterv1 "github.com/grpckit/grpckit/proto/greeter/v1"
	userv1 "github.com/grpckit/grpckit/proto/user/v1"
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
	tel := svc.Server.Telemetry()
	greeterConn, err := svc.Client(cfg.Gateway.GreeterTarget)
	if err != nil {
		return nil, nil, fmt.Errorf("greeter client: %w", err)
	}
	// The writes carry a request id (the client's Idempotency-Key, else a
	// new one) kept across retries: user records it with the write, so a
	// retry that lands on another instance gets the first result.
	userConn, err := svc.Client(cfg.Gateway.UserTarget, kit.WithDedupedMethods(
		userv1.UserService_CreateUser_FullMethodName,
		userv1.UserService_UpdateUser_FullMethodName,
		userv1.UserService_DeleteUser_FullMethodName))
	if err != nil {
		return nil, nil, fmt.Errorf("user client: %w", err)
	}
	gw, err := gateway.New(greeterv1.NewGreeterServiceClient(greeterConn), userv1.NewUserServiceClient(userConn),
		gatewayConfig(cfg), gateway.WithLogger(svc.Logger), gateway.WithTelemetry(tel))
	if err != nil {
		return nil, nil, err
	}
	if !cfg.Auth.Enabled() {
		svc.Logger.Warn("auth has no key (auth.disabled): every request that needs a token is refused with 401")
	}
	h := cfg.Gateway.HTTP // read at start only
	closers = append(closers, svc.Config.Subscribe(func(s *config.Snapshot[Config]) {
		next := gatewayConfig(s.Value)
		if h.WriteTimeout > 0 && next.BackendTimeout >= h.WriteTimeout {
			// The HTTP server keeps the write timeout it started with: a longer
			// backend timeout would drop connections instead of answering 504.
			svc.Logger.Error("gateway configuration change refused: gateway.backend_timeout must stay below the http.write_timeout the server started with",
				"version", s.Version, "backend_timeout", next.BackendTimeout, "write_timeout", h.WriteTimeout)
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
