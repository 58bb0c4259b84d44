package gateway

import (
	"fmt"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/grpckit/grpckit/kit/middleware/ratelimit"
)

// limitedGateway returns a gateway with the limits of cfg on a manual clock.
func limitedGateway(t *testing.T, limits Limits) (*Gateway, *clock) {
	t.Helper()
	cfg := testConfig()
	cfg.Limits = limits
	c := newClock()
	return newGateway(t, cfg, withClock(c.Now)), c
}

// expectLimited checks that a is a 429 with Retry-After want.
func expectLimited(t *testing.T, a answer, want string) {
	t.Helper()
	e := a.decodeError(t)
	if a.status != http.StatusTooManyRequests || e.Error.Code != "RESOURCE_EXHAUSTED" {
		t.Fatalf("got %d %s, want 429 RESOURCE_EXHAUSTED: %s", a.status, e.Error.Code, a.body)
	}
	if got := a.header.Get("Retry-After"); got != want {
		t.Errorf("Retry-After %q, want %q", got, want)
	}
	if types := e.detailTypes(); len(types) != 1 || types[0] != "type.googleapis.com/google.rpc.RetryInfo" {
		t.Errorf("details %v, want one RetryInfo", types)
	}
}

func TestPerClientLimit(t *testing.T) {
	g, c := limitedGateway(t, Limits{PerClient: ratelimit.Limit{RPS: 0.5, Burst: 2}, MaxClients: 10})
	hello := request{method: http.MethodGet, target: "/v1/hello/x", remote: "192.0.2.1:1000"}
	for i := range 2 {
		if a := do(t, g, hello); a.status != http.StatusOK {
			t.Fatalf("request %d: %d %s", i, a.status, a.body)
		}
	}
	expectLimited(t, do(t, g, hello), "2") // 1 token every 2s
	// Every route is limited, unknown ones included.
	expectLimited(t, do(t, g, request{method: http.MethodGet, target: "/nope", remote: "192.0.2.1:2000"}), "2")
	// Another client has its own bucket.
	if a := do(t, g, request{method: http.MethodGet, target: "/v1/hello/x", remote: "192.0.2.2:1000"}); a.status != http.StatusOK {
		t.Errorf("other client: %d %s", a.status, a.body)
	}
	// Recovery: one token after 2s, not before.
	c.Advance(1900 * time.Millisecond)
	expectLimited(t, do(t, g, hello), "1")
	c.Advance(100 * time.Millisecond)
	if a := do(t, g, hello); a.status != http.StatusOK {
		t.Fatalf("after 2s: %d %s", a.status, a.body)
	}
	expectLimited(t, do(t, g, hello), "2")
}

func TestGlobalLimit(t *testing.T) {
	g, c := limitedGateway(t, Limits{
		Global:     ratelimit.Limit{RPS: 1, Burst: 2},
		PerClient:  ratelimit.Limit{RPS: 0.01, Burst: 1}, // a token per 100s
		MaxClients: 10,
	})
	from := func(ip string) request {
		return request{method: http.MethodGet, target: "/v1/hello/x", remote: ip + ":1"}
	}
	for _, ip := range []string{"192.0.2.1", "192.0.2.2"} {
		if a := do(t, g, from(ip)); a.status != http.StatusOK {
			t.Fatalf("%s: %d %s", ip, a.status, a.body)
		}
	}
	expectLimited(t, do(t, g, from("192.0.2.3")), "1") // global bucket empty
	c.Advance(time.Second)
	// The refused client's token was given back: its bucket still holds one.
	if a := do(t, g, from("192.0.2.3")); a.status != http.StatusOK {
		t.Fatalf("after 1s: %d %s", a.status, a.body)
	}
}

// TestLiveLimits: SetConfig changes the limits of a serving gateway; the
// buckets keep their tokens.
func TestLiveLimits(t *testing.T) {
	g, c := limitedGateway(t, Limits{PerClient: ratelimit.Limit{RPS: 1, Burst: 1}, MaxClients: 10})
	hello := request{method: http.MethodGet, target: "/v1/hello/x"}
	if a := do(t, g, hello); a.status != http.StatusOK {
		t.Fatalf("%d %s", a.status, a.body)
	}
	expectLimited(t, do(t, g, hello), "1")

	cfg := g.Config()
	cfg.Limits.PerClient = ratelimit.Limit{RPS: 0.1, Burst: 1}
	if err := g.SetConfig(cfg); err != nil {
		t.Fatal(err)
	}
	c.Advance(time.Second) // enough at 1 rps, not at 0.1
	expectLimited(t, do(t, g, hello), "9")

	cfg.Limits.PerClient.RPS = 0 // off
	if err := g.SetConfig(cfg); err != nil {
		t.Fatal(err)
	}
	for range 5 {
		if a := do(t, g, hello); a.status != http.StatusOK {
			t.Fatalf("limit off: %d %s", a.status, a.body)
		}
	}
	if n := g.limiter.numClients(); n != 0 {
		t.Errorf("%d client buckets kept with the limit off", n)
	}

	cfg.Limits.Global = ratelimit.Limit{RPS: 1} // burst 0 means 1
	if err := g.SetConfig(cfg); err != nil {
		t.Fatal(err)
	}
	if a := do(t, g, hello); a.status != http.StatusOK {
		t.Fatalf("global limit on: %d %s", a.status, a.body)
	}
	expectLimited(t, do(t, g, hello), "1")

	cfg.Limits.Global.RPS = -1
	if err := g.SetConfig(cfg); err == nil {
		t.Error("SetConfig accepted a negative rps")
	}
	if got := g.Config().Limits.Global.RPS; got != 1 {
		t.Errorf("refused config applied: global rps %v", got)
	}
}

func TestMaxClients(t *testing.T) {
	c := newClock()
	l := newEdgeLimiter(Limits{PerClient: ratelimit.Limit{RPS: 1, Burst: 1}, MaxClients: 3}, c.Now())
	for i := range 10 {
		if ok, _, _ := l.allow(fmt.Sprintf("10.0.0.%d", i), c.Now()); !ok {
			t.Fatalf("client %d refused", i)
		}
	}
	if n := l.numClients(); n != 3 {
		t.Errorf("%d client buckets, want 3", n)
	}
	// The most recent client is remembered, the first is not.
	if ok, scope, _ := l.allow("10.0.0.9", c.Now()); ok || scope != scopeClient {
		t.Errorf("recent client: ok %v scope %q, want refused by its bucket", ok, scope)
	}
	if ok, _, _ := l.allow("10.0.0.0", c.Now()); !ok {
		t.Error("forgotten client refused; want a new full bucket")
	}
	l.set(Limits{PerClient: ratelimit.Limit{RPS: 1, Burst: 1}, MaxClients: 1}, c.Now())
	if n := l.numClients(); n != 1 {
		t.Errorf("%d client buckets after lowering max_clients to 1", n)
	}
}

func TestClientIP(t *testing.T) {
	for _, tc := range []struct {
		remote string
		xff    []string
		trust  bool
		want   string
	}{
		{"192.0.2.1:1234", nil, false, "192.0.2.1"},
		{"[2001:db8::1]:1234", nil, false, "2001:db8::/64"},
		{"[2001:db8::ffff:1]:1234", nil, false, "2001:db8::/64"}, // one /64, one bucket
		{"[2001:db8:0:1::1]:1234", nil, false, "2001:db8:0:1::/64"},
		{"[fe80::1%eth0]:1234", nil, false, "fe80::/64"},
		{"[::ffff:192.0.2.1]:1234", nil, false, "192.0.2.1"},
		{"192.0.2.1:1234", []string{"198.51.100.7"}, false, "192.0.2.1"},
		{"192.0.2.1:1234", []string{"198.51.100.7"}, true, "198.51.100.7"},
		{"192.0.2.1:1234", []string{"203.0.113.9, 198.51.100.7"}, true, "198.51.100.7"},
		{"192.0.2.1:1234", []string{"203.0.113.9", "198.51.100.7 "}, true, "198.51.100.7"},
		{"192.0.2.1:1234", []string{"198.51.100.7, garbage"}, true, "192.0.2.1"},
		{"192.0.2.1:1234", []string{"198.51.100.7:5678"}, true, "198.51.100.7"}, // a proxy that appends the port
		{"pipe", nil, false, "pipe"},
	} {
		r := httptest.NewRequest(http.MethodGet, "/", nil)
		r.RemoteAddr = tc.remote
		if tc.xff != nil {
			r.Header["X-Forwarded-For"] = tc.xff
		}
		if got := clientIP(r, tc.trust); got != tc.want {
			t.Errorf("clientIP(%q, X-Forwarded-For %q, trust %v) = %q, want %q", tc.remote, tc.xff, tc.trust, got, tc.want)
		}
	}
}
