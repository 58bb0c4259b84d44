package kit_test

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/hashicorp/consul/api"
	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/status"

	"github.com/grpckit/grpckit/kit"
	"github.com/grpckit/grpckit/kit/balancer"
	"github.com/grpckit/grpckit/kit/config"
	"github.com/grpckit/grpckit/kit/internal/kittest"
	testpbv1 "github.com/grpckit/grpckit/kit/internal/testpb/v1"
	"github.com/grpckit/grpckit/kit/middleware/overload"
	"github.com/grpckit/grpckit/kit/registry/consul/consultest"
)

type svcConfig struct {
	config.Standard `yaml:",inline"`
}

func noEnv() config.Option { return config.WithEnv(func(string) (string, bool) { return "", false }) }

// poll calls f until it returns true or within runs out, and returns how
// long that took.
func poll(t *testing.T, within time.Duration, what string, f func() bool) time.Duration {
	t.Helper()
	start := time.Now()
	for !f() {
		if time.Since(start) > within {
			t.Fatalf("%s: not within %v", what, within)
		}
		time.Sleep(5 * time.Millisecond)
	}
	return time.Since(start)
}

// TestConsulKVRateLimitIsLive: a running server picks up a rate limit put in
// its Consul KV document within a second, lifts it when the document says
// so, and refuses an invalid document while it keeps serving.
func TestConsulKVRateLimitIsLive(t *testing.T) {
	agent := consultest.Start(t)
	consul := consultest.Client(t, agent)
	const key = "grpckit/kvsvc"
	defaults := svcConfig{config.DefaultStandard()}
	defaults.Registry.Address = agent.HTTPAddr()
	store, err := config.Load("kvsvc", defaults, noEnv())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(store.Close)
	srv := newServer(t, kit.WithConfig(store), kit.WithDrain(0))
	(&kittest.Service{}).Register(srv)
	addr := serve(t, srv)
	c := testpbv1.NewTestServiceClient(newClient(t, "passthrough:///"+addr, kit.WithoutLayers(kit.LayerRetry, kit.LayerBreaker)))
	call := func() codes.Code {
		_, err := c.Echo(context.Background(), &testpbv1.EchoRequest{Message: "kv"})
		return status.Code(err)
	}
	if code := call(); code != codes.OK {
		t.Fatalf("before any limit: %v", code)
	}

	put := func(doc string) {
		t.Helper()
		if _, err := consul.KV().Put(&api.KVPair{Key: key, Value: []byte(doc)}, nil); err != nil {
			t.Fatal(err)
		}
	}
	put("ratelimit: {rps: 0.001, burst: 1}\n")
	took := poll(t, time.Second, "the KV rate limit to take effect", func() bool { return call() == codes.ResourceExhausted })
	t.Logf("limit in force %v after the KV write", took)
	if info := store.Info(); info.Version != 2 || info.Source != "consul "+key {
		t.Errorf("after the KV write: %+v", info)
	}

	put("ratelimit: {rps: 0}\n") // lift it
	took = poll(t, time.Second, "lifting the limit", func() bool { return call() == codes.OK })
	t.Logf("limit lifted %v after the KV write", took)
	for range 20 {
		if code := call(); code != codes.OK {
			t.Fatalf("after lifting the limit: %v", code)
		}
	}

	// An invalid document is refused; the server keeps the last config.
	before := store.Info()
	put("ratelimit: {rps: -1}\n")
	poll(t, 5*time.Second, "the invalid document to be refused", func() bool { return store.Info().Rejected == before.Rejected+1 })
	if info := store.Info(); info.Version != before.Version || !strings.Contains(info.LastError, "rps") {
		t.Errorf("after an invalid document: %+v", info)
	}
	if code := call(); code != codes.OK {
		t.Errorf("serving after an invalid document: %v", code)
	}

	// /debug/kit shows the version and the source.
	resp, err := http.Get("http://" + srv.AdminAddr().String() + "/debug/kit?format=json")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var doc kit.DebugKit
	if err := json.NewDecoder(resp.Body).Decode(&doc); err != nil {
		t.Fatal(err)
	}
	if doc.Config == nil || doc.Config.Version != before.Version || doc.Config.Source != "consul "+key || doc.Config.Rejected != before.Rejected+1 {
		t.Errorf("/debug/kit config = %+v", doc.Config)
	}

	// A document that sets a local setting (one of the security boundary)
	// is refused as a whole; /debug/kit says why.
	put("ratelimit: {rps: 0.001, burst: 1}\nserver: {admin: 0.0.0.0:9100}\n")
	poll(t, 5*time.Second, "the document with server.admin to be refused", func() bool { return store.Info().Rejected == before.Rejected+2 })
	const reason = "consul kv grpckit/kvsvc: server.admin cannot be set from Consul KV (it changes the security boundary); set it in the file, environment or flags"
	if info := store.Info(); info.Version != before.Version || !strings.Contains(info.LastError, reason) {
		t.Errorf("after a document setting server.admin: %+v", info)
	}
	if code := call(); code != codes.OK {
		t.Errorf("the refused document's rate limit is in force: %v", code)
	}
	resp2, err := http.Get("http://" + srv.AdminAddr().String() + "/debug/kit?format=json")
	if err != nil {
		t.Fatal(err)
	}
	defer resp2.Body.Close()
	doc = kit.DebugKit{}
	if err := json.NewDecoder(resp2.Body).Decode(&doc); err != nil {
		t.Fatal(err)
	}
	if doc.Config == nil || !strings.Contains(doc.Config.LastError, reason) {
		t.Errorf("/debug/kit config = %+v, want the last refusal %q", doc.Config, reason)
	}
	page, err := http.Get("http://" + srv.AdminAddr().String() + "/debug/kit")
	if err != nil {
		t.Fatal(err)
	}
	defer page.Body.Close()
	if html, _ := io.ReadAll(page.Body); !strings.Contains(string(html), reason) {
		t.Errorf("the /debug/kit page does not show %q", reason)
	}
}

// TestClientKnobsAreLive: a client's default deadline and its balancer's
// parameters follow the configuration file.
func TestClientKnobsAreLive(t *testing.T) {
	file := filepath.Join(t.TempDir(), "svc.yaml")
	if err := os.WriteFile(file, []byte("timeout: {default: 4s}\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	store, err := config.Load("livecli", svcConfig{config.DefaultStandard()}, noEnv(), config.WithoutConsul(), config.WithFile(file))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(store.Close)
	deadlines := make(chan time.Duration, 100)
	srv := newServer(t, kit.WithGRPCServerOptions(grpc.UnaryInterceptor(
		func(ctx context.Context, req any, _ *grpc.UnaryServerInfo, h grpc.UnaryHandler) (any, error) {
			if d, ok := ctx.Deadline(); ok {
				deadlines <- time.Until(d)
			}
			return h(ctx, req)
		})))
	(&kittest.Service{}).Register(srv)
	addr := serve(t, srv)
	var mon balancer.Monitor
	cc := newClient(t, "passthrough:///"+addr, kit.WithConfig(store), kit.WithBalancerMonitor(&mon))
	c := testpbv1.NewTestServiceClient(cc)
	deadline := func() time.Duration {
		t.Helper()
		if _, err := c.Echo(context.Background(), &testpbv1.EchoRequest{Message: "x"}); err != nil {
			t.Fatal(err)
		}
		return recv(t, deadlines, "a call's deadline")
	}
	if d := deadline(); d > 4*time.Second || d < 3*time.Second {
		t.Fatalf("deadline %v, want about 4s from the file", d)
	}
	consecutive := func() int {
		for _, ts := range mon.Stats() {
			for _, ep := range ts.Endpoints {
				if ep.Addresses == addr {
					return ts.Config.ConsecutiveFailures
				}
			}
		}
		return -1
	}
	if got := consecutive(); got != 5 {
		t.Fatalf("balancer consecutive_failures = %d, want the default 5", got)
	}

	if err := os.WriteFile(file, []byte("timeout: {default: 700ms}\nbalancer: {consecutive_failures: 2}\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	poll(t, 5*time.Second, "the balancer to take consecutive_failures 2", func() bool { return consecutive() == 2 })
	if d := deadline(); d > 700*time.Millisecond {
		t.Errorf("deadline %v after the change, want at most 700ms", d)
	}
}

// TestOverloadIsLive: a server's concurrency limit follows the
// configuration file (fixed, off), refuses the excess at once with
// RESOURCE_EXHAUSTED and a RetryInfo, never refuses the health service, and
// an invalid overload section is refused with its field named while the
// limit in force stays.
func TestOverloadIsLive(t *testing.T) {
	file := filepath.Join(t.TempDir(), "svc.yaml")
	write := func(doc string) {
		t.Helper()
		if err := os.WriteFile(file, []byte(doc), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	write("overload: {server: {mode: fixed, fixed_limit: 1, retry_after: 250ms}}\n")
	store, err := config.Load("liveoverload", svcConfig{config.DefaultStandard()}, noEnv(), config.WithoutConsul(), config.WithFile(file))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(store.Close)
	srv := newServer(t, kit.WithConfig(store), kit.WithDrain(0))
	svc := &kittest.Service{}
	svc.Register(srv)
	addr := serve(t, srv)
	cc := newClient(t, "passthrough:///"+addr, kit.WithoutLayers(kit.LayerRetry, kit.LayerOverload))
	c := testpbv1.NewTestServiceClient(cc)

	// One call holds the only place.
	svc.Block(true)
	ctx, cancel := context.WithCancel(context.Background())
	held := make(chan error, 1)
	go func() {
		_, err := c.Echo(ctx, &testpbv1.EchoRequest{Message: "held"})
		held <- err
	}()
	recv(t, svc.Blocked(), "the first call to hold the place")
	svc.Block(false)
	start := time.Now()
	_, err = c.Echo(context.Background(), &testpbv1.EchoRequest{Message: "excess"})
	st := status.Convert(err)
	if st.Code() != codes.ResourceExhausted {
		t.Fatalf("second call at fixed_limit 1: %v, want ResourceExhausted", err)
	}
	if took := time.Since(start); took > time.Second {
		t.Errorf("the refusal took %v, want it at once", took)
	}
	var delay time.Duration
	for _, d := range st.Details() {
		if ri, ok := d.(*errdetails.RetryInfo); ok {
			delay = ri.GetRetryDelay().AsDuration()
		}
	}
	if delay != 250*time.Millisecond {
		t.Errorf("refusal's RetryInfo delay = %v, want retry_after 250ms (details %v)", delay, st.Details())
	}
	health := healthpb.NewHealthClient(cc)
	if _, err := health.Check(context.Background(), &healthpb.HealthCheckRequest{}); err != nil {
		t.Errorf("health check at the limit: %v, want it exempt", err)
	}

	// An invalid section is refused, naming the field; the limit stays.
	before := store.Info()
	write("overload: {server: {mode: fixed, fixed_limit: 1, min_limit: 10, max_limit: 5}}\n")
	poll(t, 5*time.Second, "the invalid overload section to be refused", func() bool { return store.Info().Rejected == before.Rejected+1 })
	if info := store.Info(); !strings.Contains(info.LastError, "overload: server.max_limit") {
		t.Errorf("refusal = %q, want it to name overload: server.max_limit", info.LastError)
	}
	if _, err := c.Echo(context.Background(), &testpbv1.EchoRequest{Message: "excess"}); status.Code(err) != codes.ResourceExhausted {
		t.Errorf("after an invalid section: %v, want the fixed limit still in force", err)
	}

	// Off: everything passes.
	write("overload: {server: {mode: off}}\n")
	poll(t, 5*time.Second, "mode off to take effect", func() bool {
		_, err := c.Echo(context.Background(), &testpbv1.EchoRequest{Message: "excess"})
		return err == nil
	})
	cancel()
	<-held
	if o, ok := kit.LayerOf[*overload.Server](srv, kit.LayerOverload); !ok || o.Config().Mode != overload.ModeOff {
		t.Errorf("server's overload layer: %v, %v; want mode off", o, ok)
	}
}

func TestWithConfigNeedsTheStandardSections(t *testing.T) {
	type bare struct {
		Name string `yaml:"name"`
	}
	store, err := config.Load("bare", bare{Name: "x"}, noEnv(), config.WithoutConsul())
	if err != nil {
		t.Fatal(err)
	}
	defer store.Close()
	if _, err := kit.NewServer(kit.WithConfig(store)); err == nil || !strings.Contains(err.Error(), "config.Standard") {
		t.Errorf("NewServer = %v, want an error naming config.Standard", err)
	}
	if _, err := kit.NewClient("passthrough:///x", kit.WithConfig(store)); err == nil {
		t.Error("NewClient accepted a config without the standard sections")
	}
}

// TestDebugKitPage: the admin page shows the clients given WithAdminOf with
// their breakers, the server's limits and the balancers, as HTML by default
// and as JSON on request; a closed client leaves it.
func TestDebugKitPage(t *testing.T) {
	srv := newServer(t, kit.WithServiceName("pagesvc"))
	(&kittest.Service{}).Register(srv)
	addr := serve(t, srv)
	cc, err := kit.NewClient("passthrough:///"+addr, kit.WithAdminOf(srv))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := testpbv1.NewTestServiceClient(cc).Echo(context.Background(), &testpbv1.EchoRequest{Message: "x"}); err != nil {
		t.Fatal(err)
	}
	page := "http://" + srv.AdminAddr().String() + "/debug/kit"
	get := func(url, accept string) (string, string) {
		t.Helper()
		req, _ := http.NewRequest(http.MethodGet, url, nil)
		if accept != "" {
			req.Header.Set("Accept", accept)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		var b strings.Builder
		if _, err := io.Copy(&b, resp.Body); err != nil {
			t.Fatal(err)
		}
		return resp.Header.Get("Content-Type"), b.String()
	}
	ctype, html := get(page, "text/html")
	if !strings.HasPrefix(ctype, "text/html") {
		t.Fatalf("content type %q", ctype)
	}
	for _, want := range []string{"<h1>pagesvc</h1>", `http-equiv="refresh"`, "passthrough:///" + addr, "/testpb.v1.TestService/Echo", `class="state-closed"`, `data-endpoint="` + addr + `"`} {
		if !strings.Contains(html, want) {
			t.Errorf("page lacks %q", want)
		}
	}
	var doc kit.DebugKit
	for _, req := range [][2]string{{page + "?format=json", ""}, {page, "application/json"}} {
		ctype, body := get(req[0], req[1])
		if ctype != "application/json" {
			t.Fatalf("%v: content type %q", req, ctype)
		}
		if err := json.Unmarshal([]byte(body), &doc); err != nil {
			t.Fatal(err)
		}
	}
	if len(doc.Clients) != 1 || len(doc.Clients[0].Breakers) != 1 || doc.Clients[0].Breakers[0].State != "closed" || doc.RateLimit == nil {
		t.Errorf("document: %+v", doc)
	}
	// The overload layer is on by default on both sides.
	if o := doc.Overload; o == nil || o.Mode != overload.ModeAdaptive || o.Limit < overload.DefaultLimiterConfig().MinLimit || o.InFlight != 0 {
		t.Errorf("document's overload: %+v, want the default adaptive limit and nothing in flight", o)
	}
	if th := doc.Clients[0].Throttles; len(th) != 1 || th[0].Target != "passthrough:///"+addr || th[0].Requests != 1 || th[0].Accepts != 1 {
		t.Errorf("document's throttles: %+v, want one call asked and accepted", th)
	}
	for _, want := range []string{`id="overload-limit"`, `class="throttles"`} {
		if !strings.Contains(html, want) {
			t.Errorf("page lacks %q", want)
		}
	}
	// The balancers are on /metrics too.
	_, metrics := get("http://"+srv.AdminAddr().String()+"/metrics", "")
	for _, want := range []string{`grpckit_overload_limit{`, `grpckit_overload_in_flight{`, `grpckit_balancer_events_total{`, `event="ejection"`, `grpckit_balancer_endpoints{`, `state="active"`, `target="passthrough:///` + addr + `"`} {
		if !strings.Contains(metrics, want) {
			t.Errorf("/metrics lacks %s", want)
		}
	}
	cc.Close()
	_, body := get(page+"?format=json", "")
	if err := json.Unmarshal([]byte(body), &doc); err != nil {
		t.Fatal(err)
	}
	if len(doc.Clients) != 0 {
		t.Errorf("a closed client is still shown: %+v", doc.Clients)
	}
}

// TestIdleClientFollowsChanges: a change made before a client's first call
// (while its ClientConn is idle, with no resolver) reaches its layers and
// its balancer.
func TestIdleClientFollowsChanges(t *testing.T) {
	file := filepath.Join(t.TempDir(), "svc.yaml")
	if err := os.WriteFile(file, []byte("timeout: {default: 4s}\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	store, err := config.Load("idlecli", svcConfig{config.DefaultStandard()}, noEnv(), config.WithoutConsul(), config.WithFile(file))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(store.Close)
	deadlines := make(chan time.Duration, 10)
	srv := newServer(t, kit.WithGRPCServerOptions(grpc.UnaryInterceptor(
		func(ctx context.Context, req any, _ *grpc.UnaryServerInfo, h grpc.UnaryHandler) (any, error) {
			if d, ok := ctx.Deadline(); ok {
				deadlines <- time.Until(d)
			}
			return h(ctx, req)
		})))
	(&kittest.Service{}).Register(srv)
	addr := serve(t, srv)
	var mon balancer.Monitor
	cc := newClient(t, addr, kit.WithConfig(store), kit.WithBalancerMonitor(&mon)) // no scheme: grpc-go's dns
	// Subscribers are called in the order they subscribed: this one runs
	// once the client has taken the change.
	changed := make(chan struct{}, 1)
	t.Cleanup(store.Subscribe(func(*config.Snapshot[svcConfig]) { changed <- struct{}{} }))
	if err := os.WriteFile(file, []byte("timeout: {default: 600ms}\nbalancer: {consecutive_failures: 3}\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	recv(t, changed, "the configuration change")
	if _, err := testpbv1.NewTestServiceClient(cc).Echo(context.Background(), &testpbv1.EchoRequest{Message: "x"}); err != nil {
		t.Fatal(err)
	}
	if d := recv(t, deadlines, "the call's deadline"); d > 600*time.Millisecond {
		t.Errorf("deadline %v, want at most 600ms (the change made while idle was lost)", d)
	}
	found := false
	for _, ts := range mon.Stats() {
		if strings.HasSuffix(ts.Target, addr) {
			found = true
			if ts.Config.ConsecutiveFailures != 3 {
				t.Errorf("balancer of %s: consecutive_failures %d, want 3", ts.Target, ts.Config.ConsecutiveFailures)
			}
		}
	}
	if !found {
		t.Errorf("no kit_weighted balancer for %s", addr)
	}
}
