package auth

import (
	"context"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	testgrpc "google.golang.org/grpc/interop/grpc_testing"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"

	"github.com/grpckit/grpckit/kit/internal/kittest"
)

// relay is a front service whose calls call the back service with ctx: the
// way a handler makes its own calls.
type relay struct {
	testgrpc.UnimplementedTestServiceServer
	back testgrpc.TestServiceClient
}

func (r *relay) UnaryCall(ctx context.Context, _ *testgrpc.SimpleRequest) (*testgrpc.SimpleResponse, error) {
	return &testgrpc.SimpleResponse{}, r.backCall(ctx)
}

func (r *relay) EmptyCall(ctx context.Context, _ *testgrpc.Empty) (*testgrpc.Empty, error) {
	return &testgrpc.Empty{}, r.backCall(ctx)
}

func (r *relay) backCall(ctx context.Context) error {
	_, err := r.back.EmptyCall(ctx, &testgrpc.Empty{})
	return err
}

// whoami records the subject of each call.
type whoami struct {
	testgrpc.UnimplementedTestServiceServer
	subjects chan string
}

func (w *whoami) EmptyCall(ctx context.Context, _ *testgrpc.Empty) (*testgrpc.Empty, error) {
	sub, ok := Subject(ctx)
	if !ok {
		sub = "(none)"
	}
	w.subjects <- sub
	return &testgrpc.Empty{}, nil
}

// TestForwardPropagatesIdentity: a front service's calls to a back service
// carry the token of the incoming call; calls without one (a public method)
// carry the front's own service identity; an explicit token is kept.
func TestForwardPropagatesIdentity(t *testing.T) {
	cfg := hmacConfig()
	cfg.Issuer, cfg.Audience = "grpckit-dev", "grpckit"
	backAuth, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	who := &whoami{subjects: make(chan string, 1)}
	back := kittest.Serve(t, func(s grpc.ServiceRegistrar) { testgrpc.RegisterTestServiceServer(s, who) },
		[]grpc.ServerOption{grpc.UnaryInterceptor(backAuth.UnaryServerInterceptor())},
		grpc.WithPerRPCCredentials(Forward(ServiceToken(func() Config { return cfg }, "front"))))

	frontCfg := cfg
	frontCfg.PublicMethods = []string{"/grpc.testing.TestService/EmptyCall"}
	frontAuth, err := New(frontCfg)
	if err != nil {
		t.Fatal(err)
	}
	front := testgrpc.NewTestServiceClient(kittest.Serve(t, func(s grpc.ServiceRegistrar) {
		testgrpc.RegisterTestServiceServer(s, &relay{back: testgrpc.NewTestServiceClient(back)})
	}, []grpc.ServerOption{grpc.UnaryInterceptor(frontAuth.UnaryServerInterceptor())}))

	alice := issue(t, secret, "alice", WithIssuer("grpckit-dev"), WithAudience("grpckit"))
	ctx := metadataContext(t.Context(), "Bearer "+alice)
	if _, err := front.UnaryCall(ctx, &testgrpc.SimpleRequest{}); err != nil {
		t.Fatalf("UnaryCall as alice: %v", err)
	}
	if got := <-who.subjects; got != "alice" {
		t.Errorf("back service saw %q for alice's call, want alice", got)
	}

	// A public method called with a valid token passes the caller on;
	// called anonymously, its calls stay anonymous (the front's own
	// identity would lend its rights to anyone).
	if _, err := front.EmptyCall(ctx, &testgrpc.Empty{}); err != nil {
		t.Fatalf("EmptyCall (public on front) as alice: %v", err)
	}
	if got := <-who.subjects; got != "alice" {
		t.Errorf("back service saw %q for alice's call of a public method, want alice", got)
	}
	if _, err := front.EmptyCall(t.Context(), &testgrpc.Empty{}); status.Code(err) != codes.Unauthenticated {
		t.Errorf("anonymous EmptyCall (public on front) = %v, want the back service's Unauthenticated", err)
	}
	// Outside any incoming call (a background job), the service's own
	// identity.
	own, err := Forward(ServiceToken(func() Config { return cfg }, "front")).GetRequestMetadata(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	claims, err := backAuth.Verify(strings.TrimPrefix(own["authorization"], "Bearer "))
	if err != nil || claims["sub"] != ServicePrefix+"front" {
		t.Errorf("a call outside any incoming call carries %v (%v), want the front's own identity", claims, err)
	}

	// Outside any incoming call but marked Anonymous (an HTTP handler
	// serving a caller without credentials): nothing, the own identity is
	// not lent; an explicit token is still sent.
	if md, err := Forward(ServiceToken(func() Config { return cfg }, "front")).GetRequestMetadata(Anonymous(context.Background())); err != nil || len(md) != 0 {
		t.Errorf("Forward on an Anonymous context = %v, %v; want nothing", md, err)
	}

	// An explicit token wins; without fallback nothing is added.
	bob := issue(t, secret, "bob", WithIssuer("grpckit-dev"), WithAudience("grpckit"))
	creds := Forward(nil)
	md, err := creds.GetRequestMetadata(metadata.AppendToOutgoingContext(t.Context(), "authorization", "Bearer "+bob))
	if err != nil || len(md) != 0 {
		t.Errorf("Forward over an explicit token = %v, %v; want no metadata added", md, err)
	}
	if md, err := creds.GetRequestMetadata(t.Context()); err != nil || len(md) != 0 {
		t.Errorf("Forward(nil) without an incoming token = %v, %v; want nothing", md, err)
	}
	if creds.RequireTransportSecurity() {
		t.Error("Forward requires transport security")
	}
}

// TestForwardedTokenIsCheckedAgain: the back service verifies what it gets;
// a token the front accepted but the back does not (another audience) is
// refused there.
func TestForwardedTokenIsCheckedAgain(t *testing.T) {
	backCfg := hmacConfig()
	backCfg.Audience = "user"
	backAuth, err := New(backCfg)
	if err != nil {
		t.Fatal(err)
	}
	back := kittest.Serve(t, func(s grpc.ServiceRegistrar) {
		testgrpc.RegisterTestServiceServer(s, &whoami{subjects: make(chan string, 1)})
	}, []grpc.ServerOption{grpc.UnaryInterceptor(backAuth.UnaryServerInterceptor())}, grpc.WithPerRPCCredentials(Forward(nil)))
	frontAuth, err := New(hmacConfig())
	if err != nil {
		t.Fatal(err)
	}
	front := testgrpc.NewTestServiceClient(kittest.Serve(t, func(s grpc.ServiceRegistrar) {
		testgrpc.RegisterTestServiceServer(s, &relay{back: testgrpc.NewTestServiceClient(back)})
	}, []grpc.ServerOption{grpc.UnaryInterceptor(frontAuth.UnaryServerInterceptor())}))
	tok := issue(t, secret, "alice", WithAudience("greeter"))
	_, err = front.UnaryCall(metadataContext(t.Context(), "Bearer "+tok), &testgrpc.SimpleRequest{})
	if status.Code(err) != codes.Unauthenticated || !strings.Contains(err.Error(), ErrWrongAudience.Error()) {
		t.Errorf("UnaryCall with a token for another audience = %v, want Unauthenticated (%v) from the back service", err, ErrWrongAudience)
	}
}

func TestServiceToken(t *testing.T) {
	if ServiceToken(func() Config { return hmacConfig() }, "") != nil {
		t.Error("ServiceToken without a name is not nil")
	}
	var cur atomic.Pointer[Config]
	cur.Store(&Config{})
	src := ServiceToken(func() Config { return *cur.Load() }, "greeter")
	if tok, err := src(t.Context()); tok != "" || err != nil {
		t.Errorf("without an HMAC secret: %q, %v; want no token", tok, err)
	}
	if md, err := Forward(src).GetRequestMetadata(t.Context()); len(md) != 0 || err != nil {
		t.Errorf("Forward without an identity = %v, %v; want nothing", md, err)
	}
	cfg := hmacConfig()
	cfg.Issuer, cfg.Audience = "grpckit-dev", "grpckit"
	cur.Store(&cfg)
	tok, err := src(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	if again, _ := src(t.Context()); again != tok {
		t.Error("ServiceToken made a new token for the second call")
	}
	// Key rotation: the next token is signed with the new secret.
	rotated := cfg
	rotated.HMACSecret = otherSecret
	cur.Store(&rotated)
	next, err := src(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	if b, err := New(rotated); err != nil {
		t.Fatal(err)
	} else if _, err := b.Verify(next); err != nil {
		t.Errorf("after the secret changed, the service token does not verify with the new one: %v", err)
	}
	a, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	claims, err := a.Verify(tok)
	if err != nil {
		t.Fatalf("Verify(service token): %v", err)
	}
	if claims["sub"] != "service:greeter" || claims["iss"] != "grpckit-dev" {
		t.Errorf("service token claims = %v", claims)
	}
	exp, _ := claims.GetExpirationTime()
	if d := time.Until(exp.Time); d <= 0 || d > serviceTokenTTL {
		t.Errorf("service token expires in %v, want within %v", d, serviceTokenTTL)
	}
}

func TestMayActFor(t *testing.T) {
	a, err := New(hmacConfig())
	if err != nil {
		t.Fatal(err)
	}
	check := func(tok string) context.Context {
		t.Helper()
		ctx, err := a.authenticate(metadata.NewIncomingContext(t.Context(), metadata.Pairs("authorization", "Bearer "+tok)), "/pkg.Svc/M")
		if err != nil {
			t.Fatal(err)
		}
		return ctx
	}
	alice := check(issue(t, secret, "alice"))
	admin := check(issue(t, secret, "ops", WithClaim(AdminClaim, true)))
	notAdmin := check(issue(t, secret, "eve", WithClaim(AdminClaim, "true"))) // a string is not true
	for _, tc := range []struct {
		name    string
		ctx     context.Context
		subject string
		want    bool
	}{
		{"own", alice, "alice", true},
		{"other", alice, "bob", false},
		{"admin", admin, "bob", true},
		{"admin claim as string", notAdmin, "bob", false},
		{"anonymous", t.Context(), "bob", false},
		{"anonymous, empty subject", t.Context(), "", false},
	} {
		if got := MayActFor(tc.ctx, tc.subject); got != tc.want {
			t.Errorf("%s: MayActFor(%q) = %v, want %v", tc.name, tc.subject, got, tc.want)
		}
	}
	if sub, ok := Subject(alice); !ok || sub != "alice" {
		t.Errorf("Subject = %q, %v", sub, ok)
	}
	if !IsAdmin(admin) || IsAdmin(alice) {
		t.Error("IsAdmin wrong")
	}
}
