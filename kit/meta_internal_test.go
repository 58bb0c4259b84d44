package kit

import (
	"fmt"
	"slices"
	"strings"
	"testing"

	"google.golang.org/grpc"
	"google.golang.org/grpc/health"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"

	"github.com/grpckit/grpckit/kit/internal/kittest"
	"github.com/grpckit/grpckit/kit/middleware/auth"
)

// TestAPIMeta: the fingerprint names the served protos (stable, and another
// set of services gives another), the public methods round-trip through
// [PublicMethods], split over several keys when long, and a list that
// cannot fit is refused.
func TestAPIMeta(t *testing.T) {
	one := grpc.NewServer()
	(&kittest.Service{}).Register(one)
	two := grpc.NewServer()
	(&kittest.Service{}).Register(two)
	healthpb.RegisterHealthServer(two, health.NewServer())

	m1, err := apiMeta(one, authOf(t, "/a.B/C", "/a.B/*"))
	if err != nil {
		t.Fatal(err)
	}
	again, _ := apiMeta(one, authOf(t))
	m2, _ := apiMeta(two, authOf(t))
	if len(m1[MetaAPI]) != 16 || m1[MetaAPI] != again[MetaAPI] {
		t.Errorf("fingerprints %q and %q of the same server, want the same 16 digits", m1[MetaAPI], again[MetaAPI])
	}
	if m1[MetaAPI] == m2[MetaAPI] {
		t.Errorf("the fingerprint %q does not change with another service", m1[MetaAPI])
	}
	if got := PublicMethods(m1); !slices.Equal(got, []string{"/a.B/C", "/a.B/*"}) {
		t.Errorf("PublicMethods = %q", got)
	}
	if _, ok := again[MetaPublic]; ok {
		t.Errorf("no public method, yet meta %q", again[MetaPublic])
	}
	if got := PublicMethods(mustMeta(t, one, nil)); !slices.Equal(got, []string{"*"}) {
		t.Errorf("no auth layer: PublicMethods = %q, want [*]", got)
	}
	if _, ok := mustMeta(t, grpc.NewServer(), authOf(t))[MetaAPI]; ok {
		t.Error("a server without services has a fingerprint")
	}

	var long []string
	for i := range 60 {
		long = append(long, fmt.Sprintf("/pkg.v1.SomeRatherLongServiceName/Method%02d", i))
	}
	meta := mustMeta(t, one, authOf(t, long...))
	if _, ok := meta[MetaPublic+"_1"]; !ok {
		t.Errorf("a long list in one key: %d bytes", len(meta[MetaPublic]))
	}
	for k, v := range meta {
		if len(v) > maxMetaValue {
			t.Errorf("meta %s is %d bytes", k, len(v))
		}
	}
	if got := PublicMethods(meta); !slices.Equal(got, long) {
		t.Errorf("PublicMethods of a split list = %d methods, want %d", len(got), len(long))
	}

	if _, err := apiMeta(one, authOf(t, "/"+strings.Repeat("x", 600)+"/M")); err == nil {
		t.Error("a method longer than a meta value was accepted")
	}
	var huge []string
	for i := range 400 {
		huge = append(huge, fmt.Sprintf("/pkg.v1.SomeRatherLongServiceName/Method%03d", i))
	}
	if _, err := apiMeta(one, authOf(t, huge...)); err == nil {
		t.Error("a list over 16 meta values was accepted")
	}
}

func mustMeta(t *testing.T, srv *grpc.Server, a *auth.Authenticator) map[string]string {
	t.Helper()
	m, err := apiMeta(srv, a)
	if err != nil {
		t.Fatal(err)
	}
	return m
}

// authOf returns an authenticator with a test key and public methods.
func authOf(t *testing.T, public ...string) *auth.Authenticator {
	t.Helper()
	a, err := auth.New(auth.Config{HMACSecret: "0123456789abcdef0123456789abcdef", PublicMethods: public})
	if err != nil {
		t.Fatal(err)
	}
	return a
}
