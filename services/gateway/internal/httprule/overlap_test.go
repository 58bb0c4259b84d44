package httprule

import "testing"

// TestOverlaps: whether some path matches both templates, in both orders.
func TestOverlaps(t *testing.T) {
	for _, tc := range []struct {
		a, b string
		want bool
	}{
		{"/v1/users/{id}", "/v1/users/{name}", true},
		{"/v1/users/{id}", "/v1/users/me", true},
		{"/v1/users/{id}", "/v1/users", false},
		{"/v1/users/{id}", "/v1/groups/{id}", false},
		{"/v1/users/{id}", "/v1/users/{id}:export", true}, // "/v1/users/a:export" is a user id for the first
		{"/v1/users/me", "/v1/users/{id}:export", false},
		{"/v1/users/me:export", "/v1/users/{id}:export", true},
		{"/v1/users/{id}:export", "/v1/users/{id}:import", false},
		{"/v1/{name=shelves/*/books/*}", "/v1/shelves/1/books/special", true},
		{"/v1/{name=shelves/*/books/*}", "/v1/shelves/1/books", false},
		{"/v1/books/{name=**}", "/v1/books", true}, // ** takes no segment too
		{"/v1/books/{name=**}", "/v1/shelves/1", false},
		{"/v1/{a=**}", "/v1/x/y/z:verb", true},
		{"/", "/", true},
		{"/", "/v1", false},
	} {
		a, err := ParseTemplate(tc.a)
		if err != nil {
			t.Fatal(err)
		}
		b, err := ParseTemplate(tc.b)
		if err != nil {
			t.Fatal(err)
		}
		if got := a.Overlaps(b); got != tc.want {
			t.Errorf("%s overlaps %s = %v, want %v", tc.a, tc.b, got, tc.want)
		}
		if got := b.Overlaps(a); got != tc.want {
			t.Errorf("%s overlaps %s = %v, want %v", tc.b, tc.a, got, tc.want)
		}
	}
}

// FuzzOverlaps: a path that both templates match means they overlap.
func FuzzOverlaps(f *testing.F) {
	f.Add("/v1/users/{id}", "/v1/users/{id}:export", "/v1/users/a:export")
	f.Add("/v1/{name=shelves/*/books/*}", "/v1/shelves/1/books/special", "/v1/shelves/1/books/special")
	f.Add("/v1/books/{name=**}", "/v1/books", "/v1/books")
	f.Fuzz(func(t *testing.T, a, b, path string) {
		ta, err := ParseTemplate(a)
		if err != nil {
			return
		}
		tb, err := ParseTemplate(b)
		if err != nil {
			return
		}
		_, ma := ta.Match(path)
		_, mb := tb.Match(path)
		if ma && mb && (!ta.Overlaps(tb) || !tb.Overlaps(ta)) {
			t.Fatalf("%q matches %s and %s, which do not overlap", path, a, b)
		}
	})
}
