package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/grpckit/grpckit/kit/config"
	"github.com/grpckit/grpckit/kit/middleware/auth"
	"github.com/grpckit/grpckit/kit/service"
	"github.com/grpckit/grpckit/services/gateway"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

const secret = "0123456789abcdef0123456789abcdef"

// running is a gateway run by serveGateway.
type running struct {
	Config *config.Store[Config]
}

// serveGateway runs the gateway process with args (plus test defaults: no
// Consul, a free admin port and HTTP port, no drain, quiet logs) until the
// test ends or stop is called, which returns Run's error.
func serveGateway(t *testing.T, args ...string) (svc *running, base string, stop func() error) {
	t.Helper()
	args = append([]string{"-registry.address", "off", "-server.admin", "127.0.0.1:0", "-server.drain", "0s",
		"-log.level", "error", "-gateway.listen", "127.0.0.1:0"}, args...)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	type started struct {
		addr  net.Addr
		store *config.Store[Config]
	}
	up := make(chan started, 1)
	go func() {
		done <- service.Run(ctx, "gateway", DefaultConfig(), func(s *service.Service[Config]) error {
			addr, err := setup(s)
			if err == nil {
				up <- started{addr, s.Config}
			}
			return err
		}, service.WithArgs(args), service.WithOutput(io.Discard), withSecret())
	}()
	var st started
	select {
	case st = <-up:
	case err := <-done:
		cancel()
		t.Fatalf("the gateway did not start: %v", err)
	}
	var stopped bool
	var result error
	stop = func() error {
		if !stopped {
			stopped = true
			cancel()
			result = <-done
		}
		return result
	}
	t.Cleanup(func() { stop() })
	return &running{Config: st.store}, "http://" + st.addr.String(), stop
}

// runGateway runs the gateway process with args until it fails to start,
// and returns the error.
func runGateway(t *testing.T, args ...string) error {
	t.Helper()
	args = append([]string{"-registry.address", "off", "-server.admin", "127.0.0.1:0", "-server.drain", "0s",
		"-log.level", "error"}, args...)
	return service.Run(t.Context(), "gateway", DefaultConfig(), func(s *service.Service[Config]) error {
		_, err := setup(s)
		if err == nil {
			t.Error("the gateway started")
		}
		return err
	}, service.WithArgs(args), service.WithOutput(io.Discard), withSecret())
}

// withSecret gives the gateway the test secret through the environment, as
// the local stack does (a secret is never a flag); the rest of the
// environment is the process's.
func withSecret() service.Option {
	return service.WithConfigOptions(config.WithEnv(func(k string) (string, bool) {
		if k == "GRPCKIT_AUTH_HMAC_SECRET" {
			return secret, true
		}
		return os.LookupEnv(k)
	}))
}

// call sends a request and returns the status and body.
func call(t *testing.T, c *http.Client, method, url, tok, body string) (int, []byte) {
	t.Helper()
	var rd io.Reader
	if body != "" {
		rd = strings.NewReader(body)
	}
	req, err := http.NewRequest(method, url, rd)
	if err != nil {
		t.Fatal(err)
	}
	if body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	if tok != "" {
		req.Header.Set("Authorization", "Bearer "+tok)
	}
	resp, err := c.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp.StatusCode, b
}

func newClient(t *testing.T) *http.Client {
	tr := &http.Transport{}
	t.Cleanup(tr.CloseIdleConnections)
	return &http.Client{Transport: tr, Timeout: 10 * time.Second}
}

// TestServe runs the gateway process's serving logic against backends it
// learns from Consul and stops it while a request is in flight: the
// request completes.
func TestServe(t *testing.T) {
	agent, g := stack(t)
	_, base, stop := serveGateway(t, "-registry.address", agent.HTTPAddr())
	c := newClient(t)

	waitStatus(t, c, base+"/v1/hello/world", http.StatusOK)
	// The user service's routes are learnt on their own: 401 without a
	// token once they are there, 404 before.
	waitStatus(t, c, base+"/v1/users/someone", http.StatusUnauthorized)
	tok, err := auth.IssueHS256(secret, "tester", time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	st, b := call(t, c, http.MethodPost, base+"/v1/users", tok, `{"name":"Ada","email":"ada@example.com"}`)
	if st != http.StatusCreated {
		t.Fatalf("create: %d %s", st, b)
	}
	var created struct{ User struct{ ID string } }
	if err := json.Unmarshal(b, &created); err != nil {
		t.Fatal(err)
	}
	if st, b := call(t, c, http.MethodGet, base+"/v1/users/"+created.User.ID, tok, ""); st != http.StatusOK {
		t.Fatalf("get: %d %s", st, b)
	}
	if st, b := call(t, c, http.MethodGet, base+"/v1/users/"+created.User.ID, "", ""); st != http.StatusUnauthorized {
		t.Fatalf("get without a token: %d %s", st, b)
	}
	if st, _ := call(t, c, http.MethodGet, base+"/openapi.json", "", ""); st != http.StatusOK {
		t.Fatalf("openapi: %d", st)
	}

	// Graceful stop: the request in flight is answered.
	type result struct {
		status int
		body   []byte
	}
	inflight := make(chan result, 1)
	go func() {
		st, b := call(t, c, http.MethodGet, base+"/v1/hello/slow", "", "")
		inflight <- result{st, b}
	}()
	<-g.blocked
	stopped := make(chan error, 1)
	go func() { stopped <- stop() }()
	waitRefused(t, strings.TrimPrefix(base, "http://"))
	close(g.release)
	if r := <-inflight; r.status != http.StatusOK || !strings.Contains(string(r.body), "Hello, slow!") {
		t.Errorf("request in flight during shutdown: %d %s", r.status, r.body)
	}
	if err := <-stopped; err != nil {
		t.Errorf("serve: %v", err)
	}
}

// waitStatus polls url until it answers want, for 15 s.
func waitStatus(t *testing.T, c *http.Client, url string, want int) []byte {
	t.Helper()
	deadline := time.Now().Add(15 * time.Second)
	for {
		st, b := call(t, c, http.MethodGet, url, "", "")
		if st == want {
			return b
		}
		if time.Now().After(deadline) {
			t.Fatalf("GET %s: %d %s, want %d within 15s", url, st, b, want)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// waitRefused polls until addr refuses connections: the HTTP server has
// stopped listening.
func waitRefused(t *testing.T, addr string) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		conn, err := net.DialTimeout("tcp", addr, time.Second)
		if err != nil {
			return
		}
		conn.Close()
		if time.Now().After(deadline) {
			t.Fatalf("%s still accepts connections", addr)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// TestLiveConfig: a change of the configuration file changes the edge
// limits of the serving gateway.
func TestLiveConfig(t *testing.T) {
	agent, _ := stack(t)
	dir := t.TempDir()
	file := filepath.Join(dir, "gateway.yaml")
	write := func(doc string) {
		t.Helper()
		tmp := filepath.Join(dir, "tmp.yaml")
		if err := os.WriteFile(tmp, []byte(doc), 0o600); err != nil {
			t.Fatal(err)
		}
		if err := os.Rename(tmp, file); err != nil {
			t.Fatal(err)
		}
	}
	write("gateway:\n  limits:\n    per_client: {rps: 0}\n")
	svc, base, _ := serveGateway(t, "-config", file, "-registry.address", agent.HTTPAddr())
	c := newClient(t)
	waitStatus(t, c, base+"/v1/hello/x", http.StatusOK)
	for range 5 {
		if st, b := call(t, c, http.MethodGet, base+"/v1/hello/x", "", ""); st != http.StatusOK {
			t.Fatalf("without a limit: %d %s", st, b)
		}
	}
	write("gateway:\n  limits:\n    per_client: {rps: 0.001, burst: 1}\n")
	deadline := time.Now().Add(10 * time.Second)
	for {
		st, b := call(t, c, http.MethodGet, base+"/v1/hello/x", "", "")
		if st == http.StatusTooManyRequests {
			break
		}
		if st != http.StatusOK || time.Now().After(deadline) {
			t.Fatalf("waiting for the new limit: %d %s", st, b)
		}
		time.Sleep(20 * time.Millisecond)
	}

	// A backend timeout above the write timeout the HTTP server started with
	// is refused as a whole, even though the document's own write timeout
	// would allow it: the limit stays.
	applied := make(chan uint64, 4)
	t.Cleanup(svc.Config.Subscribe(func(s *config.Snapshot[Config]) { applied <- s.Version })) // runs after the gateway's
	write("gateway:\n  backend_timeout: 1m\n  http: {write_timeout: 2m}\n  limits:\n    per_client: {rps: 0}\n")
	select {
	case <-applied:
	case <-time.After(10 * time.Second):
		t.Fatal("the change did not arrive")
	}
	if st, b := call(t, c, http.MethodGet, base+"/v1/hello/x", "", ""); st != http.StatusTooManyRequests {
		t.Errorf("after a refused change: %d %s, want the limit still in force", st, b)
	}
}

func TestRunListenError(t *testing.T) {
	busy, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer busy.Close()
	if err := runGateway(t, "-gateway.listen", busy.Addr().String()); err == nil || !strings.Contains(err.Error(), "gateway.listen") {
		t.Errorf("Run = %v, want a gateway.listen error", err)
	}
}

func TestConfig(t *testing.T) {
	d := DefaultConfig()
	if err := d.Validate(); err != nil {
		t.Fatalf("defaults: %v", err)
	}
	for _, tc := range []struct {
		name string
		edit func(*Section)
		want string
	}{
		{"listen", func(s *Section) { s.Listen = "8080" }, "gateway.listen"},
		{"read header timeout", func(s *Section) { s.HTTP.ReadHeaderTimeout = 0 }, "gateway.http.read_header_timeout"},
		{"write timeout", func(s *Section) { s.HTTP.WriteTimeout = s.BackendTimeout }, "gateway.http.write_timeout"},
		{"route timeout beyond the write timeout", func(s *Section) {
			s.Routes = map[string]gateway.RoutePolicy{"/user.v1.UserService/*": {Timeout: s.HTTP.WriteTimeout}}
		}, "gateway.routes./user.v1.UserService/*.timeout"},
		{"max header bytes", func(s *Section) { s.HTTP.MaxHeaderBytes = 0 }, "gateway.http.max_header_bytes"},
		{"live section", func(s *Section) { s.MaxBodyBytes = -1 }, "gateway.max_body_bytes"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := DefaultConfig()
			tc.edit(&c.Gateway)
			if err := c.Validate(); err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("Validate() = %v, want an error containing %q", err, tc.want)
			}
		})
	}
}

// TestConfigSources: the environment names of the gateway section, and the
// secret masked by -print-config.
func TestConfigSources(t *testing.T) {
	env := map[string]string{
		"GRPCKIT_GATEWAY_LISTEN":                "0.0.0.0:8080",
		"GRPCKIT_AUTH_HMAC_SECRET":              secret,
		"GRPCKIT_GATEWAY_LIMITS_PER_CLIENT_RPS": "5",
		"GRPCKIT_GATEWAY_BACKEND_TIMEOUT":       "2s",
		"GRPCKIT_GATEWAY_HTTP_WRITE_TIMEOUT":    "10s",
		"GRPCKIT_REGISTRY_META":                 "{zone: a}",
	}
	lookup := func(k string) (string, bool) { v, ok := env[k]; return v, ok }
	var out bytes.Buffer
	fs := flag.NewFlagSet("gateway", flag.ContinueOnError)
	_, err := config.Load("gateway", DefaultConfig(), config.WithEnv(lookup), config.WithoutConsul(),
		config.WithFlags(fs, []string{"-print-config"}), config.WithOutput(&out))
	if !errors.Is(err, config.ErrPrinted) {
		t.Fatalf("Load: %v", err)
	}
	printed := out.String()
	if strings.Contains(printed, secret) || !strings.Contains(printed, "hmac_secret: '****'") {
		t.Errorf("-print-config does not mask the secret:\n%s", printed)
	}
	for _, want := range []string{"listen: 0.0.0.0:8080", "rps: 5", "backend_timeout: 2s", "write_timeout: 10s"} {
		if !strings.Contains(printed, want) {
			t.Errorf("-print-config lacks %q:\n%s", want, printed)
		}
	}
}
