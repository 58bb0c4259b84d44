package gateway

import (
	"net/http"
	"strconv"
	"strings"
	"time"

	"google.golang.org/grpc/codes"

	"github.com/grpckit/grpckit/kit/middleware"
)

// liveConfig is a configuration compiled for requests: the route policies
// in a method table, each with its rate limiter, and the CORS answers.
type liveConfig struct {
	Config
	states map[string]*routeState // by pattern
	routes middleware.MethodTable[*routeState]
	cors   corsPolicy
}

// routeState is the policy of a method pattern and its buckets.
type routeState struct {
	RoutePolicy
	limiter *edgeLimiter // nil when neither limit is on
}

// Which route bucket refused a request, as reported in logs and metrics.
const (
	scopeRoute       = "route"
	scopeRouteClient = "route_client"
)

// compile compiles a validated cfg. The buckets of a pattern that prev
// had keep their tokens.
func compile(cfg Config, prev *liveConfig, now time.Time) *liveConfig {
	states := make(map[string]*routeState, len(cfg.Routes))
	for m, p := range cfg.Routes {
		st := &routeState{RoutePolicy: p}
		if enabled(p.Limit) || enabled(p.PerClient) {
			limits := Limits{Global: p.Limit, PerClient: p.PerClient, MaxClients: cfg.Limits.MaxClients}
			if old := prev.state(m); old != nil && old.limiter != nil {
				st.limiter = old.limiter
				st.limiter.set(limits, now)
			} else {
				st.limiter = newEdgeLimiter(limits, now)
			}
		}
		states[m] = st
	}
	table, err := middleware.NewMethodTable(states)
	if err != nil { // cannot happen: Validate checked the patterns
		table, _ = middleware.NewMethodTable(map[string]*routeState{})
	}
	return &liveConfig{Config: cfg, states: states, routes: table, cors: newCORS(cfg.CORS)}
}

// state returns the state of the pattern m, or nil.
func (c *liveConfig) state(m string) *routeState {
	if c == nil {
		return nil
	}
	return c.states[m]
}

// policy returns the policy of the route calling rpc, or nil.
func (c *liveConfig) policy(rpc string) *routeState {
	st, _ := c.routes.Lookup(rpc)
	return st
}

// access says who may use a route.
type access uint8

const (
	// accessPublic: anyone. An anonymous request's backend call carries no
	// token (see auth.Anonymous); one with a valid token carries it.
	accessPublic access = iota
	// accessToken: a request with a valid bearer token, which the backend
	// call carries on (the service checks it again).
	accessToken
)

// access returns who may use b under the current configuration.
func (g *Gateway) access(b *binding) access {
	if !b.public {
		return accessToken
	}
	if st := g.cfg.Load().policy(b.rpc); st != nil && st.Access == AccessBearer {
		return accessToken
	}
	return accessPublic
}

// corsPolicy is a compiled [CORS].
type corsPolicy struct {
	any     bool            // "*" is allowed
	origins map[string]bool // allowed origins
	headers string          // Access-Control-Allow-Headers
	maxAge  string          // Access-Control-Max-Age, seconds
}

func newCORS(c CORS) corsPolicy {
	p := corsPolicy{
		origins: map[string]bool{},
		headers: strings.Join(c.AllowedHeaders, ", "),
		maxAge:  strconv.Itoa(int(time.Duration(c.MaxAge) / time.Second)),
	}
	for _, o := range c.AllowedOrigins {
		if o == "*" {
			p.any = true
		}
		p.origins[o] = true
	}
	return p
}

// allowed returns the Access-Control-Allow-Origin value for origin, or "".
func (p *corsPolicy) allowed(origin string) string {
	switch {
	case origin == "":
		return ""
	case p.any:
		return "*"
	case p.origins[origin]:
		return origin
	}
	return ""
}

// exposed are the answer headers a page may read beyond the safelisted ones.
const exposed = "Location, Retry-After, WWW-Authenticate"

// allow marks the answer to an actual request from an allowed origin.
func (p *corsPolicy) allow(w http.ResponseWriter, r *http.Request) {
	if len(p.origins) == 0 {
		return
	}
	h := w.Header()
	h.Add("Vary", "Origin")
	if o := p.allowed(r.Header.Get("Origin")); o != "" {
		h.Set("Access-Control-Allow-Origin", o)
		h.Set("Access-Control-Expose-Headers", exposed)
	}
}

// preflight answers a CORS preflight request (OPTIONS with Origin and
// Access-Control-Request-Method) and reports whether it did: 204 with the
// methods of the path for an allowed origin, 403 for another origin. The
// preflight of a path without routes is left to the caller (404), and
// with CORS off every OPTIONS request is (405).
func (p *corsPolicy) preflight(w http.ResponseWriter, r *http.Request, methods []string) bool {
	if len(p.origins) == 0 || r.Method != http.MethodOptions || r.Header.Get("Origin") == "" ||
		r.Header.Get("Access-Control-Request-Method") == "" || len(methods) == 0 {
		return false
	}
	h := w.Header()
	h.Add("Vary", "Origin, Access-Control-Request-Method, Access-Control-Request-Headers")
	o := p.allowed(r.Header.Get("Origin"))
	if o == "" {
		writeError(w, newError(http.StatusForbidden, codes.PermissionDenied,
			"cross-origin requests from "+r.Header.Get("Origin")+" are not allowed"))
		return true
	}
	h.Set("Access-Control-Allow-Origin", o)
	h.Set("Access-Control-Allow-Methods", strings.Join(methods, ", "))
	h.Set("Access-Control-Allow-Headers", p.headers)
	h.Set("Access-Control-Max-Age", p.maxAge)
	w.WriteHeader(http.StatusNoContent)
	return true
}
