package main

import (
	"bytes"
	"io"
	"strings"
	"testing"

	"github.com/grpckit/grpckit/kit/middleware/auth"
)

func TestToken(t *testing.T) {
	const secret = "0123456789abcdef0123456789abcdef"
	env := func(k string) (string, bool) { return secret, k == secretEnv }
	var out bytes.Buffer
	if err := runToken([]string{"-sub", "u1", "-admin=false", "-aud", "user"}, env, &out, io.Discard); err != nil {
		t.Fatal(err)
	}
	a, err := auth.New(auth.Config{HMACSecret: secret, Audience: "user"})
	if err != nil {
		t.Fatal(err)
	}
	claims, err := a.Verify(strings.TrimSpace(out.String()))
	if err != nil {
		t.Fatalf("the printed token does not verify: %v", err)
	}
	if claims["sub"] != "u1" || claims[auth.AdminClaim] != nil {
		t.Errorf("claims = %v, want sub u1 and no admin claim", claims)
	}
	out.Reset()
	if err := runToken(nil, env, &out, io.Discard); err != nil {
		t.Fatal(err)
	}
	if claims, err := a.Verify(strings.TrimSpace(out.String())); err == nil || claims != nil {
		t.Errorf("a token without aud verified under an audience check: %v", claims)
	}
	if claims, err := (mustNew(t, secret)).Verify(strings.TrimSpace(out.String())); err != nil || claims["sub"] != "dev" || claims[auth.AdminClaim] != true {
		t.Errorf("default token: %v, %v; want sub dev, admin", claims, err)
	}
	err = runToken(nil, func(string) (string, bool) { return "", false }, io.Discard, io.Discard)
	if err == nil || !strings.Contains(err.Error(), secretEnv) {
		t.Errorf("without the secret: %v, want an error naming %s", err, secretEnv)
	}
}

func mustNew(t *testing.T, secret string) *auth.Authenticator {
	t.Helper()
	a, err := auth.New(auth.Config{HMACSecret: secret})
	if err != nil {
		t.Fatal(err)
	}
	return a
}
