package kit_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"go.uber.org/goleak"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/status"

	"github.com/grpckit/grpckit/kit"
	"github.com/grpckit/grpckit/kit/config"
	"github.com/grpckit/grpckit/kit/internal/kittest"
	testpbv1 "github.com/grpckit/grpckit/kit/internal/testpb/v1"
	"github.com/grpckit/grpckit/kit/registry"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

var quiet = slog.New(slog.NewTextHandler(io.Discard, nil))

// fakeRegistrar reports calls on channels; Deregister blocks until the test
// sends on release, so the test can look at the server in between.
type fakeRegistrar struct {
	registered   chan registry.Instance
	deregistered chan registry.Instance
	release      chan struct{}
	registerErr  error
}

var _ registry.Registrar = (*fakeRegistrar)(nil)

func newFakeRegistrar() *fakeRegistrar {
	return &fakeRegistrar{registered: make(chan registry.Instance, 1), deregistered: make(chan registry.Instance, 1), release: make(chan struct{})}
}

func (f *fakeRegistrar) Register(_ context.Context, inst registry.Instance) error {
	if f.registerErr != nil {
		return f.registerErr
	}
	f.registered <- inst
	return nil
}

func (f *fakeRegistrar) Deregister(ctx context.Context, inst registry.Instance) error {
	f.deregistered <- inst
	select {
	case <-f.release:
	case <-ctx.Done():
	}
	return nil
}

func listen(t *testing.T) net.Listener {
	t.Helper()
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	return lis
}

func dial(t *testing.T, addr string) *grpc.ClientConn {
	t.Helper()
	cc, err := kit.NewClient("passthrough:///" + addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cc.Close() })
	return cc
}

func healthOf(t *testing.T, cc *grpc.ClientConn) healthpb.HealthCheckResponse_ServingStatus {
	t.Helper()
	resp, err := healthpb.NewHealthClient(cc).Check(t.Context(), &healthpb.HealthCheckRequest{})
	if err != nil {
		t.Fatalf("health check: %v", err)
	}
	return resp.Status
}

func httpStatus(t *testing.T, url string) int {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatalf("GET %s: %v", url, err)
	}
	resp.Body.Close()
	return resp.StatusCode
}

func recv[T any](t *testing.T, c <-chan T, what string) T {
	t.Helper()
	select {
	case v := <-c:
		return v
	case <-time.After(10 * time.Second):
		t.Fatalf("timed out waiting for %s", what)
	}
	var zero T
	return zero
}

func TestLifecycleOrder(t *testing.T) {
	reg := newFakeRegistrar()
	srv, err := kit.NewServer(kit.WithRegistrar(reg, registry.Instance{Name: "test", Tags: []string{"v1"}}),
		kit.WithDrain(time.Minute), kit.WithLogger(quiet))
	if err != nil {
		t.Fatal(err)
	}
	(&kittest.Service{}).Register(srv)
	lis := listen(t)
	port := lis.Addr().(*net.TCPAddr).Port
	served := make(chan error, 1)
	go func() { served <- srv.Serve(lis) }()

	// Start: serving and SERVING before the registration.
	inst := recv(t, reg.registered, "Register")
	if want := fmt.Sprintf("test-127.0.0.1-%d", port); inst.ID != want || inst.Address != "127.0.0.1" || inst.Port != port || inst.Tags[0] != "v1" {
		t.Errorf("registered %+v, want ID %s on 127.0.0.1:%d with tag v1", inst, want, port)
	}
	cc := dial(t, lis.Addr().String())
	if got := healthOf(t, cc); got != healthpb.HealthCheckResponse_SERVING {
		t.Errorf("health after start = %v, want SERVING", got)
	}
	admin := "http://" + srv.AdminAddr().String()
	if got := httpStatus(t, admin+"/readyz"); got != http.StatusOK {
		t.Errorf("/readyz = %d, want 200", got)
	}

	// Shutdown: deregister first, while still SERVING.
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	shut := make(chan error, 1)
	go func() { shut <- srv.Shutdown(ctx) }()
	if got := recv(t, reg.deregistered, "Deregister"); got.ID != inst.ID {
		t.Errorf("deregistered %q, want %q", got.ID, inst.ID)
	}
	if got := healthOf(t, cc); got != healthpb.HealthCheckResponse_SERVING {
		t.Errorf("health during deregistration = %v, want SERVING still", got)
	}
	close(reg.release)

	// Drain: NOT_SERVING and not ready, yet calls are still served.
	kittest.WaitFor(t, "health NOT_SERVING", func() bool { return healthOf(t, cc) == healthpb.HealthCheckResponse_NOT_SERVING })
	if got := httpStatus(t, admin+"/readyz"); got != http.StatusServiceUnavailable {
		t.Errorf("/readyz while draining = %d, want 503", got)
	}
	if got := httpStatus(t, admin+"/healthz"); got != http.StatusOK {
		t.Errorf("/healthz while draining = %d, want 200", got)
	}
	resp, err := testpbv1.NewTestServiceClient(cc).Echo(t.Context(), &testpbv1.EchoRequest{Message: "drain"})
	if err != nil || resp.GetMessage() != "drain" {
		t.Errorf("Echo while draining = %v, %v; want served", resp, err)
	}

	// The drain window (1 minute) is bounded by Shutdown's context (1s).
	if err := recv(t, shut, "Shutdown"); err == nil {
		// GracefulStop finished within the deadline: fine, nothing was in flight.
	} else if !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("Shutdown = %v", err)
	}
	if err := recv(t, served, "Serve to return"); err != nil {
		t.Errorf("Serve after Shutdown = %v, want nil", err)
	}
}

func TestShutdownDeadlineCutsOpenStreams(t *testing.T) {
	srv, err := kit.NewServer(kit.WithDrain(0), kit.WithLogger(quiet), kit.WithAdminAddress(""))
	if err != nil {
		t.Fatal(err)
	}
	lis := listen(t)
	served := make(chan error, 1)
	go func() { served <- srv.Serve(lis) }()
	cc := dial(t, lis.Addr().String())
	// A health Watch stream stays open until the server ends it.
	stream, err := healthpb.NewHealthClient(cc).Watch(t.Context(), &healthpb.HealthCheckRequest{})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := stream.Recv(); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
	defer cancel()
	if err := srv.Shutdown(ctx); !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("Shutdown with an open stream = %v, want DeadlineExceeded", err)
	}
	for {
		if _, err := stream.Recv(); err != nil {
			break
		}
	}
	if err := recv(t, served, "Serve to return"); err != nil {
		t.Errorf("Serve = %v, want nil", err)
	}
	if srv.AdminAddr() != nil {
		t.Errorf("admin address %v with the admin listener off", srv.AdminAddr())
	}
}

func TestServeFailsClearlyWhenRegistrationFails(t *testing.T) {
	reg := newFakeRegistrar()
	reg.registerErr = errors.New("consul: connection refused")
	srv, err := kit.NewServer(kit.WithRegistrar(reg, registry.Instance{Name: "user"}), kit.WithLogger(quiet))
	if err != nil {
		t.Fatal(err)
	}
	err = srv.Serve(listen(t))
	if err == nil || !strings.Contains(err.Error(), "register user") || !strings.Contains(err.Error(), "connection refused") {
		t.Errorf("Serve = %v, want an error naming the registration and its cause", err)
	}
	if err := srv.Shutdown(t.Context()); err != nil {
		t.Errorf("Shutdown after a failed Serve = %v", err)
	}
}

func TestServeAfterShutdown(t *testing.T) {
	srv, err := kit.NewServer(kit.WithLogger(quiet))
	if err != nil {
		t.Fatal(err)
	}
	if err := srv.Shutdown(t.Context()); err != nil {
		t.Fatal(err)
	}
	if err := srv.Serve(listen(t)); !errors.Is(err, kit.ErrServerClosed) {
		t.Errorf("Serve after Shutdown = %v, want ErrServerClosed", err)
	}
	if _, err := kit.NewServer(kit.WithRegistrar(newFakeRegistrar(), registry.Instance{})); err == nil {
		t.Error("NewServer with a registrar and no service name succeeded")
	}
}

func TestRunStopsOnCancel(t *testing.T) {
	srv, err := kit.NewServer(kit.WithAddress("127.0.0.1:0"), kit.WithDrain(0), kit.WithLogger(quiet))
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(t.Context())
	ran := make(chan error, 1)
	go func() { ran <- srv.Run(ctx) }()
	kittest.WaitFor(t, "Run to listen", func() bool { return srv.Addr() != nil })
	if healthOf(t, dial(t, srv.Addr().String())) != healthpb.HealthCheckResponse_SERVING {
		t.Error("not SERVING under Run")
	}
	cancel()
	if err := recv(t, ran, "Run to return"); err != nil {
		t.Errorf("Run after cancel = %v, want nil", err)
	}

	busy, err := kit.NewServer(kit.WithAddress(srv.AdminAddr().String()+"x"), kit.WithLogger(quiet))
	if err != nil {
		t.Fatal(err)
	}
	if err := busy.Run(t.Context()); err == nil || !strings.Contains(err.Error(), "listen") {
		t.Errorf("Run on a bad address = %v, want a listen error", err)
	}
}

func TestNewClientTargets(t *testing.T) {
	for _, target := range []string{"consul:///", "consul:///user?tga=x", "consul:///a/b"} {
		if cc, err := kit.NewClient(target); err == nil {
			cc.Close()
			t.Errorf("NewClient(%q) succeeded, want an error", target)
		}
	}
	// Consul never answers: calls fail fast with Unavailable instead of hanging.
	lis := listen(t)
	dead := lis.Addr().String()
	lis.Close()
	cc, err := kit.NewClient("consul://" + dead + "/test")
	if err != nil {
		t.Fatal(err)
	}
	defer cc.Close()
	ctx, cancel := context.WithTimeout(t.Context(), 20*time.Second)
	defer cancel()
	_, err = testpbv1.NewTestServiceClient(cc).Echo(ctx, &testpbv1.EchoRequest{Message: "x"})
	if status.Code(err) != codes.Unavailable || ctx.Err() != nil {
		t.Errorf("call with Consul down = %v, want a prompt Unavailable", err)
	}
}

// Serve returns nil after Shutdown however the two interleave, and never
// reports ready once Shutdown has begun.
func TestServeShutdownRace(t *testing.T) {
	for i := range 200 {
		srv, err := kit.NewServer(kit.WithDrain(0), kit.WithLogger(quiet), kit.WithAdminAddress(""))
		if err != nil {
			t.Fatal(err)
		}
		served := make(chan error, 1)
		go func() { served <- srv.Serve(listen(t)) }()
		// Not a wait for a condition: a varying head start moves Shutdown
		// across every step of Serve's start-up.
		time.Sleep(time.Duration(i%40) * 5 * time.Microsecond)
		if err := srv.Shutdown(t.Context()); err != nil {
			t.Fatalf("Shutdown: %v", err)
		}
		if err := recv(t, served, "Serve to return"); err != nil && !errors.Is(err, kit.ErrServerClosed) {
			t.Fatalf("Serve racing Shutdown = %v, want nil or ErrServerClosed", err)
		}
	}
}

// TestBeforeStopHooks: the hooks run after the drain window, while the gRPC
// server still serves, in order, and their errors reach Shutdown.
func TestBeforeStopHooks(t *testing.T) {
	var cc *grpc.ClientConn
	var order []string
	hookErr := errors.New("http listener would not stop")
	srv, err := kit.NewServer(kit.WithDrain(20*time.Millisecond), kit.WithLogger(quiet),
		kit.WithBeforeStop(func(ctx context.Context) error {
			// Still serving: calls in the hook succeed.
			_, err := testpbv1.NewTestServiceClient(cc).Echo(ctx, &testpbv1.EchoRequest{Message: "hook"})
			order = append(order, fmt.Sprintf("first (call: %v, health: %v)", err, healthOf(t, cc)))
			return nil
		}),
		kit.WithBeforeStop(func(context.Context) error { order = append(order, "second"); return hookErr }))
	if err != nil {
		t.Fatal(err)
	}
	(&kittest.Service{}).Register(srv)
	lis := listen(t)
	served := make(chan error, 1)
	go func() { served <- srv.Serve(lis) }()
	cc = dial(t, lis.Addr().String())
	if got := healthOf(t, cc); got != healthpb.HealthCheckResponse_SERVING {
		t.Fatalf("health = %v", got)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := srv.Shutdown(ctx); !errors.Is(err, hookErr) {
		t.Errorf("Shutdown = %v, want the hook's error", err)
	}
	<-served
	want := []string{"first (call: <nil>, health: NOT_SERVING)", "second"}
	if fmt.Sprint(order) != fmt.Sprint(want) {
		t.Errorf("hooks ran as %q, want %q", order, want)
	}
}

// A client connection gets at most MaxConcurrentStreams calls open at
// once: the next waits for one to end.
func TestMaxConcurrentStreams(t *testing.T) {
	srv := newServer(t, kit.WithMaxConcurrentStreams(2), kit.WithDrain(0))
	svc := &kittest.Service{}
	svc.Register(srv)
	c := testpbv1.NewTestServiceClient(newClient(t, "passthrough:///"+serve(t, srv)))
	svc.Block(true)
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	for range 2 {
		go c.Echo(ctx, &testpbv1.EchoRequest{Message: "held"})
	}
	for range 2 {
		recv(t, svc.Blocked(), "a held call")
	}
	short, cancelShort := context.WithTimeout(t.Context(), 300*time.Millisecond)
	defer cancelShort()
	if _, err := c.Echo(short, &testpbv1.EchoRequest{Message: "third"}); status.Code(err) != codes.DeadlineExceeded {
		t.Errorf("third call: %v, want DEADLINE_EXCEEDED (waiting for a stream)", err)
	}
	if n := svc.Calls(); n != 2 {
		t.Errorf("%d calls reached the service, want 2", n)
	}
	if got := config.DefaultStandard().Server.MaxConcurrentStreams; got != 1000 {
		t.Errorf("default max_concurrent_streams %d, want 1000", got)
	}
	bad := config.DefaultStandard().Server
	bad.MaxConcurrentStreams = 0
	if err := bad.Validate(); err == nil || !strings.Contains(err.Error(), "server.max_concurrent_streams") {
		t.Errorf("Validate(max_concurrent_streams 0) = %v, want an error naming it", err)
	}
}
