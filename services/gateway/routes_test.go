package gateway

import (
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

func TestHello(t *testing.T) {
	g := newGateway(t, testConfig())
	a := do(t, g, request{method: http.MethodGet, target: "/v1/hello/world"})
	if a.status != http.StatusOK {
		t.Fatalf("status %d: %s", a.status, a.body)
	}
	if diff := cmp.Diff(`{"message":"Hello, world!","instance":"greeter-1"}`+"\n", string(a.body)); diff != "" {
		t.Errorf("body (-want +got):\n%s", diff)
	}
	// Path values are unescaped.
	a = do(t, g, request{method: http.MethodGet, target: "/v1/hello/" + url.PathEscape("Ada Lovelace/é")})
	if got := a.decode(t)["message"]; got != "Hello, Ada Lovelace/é!" {
		t.Errorf("message %q", got)
	}
	// HEAD answers like GET, without a body.
	if a := do(t, g, request{method: http.MethodHead, target: "/v1/hello/world"}); a.status != http.StatusOK {
		t.Errorf("HEAD status %d", a.status)
	}
}

// TestUserLifecycle walks every user route through the real user service.
func TestUserLifecycle(t *testing.T) {
	g := newGateway(t, testConfig())
	tok := token(t)

	created := do(t, g, request{method: http.MethodPost, target: "/v1/users", token: tok,
		body: `{"name": "Ada Lovelace", "email": "ada@example.com"}`})
	if created.status != http.StatusCreated {
		t.Fatalf("POST status %d: %s", created.status, created.body)
	}
	u := created.decode(t)["user"].(map[string]any)
	id, _ := u["id"].(string)
	if id == "" || u["name"] != "Ada Lovelace" || u["email"] != "ada@example.com" || u["create_time"] == nil || u["update_time"] == nil {
		t.Fatalf("created user %v", u)
	}
	if loc := created.header.Get("Location"); loc != "/v1/users/"+url.PathEscape(id) {
		t.Errorf("Location %q, want /v1/users/%s", loc, id)
	}

	got := do(t, g, request{method: http.MethodGet, target: "/v1/users/" + id, token: tok})
	if got.status != http.StatusOK {
		t.Fatalf("GET status %d: %s", got.status, got.body)
	}
	if diff := cmp.Diff(u, got.decode(t)["user"]); diff != "" {
		t.Errorf("GET user (-created +got):\n%s", diff)
	}

	// A second user (camelCase names are accepted too), then two pages.
	if a := do(t, g, request{method: http.MethodPost, target: "/v1/users", token: tok,
		body: `{"name": "Bob", "email": "bob@example.com"}`}); a.status != http.StatusCreated {
		t.Fatalf("POST status %d: %s", a.status, a.body)
	}
	page1 := do(t, g, request{method: http.MethodGet, target: "/v1/users?page_size=1", token: tok})
	if page1.status != http.StatusOK {
		t.Fatalf("list status %d: %s", page1.status, page1.body)
	}
	p1 := page1.decode(t)
	next, _ := p1["next_page_token"].(string)
	if users := p1["users"].([]any); len(users) != 1 || users[0].(map[string]any)["id"] != id || next == "" {
		t.Fatalf("page 1: %s", page1.body)
	}
	page2 := do(t, g, request{method: http.MethodGet, target: "/v1/users?page_size=1&page_token=" + url.QueryEscape(next), token: tok})
	p2 := page2.decode(t)
	if users := p2["users"].([]any); page2.status != http.StatusOK || len(users) != 1 || users[0].(map[string]any)["name"] != "Bob" {
		t.Fatalf("page 2: %d %s", page2.status, page2.body)
	}
	if p2["next_page_token"] != "" {
		t.Errorf("last page's next_page_token %q, want \"\" (present and empty)", p2["next_page_token"])
	}
	all := do(t, g, request{method: http.MethodGet, target: "/v1/users", token: tok})
	if users := all.decode(t)["users"].([]any); len(users) != 2 {
		t.Errorf("list without paging: %s", all.body)
	}

	patched := do(t, g, request{method: http.MethodPatch, target: "/v1/users/" + id, token: tok,
		body: `{"name": "Augusta Ada King"}`})
	if patched.status != http.StatusOK {
		t.Fatalf("PATCH status %d: %s", patched.status, patched.body)
	}
	pu := patched.decode(t)["user"].(map[string]any)
	if pu["name"] != "Augusta Ada King" || pu["email"] != "ada@example.com" || pu["id"] != id {
		t.Errorf("patched user %v", pu)
	}
	// The body may repeat the path's id.
	if a := do(t, g, request{method: http.MethodPatch, target: "/v1/users/" + id, token: tok,
		body: fmt.Sprintf(`{"id": %q, "email": "ada@example.org"}`, id)}); a.status != http.StatusOK {
		t.Errorf("PATCH with the path's id: %d %s", a.status, a.body)
	}

	deleted := do(t, g, request{method: http.MethodDelete, target: "/v1/users/" + id, token: tok})
	if deleted.status != http.StatusOK || string(deleted.body) != "{}\n" {
		t.Fatalf("DELETE: %d %q", deleted.status, deleted.body)
	}
	gone := do(t, g, request{method: http.MethodGet, target: "/v1/users/" + id, token: tok})
	if e := gone.decodeError(t); gone.status != http.StatusNotFound || e.Error.Code != "NOT_FOUND" {
		t.Errorf("GET deleted user: %d %s", gone.status, gone.body)
	}
}

// TestUserErrors checks the errors of the real user service through the
// gateway.
func TestUserErrors(t *testing.T) {
	g := newGateway(t, testConfig())
	tok := token(t)
	if a := do(t, g, request{method: http.MethodPost, target: "/v1/users", token: tok,
		body: `{"name": "Ada", "email": "ada@example.com"}`}); a.status != http.StatusCreated {
		t.Fatalf("POST status %d: %s", a.status, a.body)
	}
	for _, tc := range []struct {
		name   string
		req    request
		status int
		code   string
		fields []string // of the BadRequest detail
	}{
		{"duplicate email", request{method: http.MethodPost, target: "/v1/users", token: tok,
			body: `{"name": "Other", "email": "ada@example.com"}`}, http.StatusConflict, "ALREADY_EXISTS", nil},
		{"invalid fields", request{method: http.MethodPost, target: "/v1/users", token: tok,
			body: `{"name": "", "email": "not-an-email"}`}, http.StatusBadRequest, "INVALID_ARGUMENT", []string{"name", "email"}},
		{"unknown user", request{method: http.MethodGet, target: "/v1/users/nobody", token: tok}, http.StatusNotFound, "NOT_FOUND", nil},
		{"update unknown user", request{method: http.MethodPatch, target: "/v1/users/nobody", token: tok,
			body: `{"name": "X"}`}, http.StatusNotFound, "NOT_FOUND", nil},
		{"empty update", request{method: http.MethodPatch, target: "/v1/users/nobody", token: tok,
			body: `{}`}, http.StatusBadRequest, "INVALID_ARGUMENT", []string{"name", "email"}},
		{"delete unknown user", request{method: http.MethodDelete, target: "/v1/users/nobody", token: tok}, http.StatusNotFound, "NOT_FOUND", nil},
		{"negative page size", request{method: http.MethodGet, target: "/v1/users?page_size=-1", token: tok}, http.StatusBadRequest, "INVALID_ARGUMENT", []string{"page_size"}},
		{"bad page token", request{method: http.MethodGet, target: "/v1/users?page_token=garbage", token: tok}, http.StatusBadRequest, "INVALID_ARGUMENT", []string{"page_token"}},
		{"name too long", request{method: http.MethodGet, target: "/v1/hello/" + strings.Repeat("x", 201)}, http.StatusBadRequest, "INVALID_ARGUMENT", []string{"name"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			a := do(t, g, tc.req)
			e := a.decodeError(t)
			if a.status != tc.status || e.Error.Code != tc.code {
				t.Fatalf("got %d %s, want %d %s: %s", a.status, e.Error.Code, tc.status, tc.code, a.body)
			}
			if diff := cmp.Diff(tc.fields, badRequestFields(e)); diff != "" {
				t.Errorf("BadRequest fields (-want +got):\n%s", diff)
			}
		})
	}
}

// badRequestFields returns the fields of e's google.rpc.BadRequest detail.
func badRequestFields(e jsonError) []string {
	var fields []string
	for _, d := range e.Error.Details {
		if d["@type"] != "type.googleapis.com/google.rpc.BadRequest" {
			continue
		}
		vs, _ := d["fieldViolations"].([]any)
		for _, v := range vs {
			f, _ := v.(map[string]any)["field"].(string)
			fields = append(fields, f)
		}
	}
	return fields
}

// TestNonCanonicalPaths: paths that http.ServeMux would redirect are JSON
// 404s, and never reach a route (a write without a token included).
func TestNonCanonicalPaths(t *testing.T) {
	g := newGateway(t, testConfig())
	for _, target := range []string{"//v1/users", "/v1/users/./x", "/v1/users/x/../y", "/v1//hello/x", "/v1/users/"} {
		for _, method := range []string{http.MethodGet, http.MethodPost} {
			r := httptest.NewRequest(method, "http://example.com"+target, strings.NewReader(`{}`))
			r.Header.Set("Content-Type", "application/json")
			w := httptest.NewRecorder()
			g.ServeHTTP(w, r)
			if w.Code == http.StatusOK || w.Code == http.StatusCreated || w.Code/100 == 3 {
				t.Errorf("%s %s = %d", method, target, w.Code)
			}
			if ct := w.Header().Get("Content-Type"); !strings.HasPrefix(ct, "application/json") {
				t.Errorf("%s %s: content type %q, want JSON", method, target, ct)
			}
		}
	}
}

// TestIdempotencyKey: a write repeated with the same Idempotency-Key (a
// client retrying after a lost answer) gets the first result instead of
// running again; another key is another write; a malformed key is refused.
func TestIdempotencyKey(t *testing.T) {
	g := newGateway(t, testConfig())
	tok := token(t)
	post := func(key, email string) answer {
		t.Helper()
		return do(t, g, request{method: http.MethodPost, target: "/v1/users", token: tok,
			header: http.Header{"Idempotency-Key": {key}}, body: `{"name": "Ada", "email": "` + email + `"}`})
	}
	first := post("k-1", "ada@example.com")
	if first.status != http.StatusCreated {
		t.Fatalf("first POST: %d %s", first.status, first.body)
	}
	again := post("k-1", "ada@example.com")
	if again.status != http.StatusCreated || string(again.body) != string(first.body) {
		t.Errorf("POST repeated with its key: %d %s, want the first answer %s", again.status, again.body, first.body)
	}
	if other := post("k-2", "ada@example.com"); other.status != http.StatusConflict {
		t.Errorf("another key, same email: %d %s, want 409 (a second write)", other.status, other.body)
	}
	if reused := post("k-1", "bob@example.com"); reused.status != http.StatusBadRequest {
		t.Errorf("the key reused for another body: %d %s, want 400", reused.status, reused.body)
	}
	for _, key := range []string{"has space", strings.Repeat("x", 129)} {
		if a := post(key, "carol@example.com"); a.status != http.StatusBadRequest {
			t.Errorf("Idempotency-Key %q: %d %s, want 400", key, a.status, a.body)
		}
	}
	list := do(t, g, request{method: http.MethodGet, target: "/v1/users", token: tok})
	if n := strings.Count(string(list.body), `"email"`); n != 1 {
		t.Errorf("%d users stored, want 1: %s", n, list.body)
	}
}
