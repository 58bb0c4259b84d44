package httprule

import (
	"testing"

	"github.com/google/go-cmp/cmp"
)

// b builds bindings from field and value pairs.
func b(fieldValues ...string) []Binding {
	var bs []Binding
	for i := 0; i < len(fieldValues); i += 2 {
		bs = append(bs, Binding{Field: fieldValues[i], Value: fieldValues[i+1]})
	}
	return bs
}

func TestMatch(t *testing.T) {
	for _, tc := range []struct {
		tmpl, path string
		ok         bool
		want       []Binding
	}{
		// The examples of http.proto.
		{"/v1/messages/{message_id}/{sub.subfield}", "/v1/messages/123456/foo", true, b("message_id", "123456", "sub.subfield", "foo")},
		{"/v1/messages/{message_id}", "/v1/messages/123456", true, b("message_id", "123456")},
		{"/v1/users/{user_id}/messages/{message_id}", "/v1/users/me/messages/123456", true, b("user_id", "me", "message_id", "123456")},
		{"/v1/{name=messages/*}", "/v1/messages/abc", true, b("name", "messages/abc")},
		{"/v1/{name=messages/*}", "/v1/shelves/abc", false, nil},
		{"/v1/{name=messages/*}", "/v1/messages", false, nil},
		{"/v1/{name=messages/*}", "/v1/messages/a/b", false, nil},
		{"/v1/{name=projects/*/locations/*}:publish", "/v1/projects/p1/locations/l1:publish", true, b("name", "projects/p1/locations/l1")},
		{"/v1/{name=projects/*/locations/*}:publish", "/v1/projects/p1/locations/l1", false, nil},
		{"/v1/{name=projects/*/locations/*}:publish", "/v1/projects/p1/locations/l1:cancel", false, nil},

		// Literals and wildcards.
		{"/", "/", true, nil},
		{"/", "//", false, nil},
		{"/v1", "/", false, nil},
		{"/v1", "/v1", true, nil},
		{"/v1", "/v1/", false, nil},
		{"/v1", "/v2", false, nil},
		{"/v1", "v1", false, nil},
		{"/v1", "", false, nil},
		{"/v1/*", "/v1/x", true, nil},
		{"/v1/*", "/v1/", false, nil}, // "*" needs a non-empty segment
		{"/v1/{id}", "/v1/", false, nil},
		{"/v1/**", "/v1", true, nil},
		{"/v1/{rest=**}", "/v1", true, b("rest", "")},
		{"/v1/{rest=**}", "/v1/", true, b("rest", "")},
		{"/v1/{rest=**}", "/v1/a//b/", true, b("rest", "a//b/")},
		{"/{rest=**}", "/", true, b("rest", "")},
		{"/{rest=**}", "/a/b", true, b("rest", "a/b")},
		{"/v1/{name=shelves/**}", "/v1/shelves", true, b("name", "shelves")},
		{"/v1/{name=shelves/**}", "/v1/shelves/1/books/2", true, b("name", "shelves/1/books/2")},
		{"/{a}/{b=x/*}/{c=**}", "/1/x/2/3/4", true, b("a", "1", "b", "x/2", "c", "3/4")},

		// Percent-encoding: a single segment fully decoded, several keep %2F.
		{"/v1/{id}", "/v1/a%20b%2Fc%2fd%25", true, b("id", "a b/c/d%")},
		{"/v1/{id=*}", "/v1/%E2%82%AC", true, b("id", "€")},
		{"/v1/{name=**}", "/v1/a%20b%2Fc%2fd/e", true, b("name", "a b%2Fc%2Fd/e")},
		{"/v1/{name=a/*}", "/v1/a/b%2Fc", true, b("name", "a/b%2Fc")},
		{"/v1/{name=**}", "/v1/%252F", true, b("name", "%2F")},
		{"/v1/users", "/v1/us%65rs", true, nil},
		{"/v1/a~b", "/v1/a%7Eb", true, nil},
		{"/v1/a%2Fb", "/v1/a%2fb", true, nil},
		{"/v1/a%2Fb", "/v1/a/b", false, nil},
		{"/v1/{id}", "/v1/a%2", false, nil},
		{"/v1/{id}", "/v1/a%zz", false, nil},
		{"/v1/{id}", "/v1/%", false, nil},
		{"/v1/x", "/v1/x%", false, nil},
		{"/v1/x", "/v2%/x", false, nil},

		// Verbs, as grpc-gateway reads them.
		{"/v1/{name}:cancel", "/v1/op1:cancel", true, b("name", "op1")},
		{"/v1/{name}:cancel", "/v1/a:b:cancel", true, b("name", "a:b")},
		{"/v1/{name}:cancel", "/v1/:cancel", false, nil},
		{"/v1/{name}:cancel", "/v1/op1", false, nil},
		{"/v1/{name}:cancel", "/v1/op1:", false, nil},
		{"/v1/{name}:cancel", "/v1/op1%3Acancel", false, nil},
		{"/v1/{name}:cancel", "/v1/op1:c%61ncel", true, b("name", "op1")},
		{"/v1/{name}", "/v1/op1:cancel", true, b("name", "op1:cancel")},
		{"/v1/{name}", "/v1/op1%3Acancel", true, b("name", "op1:cancel")},
		{"/v1/{name}", "/v1/:cancel", true, b("name", ":cancel")},
		{"/v1:batchGet", "/v1:batchGet", true, nil},
		{"/v1:batchGet", "/v1", false, nil},
		{"/v1/{rest=**}:undelete", "/v1:undelete", true, b("rest", "")},
		{"/v1/{rest=**}:undelete", "/v1/a/b:undelete", true, b("rest", "a/b")},
		{"/v1/{rest=**}", "/v1/a/b:undelete", true, b("rest", "a/b:undelete")},
		{"/v1/x:get", "/v1/x:get/y", false, nil},
	} {
		t.Run(tc.tmpl+" "+tc.path, func(t *testing.T) {
			got, ok := mustParse(t, tc.tmpl).Match(tc.path)
			if ok != tc.ok {
				t.Fatalf("Match(%q) = %v, %v; want ok %v", tc.path, got, ok, tc.ok)
			}
			if diff := cmp.Diff(tc.want, got); diff != "" {
				t.Errorf("Match(%q) bindings (-want +got):\n%s", tc.path, diff)
			}
		})
	}
}

func TestUnescapeHelpers(t *testing.T) {
	for _, tc := range []struct {
		in    string
		valid bool
	}{
		{"", true}, {"abc", true}, {"%41", true}, {"a%4a%4A", true}, {"%", false}, {"%4", false},
		{"%4g", false}, {"a%41%", false}, {"%%41", false},
	} {
		if got := validEscapes(tc.in); got != tc.valid {
			t.Errorf("validEscapes(%q) = %v, want %v", tc.in, got, tc.valid)
		}
		if !tc.valid {
			continue
		}
		dec := unescape(tc.in, false)
		if got := string(appendUnescaped(nil, tc.in)); got != dec {
			t.Errorf("appendUnescaped(%q) = %q, unescape %q", tc.in, got, dec)
		}
		if !equalUnescaped(tc.in, dec) || equalUnescaped(tc.in, dec+"x") || dec != "" && equalUnescaped(tc.in, dec[1:]) {
			t.Errorf("equalUnescaped(%q, ...) disagrees with unescape's %q", tc.in, dec)
		}
	}
}
