package gateway

import (
	"fmt"
	"log/slog"
	"net/http"
	"path"
	"sync"
	"sync/atomic"
	"time"

	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc/codes"
	"google.golang.org/protobuf/types/known/durationpb"

	"github.com/grpckit/grpckit/kit/middleware/auth"
	greeterv1 "github.com/grpckit/grpckit/proto/greeter/v1"
	userv1 "github.com/grpckit/grpckit/proto/user/v1"
)

// Gateway is the REST/JSON edge of the example services: an http.Handler
// that serves the routes of the package documentation by calling the
// greeter and user services. Its methods are safe for concurrent use;
// [Gateway.SetConfig] changes the limits, auth and timeouts of a gateway
// that is serving.
type Gateway struct {
	greeter greeterv1.GreeterServiceClient
	users   userv1.UserServiceClient
	auth    *auth.Authenticator
	limiter *edgeLimiter
	logger  *slog.Logger
	now     func() time.Time
	obs     *observer
	mux     *http.ServeMux

	cfg   atomic.Pointer[Config]
	setMu sync.Mutex // serializes SetConfig
}

// New returns a gateway calling greeter and users, configured by cfg. The
// clients should carry the caller's deadline and cancellation, as the
// stubs of kit clients do; the gateway does not close them.
func New(greeter greeterv1.GreeterServiceClient, users userv1.UserServiceClient, cfg Config, opts ...Option) (*Gateway, error) {
	if greeter == nil || users == nil {
		return nil, fmt.Errorf("gateway: nil greeter or user client")
	}
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	o := defaultOptions
	for _, opt := range opts {
		opt.apply(&o)
	}
	a, err := auth.New(cfg.Auth, auth.WithLogger(o.logger))
	if err != nil {
		return nil, err
	}
	obs, err := newObserver(o.telemetry)
	if err != nil {
		return nil, err
	}
	g := &Gateway{
		greeter: greeter,
		users:   users,
		auth:    a,
		limiter: newEdgeLimiter(cfg.Limits, o.now()),
		logger:  o.logger,
		now:     o.now,
		obs:     obs,
	}
	g.cfg.Store(&cfg)
	g.mux = g.newMux()
	return g, nil
}

// Config returns the current configuration.
func (g *Gateway) Config() Config { return *g.cfg.Load() }

// SetConfig validates cfg, reads its key files and makes it current for the
// requests that start from then on. Rate-limit buckets keep their tokens.
// On error the current configuration stays.
func (g *Gateway) SetConfig(cfg Config) error {
	if err := cfg.Validate(); err != nil {
		return err
	}
	g.setMu.Lock()
	defer g.setMu.Unlock()
	if err := g.auth.SetConfig(cfg.Auth); err != nil {
		return err
	}
	g.limiter.set(cfg.Limits, g.now())
	g.cfg.Store(&cfg)
	return nil
}

// ServeHTTP serves one request: edge rate limits first, then the route
// (auth and ownership, the backend call), all observed in the access log,
// metrics and a server span.
func (g *Gateway) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	start := g.now()
	cfg := g.cfg.Load()
	ip := clientIP(r, cfg.Limits.TrustForwardedFor)
	rec := &recorder{ResponseWriter: w}
	r, end := g.obs.start(r)
	defer func() { g.finish(r, rec, ip, start, end) }()

	if ok, scope, d := g.limiter.allow(ip, start); !ok {
		rec.limited = scope
		_, r.Pattern = g.mux.Handler(r) // the route, for the access log and metrics
		writeError(rec, newError(http.StatusTooManyRequests, codes.ResourceExhausted,
			fmt.Sprintf("rate limit exceeded (%s); retry after %v", scope, d.Round(time.Millisecond)),
			&errdetails.RetryInfo{RetryDelay: durationpb.New(d)}))
		return
	}
	if r.RequestURI == "*" { // http.ServeMux would answer 400 without a body
		writeError(rec, newError(http.StatusBadRequest, codes.InvalidArgument, "the request target * is not supported"))
		return
	}
	if p := r.URL.Path; p == "" || p != path.Clean(p) && p != "/" {
		// http.ServeMux would redirect (307, HTML body) to the clean path;
		// the API has no such paths.
		writeError(rec, newError(http.StatusNotFound, codes.NotFound, "no route for a path that is not in canonical form"))
		return
	}
	g.mux.ServeHTTP(rec, r)
}

// finish logs and counts a served request.
func (g *Gateway) finish(r *http.Request, rec *recorder, ip string, start time.Time, end func(route string, status int)) {
	route := routeOf(r.Pattern)
	st := rec.status
	if st == 0 {
		st = http.StatusOK
	}
	elapsed := g.now().Sub(start)
	end(route, st)
	g.obs.record(r.Context(), r.Method, route, st, rec.limited, elapsed)
	level := slog.LevelDebug // as kit's access log of gRPC calls
	switch {
	case st >= 500 && st != StatusClientClosedRequest:
		level = slog.LevelWarn
	case st >= 400:
		level = slog.LevelInfo
	}
	attrs := []slog.Attr{
		slog.String("method", r.Method),
		slog.String("path", r.URL.Path),
		slog.String("route", route),
		slog.Int("status", st),
		slog.Duration("duration", elapsed),
		slog.String("client", ip),
	}
	if rec.subject != "" {
		attrs = append(attrs, slog.String("subject", rec.subject))
	}
	if rec.limited != "" {
		attrs = append(attrs, slog.String("rate_limited", rec.limited))
	}
	g.logger.LogAttrs(r.Context(), level, "http request", attrs...)
}

// recorder is the ResponseWriter of a request: it remembers the status and
// what the access log reports.
type recorder struct {
	http.ResponseWriter
	status  int
	subject string // authenticated subject, if any
	limited string // scope of the refusing rate limit, if any
}

func (r *recorder) WriteHeader(code int) {
	if r.status == 0 {
		r.status = code
	}
	r.ResponseWriter.WriteHeader(code)
}

func (r *recorder) Write(b []byte) (int, error) {
	if r.status == 0 {
		r.status = http.StatusOK
	}
	return r.ResponseWriter.Write(b)
}

// Unwrap lets http.ResponseController reach the connection's writer.
func (r *recorder) Unwrap() http.ResponseWriter { return r.ResponseWriter }
