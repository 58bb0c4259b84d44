package httprule

import (
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

func TestParseTemplate(t *testing.T) {
	for _, tc := range []struct {
		in      string
		str     string // canonical form
		openAPI string
		verb    string
		vars    []string
	}{
		{in: "/", str: "/", openAPI: "/", vars: []string{}},
		{in: "/v1", str: "/v1", openAPI: "/v1", vars: []string{}},
		{in: "/v1/{name=messages/*}", str: "/v1/{name=messages/*}", openAPI: "/v1/{name}", vars: []string{"name"}},
		{
			in:      "/v1/users/{user_id}/messages/{message_id}",
			str:     "/v1/users/{user_id}/messages/{message_id}",
			openAPI: "/v1/users/{user_id}/messages/{message_id}",
			vars:    []string{"user_id", "message_id"},
		},
		{
			in:      "/v1/messages/{message_id}/{sub.subfield}",
			str:     "/v1/messages/{message_id}/{sub.subfield}",
			openAPI: "/v1/messages/{message_id}/{sub.subfield}",
			vars:    []string{"message_id", "sub.subfield"},
		},
		{
			in:      "/v1/{name=projects/*/locations/*}:publish",
			str:     "/v1/{name=projects/*/locations/*}:publish",
			openAPI: "/v1/{name}:publish",
			verb:    "publish",
			vars:    []string{"name"},
		},
		{in: "/v1/{name=*}", str: "/v1/{name}", openAPI: "/v1/{name}", vars: []string{"name"}},
		{in: "/v1/{name=**}", str: "/v1/{name=**}", openAPI: "/v1/{name}", vars: []string{"name"}},
		{in: "/v1/{name=shelves/*/books/**}", str: "/v1/{name=shelves/*/books/**}", openAPI: "/v1/{name}", vars: []string{"name"}},
		{in: "/v1/{x=lit}", str: "/v1/{x=lit}", openAPI: "/v1/{x}", vars: []string{"x"}},
		{in: "/v1/*/a/**", str: "/v1/*/a/**", openAPI: "/v1/*/a/**", vars: []string{}},
		{in: "/v1:batchGet", str: "/v1:batchGet", openAPI: "/v1:batchGet", verb: "batchGet", vars: []string{}},
		{in: "/v1/**:undelete", str: "/v1/**:undelete", openAPI: "/v1/**:undelete", verb: "undelete", vars: []string{}},
		// Percent-encodings are decoded, and written back only where needed.
		{in: "/a%7eb/%41%2f:v%3Ax", str: "/a~b/A%2F:v%3Ax", openAPI: "/a~b/A%2F:v%3Ax", verb: "v:x", vars: []string{}},
		{in: "/-._~09azAZ", str: "/-._~09azAZ", openAPI: "/-._~09azAZ", vars: []string{}},
		{in: "/{_a.B_9.c}", str: "/{_a.B_9.c}", openAPI: "/{_a.B_9.c}", vars: []string{"_a.B_9.c"}},
		// Fields that share a prefix without one containing the other.
		{in: "/{a.b}/{a.c}/{ab}", str: "/{a.b}/{a.c}/{ab}", openAPI: "/{a.b}/{a.c}/{ab}", vars: []string{"a.b", "a.c", "ab"}},
	} {
		t.Run(tc.in, func(t *testing.T) {
			tmpl, err := ParseTemplate(tc.in)
			if err != nil {
				t.Fatalf("ParseTemplate(%q): %v", tc.in, err)
			}
			got := struct{ Str, OpenAPI, Verb string }{tmpl.String(), tmpl.OpenAPIPath(), tmpl.Verb()}
			want := struct{ Str, OpenAPI, Verb string }{tc.str, tc.openAPI, tc.verb}
			if diff := cmp.Diff(want, got); diff != "" {
				t.Errorf("ParseTemplate(%q) (-want +got):\n%s", tc.in, diff)
			}
			if diff := cmp.Diff(tc.vars, tmpl.Vars()); diff != "" {
				t.Errorf("Vars() (-want +got):\n%s", diff)
			}
			again, err := ParseTemplate(tmpl.String())
			if err != nil {
				t.Fatalf("ParseTemplate(%q), its canonical form: %v", tmpl.String(), err)
			}
			if diff := cmp.Diff(tmpl, again, cmp.AllowUnexported(Template{}, segment{}, variable{})); diff != "" {
				t.Errorf("the canonical form parses to another template (-want +got):\n%s", diff)
			}
		})
	}
}

func TestParseTemplateErrors(t *testing.T) {
	for _, tc := range []struct {
		in, want string // want is in the error
	}{
		{"", `offset 0: a template starts with "/"`},
		{"v1/x", `offset 0: a template starts with "/"`},
		{"//", "offset 1: missing segment"},
		{"/v1/", "offset 4: missing segment"},
		{"/v1//x", "offset 4: missing segment"},
		{"/:verb", "offset 1: missing segment"},
		{"/v1:", "offset 4: expected a verb"},
		{"/v1:a:b", `offset 5: unexpected ':'`},
		{"/v1:a/b", `offset 5: unexpected '/'`},
		{"/v1/a b", `offset 5: unexpected ' ' after a segment`},
		{"/v1/@x", `offset 4: expected a segment`},
		{"/v1/a%2", "offset 5: malformed percent-encoding"},
		{"/v1/a%zz", "offset 5: malformed percent-encoding"},
		{"/v1/*x", `offset 5: unexpected 'x' after a segment`},
		{"/v1/***", `offset 6: unexpected '*' after a segment`},
		{"/v1/**/x", `offset 7: "**" must be the last segment`},
		{"/v1/{name=**}/x", `offset 14: "**" must be the last segment`},
		{"/{a=**/b}", `offset 7: "**" must be the last segment`},
		{"/v1/{name", `offset 4: variable without its "}"`},
		{"/v1/{name=a/*", `offset 4: variable without its "}"`},
		{"/v1/{}", "offset 5: expected a field name, found '}'"},
		{"/v1/{1a}", "offset 5: expected a field name, found '1'"},
		{"/v1/{a.}", "offset 7: expected a field name, found '}'"},
		{"/v1/{a..b}", "offset 7: expected a field name, found '.'"},
		{"/v1/{a-b}", `offset 6: unexpected '-' in a variable`},
		{"/v1/{a=}", "offset 7: missing segment"},
		{"/v1/{a=b/{c}}", "offset 9: a variable inside a variable"},
		{"/v1/{a=b:c}", `offset 8: unexpected ':' after a segment`},
		{"/v1/}", `offset 4: missing segment`},
		{"/v1/a}", `offset 5: unexpected '}' after a segment`},
		{"/{a}/{a}", `offset 5: field "a" is bound twice`},
		{"/{a.b}/{a}", `offset 7: field "a" is bound, and a field inside it too`},
		{"/{a}/{a.b}", `offset 5: field "a.b" is inside "a", which is bound too`},
		{"/\x00", `offset 1: expected a segment`},
		{"/" + strings.Repeat("a", MaxTemplateLen), "more than 4096"},
	} {
		t.Run(tc.in, func(t *testing.T) {
			tmpl, err := ParseTemplate(tc.in)
			if err == nil {
				t.Fatalf("ParseTemplate(%q) = %q, want an error with %q", tc.in, tmpl, tc.want)
			}
			if !strings.Contains(err.Error(), tc.want) {
				t.Errorf("ParseTemplate(%q): %v, want an error with %q", tc.in, err, tc.want)
			}
		})
	}
}

func TestTemplateCompare(t *testing.T) {
	// Each template is more specific than those after it.
	ordered := []string{
		"/v1/a/b",
		"/v1/a/*",
		"/v1/a/**",
		"/v1/*/b:x",
		"/v1/*/b",
		"/v1/*/*",
		"/v1/*:x",
		"/v1/*",
		"/v1/**:x",
		"/v1/**",
		"/**",
	}
	ts := make([]*Template, len(ordered))
	for i, s := range ordered {
		ts[i] = mustParse(t, s)
	}
	for i := range ts {
		for j := range ts {
			got := ts[i].compare(ts[j])
			if i < j && got >= 0 || i > j && got <= 0 || i == j && got != 0 {
				t.Errorf("compare(%q, %q) = %d", ordered[i], ordered[j], got)
			}
		}
	}
}

func mustParse(t testing.TB, s string) *Template {
	t.Helper()
	tmpl, err := ParseTemplate(s)
	if err != nil {
		t.Fatal(err)
	}
	return tmpl
}
