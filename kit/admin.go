package kit

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/pprof"
)

// adminMux serves the admin endpoints:
//
//	/healthz        200 while the process runs
//	/readyz         200 while serving and not shutting down, else 503
//	/metrics        Prometheus text exposition (404 without the telemetry layer)
//	/debug/pprof/   the runtime profiles of net/http/pprof, when enabled
//	                ([WithPprof], server.pprof): its cmdline page shows the
//	                command line, secrets given as flags included
//	/debug/kit      HTML page refreshing itself, with charts of the last
//	                minutes (JSON with ?format=json or Accept:
//	                application/json); see [DebugKit] and [DebugHistory]
func (s *Server) adminMux() *http.ServeMux {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /debug/kit", s.debugKit)
	if s.telemetry != nil {
		mux.Handle("GET /metrics", s.telemetry.MetricsHandler())
	}
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) {
		io.WriteString(w, "ok\n")
	})
	mux.HandleFunc("GET /readyz", func(w http.ResponseWriter, _ *http.Request) {
		if !s.ready.Load() {
			http.Error(w, "not ready", http.StatusServiceUnavailable)
			return
		}
		io.WriteString(w, "ready\n")
	})
	if s.opts.pprof {
		mux.HandleFunc("/debug/pprof/", pprof.Index)
		mux.HandleFunc("/debug/pprof/cmdline", pprof.Cmdline)
		mux.HandleFunc("/debug/pprof/profile", pprof.Profile)
		mux.HandleFunc("/debug/pprof/symbol", pprof.Symbol)
		mux.HandleFunc("/debug/pprof/trace", pprof.Trace)
	}
	return mux
}

// startAdmin listens on the admin address and serves the admin mux.
func (s *Server) startAdmin() error {
	if s.admin == nil {
		return nil
	}
	lis, err := net.Listen("tcp", s.opts.adminAddress)
	if err != nil {
		return fmt.Errorf("kit: admin listener on %q: %w", s.opts.adminAddress, err)
	}
	s.mu.Lock()
	s.adminLis = lis
	// A Shutdown that ran since Serve began has closed the admin server
	// and stopped no sampler: start none.
	if s.history != nil && s.stopping.Err() == nil {
		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan struct{})
		go func() {
			defer close(done)
			s.history.run(ctx, s.debugDoc)
		}()
		s.stopHistory = func() {
			cancel()
			<-done
		}
	}
	s.mu.Unlock()
	s.opts.logger.LogAttrs(context.Background(), slog.LevelInfo, "serving admin", slog.String("address", lis.Addr().String()))
	go func() {
		if err := s.admin.Serve(lis); err != nil && !errors.Is(err, http.ErrServerClosed) {
			s.opts.logger.LogAttrs(context.Background(), slog.LevelError, "admin listener failed", slog.Any("error", err))
		}
	}()
	return nil
}

// closeAdmin closes the admin listener and stops the history's sampler.
func (s *Server) closeAdmin() {
	if s.admin != nil {
		s.admin.Close()
	}
	s.mu.Lock()
	stop := s.stopHistory
	s.stopHistory = nil
	s.mu.Unlock()
	if stop != nil {
		stop()
	}
}
