package service_test

import (
	"context"
	"errors"
	"io"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/hashicorp/consul/api"

	"github.com/grpckit/grpckit/kit"
	"github.com/grpckit/grpckit/kit/config"
	"github.com/grpckit/grpckit/kit/internal/kittest"
	"github.com/grpckit/grpckit/kit/registry/consul"
	"github.com/grpckit/grpckit/kit/registry/consul/consultest"
	"github.com/grpckit/grpckit/kit/service"
)

// consulArgs run a service on loopback against agent, without admin
// listener or drain.
func consulArgs(agent *consultest.Agent) []string {
	return []string{"-registry.address", agent.HTTPAddr(), "-server.admin", "", "-server.drain", "0s", "-auth.disabled"}
}

// TestRunWithServiceToken: against Consul with ACLs on and the default
// policy deny, a service whose token has exactly its policy (given as
// registry.token or as CONSUL_HTTP_TOKEN) reads its configuration from its
// key and registers.
func TestRunWithServiceToken(t *testing.T) {
	agent := consultest.StartACL(t)
	mgmt := consultest.Client(t, agent)
	if _, err := mgmt.KV().Put(&api.KVPair{Key: "grpckit/svc", Value: []byte("app: {name: kv}\n")}, nil); err != nil {
		t.Fatal(err)
	}
	tok, err := consul.CreateServiceToken(t.Context(), mgmt, "svc", "test", "")
	if err != nil {
		t.Fatal(err)
	}
	for _, how := range []string{"registry.token", "CONSUL_HTTP_TOKEN"} {
		t.Run(how, func(t *testing.T) {
			env := map[string]string{}
			if how == "registry.token" {
				t.Setenv("CONSUL_HTTP_TOKEN", "")
				env["GRPCKIT_REGISTRY_TOKEN"] = tok.SecretID
			} else {
				t.Setenv("CONSUL_HTTP_TOKEN", tok.SecretID)
			}
			ctx, cancel := context.WithCancel(t.Context())
			defer cancel()
			var name string
			done := make(chan error, 1)
			go func() {
				done <- service.Run(ctx, "svc", defaults(), func(s *service.Service[Config]) error {
					name = s.Value().App.Name
					(&kittest.Service{}).Register(s.Server)
					return nil
				}, service.WithArgs(consulArgs(agent)), service.WithOutput(io.Discard),
					service.WithConfigOptions(config.WithEnv(func(k string) (string, bool) { v, ok := env[k]; return v, ok })))
			}()
			deadline := time.After(30 * time.Second)
			for {
				entries, _, err := mgmt.Health().Service("svc", "", true, nil)
				if err == nil && len(entries) == 1 {
					// The registration publishes the API for the gateway:
					// a fingerprint of its protos, and its public methods
					// (every one, since auth is disabled).
					meta := entries[0].Service.Meta
					if fp := meta[kit.MetaAPI]; len(fp) != 16 {
						t.Errorf("meta %s = %q, want a 16-digit fingerprint", kit.MetaAPI, fp)
					}
					if got := kit.PublicMethods(meta); !slices.Equal(got, []string{"*"}) {
						t.Errorf("public methods in meta %q, want [*] (auth.disabled)", got)
					}
					break
				}
				select {
				case err := <-done:
					t.Fatalf("Run returned %v before the service registered", err)
				case <-deadline:
					t.Fatal("the service did not register within 30s")
				case <-time.After(20 * time.Millisecond):
				}
			}
			cancel()
			if err := <-done; err != nil {
				t.Errorf("Run = %v", err)
			}
			if name != "kv" {
				t.Errorf("app.name = %q, want kv from the Consul key", name)
			}
		})
	}
}

// TestRunWithRefusedToken: a token Consul does not know, none, or one
// without the service's rights fails the start with an error that says so.
func TestRunWithRefusedToken(t *testing.T) {
	agent := consultest.StartACL(t)
	other, err := consul.CreateServiceToken(t.Context(), consultest.Client(t, agent), "other", "test", "")
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name, token string
		kvOff       bool
		want        []string
	}{
		{name: "wrong token", token: "53d5d5fd-8fdb-4d5e-8a55-000000000000", want: []string{"403 ACL not found"}},
		{name: "no token", want: []string{"403 Permission denied", "anonymous"}},
		{name: "no token, no KV source", kvOff: true, want: []string{"403 Permission denied", "no token is set"}},
		{name: "another service's token", token: other.SecretID, want: []string{"403 Permission denied", `key:read on "grpckit/svc"`}},
		{name: "another service's token, no KV source", token: other.SecretID, kvOff: true, want: []string{"403 Permission denied", `service:write on "svc"`}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Setenv("CONSUL_HTTP_TOKEN", tc.token)
			copts := []config.Option{config.WithEnv(noEnv)}
			if tc.kvOff {
				copts = append(copts, config.WithoutConsul())
			}
			err := service.Run(t.Context(), "svc", defaults(), func(*service.Service[Config]) error { return nil },
				service.WithArgs(consulArgs(agent)), service.WithOutput(io.Discard), service.WithConfigOptions(copts...))
			if !errors.Is(err, consul.ErrACLRefused) {
				t.Fatalf("Run = %v, want ErrACLRefused", err)
			}
			for _, want := range append(tc.want, "consul: ACL token refused", "set registry.token or CONSUL_HTTP_TOKEN") {
				if !strings.Contains(err.Error(), want) {
					t.Errorf("Run = %q, does not say %q", err, want)
				}
			}
		})
	}
}
