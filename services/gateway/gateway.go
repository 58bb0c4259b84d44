package gateway

import (
	"fmt"
	"log/slog"
	"net/http"
	"path"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc/codes"
	"google.golang.org/protobuf/types/known/durationpb"

	"github.com/grpckit/grpckit/kit/middleware/auth"
	"github.com/grpckit/grpckit/services/gateway/internal/httprule"
)

// Gateway is a generic REST/JSON edge: an http.Handler that serves the
// routes of the google.api.http annotations of its backends' APIs
// ([Gateway.SetAPI]; [Learner] learns them from Consul), transcoding JSON
// to gRPC calls and their answers back. Its methods are safe for
// concurrent use; [Gateway.SetConfig] changes the policies of a gateway
// that is serving.
type Gateway struct {
	auth    *auth.Authenticator
	limiter *edgeLimiter
	logger  *slog.Logger
	now     func() time.Time
	obs     *observer

	cfg     atomic.Pointer[liveConfig]
	table   atomic.Pointer[table]
	setMu   sync.Mutex // serializes SetConfig
	apiMu   sync.Mutex // guards apis, seq and refused, serializes rebuilds
	apis    map[string]*apiEntry
	seq     uint64
	refused map[string]bool // routes refused at the last rebuild, logged once
}

// New returns a gateway configured by cfg, serving no route until
// [Gateway.SetAPI] gives it backends.
func New(cfg Config, opts ...Option) (*Gateway, error) {
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
		auth:    a,
		limiter: newEdgeLimiter(cfg.Limits, o.now()),
		logger:  o.logger,
		now:     o.now,
		obs:     obs,
		apis:    map[string]*apiEntry{},
	}
	g.cfg.Store(compile(cfg, nil, o.now()))
	g.apiMu.Lock()
	g.rebuildLocked()
	g.apiMu.Unlock()
	return g, nil
}

// Config returns the current configuration.
func (g *Gateway) Config() Config { return g.cfg.Load().Config }

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
	now := g.now()
	g.limiter.set(cfg.Limits, now)
	g.cfg.Store(compile(cfg, g.cfg.Load(), now))
	g.apiMu.Lock()
	g.rebuildLocked() // the document names the routes that need a token
	g.apiMu.Unlock()
	return nil
}

// ServeHTTP serves one request: edge rate limits first, then the route
// (its policy, auth, the backend call), all observed in the access log,
// metrics and a server span.
func (g *Gateway) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	start := g.now()
	cfg := g.cfg.Load()
	ip := clientIP(r, cfg.Limits.TrustForwardedFor)
	rec := &recorder{ResponseWriter: w}
	r, end := g.obs.start(r)
	defer func() { g.finish(r, rec, ip, start, end) }()

	t := g.table.Load()
	b, vars, allowed, found := g.lookup(t, r)
	if found {
		r.Pattern = b.pattern // the route, for the access log and metrics
	}
	cfg.cors.allow(rec, r) // a page may read every answer, a 429 too
	if ok, scope, d := g.limiter.allow(ip, start); !ok {
		rec.limited = scope
		writeError(rec, rateLimited(scope, d))
		return
	}
	if cfg.cors.preflight(rec, r, allowed) {
		return
	}
	switch {
	case r.RequestURI == "*": // http.ServeMux would answer 400 without a body
		writeError(rec, newError(http.StatusBadRequest, codes.InvalidArgument, "the request target * is not supported"))
	case r.URL.Path == "" || r.URL.Path != path.Clean(r.URL.Path) && r.URL.Path != "/":
		// The API has no such paths (http.ServeMux would redirect).
		writeError(rec, newError(http.StatusNotFound, codes.NotFound, "no route for a path that is not in canonical form"))
	case r.URL.Path == openAPIPath && (r.Method == http.MethodGet || r.Method == http.MethodHead):
		r.Pattern = "GET " + openAPIPath
		if _, e := checkQuery(r); e != nil {
			writeError(rec, e)
			return
		}
		writeJSON(rec, http.StatusOK, t.openapi)
	case found:
		g.serve(rec, r, cfg, b, vars, ip, start)
	case len(allowed) > 0:
		allow := strings.Join(allowed, ", ")
		e := newError(http.StatusMethodNotAllowed, codes.Unimplemented,
			fmt.Sprintf("method %s is not allowed on %s; allowed: %s", r.Method, r.URL.Path, allow))
		e.header = http.Header{"Allow": {allow}}
		writeError(rec, e)
	default:
		writeError(rec, newError(http.StatusNotFound, codes.NotFound, "no route for "+r.URL.Path))
	}
}

// openAPIPath is where the gateway serves the OpenAPI document of its
// routes.
const openAPIPath = "/openapi.json"

// lookup finds the route of r in t (a HEAD request takes a GET route), or
// the methods allowed on its path.
func (g *Gateway) lookup(t *table, r *http.Request) (b *binding, vars []httprule.Binding, allowed []string, ok bool) {
	method := r.Method
	if method == http.MethodHead {
		method = http.MethodGet
	}
	b, vars, allowed, ok = t.router.Lookup(method, r.URL.EscapedPath())
	if !ok && r.URL.Path == openAPIPath {
		allowed = append(allowed, http.MethodGet)
	}
	if slices.Contains(allowed, http.MethodGet) && !slices.Contains(allowed, http.MethodHead) {
		allowed = append(allowed, http.MethodHead)
		slices.Sort(allowed)
	}
	return b, vars, allowed, ok
}

// rateLimited is the 429 answer of a refusing bucket.
func rateLimited(scope string, d time.Duration) *apiError {
	return newError(http.StatusTooManyRequests, codes.ResourceExhausted,
		fmt.Sprintf("rate limit exceeded (%s); retry after %v", scope, d.Round(time.Millisecond)),
		&errdetails.RetryInfo{RetryDelay: durationpb.New(d)})
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
