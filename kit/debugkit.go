package kit

import (
	"cmp"
	_ "embed"
	"encoding/json"
	"html/template"
	"maps"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/connectivity"

	"github.com/grpckit/grpckit/kit/balancer"
	"github.com/grpckit/grpckit/kit/config"
	"github.com/grpckit/grpckit/kit/middleware/breaker"
	"github.com/grpckit/grpckit/kit/middleware/overload"
	"github.com/grpckit/grpckit/kit/middleware/ratelimit"
	"github.com/grpckit/grpckit/kit/middleware/timeout"
)

// DebugKit is the document of a server's /debug/kit page: what kit does in
// the process right now. Its JSON form has snake_case keys at every depth
// (the keys of the configuration sections are those of the YAML file) and
// durations written as strings such as "5s".
type DebugKit struct {
	Service string    `json:"service"`
	Time    time.Time `json:"time"`
	// Config describes the configuration store given with WithConfig; nil
	// without one.
	Config *config.Info `json:"config,omitempty"`
	// RateLimit is the server's inbound limits; nil without the layer.
	RateLimit *ratelimit.Config `json:"ratelimit,omitempty"`
	// Overload is the server's concurrency limit now; nil without the
	// layer.
	Overload *overload.ServerStats `json:"overload,omitempty"`
	// Calls counts the calls the server ended since it was made (every
	// method and code); nil without the telemetry layer or its metrics.
	Calls *uint64 `json:"calls,omitempty"`
	// Timeout is the server's deadline settings; nil without the layer.
	Timeout *timeout.Config `json:"timeout,omitempty"`
	// Clients are the clients shown on this page ([WithAdminOf]).
	Clients []DebugClient `json:"clients"`
	// Balancers are the kit_weighted balancers of the clients on this page,
	// sorted by name: per balancer the parameters in force and every
	// endpoint's weight, state and recent outcomes.
	Balancers []DebugBalancer `json:"balancers"`
	// History is the same over the last minutes ([WithDebugHistory]); nil
	// when it is off.
	History *DebugHistory `json:"history,omitempty"`
}

// DebugBalancer is one kit_weighted balancer on the page: the stats of
// [balancer.TargetStats], whose fields its JSON form holds too, and its
// name.
type DebugBalancer struct {
	// Name tells the balancer apart from the others on the page: the
	// [DebugClient.Name] of its client. A balancer of a Monitor that
	// several clients share ([WithBalancerMonitor]) is named after its
	// target instead, with "#2", "#3"... where a client or another
	// balancer holds that name. The history keys its series by it.
	Name string `json:"name"`
	balancer.TargetStats

	key balancerKey // which balancer: a name may pass to a successor
}

// DebugClient describes one client on the page.
type DebugClient struct {
	// Name tells the client apart from the others on the page: its
	// target, followed by "#2", "#3"... for a second, third client of the
	// same target shown at once. A client keeps its name for its life; the
	// history keys its series by it.
	Name      string                  `json:"name"`
	Target    string                  `json:"target"`
	State     string                  `json:"state"` // the ClientConn's connectivity state
	Breakers  []breaker.State         `json:"breakers"`
	RateLimit *ratelimit.ClientConfig `json:"ratelimit,omitempty"`
	// Throttles are the client's adaptive throttles, one per target
	// called; nil without the layer or while it is off.
	Throttles []overload.ThrottleStats `json:"throttles,omitempty"`
}

// WithAdminOf shows the client on srv's admin pages: its connection state,
// circuit breakers, rate limits and kit_weighted balancer on /debug/kit, its
// balancer's events and endpoint states on /metrics. The client leaves the
// pages when it is closed. A client without it is on no server's pages.
//
// The balancer is reached through the resolver state, so a client whose
// resolver kit does not wrap (one given with grpc.WithResolvers in
// [WithDialOptions], which takes precedence over the registered one)
// shows no balancer.
func WithAdminOf(srv *Server) ClientOption {
	return clientOptionFunc(func(o *clientOptions) { o.admin = srv })
}

// WithBalancerMonitor makes the client's kit_weighted balancer report to m,
// for programs that read the balancers of their clients themselves
// ([balancer.Monitor.Stats]); m may serve many clients. With [WithAdminOf]
// too, the server's pages show what m holds. As for WithAdminOf, the client
// must use a resolver kit builds.
func WithBalancerMonitor(m *balancer.Monitor) ClientOption {
	return clientOptionFunc(func(o *clientOptions) { o.monitor = m })
}

// debugClients are the clients shown on a server's page.
type debugClients struct {
	mu      sync.Mutex
	clients []debugClient // guarded by mu
	// names are the clients' (by *grpc.ClientConn) and the names of the
	// balancers of shared Monitors (by balancerKey); guarded by mu.
	names subjectNames
	// naming serializes named: a balancer is named and its name forgotten
	// from one reading of the Monitors at a time.
	naming sync.Mutex
}

type debugClient struct {
	cc      *grpc.ClientConn
	chain   chain
	monitor *balancer.Monitor // the client's balancer reports to it
	name    string            // [DebugClient.Name]
}

// balancerKey identifies a balancer: its Monitor and its number there.
type balancerKey struct {
	monitor *balancer.Monitor
	id      uint64
}

func (d *debugClients) add(cc *grpc.ClientConn, l chain, m *balancer.Monitor) {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.clients = append(d.clients, debugClient{cc, l, m, d.names.of(cc, cc.Target())})
}

// live returns the clients, forgetting those that were closed.
func (d *debugClients) live() []debugClient {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.clients = slices.DeleteFunc(d.clients, func(c debugClient) bool { return c.cc.GetState() == connectivity.Shutdown })
	d.names.keep(func(key any) bool {
		cc, ok := key.(*grpc.ClientConn)
		return !ok || slices.ContainsFunc(d.clients, func(c debugClient) bool { return c.cc == cc })
	})
	return slices.Clone(d.clients)
}

// balancers returns the stats of the clients' kit_weighted balancers,
// sorted by their names on the page.
func (d *debugClients) balancers() []balancer.TargetStats {
	var out []balancer.TargetStats
	for _, b := range d.named() {
		out = append(out, b.TargetStats)
	}
	return out
}

// named returns the clients' kit_weighted balancers with their names,
// sorted by name. The balancer of a client with a Monitor of its own (the
// default) has the client's name; of two at once (grpc-go replacing it),
// only the newer is shown. The balancers of a Monitor that several clients
// share are named as the clients are, after their targets.
func (d *debugClients) named() []DebugBalancer {
	d.naming.Lock()
	defer d.naming.Unlock()
	clients := d.live()
	users := map[*balancer.Monitor]int{}
	for _, c := range clients {
		users[c.monitor]++
	}
	var out []DebugBalancer
	var shared []balancerKey
	seen := map[*balancer.Monitor]bool{}
	for _, c := range clients {
		if c.monitor == nil || seen[c.monitor] {
			continue
		}
		seen[c.monitor] = true
		stats := c.monitor.Stats()
		if users[c.monitor] == 1 {
			if len(stats) > 0 {
				ts := slices.MaxFunc(stats, func(a, b balancer.TargetStats) int { return cmp.Compare(a.ID, b.ID) })
				out = append(out, DebugBalancer{Name: c.name, TargetStats: ts, key: balancerKey{c.monitor, ts.ID}})
			}
			continue
		}
		for _, ts := range stats {
			key := balancerKey{c.monitor, ts.ID}
			shared = append(shared, key)
			out = append(out, DebugBalancer{TargetStats: ts, key: key})
		}
	}
	d.mu.Lock()
	for i := range out {
		if out[i].Name == "" {
			out[i].Name = d.names.of(out[i].key, out[i].Target)
		}
	}
	d.names.keep(func(key any) bool {
		k, ok := key.(balancerKey)
		return !ok || slices.Contains(shared, k)
	})
	d.mu.Unlock()
	slices.SortFunc(out, func(a, b DebugBalancer) int { return strings.Compare(a.Name, b.Name) })
	return out
}

// subjectNames names the subjects of a page (clients, balancers) after
// their targets, telling apart those of one target: the target for the
// first, then "#2", "#3"... after it, each name kept for its subject's
// life and given to no other while a subject of the target lives.
type subjectNames struct {
	byKey map[any]subjectName
	count map[string]int // names given per target since it last had no subject
}

type subjectName struct{ name, target string }

// of returns the name of the subject key of target, naming it if new.
func (n *subjectNames) of(key any, target string) string {
	if s, ok := n.byKey[key]; ok {
		return s.name
	}
	if n.byKey == nil {
		n.byKey, n.count = map[any]subjectName{}, map[string]int{}
	}
	for {
		n.count[target]++
		name := target
		if c := n.count[target]; c > 1 {
			name += "#" + strconv.Itoa(c)
		}
		// A target may itself end in "#2": no name is held twice.
		if !n.held(name) {
			n.byKey[key] = subjectName{name, target}
			return name
		}
	}
}

// held reports whether a subject has the name.
func (n *subjectNames) held(name string) bool {
	for _, s := range n.byKey {
		if s.name == name {
			return true
		}
	}
	return false
}

// keep forgets the subjects for which live is false, and the count of a
// target left without subjects.
func (n *subjectNames) keep(live func(key any) bool) {
	maps.DeleteFunc(n.byKey, func(key any, _ subjectName) bool { return !live(key) })
	maps.DeleteFunc(n.count, func(target string, _ int) bool {
		for _, s := range n.byKey {
			if s.target == target {
				return false
			}
		}
		return true
	})
}

// list describes the clients, forgetting those that were closed.
func (d *debugClients) list() []DebugClient {
	clients := d.live()
	out := make([]DebugClient, 0, len(clients))
	for _, c := range clients {
		dc := DebugClient{Name: c.name, Target: c.cc.Target(), State: c.cc.GetState().String()}
		if b, ok := layerAs[*breaker.Breakers](c.chain, LayerBreaker); ok {
			dc.Breakers = b.States()
		}
		if l, ok := layerAs[*ratelimit.ClientLimiter](c.chain, LayerRateLimit); ok {
			rl := l.Config()
			dc.RateLimit = &rl
		}
		if o, ok := layerAs[*overload.Client](c.chain, LayerOverload); ok && o.Config().Enabled {
			dc.Throttles = o.Stats()
		}
		out = append(out, dc)
	}
	return out
}

// debugDoc gathers the page's document.
func (s *Server) debugDoc() DebugKit {
	doc := DebugKit{Service: s.service, Time: time.Now(), Clients: s.debug.list(), Balancers: s.debug.named()}
	if s.opts.config != nil {
		info := s.opts.config.info()
		doc.Config = &info
	}
	if l, ok := layerAs[*ratelimit.Limiter](s.chain, LayerRateLimit); ok {
		rl := l.Config()
		doc.RateLimit = &rl
	}
	if o, ok := layerAs[*overload.Server](s.chain, LayerOverload); ok {
		st := o.Stats()
		doc.Overload = &st
	}
	if s.telemetry != nil {
		if n, ok := s.telemetry.ServerCalls(); ok {
			doc.Calls = &n
		}
	}
	if t, ok := layerAs[*timeout.Timeouts](s.chain, LayerTimeout); ok {
		tc := t.Config()
		doc.Timeout = &tc
	}
	return doc
}

//go:embed debugkit.html
var debugPageSource string

var debugPage = template.Must(template.New("debugkit").Funcs(template.FuncMap{
	"pct":  func(f float64) string { return formatFloat(f*100) + "%" },
	"join": strings.Join,
	"f2":   formatFloat,
	"ago": func(t time.Time) string {
		if t.IsZero() {
			return ""
		}
		return time.Until(t).Round(time.Millisecond).String()
	},
}).Parse(debugPageSource))

// formatFloat writes f with at most 3 decimals and no trailing zeros.
func formatFloat(f float64) string {
	return strings.TrimRight(strings.TrimRight(strconv.FormatFloat(f, 'f', 3, 64), "0"), ".")
}

// debugKit serves the page as HTML, or as JSON for ?format=json and for
// clients that accept JSON but not HTML.
func (s *Server) debugKit(w http.ResponseWriter, r *http.Request) {
	doc := s.debugDoc()
	if s.history != nil {
		doc.History = s.history.snapshot()
	}
	accept := r.Header.Get("Accept")
	if r.URL.Query().Get("format") == "json" || strings.Contains(accept, "application/json") && !strings.Contains(accept, "text/html") {
		w.Header().Set("Content-Type", "application/json")
		enc := json.NewEncoder(w)
		enc.SetIndent("", "  ")
		enc.Encode(doc)
		return
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store")
	if err := debugPage.Execute(w, newDebugPage(doc)); err != nil {
		s.opts.logger.Warn("kit: /debug/kit page", "error", err)
	}
}
