package httprule

import (
	"errors"
	"net/url"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"google.golang.org/protobuf/proto"
)

// templateSeeds are templates for the fuzzers, valid and not.
var templateSeeds = []string{
	"/", "/v1", "/v1/{name=messages/*}", "/v1/users/{user_id}/messages/{message_id}",
	"/v1/{name=projects/*/locations/*}:publish", "/v1/messages/{message_id}/{sub.subfield}",
	"/v1/{name=**}", "/v1/*/a/**:verb", "/a%2Fb/{x=c/*/**}", "/{a}/{b=x/*}/{c=**}", "/v1:batchGet",
	"/v1/{a", "/v1/**/x", "/{a}/{a}", "//", "/v1/%zz",
}

func FuzzParseTemplate(f *testing.F) {
	for _, s := range templateSeeds {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		tmpl, err := ParseTemplate(s)
		if err != nil {
			if !strings.HasPrefix(err.Error(), "httprule: template ") {
				t.Fatalf("ParseTemplate(%q): %v, without the template's name", s, err)
			}
			return
		}
		canonical := tmpl.String()
		again, err := ParseTemplate(canonical)
		if err != nil {
			t.Fatalf("ParseTemplate(%q) = %q, which does not parse: %v", s, canonical, err)
		}
		if diff := cmp.Diff(tmpl, again, cmp.AllowUnexported(Template{}, segment{}, variable{})); diff != "" {
			t.Fatalf("ParseTemplate(%q) = %q, which parses to another template (-want +got):\n%s", s, canonical, diff)
		}
		if again.String() != canonical {
			t.Fatalf("String() of %q is not stable: %q, then %q", s, canonical, again.String())
		}
		if tmpl.compare(again) != 0 {
			t.Fatalf("%q does not compare equal to its canonical form", s)
		}
		if len(tmpl.Vars()) != strings.Count(tmpl.OpenAPIPath(), "{") {
			t.Fatalf("OpenAPIPath() of %q = %q, for variables %q", s, tmpl.OpenAPIPath(), tmpl.Vars())
		}
	})
}

func FuzzMatch(f *testing.F) {
	for _, s := range templateSeeds {
		f.Add(s, "/v1/messages/abc")
		f.Add(s, "/v1/projects/p/locations/l:publish")
	}
	f.Add("/v1/{id}", "/v1/a%20b%2Fc")
	f.Add("/v1/{name=**}", "/v1/a%2Fb/c%25/")
	f.Add("/v1/{name}:cancel", "/v1/a:b:cancel")
	f.Fuzz(func(t *testing.T, template, path string) {
		tmpl, err := ParseTemplate(template)
		if err != nil {
			return
		}
		bindings, ok := tmpl.Match(path)

		// A router of this one template agrees with Match.
		r := NewRouter[int]()
		if err := r.Add("GET", tmpl, 1); err != nil {
			t.Fatal(err)
		}
		_, rb, allowed, rok := r.Lookup("GET", path)
		if rok != ok || !cmp.Equal(rb, bindings) {
			t.Fatalf("%q: Match(%q) = %q, %v; Lookup = %q, %v", template, path, bindings, ok, rb, rok)
		}
		if _, _, allowed, _ = r.Lookup("POST", path); ok != (len(allowed) == 1) {
			t.Fatalf("%q: Match(%q) = %v; Lookup(POST) has allowed %q", template, path, ok, allowed)
		}
		if !ok {
			return
		}
		if len(bindings) != len(tmpl.vars) {
			t.Fatalf("%q: Match(%q) = %q, for variables %q", template, path, bindings, tmpl.Vars())
		}

		// The path that the template expands to with the bindings matches
		// with the same bindings.
		expanded, ok := expand(tmpl, bindings)
		if !ok {
			return
		}
		again, ok := tmpl.Match(expanded)
		if !ok {
			t.Fatalf("%q: Match(%q) = %q, whose expansion %q does not match", template, path, bindings, expanded)
		}
		if diff := cmp.Diff(bindings, again); diff != "" {
			t.Fatalf("%q: Match(%q) = %q; its expansion %q matches with other bindings (-want +got):\n%s",
				template, path, bindings, expanded, diff)
		}
	})
}

// expand returns the path that tmpl gives with the values of bindings: each
// value percent-encoded but for its unreserved characters (and "/" in a
// variable of several segments). It reports false where a path cannot tell
// the values apart: a value of several segments with a "%".
func expand(tmpl *Template, bindings []Binding) (string, bool) {
	var b strings.Builder
	vars := tmpl.vars
	for i := 0; i < len(tmpl.segs); {
		b.WriteByte('/')
		if len(vars) == 0 || vars[0].start != i {
			switch s := tmpl.segs[i]; s.kind {
			case kindLiteral:
				writeEscaped(&b, s.lit)
			case kindStar:
				b.WriteString("x")
			}
			i++
			continue
		}
		v, value := vars[0], bindings[len(tmpl.vars)-len(vars)].Value
		vars = vars[1:]
		if !v.multi(tmpl.segs) {
			writeEscaped(&b, value)
		} else {
			if strings.Contains(value, "%") {
				return "", false
			}
			for j, part := range strings.Split(value, "/") {
				if j > 0 {
					b.WriteByte('/')
				}
				writeEscaped(&b, part)
			}
		}
		i = v.end
	}
	if len(tmpl.segs) == 0 {
		b.WriteByte('/')
	}
	if tmpl.verb != "" {
		b.WriteByte(':')
		writeEscaped(&b, tmpl.verb)
	}
	return b.String(), true
}

func FuzzSetField(f *testing.F) {
	for _, s := range []struct{ path, v1, v2 string }{
		{"s", "x", ""}, {"b", "aGk", ""}, {"i32", "-1", ""}, {"u64", "1", ""}, {"fl", "NaN", ""},
		{"color", "RED", ""}, {"tags", "a", "b"}, {"colors", "1", "GREEN"}, {"sub.inner.count", "3", ""},
		{"ts", "2025-01-02T03:04:05Z", ""}, {"dur", "1.5s", ""}, {"mask", "a,bC", ""}, {"labels", "x", ""},
		{"name", "a", ""}, {"sub_choice.subfield", "x", ""}, {"stringValue", "\xff", ""}, {"legacy.closed", "3", ""},
		{"wrapped_nums", "1", "2"}, {"sub", "x", ""}, {"a..b", "", ""},
	} {
		f.Add(s.path, s.v1, s.v2, uint8(1))
		f.Add(s.path, s.v1, s.v2, uint8(2))
	}
	f.Fuzz(func(t *testing.T, path, v1, v2 string, n uint8) {
		// Some fields are set already, for the oneof and "set already" errors.
		m := newRich(t, `name: "a" sub { count: 1 } string_value {} opt: ""`)
		before := clone(m)
		values := []string{v1, v2}[:min(int(n), 2)]
		err := SetField(m, path, values...)
		if err != nil {
			var fe *FieldError
			if !errors.As(err, &fe) || fe.Field != path || fe.Reason == "" {
				t.Fatalf("SetField(%q, %q) = %v, want a *FieldError for it", path, values, err)
			}
			if !proto.Equal(before, m.Interface()) {
				t.Fatalf("SetField(%q, %q) = %v, and changed the message", path, values, err)
			}
			return
		}
		if _, err := proto.Marshal(m.Interface()); err != nil {
			t.Fatalf("SetField(%q, %q) made a message that does not marshal: %v", path, values, err)
		}
	})
}

func FuzzSetQuery(f *testing.F) {
	f.Add("s=x&tags=a&tags=b&sub.subfield=y", "sub")
	f.Add("customJson=1&i32=-3&color=2", "user_id")
	f.Add("a.b.c=1&=2&sub..x=3", "")
	f.Fuzz(func(t *testing.T, query, bound string) {
		q, err := url.ParseQuery(query)
		if err != nil {
			return
		}
		m := newRich(t, "")
		err = SetQuery(m, q, func(p string) bool { return p == bound })
		var fe *FieldError
		if err != nil && !errors.As(err, &fe) {
			t.Fatalf("SetQuery(%q) = %v, not a *FieldError", query, err)
		}
		if fe != nil && q[fe.Field] == nil {
			t.Fatalf("SetQuery(%q): %v, for a key that the query does not have", query, err)
		}
		if _, err := proto.Marshal(m.Interface()); err != nil {
			t.Fatalf("SetQuery(%q) made a message that does not marshal: %v", query, err)
		}
	})
}
