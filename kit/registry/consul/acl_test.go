package consul_test

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/grpckit/grpckit/kit/registry/consul"
	"github.com/grpckit/grpckit/kit/registry/consul/consultest"
)

// serviceToken makes a token for service name with consul.ServiceRules.
func serviceToken(t *testing.T, agent *consultest.Agent, name string) string {
	t.Helper()
	tok, err := consul.CreateServiceToken(t.Context(), consultest.Client(t, agent), name, "test "+name, "")
	if err != nil {
		t.Fatal(err)
	}
	return tok.SecretID
}

// TestServiceTokenRegistersAndWatches: with ACLs on and the default policy
// deny, a token with exactly the service's policy registers the service,
// keeps it registered and watches it and others; it may not register
// another name, and says why.
func TestServiceTokenRegistersAndWatches(t *testing.T) {
	agent := consultest.StartACL(t)
	r := consul.New(consultest.TokenClient(t, agent, serviceToken(t, agent, "svc")))
	t.Cleanup(r.Close)
	if err := r.CheckToken(t.Context()); err != nil {
		t.Fatalf("CheckToken of a service token: %v", err)
	}
	_, inst := healthServer(t)
	if err := r.Register(t.Context(), inst); err != nil {
		t.Fatalf("Register with the service's token: %v", err)
	}
	t.Cleanup(func() { r.Deregister(context.Background(), inst) })
	w, err := r.Watch(t.Context(), "svc")
	if err != nil {
		t.Fatal(err)
	}
	defer w.Stop()
	set, err := w.Next(t.Context())
	if err != nil || len(set) != 1 || set[0].ID != inst.ID {
		t.Fatalf("Watch with the service's token: %v, %v; want the instance", set, err)
	}

	other := inst
	other.ID, other.Name = "other-1", "other"
	err = r.Register(t.Context(), other)
	if !errors.Is(err, consul.ErrACLRefused) {
		t.Fatalf("Register as another service: %v, want ErrACLRefused", err)
	}
	for _, want := range []string{"403 Permission denied", "set registry.token or CONSUL_HTTP_TOKEN", `service:write on "other"`} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q does not say %q", err, want)
		}
	}
}

// TestWrongTokenIsAClearError: a token Consul does not know is refused with
// an error that says so, on registration, on the token check and on a
// watch (never an empty instance set).
func TestWrongTokenIsAClearError(t *testing.T) {
	agent := consultest.StartACL(t)
	r := consul.New(consultest.TokenClient(t, agent, "8c6c4c2e-5e2a-4d9a-9d4c-000000000000"))
	t.Cleanup(r.Close)
	check := func(what string, err error) {
		t.Helper()
		if !errors.Is(err, consul.ErrACLRefused) {
			t.Errorf("%s: %v, want ErrACLRefused", what, err)
			return
		}
		for _, want := range []string{"consul: ACL token refused (403 ACL not found): set registry.token or CONSUL_HTTP_TOKEN", "does not know the token"} {
			if !strings.Contains(err.Error(), want) {
				t.Errorf("%s: %q does not say %q", what, err, want)
			}
		}
	}
	check("CheckToken", r.CheckToken(t.Context()))
	_, inst := healthServer(t)
	check("Register", r.Register(t.Context(), inst))
	w, err := r.Watch(t.Context(), "svc")
	if err != nil {
		t.Fatal(err)
	}
	defer w.Stop()
	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
	defer cancel()
	set, err := w.Next(ctx)
	check("Watch", err)
	if set != nil {
		t.Errorf("Watch gave a set %v with the error", set)
	}
}

// TestNoTokenWithDefaultDeny: without a token, Consul answers a health
// query with nothing at all (200, an empty list) when the default policy
// is deny; the watch must not report that as a service without instances.
func TestNoTokenWithDefaultDeny(t *testing.T) {
	agent := consultest.StartACL(t)
	mgmt := consul.New(consultest.Client(t, agent))
	t.Cleanup(mgmt.Close)
	_, inst := healthServer(t)
	if err := mgmt.Register(t.Context(), inst); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { mgmt.Deregister(context.Background(), inst) })

	anon := consul.New(consultest.TokenClient(t, agent, ""))
	t.Cleanup(anon.Close)
	for _, name := range []string{"svc", "nothing-registered"} {
		w, err := anon.Watch(t.Context(), name)
		if err != nil {
			t.Fatal(err)
		}
		ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
		set, err := w.Next(ctx)
		cancel()
		w.Stop()
		if !errors.Is(err, consul.ErrACLRefused) {
			t.Errorf("Watch(%s) without a token: %v, %v; want ErrACLRefused", name, set, err)
		}
	}
	if err := anon.Register(t.Context(), inst); !errors.Is(err, consul.ErrACLRefused) || !strings.Contains(err.Error(), "anonymous") {
		t.Errorf("Register without a token: %v, want ErrACLRefused naming the anonymous token", err)
	}
	if err := anon.CheckToken(t.Context()); !errors.Is(err, consul.ErrACLRefused) || !strings.Contains(err.Error(), "no token is set") {
		t.Errorf("CheckToken without a token: %v, want ErrACLRefused saying no token is set", err)
	}
}
