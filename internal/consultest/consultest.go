package consultest

import (
	"context"
	"os"
	"sync"
	"testing"
	"time"

	"github.com/hashicorp/consul/api"

	"github.com/grpckit/grpckit/internal/consulagent"
)

var (
	findOnce sync.Once
	binary   string
	findErr  error
)

// Start starts a consul dev agent on free loopback ports and stops it when
// the test ends. It skips the test under -short and fails it when no consul
// binary can be found or built.
func Start(t testing.TB) *consulagent.Agent {
	t.Helper()
	if testing.Short() {
		t.Skip("needs a real Consul agent; skipped with -short")
	}
	findOnce.Do(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 15*time.Minute)
		defer cancel()
		binary, findErr = consulagent.Find(ctx, os.Stderr)
	})
	if findErr != nil {
		t.Fatalf("no consul binary: %v", findErr)
	}
	var a *consulagent.Agent
	var err error
	for range 3 { // a port picked as free may be taken by another package's agent
		if a, err = consulagent.Start(t.Context(), consulagent.Config{Binary: binary}); err == nil {
			break
		}
	}
	if err != nil {
		t.Fatalf("start consul: %v", err)
	}
	t.Cleanup(func() {
		a.Stop()
		if t.Failed() {
			t.Logf("consul agent log:\n%s", a.Log())
		}
	})
	return a
}

// Client returns a Consul API client for a.
func Client(t testing.TB, a *consulagent.Agent) *api.Client {
	t.Helper()
	cfg := api.DefaultConfig()
	cfg.Address = a.HTTPAddr()
	c, err := api.NewClient(cfg)
	if err != nil {
		t.Fatalf("consul client: %v", err)
	}
	t.Cleanup(cfg.Transport.CloseIdleConnections)
	return c
}
