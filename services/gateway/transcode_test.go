package gateway

import (
	"encoding/json"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"google.golang.org/protobuf/reflect/protoreflect"

	"github.com/grpckit/grpckit/kit/middleware/ratelimit"
)

const shopAll = "/shop.v1.ShopService/*"

// TestTranscoding: every mapping of the annotation rules, checked on what
// the backend gets and what the client gets.
func TestTranscoding(t *testing.T) {
	g, b := shopGateway(t, testConfig(), shopAll)
	for _, tc := range []struct {
		name       string
		req        request
		wantStatus int
		wantCall   string // the backend's request, "Method {json}"
		wantBody   string // exact answer, when set
		wantHeader map[string]string
	}{
		{
			name:       "multi-segment path variable",
			req:        request{method: http.MethodGet, target: "/v1/shelves/1/books/2"},
			wantStatus: http.StatusOK,
			wantCall:   `GetBook {"name":"shelves/1/books/2"}`,
			wantBody:   `{"name":"shelves/1/books/2","title":"Dune","pages":"412","tags":[],"kind":"NOVEL","publish_time":null,"author":null}`,
		},
		{
			name:     "additional binding with **, %2F kept",
			req:      request{method: http.MethodGet, target: "/v1/books/a%2Fb/c%20d"},
			wantCall: `GetBook {"name":"a%2Fb/c d"}`, wantStatus: http.StatusOK,
		},
		{
			name:       "HEAD of a GET route",
			req:        request{method: http.MethodHead, target: "/v1/shelves/1/books/2"},
			wantStatus: http.StatusOK, wantCall: `GetBook {"name":"shelves/1/books/2"}`,
		},
		{
			name:       "body field, query parameter beside it, status and Location from the backend",
			req:        request{method: http.MethodPost, target: "/v1/shelves/7/books?note=hi", body: `{"title": "X", "pages": 3, "tags": ["a", "b"], "kind": "POETRY", "publishTime": "2025-01-02T03:04:05Z"}`},
			wantStatus: http.StatusCreated,
			wantCall:   `CreateBook {"book":{"kind":"POETRY","pages":"3","publishTime":"2025-01-02T03:04:05Z","tags":["a","b"],"title":"X"},"note":"hi","parent":"shelves/7"}`,
			wantHeader: map[string]string{"Location": "/v1/shelves/7/books/new"},
		},
		{
			name:       "nested path variable with a body field",
			req:        request{method: http.MethodPatch, target: "/v1/shelves/1/books/2", body: `{"title": "New"}`},
			wantStatus: http.StatusOK,
			wantCall:   `UpdateBook {"book":{"name":"shelves/1/books/2","title":"New"}}`,
		},
		{
			name:       "the body may repeat the path's value",
			req:        request{method: http.MethodPatch, target: "/v1/shelves/1/books/2", body: `{"name": "shelves/1/books/2", "title": "Same"}`},
			wantStatus: http.StatusOK,
			wantCall:   `UpdateBook {"book":{"name":"shelves/1/books/2","title":"Same"}}`,
		},
		{
			name:       "query parameters of many kinds, response_body",
			req:        request{method: http.MethodGet, target: "/v1/search?query=q&page_size=5&kinds=NOVEL&kinds=2&author.name=Ada&min_pages=10&exact=true&since=2025-01-02T03:04:05Z"},
			wantStatus: http.StatusOK,
			wantCall:   `Search {"author":{"name":"Ada"},"exact":true,"kinds":["NOVEL","POETRY"],"minPages":"10","pageSize":5,"query":"q","since":"2025-01-02T03:04:05Z"}`,
			wantBody:   `[{"name":"q","title":"","pages":"0","tags":[],"kind":"KIND_UNSPECIFIED","publish_time":null,"author":null},{"name":"two","title":"","pages":"0","tags":[],"kind":"KIND_UNSPECIFIED","publish_time":null,"author":null}]`,
		},
		{
			name:       "verb, body *",
			req:        request{method: http.MethodPost, target: "/v1/shelves/3:publish", body: `{"message": "m"}`},
			wantStatus: http.StatusOK,
			wantCall:   `Publish {"message":"m","name":"shelves/3"}`,
			wantBody:   `{"published":true,"name":"shelves/3"}`,
		},
		{
			name:       "backend error",
			req:        request{method: http.MethodGet, target: "/v1/shelves/1/books/missing"},
			wantStatus: http.StatusNotFound,
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			a := do(t, g, tc.req)
			if a.status != tc.wantStatus {
				t.Fatalf("status %d %s, want %d", a.status, a.body, tc.wantStatus)
			}
			if tc.wantCall != "" {
				if got := b.last(); got != tc.wantCall {
					t.Errorf("backend got\n  %s\nwant\n  %s", got, tc.wantCall)
				}
			}
			if tc.wantBody != "" {
				if diff := cmp.Diff(tc.wantBody+"\n", string(a.body)); diff != "" {
					t.Errorf("body (-want +got):\n%s", diff)
				}
			}
			for k, v := range tc.wantHeader {
				if got := a.header.Get(k); got != v {
					t.Errorf("%s: %q, want %q", k, got, v)
				}
			}
		})
	}
}

// TestTranscodingRefusals: malformed or mistyped input is a 400 (415, 413)
// naming what is wrong, and reaches no backend.
func TestTranscodingRefusals(t *testing.T) {
	cfg := testConfig()
	cfg.MaxBodyBytes = 64
	g, b := shopGateway(t, cfg, shopAll)
	for _, tc := range []struct {
		name       string
		req        request
		wantStatus int
		wantField  string // the BadRequest field, when set
	}{
		{"wrong type in the query", request{method: http.MethodGet, target: "/v1/search?page_size=abc"}, http.StatusBadRequest, "page_size"},
		{"out of range in the query", request{method: http.MethodGet, target: "/v1/search?page_size=99999999999"}, http.StatusBadRequest, "page_size"},
		{"unknown enum name", request{method: http.MethodGet, target: "/v1/search?kinds=EPIC"}, http.StatusBadRequest, "kinds"},
		{"unknown query parameter", request{method: http.MethodGet, target: "/v1/search?color=red"}, http.StatusBadRequest, "color"},
		{"repeated singular parameter", request{method: http.MethodGet, target: "/v1/search?query=a&query=b"}, http.StatusBadRequest, "query"},
		{"query parameter bound by the path", request{method: http.MethodGet, target: "/v1/shelves/1/books/2?name=x"}, http.StatusBadRequest, "name"},
		{"malformed query", request{method: http.MethodGet, target: "/v1/search?query=%zz"}, http.StatusBadRequest, "query"},
		{"query beside body *", request{method: http.MethodPost, target: "/v1/shelves/3:publish?message=x", body: `{}`}, http.StatusBadRequest, "message"},
		{"malformed JSON", request{method: http.MethodPost, target: "/v1/shelves/3:publish", body: `{"message": `}, http.StatusBadRequest, "body"},
		{"wrong type in the body", request{method: http.MethodPost, target: "/v1/shelves/7/books", body: `{"pages": "many"}`}, http.StatusBadRequest, "body"},
		{"unknown field in the body", request{method: http.MethodPost, target: "/v1/shelves/7/books", body: `{"colour": "red"}`}, http.StatusBadRequest, "body"},
		{"body disagrees with the path", request{method: http.MethodPatch, target: "/v1/shelves/1/books/2", body: `{"name": "shelves/9/books/9"}`}, http.StatusBadRequest, "book.name"},
		{"oversized body", request{method: http.MethodPost, target: "/v1/shelves/3:publish", body: `{"message": "` + strings.Repeat("x", 100) + `"}`}, http.StatusRequestEntityTooLarge, ""},
		{"invalid UTF-8 in the path", request{method: http.MethodGet, target: "/v1/shelves/%ff/books/2"}, http.StatusBadRequest, "name"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			before := b.last()
			b.mu.Lock()
			n := len(b.requests)
			b.mu.Unlock()
			a := do(t, g, tc.req)
			if a.status != tc.wantStatus {
				t.Fatalf("status %d %s, want %d", a.status, a.body, tc.wantStatus)
			}
			e := a.decodeError(t)
			if tc.wantField != "" {
				if !slices.Contains(e.detailTypes(), "type.googleapis.com/google.rpc.BadRequest") ||
					!strings.Contains(string(a.body), `"field":"`+tc.wantField+`"`) {
					t.Errorf("answer %s does not name the field %s", a.body, tc.wantField)
				}
			}
			b.mu.Lock()
			m := len(b.requests)
			b.mu.Unlock()
			if m != n {
				t.Errorf("the backend was called (%s after %s)", b.last(), before)
			}
		})
	}
	// A wrong Content-Type is 415.
	a := do(t, g, request{method: http.MethodPost, target: "/v1/shelves/3:publish", body: `{}`,
		header: http.Header{"Content-Type": {"text/plain"}}})
	if a.status != http.StatusUnsupportedMediaType {
		t.Errorf("text/plain body: %d %s, want 415", a.status, a.body)
	}
}

// TestStreaming: a server stream is newline-delimited JSON; an error after
// the first message is a last line in the error shape, one before it an
// error answer.
func TestStreaming(t *testing.T) {
	g, _ := shopGateway(t, testConfig(), shopAll)
	a := do(t, g, request{method: http.MethodGet, target: "/v1/shelves/s/watch?count=3"})
	if a.status != http.StatusOK || a.header.Get("Content-Type") != "application/x-ndjson" {
		t.Fatalf("status %d, Content-Type %q: %s", a.status, a.header.Get("Content-Type"), a.body)
	}
	lines := strings.Split(strings.TrimSuffix(string(a.body), "\n"), "\n")
	if len(lines) != 3 {
		t.Fatalf("%d lines, want 3: %q", len(lines), a.body)
	}
	for i, l := range lines {
		var m map[string]any
		if err := json.Unmarshal([]byte(l), &m); err != nil || m["name"] != "s/"+string(rune('0'+i)) {
			t.Errorf("line %d = %s (%v)", i, l, err)
		}
	}

	a = do(t, g, request{method: http.MethodGet, target: "/v1/shelves/s/watch?count=1&fail=true"})
	lines = strings.Split(strings.TrimSuffix(string(a.body), "\n"), "\n")
	if a.status != http.StatusOK || len(lines) != 2 {
		t.Fatalf("failing stream: %d %q", a.status, a.body)
	}
	var last jsonError
	if err := json.Unmarshal([]byte(lines[1]), &last); err != nil || last.Error.Code != "UNAVAILABLE" || last.Error.Status != http.StatusServiceUnavailable {
		t.Errorf("last line %s (%v), want the error shape of UNAVAILABLE", lines[1], err)
	}
	if strings.Contains(lines[1], "10.0.0.7") {
		t.Errorf("the backend's internals reached the client: %s", lines[1])
	}

	a = do(t, g, request{method: http.MethodGet, target: "/v1/shelves/s/watch?fail=true"})
	if a.status != http.StatusServiceUnavailable {
		t.Errorf("stream failing at once: %d %s, want 503", a.status, a.body)
	}
	a.decodeError(t)
	a = do(t, g, request{method: http.MethodGet, target: "/v1/shelves/s/watch"})
	if a.status != http.StatusOK || len(a.body) != 0 {
		t.Errorf("empty stream: %d %q, want 200 and no line", a.status, a.body)
	}
}

// TestRoutesOfAnAPI: what is served and what is not (no annotation, a
// client stream), and that a route served already is refused for a later
// backend, then goes to it when the first one leaves.
func TestRoutesOfAnAPI(t *testing.T) {
	g, _ := shopGateway(t, testConfig(), shopAll)
	var got []string
	for _, r := range g.Routes() {
		got = append(got, r.Method+" "+r.Path+" "+r.Backend+" "+r.RPC)
	}
	want := []string{
		"GET /v1/{name=shelves/*/books/*} shop /shop.v1.ShopService/GetBook",
		"GET /v1/books/{name=**} shop /shop.v1.ShopService/GetBook",
		"POST /v1/{parent=shelves/*}/books shop /shop.v1.ShopService/CreateBook",
		"PATCH /v1/{book.name=shelves/*/books/*} shop /shop.v1.ShopService/UpdateBook",
		"GET /v1/search shop /shop.v1.ShopService/Search",
		"POST /v1/{name=shelves/*}:publish shop /shop.v1.ShopService/Publish",
		"GET /v1/shelves/{shelf}/watch shop /shop.v1.ShopService/Watch",
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("routes (-want +got):\n%s", diff)
	}
	if a := do(t, g, request{method: http.MethodPost, target: "/v1/upload", body: `{}`}); a.status != http.StatusNotFound {
		t.Errorf("client stream's route: %d, want 404", a.status)
	}

	// A second backend with the same API: every route is refused (and
	// logged), none overridden.
	shop, _ := g.api("shop")
	other := shop
	other.Name = "shop-copy"
	if err := g.SetAPI(other); err != nil {
		t.Fatal(err)
	}
	for _, r := range g.Routes() {
		if r.Backend != "shop" {
			t.Errorf("route %s %s went to %s", r.Method, r.Path, r.Backend)
		}
	}
	g.RemoveAPI("shop")
	if n := len(g.routesOf("shop-copy")); n != len(want) {
		t.Errorf("after the first backend left, the second serves %d routes, want %d", n, len(want))
	}
	g.RemoveAPI("shop-copy")
	if n := len(g.Routes()); n != 0 {
		t.Errorf("%d routes left after every backend left", n)
	}
	if a := do(t, g, request{method: http.MethodGet, target: "/v1/shelves/1/books/2"}); a.status != http.StatusNotFound {
		t.Errorf("a route of a backend gone: %d, want 404", a.status)
	}
	// A backend without annotations has no route and no error.
	if err := g.SetAPI(API{Name: "plain", Services: nil, Conn: shop.Conn}); err != nil {
		t.Fatal(err)
	}
	if n := len(g.Routes()); n != 0 {
		t.Errorf("%d routes for a backend without annotations", n)
	}
}

// TestRouteAccess: a method the backend declares public is served
// anonymously and its call carries no token; the others need a valid one,
// which the call carries; a route policy can ask for a token on a public
// method.
func TestRouteAccess(t *testing.T) {
	g, b := shopGateway(t, testConfig(), "/shop.v1.ShopService/GetBook")
	if a := do(t, g, request{method: http.MethodGet, target: "/v1/shelves/1/books/2"}); a.status != http.StatusOK {
		t.Fatalf("public route: %d %s", a.status, a.body)
	}
	if md := b.lastHeader(); len(md.Get("authorization")) != 0 {
		t.Errorf("an anonymous call carried %q", md.Get("authorization"))
	}
	a := do(t, g, request{method: http.MethodGet, target: "/v1/search"})
	if a.status != http.StatusUnauthorized || !strings.HasPrefix(a.header.Get("WWW-Authenticate"), "Bearer") {
		t.Errorf("route needing a token, without one: %d %v", a.status, a.header)
	}
	tok := token(t)
	if a := do(t, g, request{method: http.MethodGet, target: "/v1/search", token: tok}); a.status != http.StatusOK {
		t.Fatalf("with a token: %d %s", a.status, a.body)
	}
	if md := b.lastHeader(); !slices.Equal(md.Get("authorization"), []string{"Bearer " + tok}) {
		t.Errorf("the call carried %q, want the caller's token", md.Get("authorization"))
	}

	cfg := g.Config()
	cfg.Routes = map[string]RoutePolicy{"/shop.v1.ShopService/GetBook": {Access: AccessBearer}}
	if err := g.SetConfig(cfg); err != nil {
		t.Fatal(err)
	}
	if a := do(t, g, request{method: http.MethodGet, target: "/v1/shelves/1/books/2"}); a.status != http.StatusUnauthorized {
		t.Errorf("public route with access bearer, no token: %d, want 401", a.status)
	}
	for _, r := range g.Routes() {
		if r.Public {
			t.Errorf("route %s %s still public", r.Method, r.Path)
		}
	}
}

// TestRoutePolicyLimits: a route's limits (all clients, each client) refuse
// with 429 and Retry-After without touching the other routes; they are
// live.
func TestRoutePolicyLimits(t *testing.T) {
	clk := newClock()
	cfg := testConfig()
	cfg.Routes = map[string]RoutePolicy{
		"/shop.v1.ShopService/GetBook": {Limit: ratelimit.Limit{RPS: 1, Burst: 2}},
		"/shop.v1.ShopService/*":       {PerClient: ratelimit.Limit{RPS: 1, Burst: 1}},
	}
	b, cc := serveShop(t)
	_ = b
	services, types, err := Reflect(t.Context(), cc)
	if err != nil {
		t.Fatal(err)
	}
	g, err := New(cfg, withClock(clk.Now))
	if err != nil {
		t.Fatal(err)
	}
	if err := g.SetAPI(API{Name: "shop", Services: services, Types: types, Public: []string{shopAll}, Conn: cc}); err != nil {
		t.Fatal(err)
	}
	get := func(remote string) answer {
		return do(t, g, request{method: http.MethodGet, target: "/v1/shelves/1/books/2", remote: remote})
	}
	search := func(remote string) answer {
		return do(t, g, request{method: http.MethodGet, target: "/v1/search", remote: remote})
	}
	// GetBook: 2 for all clients together, then 429.
	for i, remote := range []string{"192.0.2.1:1", "192.0.2.2:1"} {
		if a := get(remote); a.status != http.StatusOK {
			t.Fatalf("GetBook %d: %d %s", i, a.status, a.body)
		}
	}
	a := get("192.0.2.3:1")
	if a.status != http.StatusTooManyRequests || a.header.Get("Retry-After") == "" || !strings.Contains(a.decodeError(t).Error.Message, "(route)") {
		t.Errorf("third GetBook: %d %v %s, want 429 of the route with Retry-After", a.status, a.header, a.body)
	}
	// Search: one per client.
	if a := search("192.0.2.1:1"); a.status != http.StatusOK {
		t.Fatalf("search: %d %s", a.status, a.body)
	}
	if a := search("192.0.2.1:1"); a.status != http.StatusTooManyRequests || !strings.Contains(a.decodeError(t).Error.Message, "(route_client)") {
		t.Errorf("second search of a client: %d %s, want 429 of the route's client bucket", a.status, a.body)
	}
	if a := search("192.0.2.9:1"); a.status != http.StatusOK {
		t.Errorf("another client's search: %d %s", a.status, a.body)
	}
	clk.Advance(time.Second)
	if a := get("192.0.2.3:1"); a.status != http.StatusOK {
		t.Errorf("GetBook a second later: %d %s", a.status, a.body)
	}
	// Live: the limit off.
	cfg.Routes = nil
	if err := g.SetConfig(cfg); err != nil {
		t.Fatal(err)
	}
	for range 5 {
		if a := search("192.0.2.1:1"); a.status != http.StatusOK {
			t.Fatalf("search without limits: %d %s", a.status, a.body)
		}
	}
}

// TestCORS: preflights of allowed origins get the route's methods, others
// 403; answers to allowed origins carry Access-Control-Allow-Origin; with
// CORS off, OPTIONS is a 405 as any other method.
func TestCORS(t *testing.T) {
	cfg := testConfig()
	g, _ := shopGateway(t, cfg, shopAll)
	pre := func(origin string) answer {
		return do(t, g, request{method: http.MethodOptions, target: "/v1/shelves/1/books/2",
			header: http.Header{"Origin": {origin}, "Access-Control-Request-Method": {"GET"}}})
	}
	if a := pre("https://app.example.com"); a.status != http.StatusMethodNotAllowed {
		t.Errorf("CORS off: preflight %d, want 405", a.status)
	}
	cfg.CORS.AllowedOrigins = []string{"https://app.example.com"}
	if err := g.SetConfig(cfg); err != nil {
		t.Fatal(err)
	}
	a := pre("https://app.example.com")
	if a.status != http.StatusNoContent || a.header.Get("Access-Control-Allow-Origin") != "https://app.example.com" ||
		a.header.Get("Access-Control-Allow-Methods") != "GET, HEAD, PATCH" || !strings.Contains(a.header.Get("Access-Control-Allow-Headers"), "Authorization") ||
		a.header.Get("Access-Control-Max-Age") != "600" {
		t.Errorf("preflight of an allowed origin: %d %v", a.status, a.header)
	}
	if a := pre("https://evil.example.com"); a.status != http.StatusForbidden || a.header.Get("Access-Control-Allow-Origin") != "" {
		t.Errorf("preflight of another origin: %d %v", a.status, a.header)
	}
	a = do(t, g, request{method: http.MethodGet, target: "/v1/shelves/1/books/2", header: http.Header{"Origin": {"https://app.example.com"}}})
	if a.status != http.StatusOK || a.header.Get("Access-Control-Allow-Origin") != "https://app.example.com" || !strings.Contains(a.header.Get("Vary"), "Origin") {
		t.Errorf("request of an allowed origin: %d %v", a.status, a.header)
	}
	a = do(t, g, request{method: http.MethodGet, target: "/v1/shelves/1/books/2", header: http.Header{"Origin": {"https://evil.example.com"}}})
	if a.header.Get("Access-Control-Allow-Origin") != "" {
		t.Errorf("request of another origin got %q", a.header.Get("Access-Control-Allow-Origin"))
	}
	cfg.CORS.AllowedOrigins = []string{"https://App.example.com/path"}
	if err := g.SetConfig(cfg); err == nil {
		t.Error("an origin with a path and capitals was accepted")
	}
}

// TestOverlappingRoutesRefused: a later backend's route that would take
// some requests of an earlier backend's route (a literal where the other
// has a variable, a verb on a template without one) is refused, so the
// earlier backend keeps its requests; the rest of the later backend's
// routes are served.
func TestOverlappingRoutesRefused(t *testing.T) {
	g, b := shopGateway(t, testConfig(), shopAll)
	files := compileFiles(t, "intruder/v1/intruder.proto")
	d, err := files.FindDescriptorByName("intruder.v1.IntruderService")
	if err != nil {
		t.Fatal(err)
	}
	shop, _ := g.api("shop")
	if err := g.SetAPI(API{Name: "intruder", Services: []protoreflect.ServiceDescriptor{d.(protoreflect.ServiceDescriptor)},
		Public: []string{"*"}, Conn: shop.Conn}); err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, r := range g.routesOf("intruder") {
		got = append(got, r.Method+" "+r.Path)
	}
	if !slices.Equal(got, []string{"GET /v1/intruder/{id}"}) {
		t.Errorf("the intruder's routes served: %q, want only its own", got)
	}
	if a := do(t, g, request{method: http.MethodGet, target: "/v1/shelves/1/books/special"}); a.status != http.StatusOK ||
		b.last() != `GetBook {"name":"shelves/1/books/special"}` {
		t.Errorf("GET /v1/shelves/1/books/special: %d, the shop got %s", a.status, b.last())
	}
}
