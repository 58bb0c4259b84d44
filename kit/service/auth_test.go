package service_test

import (
	"context"
	"errors"
	"io"
	"net"
	"strings"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/status"

	"github.com/grpckit/grpckit/kit/config"
	"github.com/grpckit/grpckit/kit/internal/kittest"
	testpbv1 "github.com/grpckit/grpckit/kit/internal/testpb/v1"
	"github.com/grpckit/grpckit/kit/middleware/auth"
	"github.com/grpckit/grpckit/kit/service"
)

const testSecret = "0123456789abcdef0123456789abcdef"

// TestStartNeedsAuthOrDisabled: a service whose auth section has no key
// does not start unless auth.disabled says so.
func TestStartNeedsAuthOrDisabled(t *testing.T) {
	err := service.Run(t.Context(), "svc", defaults(), func(*service.Service[Config]) error {
		t.Error("setup ran without an auth key")
		return nil
	}, service.WithArgs([]string{"-registry.address", "off", "-server.admin", ""}), service.WithOutput(io.Discard),
		service.WithConfigOptions(config.WithEnv(noEnv)))
	if err == nil || !strings.Contains(err.Error(), "auth.hmac_secret") || !strings.Contains(err.Error(), "auth.disabled") {
		t.Fatalf("Run without an auth key = %v, want an error naming auth.hmac_secret and auth.disabled", err)
	}
}

// TestServiceAuthenticatesAndForwards: with a key, the service refuses
// anonymous calls, and its clients pass the caller's token on; a call its
// handler makes without a caller (here: a call made by setup) carries the
// service's own identity.
func TestServiceAuthenticatesAndForwards(t *testing.T) {
	backAuth, err := auth.New(auth.Config{HMACSecret: testSecret})
	if err != nil {
		t.Fatal(err)
	}
	subjects := make(chan string, 2)
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	back := grpc.NewServer(grpc.ChainUnaryInterceptor(backAuth.UnaryServerInterceptor(),
		func(ctx context.Context, req any, _ *grpc.UnaryServerInfo, h grpc.UnaryHandler) (any, error) {
			sub, _ := auth.Subject(ctx)
			subjects <- sub
			return h(ctx, req)
		}))
	(&kittest.Service{Name: "back"}).Register(back)
	served := make(chan error, 1)
	go func() { served <- back.Serve(lis) }()
	t.Cleanup(func() {
		back.Stop()
		if err := <-served; err != nil && !errors.Is(err, grpc.ErrServerStopped) {
			t.Errorf("back: %v", err)
		}
	})

	env := map[string]string{"GRPCKIT_AUTH_HMAC_SECRET": testSecret}
	ctx, cancel := context.WithCancel(t.Context())
	addr := make(chan net.Addr, 1)
	done := make(chan error, 1)
	go func() {
		done <- service.Run(ctx, "front", defaults(), func(s *service.Service[Config]) error {
			cc, err := s.Client("passthrough:///" + lis.Addr().String())
			if err != nil {
				return err
			}
			next := testpbv1.NewTestServiceClient(cc)
			(&kittest.Service{Name: "front", Next: next}).Register(s.Server)
			go func() {
				// A call of the service's own, with no caller.
				_, err := next.Echo(ctx, &testpbv1.EchoRequest{Message: "own"})
				if err != nil {
					t.Errorf("the service's own call: %v", err)
				}
				kittest.WaitFor(t, "the gRPC listener", func() bool { return s.Server.Addr() != nil })
				addr <- s.Server.Addr()
			}()
			return nil
		}, service.WithArgs([]string{"-registry.address", "off", "-server.admin", "", "-server.drain", "0s"}),
			service.WithOutput(io.Discard),
			service.WithConfigOptions(config.WithEnv(func(k string) (string, bool) { v, ok := env[k]; return v, ok })))
	}()
	defer func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Run = %v", err)
		}
	}()
	if got := <-subjects; got != auth.ServicePrefix+"front" {
		t.Errorf("the service's own call reached back as %q, want its service identity", got)
	}
	conn, err := grpc.NewClient((<-addr).String(), grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	front := testpbv1.NewTestServiceClient(conn)
	callCtx, callCancel := context.WithTimeout(t.Context(), 10*time.Second)
	defer callCancel()
	if _, err := front.Echo(callCtx, &testpbv1.EchoRequest{Message: "m"}); status.Code(err) != codes.Unauthenticated {
		t.Errorf("anonymous Echo = %v, want Unauthenticated", err)
	}
	tok, err := auth.IssueHS256(testSecret, "alice", time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	resp, err := front.Echo(callCtx, &testpbv1.EchoRequest{Message: "m"}, grpc.PerRPCCredentials(auth.BearerToken(tok, auth.AllowInsecure())))
	if err != nil || resp.GetServer() != "back" {
		t.Fatalf("Echo as alice = %v, %v; want back's answer", resp, err)
	}
	if got := <-subjects; got != "alice" {
		t.Errorf("alice's call reached back as %q, want alice", got)
	}
}
