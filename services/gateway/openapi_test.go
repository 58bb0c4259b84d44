package gateway

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"google.golang.org/protobuf/reflect/protoreflect"
	"google.golang.org/protobuf/reflect/protoregistry"

	_ "github.com/grpckit/grpckit/proto/greeter/v1" // registers greeter.v1 messages
	_ "github.com/grpckit/grpckit/proto/user/v1"    // registers user.v1 messages
)

// openAPIDoc is the part of an OpenAPI 3 document the tests read.
type openAPIDoc struct {
	OpenAPI    string                                `json:"openapi"`
	Info       map[string]any                        `json:"info"`
	Paths      map[string]map[string]json.RawMessage `json:"paths"`
	Components struct {
		SecuritySchemes map[string]any    `json:"securitySchemes"`
		Schemas         map[string]schema `json:"schemas"`
		Responses       map[string]any    `json:"responses"`
	} `json:"components"`
}

type operation struct {
	OperationID string           `json:"operationId"`
	Security    []map[string]any `json:"security"`
	Parameters  []parameter      `json:"parameters"`
	RequestBody json.RawMessage  `json:"requestBody"`
	Responses   map[string]any   `json:"responses"`
}

type parameter struct {
	Name     string `json:"name"`
	In       string `json:"in"`
	Required bool   `json:"required"`
}

type schema struct {
	Description string                     `json:"description"`
	Properties  map[string]json.RawMessage `json:"properties"`
}

// fetchOpenAPI gets /openapi.json from g.
func fetchOpenAPI(t *testing.T, g *Gateway) (openAPIDoc, []byte) {
	t.Helper()
	a := do(t, g, request{method: http.MethodGet, target: "/openapi.json"})
	if a.status != http.StatusOK || a.header.Get("Content-Type") != "application/json" {
		t.Fatalf("GET /openapi.json: %d %s", a.status, a.header.Get("Content-Type"))
	}
	var doc openAPIDoc
	if err := json.Unmarshal(a.body, &doc); err != nil {
		t.Fatalf("openapi.json is not valid JSON: %v", err)
	}
	return doc, a.body
}

// TestOpenAPIRoutes: the document describes every registered route and no
// other, each operation as its route behaves.
func TestOpenAPIRoutes(t *testing.T) {
	g := newGateway(t, testConfig())
	doc, _ := fetchOpenAPI(t, g)
	if !strings.HasPrefix(doc.OpenAPI, "3.") || doc.Info["title"] == nil || doc.Info["version"] == nil {
		t.Errorf("openapi %q, info %v: want an OpenAPI 3 document with a title and version", doc.OpenAPI, doc.Info)
	}

	var documented, registered []string
	ids := map[string]bool{}
	for path, item := range doc.Paths {
		var shared []parameter
		if raw, ok := item["parameters"]; ok {
			if err := json.Unmarshal(raw, &shared); err != nil {
				t.Fatalf("%s parameters: %v", path, err)
			}
		}
		for method, raw := range item {
			if method == "parameters" || method == "summary" || method == "description" {
				continue
			}
			key := strings.ToUpper(method) + " " + path
			documented = append(documented, key)
			var op operation
			if err := json.Unmarshal(raw, &op); err != nil {
				t.Fatalf("%s: %v", key, err)
			}
			if op.OperationID == "" || ids[op.OperationID] {
				t.Errorf("%s: operationId %q is empty or not unique", key, op.OperationID)
			}
			ids[op.OperationID] = true
			rt, ok := findRoute(strings.ToUpper(method), path)
			if !ok {
				continue // reported below
			}
			checkOperation(t, key, rt, op, append(shared, op.Parameters...))
		}
	}
	for _, rt := range routes {
		registered = append(registered, rt.method+" "+rt.path)
		// The mux really serves the route with its handler.
		target := strings.NewReplacer("{name}", "x", "{id}", "x").Replace(rt.path)
		if _, pattern := g.mux.Handler(httptest.NewRequest(rt.method, target, nil)); pattern != rt.method+" "+rt.path {
			t.Errorf("%s %s is served by pattern %q", rt.method, target, pattern)
		}
	}
	slices.Sort(documented)
	slices.Sort(registered)
	if diff := cmp.Diff(registered, documented); diff != "" {
		t.Errorf("routes (-registered +documented):\n%s", diff)
	}
}

func findRoute(method, path string) (route, bool) {
	for _, rt := range routes {
		if rt.method == method && rt.path == path {
			return rt, true
		}
	}
	return route{}, false
}

var pathParam = regexp.MustCompile(`\{([^}]+)\}`)

// checkOperation checks an operation against its route: path parameters,
// security, the 401 answer of writes, a request body for POST and PATCH.
func checkOperation(t *testing.T, key string, rt route, op operation, params []parameter) {
	t.Helper()
	var want, got []string
	for _, m := range pathParam.FindAllStringSubmatch(rt.path, -1) {
		want = append(want, m[1])
	}
	for _, p := range params {
		if p.In == "path" {
			if !p.Required {
				t.Errorf("%s: path parameter %s is not required", key, p.Name)
			}
			got = append(got, p.Name)
		}
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("%s: path parameters (-route +document):\n%s", key, diff)
	}
	secured := slices.ContainsFunc(op.Security, func(s map[string]any) bool { _, ok := s["bearerAuth"]; return ok })
	_, has401 := op.Responses["401"]
	needsToken := rt.access != accessPublic
	if secured != needsToken || has401 != needsToken {
		t.Errorf("%s: security %v, 401 documented %v; route needs a token: %v", key, secured, has401, needsToken)
	}
	if _, has403 := op.Responses["403"]; has403 != (rt.access == accessOwner) {
		t.Errorf("%s: 403 documented %v; only the routes that check ownership answer it", key, has403)
	}
	hasBody := rt.method == http.MethodPost || rt.method == http.MethodPatch
	if (len(op.RequestBody) > 0) != hasBody {
		t.Errorf("%s: requestBody documented %v, want %v", key, len(op.RequestBody) > 0, hasBody)
	}
	if _, ok := op.Responses["429"]; !ok {
		t.Errorf("%s: 429 (edge rate limit) not documented", key)
	}
	if len(op.Responses) == 0 {
		t.Errorf("%s: no responses", key)
	}
}

// TestOpenAPIReferences: every $ref points at a component that exists.
func TestOpenAPIReferences(t *testing.T) {
	var doc map[string]any
	if err := json.Unmarshal(openAPIDocument, &doc); err != nil {
		t.Fatal(err)
	}
	var walk func(v any)
	n := 0
	walk = func(v any) {
		switch v := v.(type) {
		case map[string]any:
			if ref, ok := v["$ref"].(string); ok {
				n++
				if resolve(doc, ref) == nil {
					t.Errorf("$ref %q does not resolve", ref)
				}
			}
			for _, c := range v {
				walk(c)
			}
		case []any:
			for _, c := range v {
				walk(c)
			}
		}
	}
	walk(doc)
	if n == 0 {
		t.Error("no $ref found")
	}
}

// resolve returns the value a local JSON pointer reference names, or nil.
func resolve(doc map[string]any, ref string) any {
	if !strings.HasPrefix(ref, "#/") {
		return nil
	}
	var cur any = doc
	for _, tok := range strings.Split(ref[2:], "/") {
		m, ok := cur.(map[string]any)
		if !ok {
			return nil
		}
		cur = m[strings.ReplaceAll(strings.ReplaceAll(tok, "~1", "/"), "~0", "~")]
	}
	return cur
}

// TestOpenAPISchemas: a schema describing a proto message ("user.v1.User"
// as its description's first word) has exactly the message's fields, by
// their proto names as the gateway writes them.
func TestOpenAPISchemas(t *testing.T) {
	var doc openAPIDoc
	if err := json.Unmarshal(openAPIDocument, &doc); err != nil {
		t.Fatal(err)
	}
	checked := 0
	for name, s := range doc.Components.Schemas {
		full, _, _ := strings.Cut(s.Description, " ")
		full = strings.TrimSuffix(full, ";")
		if !strings.HasPrefix(full, "user.v1.") && !strings.HasPrefix(full, "greeter.v1.") {
			continue
		}
		mt, err := protoregistry.GlobalTypes.FindMessageByName(protoreflect.FullName(full))
		if err != nil {
			t.Errorf("schema %s names %s: %v", name, full, err)
			continue
		}
		var want, got []string
		fields := mt.Descriptor().Fields()
		for i := range fields.Len() {
			want = append(want, string(fields.Get(i).Name()))
		}
		for p := range s.Properties {
			got = append(got, p)
		}
		slices.Sort(want)
		slices.Sort(got)
		if diff := cmp.Diff(want, got); diff != "" {
			t.Errorf("schema %s vs %s fields (-proto +schema):\n%s", name, full, diff)
		}
		checked++
	}
	if checked < 8 {
		t.Errorf("checked %d message schemas, want at least 8", checked)
	}
}
