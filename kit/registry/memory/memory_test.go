package memory

import (
	"context"
	"errors"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/grpckit/grpckit/kit/registry"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

func TestWatchFollowsChanges(t *testing.T) {
	r := New()
	ctx := t.Context()
	w, err := r.Watch(ctx, "user")
	if err != nil {
		t.Fatal(err)
	}
	defer w.Stop()
	next := func() []registry.Instance {
		t.Helper()
		ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
		defer cancel()
		set, err := w.Next(ctx)
		if err != nil {
			t.Fatal(err)
		}
		return set
	}
	if set := next(); len(set) != 0 {
		t.Fatalf("first set %v, want empty", set)
	}
	a := registry.Instance{ID: "a", Name: "user", Address: "127.0.0.1", Port: 1}
	if err := r.Register(ctx, a); err != nil {
		t.Fatal(err)
	}
	if set := next(); len(set) != 1 || set[0].Health != registry.HealthPassing {
		t.Fatalf("set %v, want a, passing", set)
	}
	// An unrelated service and a no-op deregistration do not wake the watcher.
	r.Register(ctx, registry.Instance{ID: "g", Name: "greeter", Address: "127.0.0.1", Port: 2})
	r.Deregister(ctx, registry.Instance{ID: "zz", Name: "user"})
	r.Deregister(ctx, registry.Instance{ID: "a"}) // matched by ID alone
	if set := next(); len(set) != 0 {
		t.Fatalf("set %v, want empty after Deregister", set)
	}
	w.Stop()
	if _, err := w.Next(ctx); !errors.Is(err, registry.ErrWatcherStopped) {
		t.Errorf("Next after Stop = %v, want ErrWatcherStopped", err)
	}
}

func TestRejects(t *testing.T) {
	r := New()
	if err := r.Register(t.Context(), registry.Instance{ID: "a", Name: "user", Address: "h", Port: 70000}); !errors.Is(err, registry.ErrInvalidInstance) {
		t.Errorf("Register with a bad port = %v, want ErrInvalidInstance", err)
	}
	if _, err := r.Watch(t.Context(), "user", registry.WithDatacenter("dc2")); !errors.Is(err, ErrDatacenter) {
		t.Errorf("Watch with a datacenter = %v, want ErrDatacenter", err)
	}
}
