// Command gateway runs the REST/JSON gateway of the example services. It
// serves the HTTP API on gateway.listen (default 127.0.0.1:8080), reaches
// the greeter and user services through consul:///greeter and
// consul:///user, and runs a kit server (gRPC health, admin endpoints) that
// registers in Consul as "gateway", with the HTTP address in the Meta key
// "http". Every setting comes from kit/config: defaults, -config FILE,
// GRPCKIT_* variables, flags and the Consul key grpckit/gateway (-h lists
// them, -print-config shows the result).
//
//	GRPCKIT_GATEWAY_AUTH_HMAC_SECRET="$SECRET" gateway -registry.address 127.0.0.1:8500
//
// (the secret through the environment rather than a flag, which ps shows)
//
// On SIGTERM or SIGINT the gateway leaves Consul, keeps serving HTTP through
// the drain window (without keep-alives), then stops the HTTP server
// gracefully within server.shutdown_timeout.
package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"net"
	"net/http"
	"os"
	"os/signal"
	"slices"
	"strconv"
	"syscall"
	"time"

	"github.com/grpckit/grpckit/internal/svcmain"
	"github.com/grpckit/grpckit/kit"
	"github.com/grpckit/grpckit/kit/config"
	"github.com/grpckit/grpckit/kit/registry"
	greeterv1 "github.com/grpckit/grpckit/proto/greeter/v1"
	userv1 "github.com/grpckit/grpckit/proto/user/v1"
	"github.com/grpckit/grpckit/services/gateway"
)

func main() {
	svc := svcmain.Start("gateway", DefaultConfig(), os.Args[1:])
	defer svc.Close()
	if err := run(context.Background(), svc); err != nil {
		svcmain.Fatal(svc.Logger, "gateway stopped", err)
	}
}

// run listens on gateway.listen and serves until ctx is done or the process
// gets SIGINT or SIGTERM.
func run(ctx context.Context, svc *svcmain.Service[Config]) error {
	addr := svc.Config.Current().Value.Gateway.Listen
	lis, err := net.Listen("tcp", addr)
	if err != nil {
		return fmt.Errorf("gateway.listen: %w", err)
	}
	return serve(ctx, svc, lis)
}

// serve serves the HTTP API on lis next to a kit server, until ctx is done,
// a signal arrives or either server fails; it closes lis. The HTTP server
// stops inside the kit server's shutdown, after the deregistration and the
// drain, letting the requests it is serving finish within
// server.shutdown_timeout.
func serve(ctx context.Context, svc *svcmain.Service[Config], lis net.Listener) error {
	cfg := svc.Config.Current().Value
	// The kit server's shutdown stops the HTTP server after the drain and
	// before the telemetry flush, so that the spans and metrics of the last
	// requests are not lost.
	var hs *http.Server
	stopHTTP := kit.WithBeforeStop(func(ctx context.Context) error {
		if hs == nil { // the HTTP server was never made
			return nil
		}
		if err := hs.Shutdown(ctx); err != nil {
			hs.Close()
			return fmt.Errorf("http shutdown: %w", err)
		}
		return nil
	})
	srv, err := svc.Server(append(registration(svc, cfg.Standard, lis.Addr()), stopHTTP)...)
	if err != nil {
		lis.Close()
		return fmt.Errorf("server: %w", err)
	}
	hs, cleanup, err := newHTTPServer(svc, cfg, srv)
	if err != nil {
		lis.Close()
		// Run will not happen: release what the server holds.
		sctx, cancel := context.WithTimeout(context.Background(), time.Duration(cfg.Server.ShutdownTimeout))
		defer cancel()
		return errors.Join(err, srv.Shutdown(sctx))
	}
	defer cleanup()

	ctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	served := make(chan error, 1)
	go func() {
		err := hs.Serve(lis)
		if !errors.Is(err, http.ErrServerClosed) {
			cancel(fmt.Errorf("http: %w", err)) // stops the kit server too
		}
		served <- err
	}()
	svc.Logger.Info("serving HTTP", "address", lis.Addr().String())

	// On a signal, stop keep-alives at once so that clients open new
	// connections (elsewhere, once Consul has seen the gateway leave)
	// while the kit server drains; Run handles the signal itself.
	sigCtx, stopSignals := signal.NotifyContext(ctx, os.Interrupt, syscall.SIGTERM)
	signalled := make(chan struct{})
	go func() {
		defer close(signalled)
		<-sigCtx.Done()
		stopSignals() // a second signal kills the process the default way
		hs.SetKeepAlivesEnabled(false)
	}()

	// Run gets the signal context too: a signal that arrives before Run
	// listens for signals itself must still stop it.
	runErr := srv.Run(sigCtx) // on any return, the kit server is shut down, the HTTP server with it
	stopSignals()
	<-signalled
	var errs []error
	if runErr != nil {
		errs = append(errs, runErr)
	}
	if err := <-served; !errors.Is(err, http.ErrServerClosed) {
		errs = append(errs, fmt.Errorf("http: %w", err))
	}
	svc.Logger.Info("HTTP stopped")
	return errors.Join(errs...)
}

// newHTTPServer returns the HTTP server of the gateway, with its backend
// clients sharing srv's telemetry (one trace spans the HTTP request and the
// backend calls; /metrics shows the gateway's series) and its live
// configuration followed; cleanup closes the clients and stops following.
func newHTTPServer(svc *svcmain.Service[Config], cfg Config, srv *kit.Server) (_ *http.Server, cleanup func(), err error) {
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
	tel := srv.Telemetry()
	greeterConn, err := svc.Client(cfg.Gateway.GreeterTarget, kit.WithTelemetry(tel))
	if err != nil {
		return nil, nil, fmt.Errorf("greeter client: %w", err)
	}
	closers = append(closers, func() { greeterConn.Close() })
	userConn, err := svc.Client(cfg.Gateway.UserTarget, kit.WithTelemetry(tel))
	if err != nil {
		return nil, nil, fmt.Errorf("user client: %w", err)
	}
	closers = append(closers, func() { userConn.Close() })
	gw, err := gateway.New(greeterv1.NewGreeterServiceClient(greeterConn), userv1.NewUserServiceClient(userConn),
		cfg.Gateway.Config, gateway.WithLogger(svc.Logger), gateway.WithTelemetry(tel))
	if err != nil {
		return nil, nil, err
	}
	if !cfg.Gateway.Auth.Enabled() {
		svc.Logger.Warn("gateway.auth has no key (hmac_secret or public_key_files): every write request is refused with 401")
	}
	h := cfg.Gateway.HTTP // read at start only
	closers = append(closers, svc.Config.Subscribe(func(s *config.Snapshot[Config]) {
		next := s.Value.Gateway.Config
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

// registration returns the option that registers the kit server as svcmain
// does, plus the Meta key "http" with the HTTP address clients reach the
// gateway at (unless registry.meta sets it), or nothing without a registry.
func registration(svc *svcmain.Service[Config], std config.Standard, httpAddr net.Addr) []kit.ServerOption {
	if svc.Registry == nil {
		return nil
	}
	r := std.Registry
	meta := maps.Clone(r.Meta)
	if meta == nil {
		meta = map[string]string{}
	}
	if _, ok := meta["http"]; !ok {
		meta["http"] = advertised(r.Advertise, httpAddr)
	}
	return []kit.ServerOption{kit.WithRegistrar(svc.Registry, registry.Instance{
		Name: svc.Name, Address: r.Advertise, Tags: r.Tags, Meta: meta,
		Weights: r.Weights,
	})}
}

// advertised returns the host:port others reach addr at: the host is
// advertise when set, else the host kit registers for addr
// ([kit.AdvertiseHost]).
func advertised(advertise string, addr net.Addr) string {
	tcp, ok := addr.(*net.TCPAddr)
	if !ok {
		return addr.String()
	}
	port := strconv.Itoa(tcp.Port)
	if advertise != "" {
		return net.JoinHostPort(advertise, port)
	}
	return net.JoinHostPort(kit.AdvertiseHost(tcp.IP), port)
}
