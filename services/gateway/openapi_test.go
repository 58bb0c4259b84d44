package gateway

import (
	"context"
	"net/http"
	"regexp"
	"strings"
	"testing"

	"github.com/getkin/kin-openapi/openapi3"
)

// TestOpenAPI: /openapi.json documents every route served, and no other,
// with the routes that need a token marked; it is a valid OpenAPI 3
// document (kin-openapi), and it follows the backends and the policies.
func TestOpenAPI(t *testing.T) {
	g := newGateway(t, testConfig())
	_, cc := serveShop(t)
	services, types, err := Reflect(t.Context(), cc)
	if err != nil {
		t.Fatal(err)
	}
	if err := g.SetAPI(API{Name: "shop", Services: services, Types: types, Public: []string{"/shop.v1.ShopService/GetBook"}, Conn: cc}); err != nil {
		t.Fatal(err)
	}
	doc := fetchOpenAPI(t, g)
	want := map[string]bool{} // "GET /v1/users/{id}" -> needs a token
	shapes := map[string]string{}
	for _, r := range g.Routes() {
		// OpenAPI has one path per shape: "/v1/{book.name}" after
		// "/v1/{name}" is not documented.
		p := openAPIPathOf(t, r.Path)
		shape := regexp.MustCompile(`\{[^}]*\}`).ReplaceAllString(p, "{}")
		if q, ok := shapes[shape]; ok && q != p {
			continue
		}
		shapes[shape] = p
		want[r.Method+" "+p] = !r.Public
	}
	got := map[string]bool{}
	for path, item := range doc.Paths.Map() {
		for method, op := range item.Operations() {
			bearer := op.Security == nil || len(*op.Security) > 0
			if op.Security == nil {
				bearer = len(doc.Security) > 0
			}
			got[method+" "+path] = bearer
		}
	}
	for k, v := range want {
		if b, ok := got[k]; !ok {
			t.Errorf("route %s is not documented", k)
		} else if b != v {
			t.Errorf("route %s: documented as needing a token %v, want %v", k, b, v)
		}
	}
	for k := range got {
		if _, ok := want[k]; !ok {
			t.Errorf("%s is documented but not served", k)
		}
	}
	for _, k := range []string{"GET /v1/hello/{name}", "POST /v1/users", "GET /v1/users/{id}", "GET /v1/users",
		"PATCH /v1/users/{id}", "DELETE /v1/users/{id}", "GET /v1/{name}", "POST /v1/{name}:publish"} {
		if _, ok := got[k]; !ok {
			t.Errorf("README route %s missing from the document", k)
		}
	}
	if got["GET /v1/hello/{name}"] || !got["POST /v1/users"] {
		t.Errorf("hello public %v, create user needs a token %v", !got["GET /v1/hello/{name}"], got["POST /v1/users"])
	}

	// A policy that asks for a token shows in the document; a backend gone
	// leaves it.
	cfg := g.Config()
	cfg.Routes = map[string]RoutePolicy{"/greeter.v1.GreeterService/*": {Access: AccessBearer}}
	if err := g.SetConfig(cfg); err != nil {
		t.Fatal(err)
	}
	g.RemoveAPI("shop")
	doc = fetchOpenAPI(t, g)
	if op := doc.Paths.Find("/v1/hello/{name}").Get; op == nil || op.Security == nil || len(*op.Security) == 0 {
		t.Errorf("hello with access bearer is still documented as public")
	}
	if doc.Paths.Find("/v1/search") != nil {
		t.Error("a route of a backend gone is still documented")
	}
}

// fetchOpenAPI gets /openapi.json from g and validates it.
func fetchOpenAPI(t *testing.T, g *Gateway) *openapi3.T {
	t.Helper()
	a := do(t, g, request{method: http.MethodGet, target: "/openapi.json"})
	if a.status != http.StatusOK || a.header.Get("Content-Type") != "application/json" {
		t.Fatalf("GET /openapi.json: %d %s", a.status, a.header.Get("Content-Type"))
	}
	doc, err := openapi3.NewLoader().LoadFromData(a.body)
	if err != nil {
		t.Fatalf("openapi.json does not load: %v", err)
	}
	if err := doc.Validate(context.Background()); err != nil {
		t.Fatalf("openapi.json is not a valid OpenAPI 3 document: %v", err)
	}
	return doc
}

// openAPIPathOf writes a route's template as OpenAPI does.
func openAPIPathOf(t *testing.T, template string) string {
	t.Helper()
	var b strings.Builder
	for i := 0; i < len(template); i++ {
		c := template[i]
		b.WriteByte(c)
		if c == '{' {
			j := strings.IndexAny(template[i:], "=}")
			b.WriteString(template[i+1 : i+j])
			i += strings.IndexByte(template[i:], '}') - 1
		}
	}
	return b.String()
}
