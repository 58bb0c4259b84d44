package config_test

import (
	"errors"
	"flag"
	"net/http"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/hashicorp/consul/api"

	"github.com/grpckit/grpckit/kit/config"
	"github.com/grpckit/grpckit/kit/duration"
	"github.com/grpckit/grpckit/kit/internal/kittest"
	"github.com/grpckit/grpckit/kit/registry/consul"
	"github.com/grpckit/grpckit/kit/registry/consul/consultest"
)

func putKV(t *testing.T, c *api.Client, key, doc string) {
	t.Helper()
	if _, err := c.KV().Put(&api.KVPair{Key: key, Value: []byte(doc)}, nil); err != nil {
		t.Fatal(err)
	}
}

// TestPrecedenceWithConsul: the Consul document beats flags, which beat the
// environment, which beats the file, which beats the defaults; a partial
// document overrides only what it names, and deleting the key falls back
// to the other sources.
func TestPrecedenceWithConsul(t *testing.T) {
	agent := consultest.Start(t)
	consul := consultest.Client(t, agent)
	putKV(t, consul, "grpckit/svc", "ratelimit: {rps: 50}\nstore: {pages: 9}\n")

	file := filepath.Join(t.TempDir(), "svc.yaml")
	writeFile(t, file, "ratelimit: {rps: 10, burst: 20, max_callers: 30}\ntimeout: {default: 2s}\n")
	fs := flag.NewFlagSet("svc", flag.ContinueOnError)
	s := load(t, config.WithConsul(consul), config.WithFile(file),
		env("GRPCKIT_RATELIMIT_RPS", "30", "GRPCKIT_RATELIMIT_BURST", "31", "GRPCKIT_TIMEOUT_DEFAULT", "3s"),
		config.WithFlags(fs, []string{"-ratelimit.rps=40", "-ratelimit.burst=41"}))
	ch := changes(t, s)
	got := s.Current()
	rl := got.Value.RateLimit
	if rl.RPS != 50 || rl.Burst != 41 || rl.MaxCallers != 30 || got.Value.Timeout.Default != duration.Duration(3*time.Second) || got.Value.Store.Pages != 9 {
		t.Fatalf("start config: rps %v (want 50, KV) burst %d (41, flags) max_callers %d (30, file) timeout %v (3s, env) pages %d (9, KV)",
			rl.RPS, rl.Burst, rl.MaxCallers, got.Value.Timeout.Default, got.Value.Store.Pages)
	}
	if got.Version != 1 {
		t.Errorf("the document read at start made version %d, want 1", got.Version)
	}
	if info := s.Info(); !strings.Contains(strings.Join(info.Sources, ","), "consul grpckit/svc") {
		t.Errorf("sources %v lack the Consul key", info.Sources)
	}

	if _, err := consul.KV().Delete("grpckit/svc", nil); err != nil {
		t.Fatal(err)
	}
	snap := next(t, ch)
	if snap.Value.RateLimit.RPS != 40 || snap.Value.Store.Pages != 50 || snap.Source != "consul grpckit/svc" {
		t.Errorf("after deleting the key: rps %v (want 40, flags) pages %d (want 50, default) source %q",
			snap.Value.RateLimit.RPS, snap.Value.Store.Pages, snap.Source)
	}
}

// TestConsulDownAtStart: an unreachable Consul does not stop the start; the
// watch applies the document once Consul answers.
func TestConsulDownAtStart(t *testing.T) {
	agent := consultest.Start(t)
	consul := consultest.Client(t, agent)
	agent.Stop()
	d := defaults()
	d.Registry.Address = agent.HTTPAddr()
	s, err := config.Load("svc", d, env())
	if err != nil {
		t.Fatalf("Load with Consul down: %v", err)
	}
	t.Cleanup(s.Close)
	ch := changes(t, s)
	if err := agent.Restart(t.Context()); err != nil {
		t.Fatal(err)
	}
	putKV(t, consul, "grpckit/svc", "ratelimit: {rps: 7}\n")
	for snap := next(t, ch); snap.Value.RateLimit.RPS != 7; snap = next(t, ch) {
	}
}

// TestInvalidDocumentAtStart: a document that does not validate is refused
// at start like a later change; the service starts on the other sources.
func TestInvalidDocumentAtStart(t *testing.T) {
	agent := consultest.Start(t)
	consul := consultest.Client(t, agent)
	putKV(t, consul, "grpckit/svc", "ratelimit: {rps: -2}\n")
	s := load(t, config.WithConsul(consul))
	if info := s.Info(); info.Rejected != 1 || !strings.Contains(info.LastError, "rps") || !strings.Contains(info.LastError, "consul grpckit/svc") || s.Current().Value.RateLimit.RPS != 0 {
		t.Errorf("info %+v, rps %v", info, s.Current().Value.RateLimit.RPS)
	}
	ch := changes(t, s)
	putKV(t, consul, "grpckit/svc", "ratelimit: {rps: 2}\n")
	if snap := next(t, ch); snap.Value.RateLimit.RPS != 2 || snap.Version != 2 {
		t.Errorf("fixed document: rps %v version %d", snap.Value.RateLimit.RPS, snap.Version)
	}
}

// TestRefusedDocumentIsRetried: a Consul document refused because of what
// the file says is applied once the file changes to allow it, and a file
// change is applied while a refused document is pending.
func TestRefusedDocumentIsRetried(t *testing.T) {
	agent := consultest.Start(t)
	consul := consultest.Client(t, agent)
	file := filepath.Join(t.TempDir(), "svc.yaml")
	writeFile(t, file, "balancer: {bucket: 1s, window: 10s}\n")
	s := load(t, config.WithConsul(consul), config.WithFile(file))
	ch := changes(t, s)

	putKV(t, consul, "grpckit/svc", "balancer: {bucket: 3s}\n") // 10s is not whole 3s buckets
	kittest.WaitFor(t, "the document to be refused", func() bool { return s.Info().Rejected == 1 })
	if info := s.Info(); len(info.Pending) != 1 || info.Pending[0] != "consul grpckit/svc" {
		t.Errorf("pending %v, want the Consul key", info.Pending)
	}

	saveAtomically(t, file, "balancer: {bucket: 1s, window: 9s}\nratelimit: {rps: 4}\n")
	snap := next(t, ch)
	if b := snap.Value.Balancer; time.Duration(b.Bucket) != 3*time.Second || time.Duration(b.Window) != 9*time.Second {
		t.Errorf("after the file change: bucket %v window %v, want 3s and 9s (the pending document applied)", time.Duration(b.Bucket), time.Duration(b.Window))
	}
	if info := s.Info(); len(info.Pending) != 0 {
		t.Errorf("still pending: %v", info.Pending)
	}

	// A bad document pending does not block a valid file change.
	putKV(t, consul, "grpckit/svc", "balancer: {bucket: 4s}\n")
	kittest.WaitFor(t, "the second document to be refused", func() bool { return s.Info().Rejected == 2 })
	saveAtomically(t, file, "balancer: {bucket: 1s, window: 9s}\nratelimit: {rps: 5}\n")
	if snap := next(t, ch); snap.Value.RateLimit.RPS != 5 || time.Duration(snap.Value.Balancer.Bucket) != 3*time.Second {
		t.Errorf("file change with a bad document pending: rps %v bucket %v, want 5 and the 3s in force", snap.Value.RateLimit.RPS, time.Duration(snap.Value.Balancer.Bucket))
	}
}

// TestKVWithServiceToken: with ACLs on and the default policy deny, a
// service's token with exactly its policy reads its key at start and
// follows it; writing the key takes the operator's token.
func TestKVWithServiceToken(t *testing.T) {
	agent := consultest.StartACL(t)
	mgmt := consultest.Client(t, agent)
	putKV(t, mgmt, "grpckit/svc", "ratelimit: {rps: 11}\n")
	tok, err := consul.CreateServiceToken(t.Context(), mgmt, "svc", "test", "")
	if err != nil {
		t.Fatal(err)
	}
	c := consultest.TokenClient(t, agent, tok.SecretID)
	s := load(t, config.WithConsul(c))
	if rps := s.Current().Value.RateLimit.RPS; rps != 11 {
		t.Fatalf("rps %v at start, want 11 from the key", rps)
	}
	ch := changes(t, s)
	for name, writer := range map[string]*api.Client{"the service's token": c, "no token": consultest.TokenClient(t, agent, "")} {
		_, err := writer.KV().Put(&api.KVPair{Key: "grpckit/svc", Value: []byte("ratelimit: {rps: 1}\n")}, nil)
		var se api.StatusError
		if !errors.As(err, &se) || se.Code != http.StatusForbidden {
			t.Errorf("KV put with %s: %v, want 403", name, err)
		}
	}
	putKV(t, mgmt, "grpckit/svc", "ratelimit: {rps: 12}\n")
	if snap := next(t, ch); snap.Value.RateLimit.RPS != 12 {
		t.Errorf("after the operator's change: rps %v, want 12", snap.Value.RateLimit.RPS)
	}
}

// TestKVRefusedTokenFailsStart: a token Consul does not know, or one
// without key:read on the key, fails Load with an error that says so; it
// never looks like an empty key.
func TestKVRefusedTokenFailsStart(t *testing.T) {
	agent := consultest.StartACL(t)
	other, err := consul.CreateServiceToken(t.Context(), consultest.Client(t, agent), "other", "test", "")
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name, token string
		want        []string
	}{
		{"wrong token", "0b8c0d6e-1c9d-4c57-9a43-000000000000", []string{"403 ACL not found", "does not know the token"}},
		{"no token", "", []string{"403 Permission denied", "anonymous", `key:read on "grpckit/svc"`}},
		{"another service's token", other.SecretID, []string{"403 Permission denied", `key:read on "grpckit/svc"`}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s, err := config.Load("svc", defaults(), env(), config.WithConsul(consultest.TokenClient(t, agent, tc.token)))
			if err == nil {
				s.Close()
				t.Fatal("Load succeeded")
			}
			if !errors.Is(err, consul.ErrACLRefused) {
				t.Errorf("Load: %v, want ErrACLRefused", err)
			}
			for _, want := range append(tc.want, "set registry.token or CONSUL_HTTP_TOKEN") {
				if !strings.Contains(err.Error(), want) {
					t.Errorf("error %q does not say %q", err, want)
				}
			}
		})
	}
}

// TestKVLocalSettingRefused: a document that sets a local setting is
// refused as a whole at start (the service starts without it) and later
// (the previous configuration stays), with a reason naming the setting; a
// document without one is applied.
func TestKVLocalSettingRefused(t *testing.T) {
	agent := consultest.Start(t)
	c := consultest.Client(t, agent)
	putKV(t, c, "grpckit/svc", "server: {admin: 0.0.0.0:9100}\nratelimit: {rps: 3}\n")
	s := load(t, config.WithConsul(c))
	const reason = "consul kv grpckit/svc: server.admin cannot be set from Consul KV (it changes the security boundary); set it in the file, environment or flags"
	cur := s.Current().Value
	if info := s.Info(); cur.Server.Admin != "127.0.0.1:0" || cur.RateLimit.RPS != 0 || info.Rejected != 1 || !strings.Contains(info.LastError, reason) {
		t.Fatalf("at start: admin %q rps %v, info %+v; want the document refused with %q", cur.Server.Admin, cur.RateLimit.RPS, info, reason)
	}
	ch := changes(t, s)
	putKV(t, c, "grpckit/svc", "ratelimit: {rps: 4}\n")
	if snap := next(t, ch); snap.Value.RateLimit.RPS != 4 || snap.Version != 2 {
		t.Fatalf("a document without local settings: rps %v version %d, want 4 and 2", snap.Value.RateLimit.RPS, snap.Version)
	}
	putKV(t, c, "grpckit/svc", "ratelimit: {rps: 5}\nregistry: {token: stolen}\n")
	kittest.WaitFor(t, "the document to be refused", func() bool { return s.Info().Rejected == 2 })
	if info, snap := s.Info(), s.Current(); snap.Version != 2 || snap.Value.RateLimit.RPS != 4 || snap.Value.Registry.Token != "" ||
		!strings.Contains(info.LastError, "consul kv grpckit/svc: registry.token cannot be set from Consul KV") {
		t.Errorf("after a document setting registry.token: version %d rps %v, info %+v; want version 2 kept and the reason", snap.Version, snap.Value.RateLimit.RPS, info)
	}
}
