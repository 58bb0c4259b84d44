package gateway

import (
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
)

func FuzzBearerToken(f *testing.F) {
	for _, s := range []string{"", "Bearer abc", "bearer  a.b.c", "Basic x", "Bearer", "Bearer a b", "BEARER \tx"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, h string) {
		tok, err := bearerToken(http.Header{"Authorization": {h}})
		if err != nil {
			return
		}
		if tok == "" || strings.ContainsAny(tok, " \t") || !strings.HasSuffix(h, tok) {
			t.Fatalf("bearerToken(%q) = %q", h, tok)
		}
		if again, err := bearerToken(http.Header{"Authorization": {"Bearer " + tok}}); err != nil || again != tok {
			t.Fatalf("round trip of %q: %q, %v", tok, again, err)
		}
	})
}

func FuzzClientIP(f *testing.F) {
	f.Add("192.0.2.1:80", "198.51.100.1, 203.0.113.1", true)
	f.Add("[2001:db8::1%eth0]:80", "", false)
	f.Add("garbage", "::1", true)
	f.Fuzz(func(t *testing.T, remote, xff string, trust bool) {
		r := &http.Request{RemoteAddr: remote, Header: http.Header{"X-Forwarded-For": {xff}}}
		if ip := clientIP(r, trust); ip == "" && remote != "" && !strings.HasPrefix(remote, ":") {
			t.Fatalf("clientIP(%q, %q, %v) is empty", remote, xff, trust)
		}
	})
}

// FuzzServeHTTP sends arbitrary requests through the gateway's dynamic
// router to the real backends and the shop backend (every mapping of the
// annotation rules): every answer is JSON (a stream, JSON lines), every
// error has the documented shape, and none is a 500.
func FuzzServeHTTP(f *testing.F) {
	cfg := testConfig()
	cfg.MaxBodyBytes = 1 << 10
	g := newGateway(f, cfg)
	_, cc := serveShop(f)
	services, types, err := Reflect(f.Context(), cc)
	if err != nil {
		f.Fatal(err)
	}
	if err := g.SetAPI(API{Name: "shop", Services: services, Types: types, Public: []string{shopAll}, Conn: cc}); err != nil {
		f.Fatal(err)
	}
	tok := token(f)
	for _, s := range []struct{ method, target, ctype, body string }{
		{"GET", "/v1/hello/world", "", ""},
		{"GET", "/v1/users?page_size=2&page_token=abc", "", ""},
		{"POST", "/v1/users", "application/json", `{"name":"a","email":"a@example.com"}`},
		{"PATCH", "/v1/users/x", "application/json", `{"name":"b"}`},
		{"DELETE", "/v1/users/%2F", "", ""},
		{"PUT", "/openapi.json", "text/plain", "x"},
		{"GET", "/v1/hello/%ff", "", ""},
		{"OPTIONS", "*", "", ""},
		{"GET", "/v1/shelves/1/books/2", "", ""},
		{"GET", "/v1/books/a%2Fb/c", "", ""},
		{"POST", "/v1/shelves/7/books?note=x", "application/json", `{"title":"t","pages":3,"kind":"NOVEL"}`},
		{"PATCH", "/v1/shelves/1/books/2", "application/json", `{"name":"shelves/1/books/2"}`},
		{"GET", "/v1/search?kinds=1&author.name=a&min_pages=3&since=2025-01-01T00:00:00Z", "", ""},
		{"POST", "/v1/shelves/3:publish", "application/json", `{"message":"m"}`},
		{"GET", "/v1/shelves/s/watch?count=2&fail=true", "", ""},
	} {
		f.Add(s.method, s.target, s.ctype, s.body, true)
	}
	f.Fuzz(func(t *testing.T, method, target, ctype, body string, withToken bool) {
		u, err := url.ParseRequestURI(target)
		if err != nil || method == "" || strings.ContainsAny(method, " \t\r\n") {
			return
		}
		r := &http.Request{
			Method: method, URL: u, RequestURI: target, Proto: "HTTP/1.1", ProtoMajor: 1, ProtoMinor: 1,
			Header: http.Header{}, Body: io.NopCloser(strings.NewReader(body)), ContentLength: int64(len(body)),
			RemoteAddr: "192.0.2.1:1234", Host: "example.com",
		}
		r = r.WithContext(t.Context())
		if ctype != "" {
			r.Header.Set("Content-Type", ctype)
		}
		if withToken {
			r.Header.Set("Authorization", "Bearer "+tok)
		}
		w := httptest.NewRecorder()
		g.ServeHTTP(w, r)
		if w.Code == http.StatusMovedPermanently || w.Code == http.StatusTemporaryRedirect || w.Code == http.StatusPermanentRedirect {
			return // http.ServeMux redirects to the cleaned path
		}
		if w.Code == http.StatusInternalServerError || w.Code < 200 || w.Code > 599 {
			t.Fatalf("%s %s: status %d: %s", method, target, w.Code, w.Body)
		}
		if method == http.MethodHead {
			return
		}
		if w.Header().Get("Content-Type") == "application/x-ndjson" {
			for line := range strings.Lines(w.Body.String()) {
				if !json.Valid([]byte(line)) {
					t.Fatalf("%s %s: a line of the stream is not JSON: %q", method, target, line)
				}
			}
			return
		}
		if !json.Valid(w.Body.Bytes()) {
			t.Fatalf("%s %s: %d, body is not JSON: %q", method, target, w.Code, w.Body)
		}
		if w.Code >= 400 {
			a := answer{status: w.Code, header: w.Header(), body: w.Body.Bytes()}
			if e := a.decodeError(t); e.Error.Code == "" || e.Error.Message == "" {
				t.Fatalf("%s %s: error without code or message: %s", method, target, w.Body)
			}
		}
	})
}
