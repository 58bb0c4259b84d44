package gateway

import (
	"bytes"
	"cmp"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"regexp"
	"slices"
	"strconv"

	"github.com/grpckit/grpckit/services/gateway/internal/httprule"
	"github.com/grpckit/grpckit/services/gateway/internal/openapi"
)

// table is the routing state that requests read: built anew on every
// change of the backends' APIs or of the configuration, and swapped
// atomically.
type table struct {
	router  *httprule.Router[*binding]
	routes  []*binding // served, in the order of the backends' arrival
	openapi []byte     // the OpenAPI document of routes
}

// apiEntry is a backend the gateway serves.
type apiEntry struct {
	api      *API
	seq      uint64 // order of arrival: an earlier backend keeps a contested route
	bindings []*binding
}

// Route describes a route the gateway serves.
type Route struct {
	Method  string // HTTP method
	Path    string // path template, as in the annotation (canonical form)
	Backend string // API.Name
	RPC     string // "/pkg.Service/Method"
	Public  bool   // callable without a token
}

// SetAPI serves api's routes, in place of those of the backend of the same
// name, for the requests that start from then on. A route that another
// backend serves already (same HTTP method, same path template) is refused
// and logged, never overridden; so is an annotation the gateway cannot
// serve. The error is for an API without a name or connection.
func (g *Gateway) SetAPI(api API) error {
	if api.Name == "" || api.Conn == nil {
		return errors.New("gateway: SetAPI: an API needs a name and a connection")
	}
	bs, errs := bindings(&api)
	g.apiMu.Lock()
	defer g.apiMu.Unlock()
	e := g.apis[api.Name]
	if e == nil || !slices.Equal(e.api.Services, api.Services) { // not again for a change of public methods
		for _, err := range errs {
			g.logger.Warn("route not served", "backend", api.Name, "error", err)
		}
	}
	if e == nil {
		g.seq++
		e = &apiEntry{seq: g.seq}
		g.apis[api.Name] = e
	}
	e.api, e.bindings = &api, bs
	g.rebuildLocked()
	return nil
}

// RemoveAPI stops serving the routes of the backend name; a route it held
// against another backend goes to that one.
func (g *Gateway) RemoveAPI(name string) {
	g.apiMu.Lock()
	defer g.apiMu.Unlock()
	if _, ok := g.apis[name]; !ok {
		return
	}
	delete(g.apis, name)
	g.rebuildLocked()
}

// Routes returns the routes served, in the order of the backends' arrival.
func (g *Gateway) Routes() []Route {
	t := g.table.Load()
	out := make([]Route, 0, len(t.routes))
	for _, b := range t.routes {
		out = append(out, Route{Method: b.httpMethod, Path: b.template.String(), Backend: b.api.Name,
			RPC: b.rpc, Public: g.access(b) == accessPublic})
	}
	return out
}

// api returns the API of the backend name.
func (g *Gateway) api(name string) (API, bool) {
	g.apiMu.Lock()
	defer g.apiMu.Unlock()
	e, ok := g.apis[name]
	if !ok {
		return API{}, false
	}
	return *e.api, true
}

// routesOf returns the routes served for the backend name.
func (g *Gateway) routesOf(name string) []Route {
	return slices.DeleteFunc(g.Routes(), func(r Route) bool { return r.Backend != name })
}

// rebuildLocked builds the table of the current backends and configuration
// and makes it current. g.apiMu is held.
func (g *Gateway) rebuildLocked() {
	entries := slices.SortedFunc(maps.Values(g.apis), func(a, b *apiEntry) int { return cmp.Compare(a.seq, b.seq) })
	router := httprule.NewRouter[*binding]()
	var served []*binding
	refused := map[string]bool{}
	for _, e := range entries {
		for _, b := range e.bindings {
			err := overlapping(served, b)
			if err == nil {
				err = router.Add(b.httpMethod, b.template, b)
			}
			if err != nil {
				key := e.api.Name + " " + b.rpc + " " + b.pattern
				refused[key] = true
				if !g.refused[key] { // logged once, not on every rebuild
					g.logger.Error("route refused: it would take requests of another backend's route", "backend", e.api.Name,
						"route", b.pattern, "rpc", b.rpc, "error", err)
				}
				continue
			}
			served = append(served, b)
		}
	}
	g.refused = refused
	doc := g.openAPI(served)
	if doc == nil { // the previous document stays rather than none
		if t := g.table.Load(); t != nil {
			doc = t.openapi
		}
	}
	g.table.Store(&table{router: router, routes: served, openapi: doc})
}

// overlapping returns an error when b would take requests of a route of
// another backend served already: same HTTP method, and some path matches
// both templates. Within one backend, overlapping routes are its own choice
// (the more specific one wins); across backends the earlier one keeps them
// all, so that no service takes over another's requests and their tokens.
func overlapping(served []*binding, b *binding) error {
	for _, c := range served {
		if c.api != b.api && c.httpMethod == b.httpMethod && c.template.Overlaps(b.template) {
			return fmt.Errorf("%s overlaps %v", b.pattern, c)
		}
	}
	return nil
}

// openAPI returns the OpenAPI document of routes, or nil when it cannot be
// built (logged).
func (g *Gateway) openAPI(routes []*binding) []byte {
	ops := make([]openapi.Operation, 0, len(routes))
	seen := map[string]bool{}
	shapes := map[string]string{} // path with its variables unnamed -> the path documented
	for _, b := range routes {
		path := b.template.OpenAPIPath()
		shape := varName.ReplaceAllString(path, "{}")
		if p, ok := shapes[shape]; (ok && p != path) || seen[b.httpMethod+" "+path] {
			// Templates that OpenAPI cannot tell apart ("/v1/{name=a/*}"
			// and "/v1/{name=b/*}", or "/v1/{id}" and "/v1/{name}"): the
			// first is documented.
			continue
		}
		shapes[shape] = path
		seen[b.httpMethod+" "+path] = true
		id := string(b.method.FullName())
		if b.index > 0 {
			id += "_" + strconv.Itoa(b.index)
		}
		op := openapi.Operation{
			Method: b.httpMethod, Path: path, PathParams: b.template.Vars(),
			Input: b.method.Input(), Output: b.method.Output(), Body: b.body,
			Bearer: g.access(b) != accessPublic, ServerStreaming: b.method.IsStreamingServer(),
			Service: string(b.method.Parent().FullName()), RPC: b.rpc, OperationID: id,
		}
		if b.respField != nil {
			op.ResponseBody = string(b.respField.Name())
		}
		ops = append(ops, op)
	}
	doc, err := openapi.Build(openapi.Info{
		Title:       "grpckit gateway",
		Version:     "1",
		Description: "The routes of the services the gateway has discovered, from their google.api.http annotations.",
	}, ops)
	if err != nil {
		g.logger.Error("the OpenAPI document cannot be built", "error", err)
		return nil
	}
	var buf bytes.Buffer
	if err := json.Compact(&buf, doc); err != nil {
		g.logger.Error("the OpenAPI document is not JSON", "error", err)
		return nil
	}
	return buf.Bytes()
}

// varName matches the variables of an OpenAPI path.
var varName = regexp.MustCompile(`\{[^}]*\}`)

// String names b in errors: its backend, method and route.
func (b *binding) String() string {
	return fmt.Sprintf("%s %s (%s)", b.api.Name, b.rpc, b.pattern)
}
