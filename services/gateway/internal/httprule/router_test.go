package httprule

import (
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

// newRouter returns a router of routes "METHOD template", each with its own
// text as its value.
func newRouter(t testing.TB, routes ...string) *Router[string] {
	t.Helper()
	r := NewRouter[string]()
	for _, rt := range routes {
		method, tmpl, _ := strings.Cut(rt, " ")
		if err := r.Add(method, mustParse(t, tmpl), rt); err != nil {
			t.Fatalf("Add(%q): %v", rt, err)
		}
	}
	if r.Len() != len(routes) {
		t.Fatalf("Len() = %d, want %d", r.Len(), len(routes))
	}
	return r
}

func TestRouterLookup(t *testing.T) {
	r := newRouter(t,
		// The routes of the gateway today.
		"GET /v1/hello/{name}",
		"POST /v1/users",
		"GET /v1/users",
		"GET /v1/users/{id}",
		"PATCH /v1/users/{id}",
		"DELETE /v1/users/{id}",
		// Precedence.
		"GET /v1/users/me",
		"GET /v1/users/{id}/messages/{message_id}",
		"GET /v1/{name=users/*/messages/*}:count",
		"POST /v1/{name=users/*}:undelete",
		"GET /v1/{name=**}",
		"PUT /v1/files/{path=**}",
		"GET /v1/files/{path=**}:meta",
		"GET /v1/shelves/{shelf}/books/{book}",
		"GET /v1/shelves/{shelf}/*/{x}",
		"GET /v1/shelves/*/books/**",
		"GET /v2/{name=projects/*/locations/*}:publish",
		"POST /v2/{name=projects/*/locations/*}:publish",
		"CUSTOM /v2/{name=projects/*/locations/*}",
		"GET /",
		"QUERY /v3/*/{b}",
		"GET /v3/{a}/x",
	)
	for _, tc := range []struct {
		method, path string
		want         string // the route's value; "" for none
		bindings     []Binding
		allowed      []string
	}{
		{"GET", "/v1/hello/ada", "GET /v1/hello/{name}", b("name", "ada"), nil},
		{"GET", "/v1/users", "GET /v1/users", nil, nil},
		{"POST", "/v1/users", "POST /v1/users", nil, nil},
		{"DELETE", "/v1/users", "", nil, []string{"GET", "POST"}},
		{"HEAD", "/v1/users", "", nil, []string{"GET", "POST"}},
		{"GET", "/v1/users/42", "GET /v1/users/{id}", b("id", "42"), nil},
		{"PATCH", "/v1/users/42", "PATCH /v1/users/{id}", b("id", "42"), nil},
		{"PUT", "/v1/users/42", "", nil, []string{"DELETE", "GET", "PATCH"}},
		// A literal beats "*".
		{"GET", "/v1/users/me", "GET /v1/users/me", nil, nil},
		// Another method falls back on the most specific route it has.
		{"PATCH", "/v1/users/me", "PATCH /v1/users/{id}", b("id", "me"), nil},
		// "**" comes last.
		{"GET", "/v1/users/42/messages/7", "GET /v1/users/{id}/messages/{message_id}", b("id", "42", "message_id", "7"), nil},
		{"GET", "/v1/users/42/messages/7/x", "GET /v1/{name=**}", b("name", "users/42/messages/7/x"), nil},
		{"GET", "/v1", "GET /v1/{name=**}", b("name", ""), nil},
		{"GET", "/v1/hello", "GET /v1/{name=**}", b("name", "hello"), nil},
		{"POST", "/v1/hello", "", nil, []string{"GET"}},
		// A verb beats the same segments without one; without its route,
		// the colon is part of the segment.
		{"GET", "/v1/users/42/messages/7:count", "GET /v1/{name=users/*/messages/*}:count", b("name", "users/42/messages/7"), nil},
		{"PATCH", "/v1/users/42/messages/7:count", "", nil, []string{"GET"}},
		{"POST", "/v1/users/42:undelete", "POST /v1/{name=users/*}:undelete", b("name", "users/42"), nil},
		{"GET", "/v1/users/42:undelete", "GET /v1/users/{id}", b("id", "42:undelete"), nil},
		{"PATCH", "/v1/users/42:undelete", "PATCH /v1/users/{id}", b("id", "42:undelete"), nil},
		{"PUT", "/v1/users/42:undelete", "", nil, []string{"DELETE", "GET", "PATCH", "POST"}},
		{"GET", "/v1/users/42%3Aundelete", "GET /v1/users/{id}", b("id", "42:undelete"), nil},
		{"POST", "/v1/users/42%3Aundelete", "", nil, []string{"DELETE", "GET", "PATCH"}},
		// "*" beats "**", even against a verb.
		{"GET", "/v1/files/a/b:meta", "GET /v1/files/{path=**}:meta", b("path", "a/b"), nil},
		{"PUT", "/v1/files/a/b:meta", "PUT /v1/files/{path=**}", b("path", "a/b:meta"), nil},
		{"GET", "/v1/files/a:meta", "GET /v1/files/{path=**}:meta", b("path", "a"), nil},
		{"GET", "/v1/files/a", "GET /v1/{name=**}", b("name", "files/a"), nil},
		// Segment by segment from the left.
		{"GET", "/v1/shelves/1/books/2", "GET /v1/shelves/{shelf}/books/{book}", b("shelf", "1", "book", "2"), nil},
		{"GET", "/v1/shelves/1/cds/2", "GET /v1/shelves/{shelf}/*/{x}", b("shelf", "1", "x", "2"), nil},
		{"GET", "/v1/shelves/1/books/2/3", "GET /v1/shelves/*/books/**", nil, nil},
		{"GET", "/v1/shelves/1/books", "GET /v1/shelves/*/books/**", nil, nil},
		{"GET", "/v3/a/x", "GET /v3/{a}/x", b("a", "a"), nil},
		{"QUERY", "/v3/a/x", "QUERY /v3/*/{b}", b("b", "x"), nil},
		{"DELETE", "/v3/a/x", "", nil, []string{"GET", "QUERY"}},
		// Custom methods, and one template for several methods.
		{"POST", "/v2/projects/p/locations/l:publish", "POST /v2/{name=projects/*/locations/*}:publish", b("name", "projects/p/locations/l"), nil},
		{"CUSTOM", "/v2/projects/p/locations/l", "CUSTOM /v2/{name=projects/*/locations/*}", b("name", "projects/p/locations/l"), nil},
		{"CUSTOM", "/v2/projects/p/locations/l:publish", "CUSTOM /v2/{name=projects/*/locations/*}", b("name", "projects/p/locations/l:publish"), nil},
		{"PUT", "/v2/projects/p/locations/l:publish", "", nil, []string{"CUSTOM", "GET", "POST"}},
		{"GET", "/v2/projects/p/locations/l", "", nil, []string{"CUSTOM"}},
		// 404s.
		{"GET", "/", "GET /", nil, nil},
		{"POST", "/", "", nil, []string{"GET"}},
		{"GET", "/v2", "", nil, nil},
		{"GET", "/v4/x", "", nil, nil},
		{"GET", "", "", nil, nil},
		{"GET", "v1/users", "", nil, nil},
		{"GET", "/v1/users/%zz", "", nil, nil},
		{"GET", "/v1/users/%", "", nil, nil},
		{"GET", "/v2/projects/p/locations/", "", nil, nil},
		// Literals match decoded.
		{"GET", "/v1/%75sers/%6De", "GET /v1/users/me", nil, nil},
		{"GET", "/v1/users/m%65:undelete", "GET /v1/users/{id}", b("id", "me:undelete"), nil},
	} {
		t.Run(tc.method+" "+tc.path, func(t *testing.T) {
			v, bindings, allowed, ok := r.Lookup(tc.method, tc.path)
			if ok != (tc.want != "") || v != tc.want {
				t.Fatalf("Lookup(%q, %q) = %q, ok %v; want %q", tc.method, tc.path, v, ok, tc.want)
			}
			if diff := cmp.Diff(tc.bindings, bindings); diff != "" {
				t.Errorf("bindings (-want +got):\n%s", diff)
			}
			if diff := cmp.Diff(tc.allowed, allowed); diff != "" {
				t.Errorf("allowed (-want +got):\n%s", diff)
			}
		})
	}
}

func TestRouterConflict(t *testing.T) {
	for _, tc := range []struct {
		first, second string
	}{
		{"GET /v1/users/{id}", "GET /v1/users/{name}"},
		{"GET /v1/users/{id}", "GET /v1/users/*"},
		{"GET /v1/{name=shelves/*}", "GET /v1/shelves/{shelf}"},
		{"GET /v1/{name=shelves/*}", "GET /v1/{a=shelves}/{b}"},
		{"GET /v1/{name=**}", "GET /v1/**"},
		{"POST /v1/{name=x/*}:do", "POST /v1/x/{id}:do"},
		{"GET /v1/a~b", "GET /v1/a%7Eb"},
		{"GET /", "GET /"},
	} {
		t.Run(tc.first+" "+tc.second, func(t *testing.T) {
			r := newRouter(t, tc.first)
			method, second, _ := strings.Cut(tc.second, " ")
			err := r.Add(method, mustParse(t, second), tc.second)
			if !errors.Is(err, ErrConflict) {
				t.Fatalf("Add(%q) after %q = %v, want ErrConflict", tc.second, tc.first, err)
			}
			var ce *ConflictError
			if !errors.As(err, &ce) || ce.ExistingValue != tc.first || ce.Existing.String() != mustParse(t, tc.first[len(method)+1:]).String() {
				t.Errorf("Add(%q): %#v, want the route added before, %q", tc.second, ce, tc.first)
			}
			if !strings.Contains(err.Error(), ce.Existing.String()) || !strings.Contains(err.Error(), ce.Template.String()) {
				t.Errorf("Add(%q): %q does not name both templates", tc.second, err)
			}
			if r.Len() != 1 {
				t.Errorf("Len() = %d after a conflict, want 1", r.Len())
			}
		})
	}

	// Neither of these conflict with "GET /v1/users/{id}".
	r := newRouter(t, "GET /v1/users/{id}",
		"POST /v1/users/{id}",
		"GET /v1/users/{id}:verb",
		"GET /v1/users/{id=**}",
		"GET /v1/users/me",
		"GET /v1/users/{id}/x",
		"get /v1/users/{id}",
	)
	if r.Len() != 7 {
		t.Errorf("Len() = %d, want 7", r.Len())
	}
}

func TestRouterAddErrors(t *testing.T) {
	r := NewRouter[int]()
	tmpl := mustParse(t, "/v1")
	for _, method := range []string{"", "GE T", "GET\n", "GÉT", "(GET)"} {
		if err := r.Add(method, tmpl, 1); err == nil || errors.Is(err, ErrConflict) {
			t.Errorf("Add(%q) = %v, want an error about the method", method, err)
		}
	}
	if err := r.Add("GET", nil, 1); err == nil {
		t.Error("Add with a nil template succeeded")
	}
	if r.Len() != 0 {
		t.Errorf("Len() = %d after failed Adds", r.Len())
	}
}

// TestRouterLookupMatchesTemplates checks Lookup against Template.Match and
// compare: the route found is one whose template matches, of the method,
// and no matching template of the method is more specific.
func TestRouterLookupMatchesTemplates(t *testing.T) {
	tmpls := []string{
		"/a", "/a/b", "/a/*", "/a/**", "/*", "/**", "/*/b", "/*/*", "/a/b:v", "/a/*:v", "/**:v", "/*/b/**",
		"/{x=a/*}/c", "/a/{y=**}:w", "/", "/*:v",
	}
	methods := []string{"GET", "POST"}
	r := NewRouter[*Template]()
	var all []*Template
	for i, s := range tmpls {
		tmpl := mustParse(t, s)
		all = append(all, tmpl)
		for j, m := range methods {
			if (i+j)%3 == 0 {
				continue // every template does not have every method
			}
			if err := r.Add(m, tmpl, tmpl); err != nil {
				t.Fatal(err)
			}
		}
	}
	var paths []string
	for _, s1 := range []string{"", "a", "b", "c", "a:v", "b:v", "a:w"} {
		paths = append(paths, "/"+s1)
		for _, s2 := range []string{"", "a", "b", "c", "b:v", "c:w"} {
			paths = append(paths, "/"+s1+"/"+s2)
			for _, s3 := range []string{"c", "b:v", ""} {
				paths = append(paths, "/"+s1+"/"+s2+"/"+s3)
			}
		}
	}
	for _, p := range paths {
		for _, m := range append(methods, "PUT") {
			var best *Template
			var wantAllowed []string
			for i, tmpl := range all {
				if _, match := tmpl.Match(p); !match {
					continue
				}
				for j, m2 := range methods {
					if (i+j)%3 == 0 {
						continue
					}
					if m2 == m && (best == nil || tmpl.compare(best) < 0) {
						best = tmpl
					}
					if !slices.Contains(wantAllowed, m2) {
						wantAllowed = append(wantAllowed, m2)
					}
				}
			}
			slices.Sort(wantAllowed)
			got, _, allowed, ok := r.Lookup(m, p)
			if best == nil {
				if ok || !slices.Equal(allowed, wantAllowed) {
					t.Errorf("Lookup(%q, %q) = %v, %v, allowed %v; want allowed %v", m, p, got, ok, allowed, wantAllowed)
				}
				continue
			}
			if !ok || got != best {
				t.Errorf("Lookup(%q, %q) = %v, %v; want %v", m, p, got, ok, best)
			}
		}
	}
}

func TestRouterLookupDoesNotAllocate(t *testing.T) {
	r := benchRouter(t, 500)
	for _, p := range []string{"/v1/service25/items/42/parts/7", "/v1/service25/items", "/v1/nothing/here"} {
		allocs := testing.AllocsPerRun(100, func() {
			r.Lookup("GET", p)
		})
		want := 0.0
		if p == "/v1/service25/items/42/parts/7" {
			want = 1 // the bindings
		}
		if allocs != want {
			t.Errorf("Lookup(GET, %q): %v allocations, want %v", p, allocs, want)
		}
	}
}

// benchRouter returns a router of n services' routes, n/10 services of ten
// routes each, like the gateway's.
func benchRouter(t testing.TB, n int) *Router[int] {
	t.Helper()
	r := NewRouter[int]()
	shapes := []struct{ method, tmpl string }{
		{"GET", "/v1/service%d/items"},
		{"POST", "/v1/service%d/items"},
		{"GET", "/v1/service%d/items/{id}"},
		{"PATCH", "/v1/service%d/items/{item.id}"},
		{"DELETE", "/v1/service%d/items/{id}"},
		{"GET", "/v1/service%d/items/{id}/parts/{part_id}"},
		{"POST", "/v1/service%d/items/{id}:archive"},
		{"GET", "/v1/{name=service%d/items/*/parts/*}:describe"},
		{"GET", "/v1/service%d/files/{path=**}"},
		{"PUT", "/v1/service%d/files/{path=**}"},
	}
	for i := range n {
		s := shapes[i%len(shapes)]
		if err := r.Add(s.method, mustParse(t, fmt.Sprintf(s.tmpl, i/len(shapes))), i); err != nil {
			t.Fatal(err)
		}
	}
	return r
}

func BenchmarkLookup(b *testing.B) {
	r := benchRouter(b, 500)
	for _, bc := range []struct{ name, method, path string }{
		{"literal", "GET", "/v1/service25/items"},
		{"variables", "GET", "/v1/service25/items/42/parts/7"},
		{"verb", "GET", "/v1/service25/items/42/parts/7:describe"},
		{"doublestar", "GET", "/v1/service25/files/a/b/c/d.txt"},
		{"escaped", "GET", "/v1/service25/items/a%20b"},
		{"405", "PUT", "/v1/service25/items/42"},
		{"404", "GET", "/v1/service9999/items/42"},
	} {
		b.Run(bc.name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				r.Lookup(bc.method, bc.path)
			}
		})
	}
}

// BenchmarkLookupLinear is the linear scan that a router could do instead:
// Match every template, in order, until one matches. It is here to compare.
func BenchmarkLookupLinear(b *testing.B) {
	var tmpls []*Template
	r := benchRouter(b, 500)
	collect(&r.root, &tmpls)
	path := "/v1/service25/items/42/parts/7"
	b.ReportAllocs()
	for b.Loop() {
		for _, t := range tmpls {
			if _, ok := t.Match(path); ok {
				break
			}
		}
	}
}

func collect[T any](n *node[T], out *[]*Template) {
	for _, rt := range n.routes {
		*out = append(*out, rt.tmpl)
	}
	for _, c := range n.literals {
		collect(c, out)
	}
	for _, c := range []*node[T]{n.star, n.doubleStar} {
		if c != nil {
			collect(c, out)
		}
	}
}
