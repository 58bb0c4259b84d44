package auth

import (
	"errors"
	"strings"
	"testing"
)

// FuzzParseBearer checks that any authorization value either yields a
// token without spaces or ErrMalformedHeader.
func FuzzParseBearer(f *testing.F) {
	for _, s := range []string{"Bearer abc", "bearer  abc", "Bearer", "Bearer ", "Basic abc", "BEARER a b", ""} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, h string) {
		tok, err := parseBearer(h)
		if err != nil {
			if !errors.Is(err, ErrMalformedHeader) || tok != "" {
				t.Fatalf("parseBearer(%q) = %q, %v", h, tok, err)
			}
			return
		}
		if tok == "" || strings.ContainsAny(tok, " \t") || !strings.HasSuffix(h, tok) {
			t.Fatalf("parseBearer(%q) = %q", h, tok)
		}
	})
}

// FuzzVerify checks that arbitrary tokens are rejected with one of the
// package's reasons and never panic.
func FuzzVerify(f *testing.F) {
	a, err := New(hmacConfig())
	if err != nil {
		f.Fatal(err)
	}
	f.Add("eyJhbGciOiJub25lIn0.eyJzdWIiOiJhIn0.")
	f.Add("a.b.c")
	f.Add("")
	f.Fuzz(func(t *testing.T, tok string) {
		_, err := a.Verify(tok)
		if err == nil {
			t.Fatalf("Verify(%q) accepted a token not signed with the secret", tok)
		}
		if strings.HasPrefix(errName(err), "unexpected") {
			t.Fatalf("Verify(%q) = %v", tok, err)
		}
	})
}
