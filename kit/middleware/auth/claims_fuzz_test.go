package auth

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"errors"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"

	"github.com/grpckit/grpckit/kit/middleware"
)

// fuzzNow is the fixed clock of FuzzSignedClaims, on a whole second.
var fuzzNow = time.Unix(1_700_000_000, 0)

const (
	fuzzIssuer   = "https://idp.test"
	fuzzAudience = "greeter"
	// saneSeconds bounds the times FuzzSignedClaims requires to be
	// accepted: beyond it (year 9999) the Authenticator refuses them.
	saneSeconds = maxNumericDate
)

// signRaw returns a JWT whose payload is exactly payload, signed with
// method and key: unlike jwt.NewWithClaims, it signs bytes that need not be
// JSON at all.
func signRaw(tb testing.TB, method jwt.SigningMethod, key any, payload []byte) string {
	tb.Helper()
	header := base64.RawURLEncoding.EncodeToString([]byte(`{"alg":"` + method.Alg() + `","typ":"JWT"}`))
	signing := header + "." + base64.RawURLEncoding.EncodeToString(payload)
	sig, err := method.Sign(signing, key)
	if err != nil {
		tb.Fatal(err)
	}
	return signing + "." + base64.RawURLEncoding.EncodeToString(sig)
}

// numericClaim returns the seconds of claim name of c: present reports
// whether c has it, ok whether it is a JSON number.
func numericClaim(c map[string]any, name string) (secs float64, present, ok bool) {
	v, present := c[name]
	if !present {
		return 0, false, false
	}
	f, ok := v.(float64)
	return f, true, ok
}

// claimsProblem says why claims must be rejected by an Authenticator whose
// clock reads fuzzNow and that has the leeway, issuer and audience of cfg,
// or "" when they may be accepted. Times within a second of a limit are
// given the benefit of the doubt (NumericDate truncates to the second).
func claimsProblem(c map[string]any, cfg Config) string {
	now := float64(fuzzNow.Unix())
	leeway := time.Duration(cfg.Leeway).Seconds()
	if sub, ok := c["sub"].(string); !ok || sub == "" {
		return "sub is not a non-empty string"
	}
	exp, present, ok := numericClaim(c, "exp")
	switch {
	case !present || !ok:
		return "exp is missing or not a number"
	case exp < now-leeway-1:
		return "exp is past"
	}
	for _, name := range []string{"nbf", "iat"} {
		t, present, ok := numericClaim(c, name)
		switch {
		case present && !ok:
			return name + " is not a number"
		case present && t > now+leeway+1:
			return name + " is in the future"
		}
	}
	if cfg.Issuer != "" {
		if iss, ok := c["iss"].(string); !ok || iss != cfg.Issuer {
			return "iss does not match"
		}
	}
	if cfg.Audience != "" && !audienceHas(c["aud"], cfg.Audience) {
		return "aud does not name the audience"
	}
	return ""
}

// audienceHas reports whether aud, a string or a list of strings, names want.
func audienceHas(aud any, want string) bool {
	switch aud := aud.(type) {
	case string:
		return aud == want
	case []any:
		found := false
		for _, a := range aud {
			s, ok := a.(string)
			if !ok {
				return false
			}
			found = found || s == want
		}
		return found
	}
	return false
}

// clearlyValid reports whether claims (a strictly decoded JSON object) are
// valid with margin under cfg, with times in a sane range, so that an
// Authenticator must accept them.
func clearlyValid(c map[string]any, cfg Config) bool {
	if claimsProblem(c, cfg) != "" {
		return false
	}
	if sub, _ := c["sub"].(string); strings.HasPrefix(sub, ServicePrefix) {
		return false // a service identity only under the HMAC secret
	}
	now := float64(fuzzNow.Unix())
	leeway := time.Duration(cfg.Leeway).Seconds()
	if exp, _, _ := numericClaim(c, "exp"); exp <= now-leeway+1 || exp > saneSeconds {
		return false
	}
	for _, name := range []string{"nbf", "iat"} {
		if t, present, _ := numericClaim(c, name); present && (t >= now+leeway-1 || t < -saneSeconds) {
			return false
		}
	}
	return true
}

// FuzzSignedClaims signs arbitrary claims (any JSON, or none: wrong types
// for the registered claims, huge numbers, nested objects) with the test
// HMAC secret or an Ed25519 key and sends them through the unary
// interceptor of two Authenticators, one with an issuer and an audience to
// check. It never panics; a call is accepted only when its claims are
// valid (sub a string, exp a number not past beyond the leeway, nbf and
// iat numbers not in the future beyond it, iss and aud matching when
// configured), and then the handler sees the token's subject and claims;
// clearly valid claims are accepted; a rejected call fails with
// codes.Unauthenticated and one of the package's reasons; verifying the
// same token again (from the cache) gives the same answer.
func FuzzSignedClaims(f *testing.F) {
	now := fuzzNow.Unix()
	for _, seed := range []string{
		`{"sub":"alice","exp":` + itoa(now+3600) + `}`,
		`{"sub":"alice","exp":` + itoa(now+3600) + `,"iat":` + itoa(now) + `,"iss":"https://idp.test","aud":["greeter","user"]}`,
		`{"sub":"alice","exp":` + itoa(now+3600) + `,"iss":"https://idp.test","aud":"greeter"}`,
		`{"sub":"alice","exp":` + itoa(now-10) + `}`,   // expired within the leeway
		`{"sub":"alice","exp":` + itoa(now-3600) + `}`, // expired
		`{"sub":"alice","exp":` + itoa(now+3600) + `,"nbf":` + itoa(now+3600) + `}`,
		`{"sub":"alice","exp":` + itoa(now+3600) + `,"iat":` + itoa(now+3600) + `}`,
		`{"sub":"alice","exp":"tomorrow"}`,
		`{"sub":"alice","exp":null}`,
		`{"sub":"alice","exp":1e308}`,
		`{"sub":"alice","exp":-1e308}`,
		`{"sub":"alice","exp":1e400}`,
		`{"sub":"alice","exp":` + itoa(now+3600) + `,"nbf":1e300}`,
		`{"sub":"alice","exp":` + itoa(now+3600) + `,"iat":9.3e18}`,
		`{"sub":"alice","exp":` + itoa(now+3600) + `,"nbf":-1e300}`,
		`{"sub":42,"exp":` + itoa(now+3600) + `}`,
		`{"sub":"","exp":` + itoa(now+3600) + `}`,
		`{"sub":{"nested":{"deep":[1,2,{"x":null}]}},"exp":` + itoa(now+3600) + `}`,
		`{"sub":"alice","exp":` + itoa(now+3600) + `,"iss":7,"aud":[1,"greeter"]}`,
		`{"sub":"alice","exp":` + itoa(now+3600) + `,"aud":{"greeter":true}}`,
		`{"sub":"alice","sub":"bob","exp":` + itoa(now+3600) + `}`,
		`{"sub":"alice","exp":` + itoa(now+3600) + `} trailing`,
		`[1,2,3]`, `null`, `"text"`, ``, `{`,
	} {
		f.Add([]byte(seed), uint8(0))
	}
	f.Add([]byte(`{"sub":"alice","exp":`+itoa(now+3600)+`,"iss":"https://idp.test","aud":"greeter"}`), uint8(3))

	edPub, edKey, err := ed25519.GenerateKey(nil)
	if err != nil {
		f.Fatal(err)
	}
	plainCfg := hmacConfig()
	strictCfg := hmacConfig()
	strictCfg.Issuer, strictCfg.Audience = fuzzIssuer, fuzzAudience
	strictCfg.PublicKeyFiles = []string{writeFuzzKey(f, edPub)}
	clock := optionFunc(func(o *options) { o.now = func() time.Time { return fuzzNow } })
	var auths []*Authenticator
	for _, cfg := range []Config{plainCfg, strictCfg} {
		a, err := New(cfg, clock)
		if err != nil {
			f.Fatal(err)
		}
		auths = append(auths, a)
	}
	signers := []struct {
		method jwt.SigningMethod
		key    any
	}{
		{jwt.SigningMethodHS256, []byte(secret)},
		{jwt.SigningMethodHS384, []byte(secret)},
		{jwt.SigningMethodHS512, []byte(secret)},
		{jwt.SigningMethodEdDSA, edKey},
	}
	info := &grpc.UnaryServerInfo{FullMethod: "/grpckit.test.v1.Echo/Echo"}

	f.Fuzz(func(t *testing.T, payload []byte, signer uint8) {
		s := signers[int(signer)%len(signers)]
		tok := signRaw(t, s.method, s.key, payload)

		// The claims as the jwt library decodes them (the first JSON value
		// of the payload), and whether the payload is exactly one object.
		var lenient map[string]any
		lenientErr := json.NewDecoder(bytes.NewReader(payload)).Decode(&lenient)
		var strict map[string]any
		strictOK := json.Unmarshal(payload, &strict) == nil && strict != nil

		for i, a := range auths {
			cfg := a.Config()
			if s.method == jwt.SigningMethodEdDSA && len(cfg.PublicKeyFiles) == 0 {
				continue // no key for it: covered by FuzzVerify
			}
			var gotSub string
			var gotClaims jwt.MapClaims
			handler := func(ctx context.Context, _ any) (any, error) {
				gotSub = middleware.Caller(ctx)
				gotClaims, _ = Claims(ctx)
				return "ok", nil
			}
			ctx := metadata.NewIncomingContext(t.Context(), metadata.Pairs("authorization", "Bearer "+tok))
			_, callErr := a.UnaryServerInterceptor()(ctx, nil, info, handler)
			_, verifyErr := a.Verify(tok) // cached when the call was accepted

			if callErr != nil {
				if status.Code(callErr) != codes.Unauthenticated {
					t.Fatalf("authenticator %d: rejected with %v, want codes.Unauthenticated", i, callErr)
				}
				if verifyErr == nil {
					t.Fatalf("authenticator %d: the call was rejected (%v) but Verify accepts the token", i, callErr)
				}
				if errors.Is(verifyErr, ErrNoKey) || len(tok) <= maxTokenLen && errors.Is(verifyErr, ErrMalformedToken) && strictOK {
					t.Fatalf("authenticator %d: well-formed token rejected as %v", i, verifyErr)
				}
				if len(tok) <= maxTokenLen && strictOK && clearlyValid(strict, cfg) {
					t.Fatalf("authenticator %d: valid claims %s rejected: %v", i, payload, callErr)
				}
				continue
			}
			if verifyErr != nil {
				t.Fatalf("authenticator %d: the call was accepted but Verify says %v", i, verifyErr)
			}
			if lenientErr != nil || lenient == nil {
				t.Fatalf("authenticator %d: accepted a payload that is not a JSON object: %q", i, payload)
			}
			if why := claimsProblem(lenient, cfg); why != "" {
				t.Fatalf("authenticator %d: accepted claims %s although %s", i, payload, why)
			}
			if gotSub != lenient["sub"] {
				t.Fatalf("authenticator %d: handler saw caller %q, want the subject %q", i, gotSub, lenient["sub"])
			}
			if gotClaims == nil || gotClaims["exp"] != lenient["exp"] {
				t.Fatalf("authenticator %d: handler saw claims %v, want %v", i, gotClaims, lenient)
			}
		}
	})
}

func itoa(n int64) string { return strconv.FormatInt(n, 10) }

// writeFuzzKey writes pub as a PEM "PUBLIC KEY" file in a temporary
// directory of f and returns its path.
func writeFuzzKey(f *testing.F, pub ed25519.PublicKey) string {
	f.Helper()
	der, err := x509.MarshalPKIXPublicKey(pub)
	if err != nil {
		f.Fatal(err)
	}
	path := filepath.Join(f.TempDir(), "ed.pem")
	if err := os.WriteFile(path, pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der}), 0o600); err != nil {
		f.Fatal(err)
	}
	return path
}
