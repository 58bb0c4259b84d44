package gateway

import (
	"errors"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/grpckit/grpckit/kit/middleware/auth"
)

func TestAuth(t *testing.T) {
	g := newGateway(t, testConfig())
	issue := func(secret string, opts ...auth.IssueOption) string {
		t.Helper()
		tok, err := auth.IssueHS256(secret, "tester", time.Hour, opts...)
		if err != nil {
			t.Fatal(err)
		}
		return tok
	}
	none, err := jwt.NewWithClaims(jwt.SigningMethodNone, jwt.MapClaims{
		"sub": "tester", "exp": time.Now().Add(time.Hour).Unix(),
	}).SignedString(jwt.UnsafeAllowNoneSignatureType)
	if err != nil {
		t.Fatal(err)
	}
	const (
		plain   = `Bearer realm="grpckit"`
		badReq  = `Bearer realm="grpckit", error="invalid_request"`
		badTok  = `Bearer realm="grpckit", error="invalid_token"`
		newUser = `{"name": "Ada", "email": "ada@example.com"}`
	)
	for _, tc := range []struct {
		name      string
		header    []string // Authorization values
		challenge string   // prefix of WWW-Authenticate
		reason    string
	}{
		{"missing", nil, plain, "missing bearer token"},
		{"other scheme", []string{"Basic dXNlcjpwYXNz"}, badReq, "malformed authorization header"},
		{"no token", []string{"Bearer "}, badReq, "malformed authorization header"},
		{"two headers", []string{"Bearer " + issue(secret), "Bearer " + issue(secret)}, badReq, "malformed authorization header"},
		{"not a JWT", []string{"Bearer abc.def"}, badTok, "malformed token"},
		{"expired", []string{"Bearer " + issue(secret, auth.WithIssuedAt(time.Now().Add(-3*time.Hour)))}, badTok, "token expired"},
		{"wrong key", []string{"Bearer " + issue(otherSecret)}, badTok, "bad token signature"},
		{"alg none", []string{"Bearer " + none}, badTok, "token signing algorithm not accepted"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			for _, req := range []request{
				{method: http.MethodPost, target: "/v1/users", body: newUser},
				{method: http.MethodPatch, target: "/v1/users/x", body: `{"name": "B"}`},
				{method: http.MethodDelete, target: "/v1/users/x"},
			} {
				req.header = http.Header{"Authorization": tc.header}
				a := do(t, g, req)
				e := a.decodeError(t)
				if a.status != http.StatusUnauthorized || e.Error.Code != "UNAUTHENTICATED" || e.Error.Message != tc.reason {
					t.Errorf("%s: got %d %s %q, want 401 UNAUTHENTICATED %q", req.method, a.status, e.Error.Code, e.Error.Message, tc.reason)
				}
				if ch := a.header.Get("WWW-Authenticate"); !strings.HasPrefix(ch, tc.challenge) {
					t.Errorf("%s: WWW-Authenticate %q, want prefix %q", req.method, ch, tc.challenge)
				}
			}
		})
	}
	// Nothing was written by the refused requests.
	if a := do(t, g, request{method: http.MethodGet, target: "/v1/users", token: issue(secret)}); string(a.body) != `{"users":[],"next_page_token":""}`+"\n" {
		t.Errorf("users after refused writes: %s", a.body)
	}

	// A valid token writes; the scheme's case does not matter.
	a := do(t, g, request{method: http.MethodPost, target: "/v1/users", body: newUser,
		header: http.Header{"Authorization": {"bearer   " + issue(secret)}}})
	if a.status != http.StatusCreated {
		t.Fatalf("valid token: %d %s", a.status, a.body)
	}
	id := a.decode(t)["user"].(map[string]any)["id"].(string)
	// Only the greeting and the API document are public: users (their
	// emails) are not for anonymous callers.
	for _, target := range []string{"/v1/hello/x", "/openapi.json"} {
		if a := do(t, g, request{method: http.MethodGet, target: target}); a.status != http.StatusOK {
			t.Errorf("GET %s without a token: %d %s", target, a.status, a.body)
		}
	}
	for _, target := range []string{"/v1/users/" + id, "/v1/users"} {
		if a := do(t, g, request{method: http.MethodGet, target: target}); a.status != http.StatusUnauthorized {
			t.Errorf("GET %s without a token: %d %s, want 401", target, a.status, a.body)
		}
		if a := do(t, g, request{method: http.MethodGet, target: target, token: issue(secret)}); a.status != http.StatusOK {
			t.Errorf("GET %s with a token: %d %s", target, a.status, a.body)
		}
	}
}

// TestOwnership: a user's token may change and delete only that user; an
// admin's token any user; the refusal changes nothing.
func TestOwnership(t *testing.T) {
	g := newGateway(t, testConfig())
	as := func(sub string, opts ...auth.IssueOption) string {
		t.Helper()
		tok, err := auth.IssueHS256(secret, sub, time.Hour, opts...)
		if err != nil {
			t.Fatal(err)
		}
		return tok
	}
	create := func(name, email string) string {
		t.Helper()
		a := do(t, g, request{method: http.MethodPost, target: "/v1/users", body: `{"name": "` + name + `", "email": "` + email + `"}`, token: as("signup")})
		if a.status != http.StatusCreated {
			t.Fatalf("create %s: %d %s", name, a.status, a.body)
		}
		return a.decode(t)["user"].(map[string]any)["id"].(string)
	}
	ada, bob := create("Ada", "ada@example.com"), create("Bob", "bob@example.com")
	admin := as("ops", auth.WithClaim(auth.AdminClaim, true))
	for _, tc := range []struct {
		name  string
		req   request
		want  int
		after string // bob's name afterwards
	}{
		{"other user renames bob", request{method: http.MethodPatch, target: "/v1/users/" + bob, body: `{"name": "Mallory"}`, token: as(ada)}, http.StatusForbidden, "Bob"},
		{"other user deletes bob", request{method: http.MethodDelete, target: "/v1/users/" + bob, token: as(ada)}, http.StatusForbidden, "Bob"},
		{"admin claim as a string", request{method: http.MethodPatch, target: "/v1/users/" + bob, body: `{"name": "Mallory"}`, token: as(ada, auth.WithClaim(auth.AdminClaim, "true"))}, http.StatusForbidden, "Bob"},
		{"bob renames himself", request{method: http.MethodPatch, target: "/v1/users/" + bob, body: `{"name": "Robert"}`, token: as(bob)}, http.StatusOK, "Robert"},
		{"admin renames bob", request{method: http.MethodPatch, target: "/v1/users/" + bob, body: `{"name": "Bobby"}`, token: admin}, http.StatusOK, "Bobby"},
	} {
		a := do(t, g, tc.req)
		if a.status != tc.want {
			t.Errorf("%s: %d %s, want %d", tc.name, a.status, a.body, tc.want)
		}
		if tc.want == http.StatusForbidden {
			if e := a.decodeError(t); e.Error.Code != "PERMISSION_DENIED" {
				t.Errorf("%s: code %s, want PERMISSION_DENIED", tc.name, e.Error.Code)
			}
		}
		got := do(t, g, request{method: http.MethodGet, target: "/v1/users/" + bob, token: admin})
		if name := got.decode(t)["user"].(map[string]any)["name"]; name != tc.after {
			t.Errorf("%s: bob's name is %v, want %s", tc.name, name, tc.after)
		}
	}
	if a := do(t, g, request{method: http.MethodDelete, target: "/v1/users/" + ada, token: as(ada)}); a.status != http.StatusOK {
		t.Errorf("ada deletes herself: %d %s", a.status, a.body)
	}
}

// TestAuthRotation: SetConfig changes the key at once; without a key every
// request that needs a token is refused. (The gateway rotates to the key
// of the backends, which check the forwarded token again.)
func TestAuthRotation(t *testing.T) {
	cfg := testConfig()
	cfg.Auth.HMACSecret = otherSecret
	g := newGateway(t, cfg)
	old, err := auth.IssueHS256(otherSecret, "nobody", time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	cfg.Auth.HMACSecret = secret
	if err := g.SetConfig(cfg); err != nil {
		t.Fatal(err)
	}
	del := request{method: http.MethodDelete, target: "/v1/users/nobody", token: old}
	if a := do(t, g, del); a.status != http.StatusUnauthorized {
		t.Errorf("token of the old key: %d %s", a.status, a.body)
	}
	cur, err := auth.IssueHS256(secret, "nobody", time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	del.token = cur
	if a := do(t, g, del); a.status != http.StatusNotFound {
		t.Errorf("token of the new key: %d %s", a.status, a.body)
	}
	cfg.Auth.HMACSecret = ""
	if err := g.SetConfig(cfg); err != nil {
		t.Fatal(err)
	}
	a := do(t, g, del)
	if e := a.decodeError(t); a.status != http.StatusUnauthorized || e.Error.Message != "no verification key configured" {
		t.Errorf("without a key: %d %s", a.status, a.body)
	}
}

func TestBearerToken(t *testing.T) {
	for _, tc := range []struct {
		values []string
		want   string
		err    error
	}{
		{nil, "", auth.ErrMissingToken},
		{[]string{"Bearer abc"}, "abc", nil},
		{[]string{"BEARER  abc"}, "abc", nil},
		{[]string{"Bearer"}, "", auth.ErrMalformedHeader},
		{[]string{"Bearer a b"}, "", auth.ErrMalformedHeader},
		{[]string{"Bearer a\tb"}, "", auth.ErrMalformedHeader},
		{[]string{"Token abc"}, "", auth.ErrMalformedHeader},
		{[]string{"Bearer a", "Bearer b"}, "", auth.ErrMalformedHeader},
	} {
		got, err := bearerToken(http.Header{"Authorization": tc.values})
		if got != tc.want || !errors.Is(err, tc.err) {
			t.Errorf("bearerToken(%q) = %q, %v; want %q, %v", tc.values, got, err, tc.want, tc.err)
		}
	}
}
