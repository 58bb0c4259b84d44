package auth

import (
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
	"github.com/google/go-cmp/cmp"
	"go.uber.org/goleak"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/health"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	testgrpc "google.golang.org/grpc/interop/grpc_testing"
	"google.golang.org/grpc/status"

	"github.com/grpckit/grpckit/kit/internal/kittest"
	"github.com/grpckit/grpckit/kit/middleware"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

const (
	secret      = "0123456789abcdef0123456789abcdef" // 32 bytes
	otherSecret = "fedcba9876543210fedcba9876543210"
)

// writePublicKey writes pub as a PEM "PUBLIC KEY" file in dir.
func writePublicKey(t *testing.T, dir, name string, pub crypto.PublicKey) string {
	t.Helper()
	der, err := x509.MarshalPKIXPublicKey(pub)
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(dir, name)
	if err := os.WriteFile(path, pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der}), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

// sign returns a token of claims signed with method and key.
func sign(t *testing.T, method jwt.SigningMethod, key any, claims jwt.MapClaims) string {
	t.Helper()
	tok, err := jwt.NewWithClaims(method, claims).SignedString(key)
	if err != nil {
		t.Fatal(err)
	}
	return tok
}

// claimsFor returns valid claims for sub, expiring in an hour.
func claimsFor(sub string) jwt.MapClaims {
	now := time.Now()
	return jwt.MapClaims{"sub": sub, "iat": now.Unix(), "exp": now.Add(time.Hour).Unix()}
}

func issue(t *testing.T, secret, sub string, opts ...IssueOption) string {
	t.Helper()
	tok, err := IssueHS256(secret, sub, time.Hour, opts...)
	if err != nil {
		t.Fatal(err)
	}
	return tok
}

func newAuthenticator(t *testing.T, cfg Config) *Authenticator {
	t.Helper()
	a, err := New(cfg)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	return a
}

func hmacConfig() Config {
	c := DefaultConfig()
	c.HMACSecret = secret
	return c
}

func errName(err error) string {
	for _, e := range []error{ErrMissingToken, ErrMalformedHeader, ErrMalformedToken, ErrAlgorithm, ErrBadSignature,
		ErrExpired, ErrNotYetValid, ErrWrongIssuer, ErrWrongAudience, ErrMissingClaim, ErrNoKey, ErrInvalidToken} {
		if errors.Is(err, e) {
			return e.Error()
		}
	}
	if err == nil {
		return "ok"
	}
	return "unexpected: " + err.Error()
}

func TestVerify(t *testing.T) {
	dir := t.TempDir()
	rsaKey, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	ecKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	ec384, err := ecdsa.GenerateKey(elliptic.P384(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	edPub, edKey, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	otherRSA, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	rsaFile := writePublicKey(t, dir, "rsa.pem", &rsaKey.PublicKey)
	ecFile := writePublicKey(t, dir, "ec.pem", &ecKey.PublicKey)
	edFile := writePublicKey(t, dir, "ed.pem", edPub)
	rsaPEM, err := os.ReadFile(rsaFile)
	if err != nil {
		t.Fatal(err)
	}

	hmacOnly := hmacConfig()
	hmacOnly.Issuer, hmacOnly.Audience = "https://idp.test", "greeter"
	keysOnly := DefaultConfig()
	keysOnly.PublicKeyFiles = []string{rsaFile, ecFile, edFile}
	keysOnly.Issuer, keysOnly.Audience = "https://idp.test", "user"

	now := time.Now()
	good := func() jwt.MapClaims {
		c := claimsFor("alice")
		c["iss"], c["aud"] = "https://idp.test", []string{"greeter", "user"}
		return c
	}
	with := func(edit func(jwt.MapClaims)) jwt.MapClaims {
		c := good()
		edit(c)
		return c
	}
	hs := func(c jwt.MapClaims) string { return sign(t, jwt.SigningMethodHS256, []byte(secret), c) }

	for _, tc := range []struct {
		name  string
		cfg   Config
		token string
		want  string
	}{
		{"hs256", hmacOnly, hs(good()), "ok"},
		{"hs512", hmacOnly, sign(t, jwt.SigningMethodHS512, []byte(secret), good()), "ok"},
		{"issued by IssueHS256", hmacOnly, issue(t, secret, "alice", WithIssuer("https://idp.test"), WithAudience("greeter")), "ok"},
		{"expired", hmacOnly, hs(with(func(c jwt.MapClaims) { c["exp"] = now.Add(-time.Hour).Unix() })), ErrExpired.Error()},
		{"expired within leeway", hmacOnly, hs(with(func(c jwt.MapClaims) { c["exp"] = now.Add(-10 * time.Second).Unix() })), "ok"},
		{"not yet valid", hmacOnly, hs(with(func(c jwt.MapClaims) { c["nbf"] = now.Add(time.Hour).Unix() })), ErrNotYetValid.Error()},
		{"issued in the future", hmacOnly, hs(with(func(c jwt.MapClaims) { c["iat"] = now.Add(time.Hour).Unix() })), ErrNotYetValid.Error()},
		{"wrong secret", hmacOnly, sign(t, jwt.SigningMethodHS256, []byte(otherSecret), good()), ErrBadSignature.Error()},
		{"wrong issuer", hmacOnly, hs(with(func(c jwt.MapClaims) { c["iss"] = "https://evil.test" })), ErrWrongIssuer.Error()},
		{"no issuer", hmacOnly, hs(with(func(c jwt.MapClaims) { delete(c, "iss") })), ErrMissingClaim.Error()},
		{"no audience", hmacOnly, hs(with(func(c jwt.MapClaims) { delete(c, "aud") })), ErrMissingClaim.Error()},
		{"wrong audience", hmacOnly, hs(with(func(c jwt.MapClaims) { c["aud"] = "billing" })), ErrWrongAudience.Error()},
		{"no exp", hmacOnly, hs(with(func(c jwt.MapClaims) { delete(c, "exp") })), ErrMissingClaim.Error()},
		{"no sub", hmacOnly, hs(with(func(c jwt.MapClaims) { delete(c, "sub") })), ErrMissingClaim.Error()},
		{"malformed", hmacOnly, "not.a.jwt", ErrMalformedToken.Error()},
		{"garbage", hmacOnly, "garbage", ErrMalformedToken.Error()},
		{"too long", hmacOnly, strings.Repeat("a", maxTokenLen+1), ErrMalformedToken.Error()},
		{"alg none", hmacOnly, sign(t, jwt.SigningMethodNone, jwt.UnsafeAllowNoneSignatureType, good()), ErrAlgorithm.Error()},
		{"rs256 without rsa key", hmacOnly, sign(t, jwt.SigningMethodRS256, rsaKey, good()), ErrAlgorithm.Error()},

		{"rs256", keysOnly, sign(t, jwt.SigningMethodRS256, rsaKey, good()), "ok"},
		{"ps384", keysOnly, sign(t, jwt.SigningMethodPS384, rsaKey, good()), "ok"},
		{"es256", keysOnly, sign(t, jwt.SigningMethodES256, ecKey, good()), "ok"},
		{"eddsa", keysOnly, sign(t, jwt.SigningMethodEdDSA, edKey, good()), "ok"},
		// A provider's key cannot make a service identity.
		{"eddsa service subject", keysOnly, sign(t, jwt.SigningMethodEdDSA, edKey, with(func(c jwt.MapClaims) { c["sub"] = ServicePrefix + "gateway" })), ErrInvalidToken.Error()},
		{"rs256 other key", keysOnly, sign(t, jwt.SigningMethodRS256, otherRSA, good()), ErrBadSignature.Error()},
		{"es384 without P-384 key", keysOnly, sign(t, jwt.SigningMethodES384, ec384, good()), ErrAlgorithm.Error()},
		// Algorithm confusion: HS256 keyed with the RSA public key's PEM.
		{"hs256 keyed with rsa public key", keysOnly, sign(t, jwt.SigningMethodHS256, rsaPEM, good()), ErrAlgorithm.Error()},
		{"hs256 keyed with rsa public key, hmac configured", func() Config {
			c := keysOnly
			c.HMACSecret = secret
			return c
		}(), sign(t, jwt.SigningMethodHS256, rsaPEM, good()), ErrBadSignature.Error()},
		{"expired rs256", keysOnly, sign(t, jwt.SigningMethodRS256, rsaKey, with(func(c jwt.MapClaims) { c["exp"] = now.Add(-time.Hour).Unix() })), ErrExpired.Error()},

		{"no key", DefaultConfig(), hs(good()), ErrNoKey.Error()},
	} {
		t.Run(tc.name, func(t *testing.T) {
			a := newAuthenticator(t, tc.cfg)
			claims, err := a.Verify(tc.token)
			if diff := cmp.Diff(tc.want, errName(err)); diff != "" {
				t.Fatalf("Verify (-want +got):\n%s", diff)
			}
			if err == nil {
				if sub, _ := claims.GetSubject(); sub != "alice" {
					t.Errorf("sub = %q, want alice", sub)
				}
				// A second check is served from the cache, same answer.
				if _, err := a.Verify(tc.token); err != nil {
					t.Errorf("second Verify: %v", err)
				}
			}
		})
	}
}

// TestCachedTokenExpires checks that a cached token is refused once it
// expires.
func TestCachedTokenExpires(t *testing.T) {
	now := time.Now()
	clock := now
	a, err := New(hmacConfig())
	if err != nil {
		t.Fatal(err)
	}
	a.now = func() time.Time { return clock }
	if err := a.SetConfig(hmacConfig()); err != nil { // rebuild the parser with the fake clock
		t.Fatal(err)
	}
	tok := issue(t, secret, "alice", WithIssuedAt(now.Add(-59*time.Minute)))
	if _, err := a.Verify(tok); err != nil {
		t.Fatalf("Verify: %v", err)
	}
	clock = now.Add(2 * time.Minute) // past exp + leeway
	if _, err := a.Verify(tok); !errors.Is(err, ErrExpired) {
		t.Fatalf("Verify after expiry = %v, want ErrExpired", err)
	}
}

// testServer reports the caller and claims its handlers saw.
type testServer struct {
	testgrpc.UnimplementedTestServiceServer
	seen chan seen
}

type seen struct {
	Caller string
	Role   any
	Authed bool
}

func (s *testServer) see(ctx context.Context) {
	c, ok := Claims(ctx)
	var role any
	if ok {
		role = c["role"]
	}
	s.seen <- seen{Caller: middleware.Caller(ctx), Role: role, Authed: ok}
}

func (s *testServer) UnaryCall(ctx context.Context, _ *testgrpc.SimpleRequest) (*testgrpc.SimpleResponse, error) {
	s.see(ctx)
	return &testgrpc.SimpleResponse{}, nil
}

func (s *testServer) EmptyCall(ctx context.Context, _ *testgrpc.Empty) (*testgrpc.Empty, error) {
	s.see(ctx)
	return &testgrpc.Empty{}, nil
}

func (s *testServer) StreamingOutputCall(_ *testgrpc.StreamingOutputCallRequest, stream testgrpc.TestService_StreamingOutputCallServer) error {
	s.see(stream.Context())
	for range 3 {
		if err := stream.Send(&testgrpc.StreamingOutputCallResponse{}); err != nil {
			return err
		}
	}
	return nil
}

// serve starts a server with a's interceptors over bufconn and returns a
// plaintext connection to it.
func serve(t *testing.T, a *Authenticator, dopts ...grpc.DialOption) (*testServer, *grpc.ClientConn) {
	t.Helper()
	srv := &testServer{seen: make(chan seen, 1)}
	cc := kittest.Serve(t, func(s grpc.ServiceRegistrar) {
		testgrpc.RegisterTestServiceServer(s, srv)
		healthpb.RegisterHealthServer(s, health.NewServer())
	}, []grpc.ServerOption{grpc.UnaryInterceptor(a.UnaryServerInterceptor()), grpc.StreamInterceptor(a.StreamServerInterceptor())}, dopts...)
	return srv, cc
}

// outcome is what a call ended with.
type outcome struct {
	Code    codes.Code
	Message string
	Seen    seen
}

func TestUnaryInterceptor(t *testing.T) {
	cfg := hmacConfig()
	cfg.Issuer = "https://idp.test"
	cfg.PublicMethods = []string{"/grpc.testing.TestService/EmptyCall", "/grpc.testing.UnimplementedService/*"}
	a := newAuthenticator(t, cfg)
	srv, cc := serve(t, a)
	client := testgrpc.NewTestServiceClient(cc)

	good := issue(t, secret, "alice", WithIssuer("https://idp.test"), WithClaim("role", "admin"))
	expired := issue(t, secret, "alice", WithIssuer("https://idp.test"), WithIssuedAt(time.Now().Add(-2*time.Hour)))
	wrongKey := issue(t, otherSecret, "alice", WithIssuer("https://idp.test"))
	wrongIssuer := issue(t, secret, "alice", WithIssuer("https://evil.test"))

	unauth := func(err error) outcome { return outcome{Code: codes.Unauthenticated, Message: err.Error()} }
	for _, tc := range []struct {
		name   string
		header string // authorization metadata; "" for none
		empty  bool   // call the public EmptyCall instead of UnaryCall
		want   outcome
	}{
		{"valid", "Bearer " + good, false, outcome{Seen: seen{Caller: "alice", Role: "admin", Authed: true}}},
		{"lower-case scheme", "bearer " + good, false, outcome{Seen: seen{Caller: "alice", Role: "admin", Authed: true}}},
		{"missing", "", false, unauth(ErrMissingToken)},
		{"basic scheme", "Basic YWxpY2U6cHc=", false, unauth(ErrMalformedHeader)},
		{"empty bearer", "Bearer ", false, unauth(ErrMalformedHeader)},
		{"expired", "Bearer " + expired, false, unauth(ErrExpired)},
		{"wrong key", "Bearer " + wrongKey, false, unauth(ErrBadSignature)},
		{"wrong issuer", "Bearer " + wrongIssuer, false, unauth(ErrWrongIssuer)},
		{"public without token", "", true, outcome{Seen: seen{Caller: "bufconn"}}},
		{"public ignores a bad token", "Bearer " + wrongKey, true, outcome{Seen: seen{Caller: "bufconn"}}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ctx := t.Context()
			if tc.header != "" {
				ctx = metadataContext(ctx, tc.header)
			}
			var err error
			if tc.empty {
				_, err = client.EmptyCall(ctx, &testgrpc.Empty{})
			} else {
				_, err = client.UnaryCall(ctx, &testgrpc.SimpleRequest{})
			}
			st := status.Convert(err)
			got := outcome{Code: st.Code(), Message: st.Message()}
			if err == nil {
				got.Seen = <-srv.seen
			}
			if diff := cmp.Diff(tc.want, got); diff != "" {
				t.Errorf("call (-want +got):\n%s", diff)
			}
			if tok := strings.TrimPrefix(tc.header, "Bearer "); tok != "" && strings.Contains(st.Message(), tok) {
				t.Errorf("error message echoes the token: %q", st.Message())
			}
		})
	}

	// Health checks are public whatever the config says.
	if _, err := healthpb.NewHealthClient(cc).Check(t.Context(), &healthpb.HealthCheckRequest{}); err != nil {
		t.Errorf("health check without token: %v", err)
	}
}

func TestStreamInterceptor(t *testing.T) {
	a := newAuthenticator(t, hmacConfig())
	srv, cc := serve(t, a, grpc.WithPerRPCCredentials(BearerToken(issue(t, secret, "bob"), AllowInsecure())))
	stream, err := testgrpc.NewTestServiceClient(cc).StreamingOutputCall(t.Context(), &testgrpc.StreamingOutputCallRequest{})
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for {
		if _, err := stream.Recv(); err != nil {
			if status.Code(err) != codes.OK && err.Error() != "EOF" {
				t.Fatalf("Recv: %v", err)
			}
			break
		}
		n++
	}
	if n != 3 {
		t.Errorf("got %d messages, want 3", n)
	}
	if diff := cmp.Diff(seen{Caller: "bob", Authed: true}, <-srv.seen); diff != "" {
		t.Errorf("handler saw (-want +got):\n%s", diff)
	}

	// Without a token the stream fails before the handler runs.
	_, plain := serve(t, a)
	stream, err = testgrpc.NewTestServiceClient(plain).StreamingOutputCall(t.Context(), &testgrpc.StreamingOutputCallRequest{})
	if err == nil {
		_, err = stream.Recv()
	}
	if diff := cmp.Diff(outcome{Code: codes.Unauthenticated, Message: ErrMissingToken.Error()}, outcome{Code: status.Code(err), Message: status.Convert(err).Message()}); diff != "" {
		t.Errorf("stream without token (-want +got):\n%s", diff)
	}
}

func TestClientCredentials(t *testing.T) {
	a := newAuthenticator(t, hmacConfig())
	tok := issue(t, secret, "carol")
	srv, cc := serve(t, a)
	client := testgrpc.NewTestServiceClient(cc)
	for _, tc := range []struct {
		name  string
		creds credentials.PerRPCCredentials
		want  codes.Code
	}{
		{"bearer allowed over plaintext", BearerToken(tok, AllowInsecure()), codes.OK},
		{"bearer refused over plaintext by default", BearerToken(tok), codes.Unauthenticated},
		{"token source", TokenSource(func(context.Context) (string, error) { return tok, nil }, AllowInsecure()), codes.OK},
		{"token source error", TokenSource(func(context.Context) (string, error) { return "", errors.New("idp down") }, AllowInsecure()), codes.Unauthenticated},
		{"token source empty", TokenSource(func(context.Context) (string, error) { return "", nil }, AllowInsecure()), codes.Unauthenticated},
		{"token source status", TokenSource(func(context.Context) (string, error) { return "", status.Error(codes.Unavailable, "idp down") }, AllowInsecure()), codes.Unavailable},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := client.UnaryCall(t.Context(), &testgrpc.SimpleRequest{}, grpc.PerRPCCredentials(tc.creds))
			if got := status.Code(err); got != tc.want {
				t.Fatalf("code = %v (%v), want %v", got, err, tc.want)
			}
			if err == nil {
				if got := (<-srv.seen).Caller; got != "carol" {
					t.Errorf("caller = %q, want carol", got)
				}
			}
		})
	}

	// As a dial option over plaintext, grpc-go refuses the connection
	// itself unless AllowInsecure is given.
	if cc, err := grpc.NewClient("passthrough:///x", grpc.WithTransportCredentials(insecure.NewCredentials()),
		grpc.WithPerRPCCredentials(BearerToken(tok))); err == nil {
		_ = cc.Close()
		t.Error("NewClient accepted a bearer token over plaintext without AllowInsecure")
	}
}

func TestSetConfig(t *testing.T) {
	a := newAuthenticator(t, hmacConfig())
	oldTok := issue(t, secret, "alice")
	if _, err := a.Verify(oldTok); err != nil {
		t.Fatal(err)
	}

	// An invalid config is rejected and the current one stays.
	bad := hmacConfig()
	bad.HMACSecret = "short"
	if err := a.SetConfig(bad); err == nil {
		t.Fatal("SetConfig accepted a short secret")
	}
	missing := hmacConfig()
	missing.PublicKeyFiles = []string{filepath.Join(t.TempDir(), "absent.pem")}
	missing.Issuer, missing.Audience = "https://idp.test", "user"
	if err := a.SetConfig(missing); err == nil {
		t.Fatal("SetConfig accepted a missing key file")
	}
	if _, err := a.Verify(oldTok); err != nil {
		t.Fatalf("after rejected SetConfig: %v", err)
	}

	// Rotation: the old secret's (cached) tokens stop working.
	rotated := hmacConfig()
	rotated.HMACSecret = otherSecret
	if err := a.SetConfig(rotated); err != nil {
		t.Fatal(err)
	}
	if _, err := a.Verify(oldTok); !errors.Is(err, ErrBadSignature) {
		t.Errorf("old token after rotation: %v, want ErrBadSignature", err)
	}
	if _, err := a.Verify(issue(t, otherSecret, "alice")); err != nil {
		t.Errorf("new token after rotation: %v", err)
	}
}

func TestIssueHS256Rejects(t *testing.T) {
	for _, tc := range []struct {
		name, secret, sub string
		ttl               time.Duration
	}{
		{"short secret", "short", "alice", time.Hour},
		{"no subject", secret, "", time.Hour},
		{"zero ttl", secret, "alice", 0},
	} {
		if _, err := IssueHS256(tc.secret, tc.sub, tc.ttl); err == nil {
			t.Errorf("%s: IssueHS256 succeeded", tc.name)
		}
	}
}
