package e2e

import (
	"context"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/grpckit/grpckit/internal/repo"
	"github.com/grpckit/grpckit/kit"
	"github.com/grpckit/grpckit/kit/config"
	"github.com/grpckit/grpckit/kit/registry"
	greeterv1 "github.com/grpckit/grpckit/proto/greeter/v1"
	"github.com/grpckit/grpckit/services/greeter"
)

// chromium returns a headless Chromium, installing Debian's package through
// scripts/ensure-chromium.sh when there is none.
func chromium(t *testing.T) string {
	t.Helper()
	if testing.Short() {
		t.Skip("needs Chromium; skipped with -short")
	}
	root, err := repo.Root()
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.CommandContext(t.Context(), filepath.Join(root, "scripts", "ensure-chromium.sh"))
	cmd.Stderr = os.Stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("scripts/ensure-chromium.sh: %v", err)
	}
	return strings.TrimSpace(string(out))
}

// renderedDOM loads url in headless Chromium and returns the DOM it built.
func renderedDOM(t *testing.T, browser, url string) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, browser, "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic",
		"--no-first-run", "--disable-background-networking", "--disable-component-update", "--disable-sync",
		"--user-data-dir="+t.TempDir(), "--dump-dom", url)
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("chromium --dump-dom %s: %v", url, err)
	}
	return string(out)
}

// row returns the table row of the page whose data-endpoint is addr.
func row(t *testing.T, dom, addr string) string {
	t.Helper()
	m := regexp.MustCompile(`(?s)<tr data-endpoint="` + regexp.QuoteMeta(addr) + `">.*?</tr>`).FindString(dom)
	if m == "" {
		t.Fatalf("the page has no row for endpoint %s:\n%s", addr, dom)
	}
	return m
}

// TestDebugPageInChromium: after one of two greeter instances starts
// failing, a caller's /debug/kit page, loaded in a real browser, shows that
// instance ejected with its failures, the healthy one active, the client's
// breaker, and the configuration version.
func TestDebugPageInChromium(t *testing.T) {
	browser := chromium(t)
	s := newStack(t)
	failing := func(ctx context.Context, req any, info *grpc.UnaryServerInfo, h grpc.UnaryHandler) (any, error) {
		if strings.HasSuffix(info.FullMethod, "/SayHello") {
			return nil, status.Error(codes.Unavailable, "fault injected")
		}
		return h(ctx, req)
	}
	start := func(opts ...kit.ServerOption) string {
		srv, err := kit.NewServer(append([]kit.ServerOption{kit.WithRegistrar(s.reg, registry.Instance{Name: "greeter"}),
			kit.WithDrain(0), kit.WithAdminAddress(""), kit.WithLogger(quiet)}, opts...)...)
		if err != nil {
			t.Fatal(err)
		}
		greeterv1.RegisterGreeterServiceServer(srv, greeter.NewServer(nil))
		return serveOn(t, srv, false)
	}
	good := start()
	bad := start(kit.WithGRPCServerOptions(grpc.UnaryInterceptor(failing)))
	s.waitInstances("greeter", 2)

	file := filepath.Join(t.TempDir(), "front.yaml")
	if err := os.WriteFile(file, []byte("ratelimit: {rps: 500}\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	type frontConfig struct {
		config.Standard `yaml:",inline"`
	}
	store, err := config.Load("front", frontConfig{config.DefaultStandard()}, config.WithoutConsul(), config.WithFile(file),
		config.WithEnv(func(string) (string, bool) { return "", false }))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(store.Close)
	front, err := kit.NewServer(kit.WithConfig(store), kit.WithServiceName("front"), kit.WithDrain(0), kit.WithLogger(quiet))
	if err != nil {
		t.Fatal(err)
	}
	serveOn(t, front, true)
	cc, err := kit.NewClient("consul:///greeter", kit.WithDiscovery(s.reg), kit.WithAdminOf(front), kit.WithoutLayers(kit.LayerRetry))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cc.Close() })
	c := greeterv1.NewGreeterServiceClient(cc)
	failures := 0
	for range 40 {
		if _, err := c.SayHello(t.Context(), &greeterv1.SayHelloRequest{Name: "page"}); err != nil {
			failures++
		}
	}
	if failures == 0 {
		t.Fatal("no call reached the failing instance")
	}

	dom := renderedDOM(t, browser, "http://"+front.AdminAddr().String()+"/debug/kit")
	if r := row(t, dom, bad); !strings.Contains(r, ">ejected<") {
		t.Errorf("failing instance %s not shown ejected: %s", bad, r)
	}
	if r := row(t, dom, good); !strings.Contains(r, ">active<") {
		t.Errorf("healthy instance %s not shown active: %s", good, r)
	}
	// Numeric cells: base weight, multiplier, weight, successes, failures,
	// demotions, times ejected.
	cells := regexp.MustCompile(`<td class="n">([^<]*)</td>`).FindAllStringSubmatch(row(t, dom, bad), -1)
	if len(cells) < 7 || cells[4][1] == "0" || cells[6][1] == "0" {
		t.Errorf("failing instance's failures / times ejected not shown: %v", cells)
	}
	for _, want := range []string{"<h1>front</h1>", `id="config-version">1<`, "consul:///greeter",
		"/greeter.v1.GreeterService/SayHello", "<td>global</td><td class=\"n\">500</td>"} {
		if !strings.Contains(dom, want) {
			t.Errorf("the page lacks %q", want)
		}
	}
	if t.Failed() {
		t.Logf("page:\n%s", dom)
	}
}

// serveOn serves srv on a loopback port until the test ends and returns the
// address; with admin, the admin listener is up when it returns.
func serveOn(t *testing.T, srv *kit.Server, admin bool) string {
	t.Helper()
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	served := make(chan error, 1)
	go func() { served <- srv.Serve(lis) }()
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		srv.Shutdown(ctx)
		<-served
	})
	deadline := time.Now().Add(5 * time.Second)
	for admin && srv.AdminAddr() == nil {
		if time.Now().After(deadline) {
			t.Fatal("admin listener not started")
		}
		time.Sleep(time.Millisecond)
	}
	return lis.Addr().String()
}
