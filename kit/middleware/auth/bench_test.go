package auth

import (
	"context"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
	"google.golang.org/grpc"
	testgrpc "google.golang.org/grpc/interop/grpc_testing"

	"github.com/grpckit/grpckit/kit/internal/kittest"
)

// BenchmarkVerify measures the check of a token seen before (served from
// the cache) against a full verification.
func BenchmarkVerify(b *testing.B) {
	a, err := New(hmacConfig())
	if err != nil {
		b.Fatal(err)
	}
	tok, err := IssueHS256(secret, "alice", time.Hour)
	if err != nil {
		b.Fatal(err)
	}
	b.Run("cached", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if _, err := a.Verify(tok); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("uncached", func(b *testing.B) {
		parser := jwt.NewParser(jwt.WithValidMethods([]string{"HS256"}))
		b.ReportAllocs()
		for b.Loop() {
			if _, err := parser.Parse(tok, func(*jwt.Token) (any, error) { return []byte(secret), nil }); err != nil {
				b.Fatal(err)
			}
		}
	})
}

// BenchmarkUnaryRatio alternates unary calls over bufconn to a server
// without and with the auth interceptor (token from the cache), and reports
// the latency ratio and the allocations the interceptor and the client's
// credentials add per call.
func BenchmarkUnaryRatio(b *testing.B) {
	a, err := New(hmacConfig())
	if err != nil {
		b.Fatal(err)
	}
	tok, err := IssueHS256(secret, "alice", time.Hour)
	if err != nil {
		b.Fatal(err)
	}
	bare := benchClient(b, nil)
	authed := benchClient(b, a, grpc.WithPerRPCCredentials(BearerToken(tok, AllowInsecure())))
	req := &testgrpc.SimpleRequest{}
	call := func(c testgrpc.TestServiceClient) time.Duration {
		start := time.Now()
		if _, err := c.UnaryCall(b.Context(), req); err != nil {
			b.Fatal(err)
		}
		return time.Since(start)
	}
	call(bare)
	call(authed)
	extra := testing.AllocsPerRun(200, func() { call(authed) }) - testing.AllocsPerRun(200, func() { call(bare) })
	var tBare, tAuth time.Duration
	for b.Loop() {
		tBare += call(bare)
		tAuth += call(authed)
	}
	b.ReportMetric(float64(tAuth)/float64(tBare), "ratio")
	b.ReportMetric(extra, "extra-allocs/op")
}

// benchServer answers UnaryCall.
type benchServer struct {
	testgrpc.UnimplementedTestServiceServer
}

func (benchServer) UnaryCall(_ context.Context, _ *testgrpc.SimpleRequest) (*testgrpc.SimpleResponse, error) {
	return &testgrpc.SimpleResponse{}, nil
}

func benchClient(b *testing.B, a *Authenticator, dopts ...grpc.DialOption) testgrpc.TestServiceClient {
	b.Helper()
	var sopts []grpc.ServerOption
	if a != nil {
		sopts = append(sopts, grpc.UnaryInterceptor(a.UnaryServerInterceptor()))
	}
	cc := kittest.Serve(b, func(s grpc.ServiceRegistrar) { testgrpc.RegisterTestServiceServer(s, benchServer{}) }, sopts, dopts...)
	return testgrpc.NewTestServiceClient(cc)
}
