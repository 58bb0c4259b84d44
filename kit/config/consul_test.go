package config_test

import (
	"flag"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/hashicorp/consul/api"

	"github.com/grpckit/grpckit/kit/config"
	"github.com/grpckit/grpckit/kit/duration"
	"github.com/grpckit/grpckit/kit/internal/kittest"
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
