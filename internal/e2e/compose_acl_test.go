package e2e

import (
	"errors"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/compose-spec/compose-go/v2/cli"
	"github.com/compose-spec/compose-go/v2/types"
	"github.com/hashicorp/consul/api"

	"github.com/grpckit/grpckit/internal/repo"
	"github.com/grpckit/grpckit/kit/registry/consul"
	"github.com/grpckit/grpckit/kit/registry/consul/consultest"
)

// aclHCLRe finds the agent's ACL settings in the consul service's -hcl
// argument.
var (
	aclEnabledRe = regexp.MustCompile(`acl\s*\{.*enabled\s*=\s*true`)
	aclDenyRe    = regexp.MustCompile(`default_policy\s*=\s*"deny"`)
	aclMgmtRe    = regexp.MustCompile(`initial_management\s*=\s*"([^"]+)"`)
)

// composeACL is what checkComposeACL learned of a compose project.
type composeACL struct {
	hcl        string            // the consul service's -hcl argument
	management string            // its management token
	inits      map[string]string // token init service -> Consul service name
	tokens     map[string]string // Consul service name -> token
}

// checkComposeACL checks that the stack runs Consul with ACLs on and the
// default policy deny, and that every service built here gets a token of
// its own (CONSUL_HTTP_TOKEN), made by a one-shot init service it waits
// for, whose command names the service and the same token.
func checkComposeACL(t *testing.T, project *types.Project) composeACL {
	t.Helper()
	a := composeACL{inits: map[string]string{}, tokens: map[string]string{}}
	c, ok := project.Services["consul"]
	if !ok {
		t.Error("no consul service")
		return a
	}
	for _, arg := range c.Command {
		if h, ok := strings.CutPrefix(arg, "-hcl="); ok {
			a.hcl = h
		}
	}
	if !slices.Contains(c.Command, "-dev") || !aclEnabledRe.MatchString(a.hcl) || !aclDenyRe.MatchString(a.hcl) {
		t.Errorf("consul runs %q: want agent -dev with -hcl=acl { enabled = true, default_policy = \"deny\", ... }", c.Command)
	}
	if m := aclMgmtRe.FindStringSubmatch(a.hcl); m != nil {
		a.management = m[1]
	} else {
		t.Errorf("consul's -hcl %q sets no initial_management token", a.hcl)
	}
	for name, svc := range project.Services {
		if svc.Build == nil {
			continue
		}
		tok := svc.Environment["CONSUL_HTTP_TOKEN"]
		if tok == nil || *tok == "" {
			t.Errorf("%s gets no CONSUL_HTTP_TOKEN", name)
			continue
		}
		if *tok == a.management {
			t.Errorf("%s gets the management token; want a token of its own", name)
		}
		var init string
		for dep, cond := range svc.DependsOn {
			if strings.HasPrefix(dep, "consul-acl-") && cond.Condition == types.ServiceConditionCompletedSuccessfully {
				init = dep
			}
		}
		is, ok := project.Services[init]
		if !ok {
			t.Errorf("%s does not wait for a consul-acl-<name> service to complete", name)
			continue
		}
		if len(is.Command) != 2 || is.Command[1] != *tok {
			t.Errorf("%s: %s runs %q, want [<service name> <%s's token>]", name, init, is.Command, name)
			continue
		}
		if prev, ok := a.tokens[is.Command[0]]; ok && prev != *tok {
			t.Errorf("instances of %s have different tokens", is.Command[0])
		}
		a.inits[init], a.tokens[is.Command[0]] = is.Command[0], *tok
	}
	return a
}

// TestComposeACLWorks runs what the compose stack runs for its ACLs against
// a real Consul: an agent with the consul service's -hcl, and the token
// init containers' script (twice: a restarted stack runs it again). Each
// service token may then do what the service needs (register itself, read
// the catalog, read its key), nothing more; without a token nothing goes.
func TestComposeACLWorks(t *testing.T) {
	if testing.Short() {
		t.Skip("needs a real Consul agent; skipped with -short")
	}
	project := loadRepoCompose(t)
	a := checkComposeACL(t, project)
	if t.Failed() {
		t.FailNow()
	}
	bin, err := consultest.Find(t.Context(), os.Stderr)
	if err != nil {
		t.Fatal(err)
	}
	agent, err := consultest.StartAgent(t.Context(), consultest.Config{Binary: bin, Args: []string{"-hcl=" + a.hcl}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(agent.Stop)
	anon := consultest.TokenClient(t, agent, "")
	if _, err := anon.KV().Put(&api.KVPair{Key: "grpckit/user", Value: []byte("x: 1\n")}, nil); !isForbidden(err) {
		t.Errorf("KV put without a token: %v, want 403", err)
	}
	// The management token works once the leader made it.
	mgmt := consultest.TokenClient(t, agent, a.management)
	waitFor(t, "the management token to work", func() bool {
		_, _, err := mgmt.ACL().TokenReadSelf(nil)
		return err == nil
	})

	for init := range a.inits {
		svc := project.Services[init]
		if len(svc.Entrypoint) < 3 || svc.Entrypoint[0] != "/bin/sh" {
			t.Fatalf("%s: entrypoint %q is not /bin/sh -ec SCRIPT NAME0", init, svc.Entrypoint)
		}
		for run := range 2 {
			cmd := exec.Command(svc.Entrypoint[0], append(svc.Entrypoint[1:], svc.Command...)...)
			cmd.Env = append(os.Environ(), "PATH="+filepath.Dir(bin)+string(filepath.ListSeparator)+os.Getenv("PATH"),
				"CONSUL_HTTP_ADDR="+agent.HTTPAddr(), "CONSUL_HTTP_TOKEN="+a.management)
			out, err := cmd.CombinedOutput()
			if err != nil {
				t.Fatalf("%s (run %d): %v\n%s", init, run+1, err, out)
			}
		}
	}
	for name, tok := range a.tokens {
		policy, _, err := mgmt.ACL().PolicyReadByName(consul.PolicyName(name), nil)
		if err != nil || policy == nil {
			t.Errorf("%s: policy %s: %v", name, consul.PolicyName(name), err)
		} else if policy.Rules != consul.ServiceRules(name) {
			t.Errorf("%s: the policy's rules\n%s\nare not consul.ServiceRules:\n%s", name, policy.Rules, consul.ServiceRules(name))
		}
		c := consultest.TokenClient(t, agent, tok)
		self, _, err := c.ACL().TokenReadSelf(nil)
		if err != nil || len(self.Policies) != 1 || self.Policies[0].Name != consul.PolicyName(name) {
			t.Errorf("%s: token: %+v, %v; want one with the policy %s only", name, self, err, consul.PolicyName(name))
			continue
		}
		reg := &api.AgentServiceRegistration{ID: name + "-1", Name: name, Port: 9000, Address: "127.0.0.1"}
		if err := c.Agent().ServiceRegister(reg); err != nil {
			t.Errorf("%s: register with its token: %v", name, err)
		}
		other := &api.AgentServiceRegistration{ID: "other-" + name, Name: "other-" + name, Port: 9000}
		if err := c.Agent().ServiceRegister(other); !isForbidden(err) {
			t.Errorf("%s: register as other-%s with its token: %v, want 403", name, name, err)
		}
		if _, _, err := c.KV().Get("grpckit/"+name, nil); err != nil {
			t.Errorf("%s: read grpckit/%s with its token: %v", name, name, err)
		}
		if _, err := c.KV().Put(&api.KVPair{Key: "grpckit/" + name, Value: []byte("x: 1\n")}, nil); !isForbidden(err) {
			t.Errorf("%s: write grpckit/%s with its token: %v, want 403", name, name, err)
		}
	}
	for name, tok := range a.tokens {
		c := consultest.TokenClient(t, agent, tok)
		waitFor(t, name+"'s token to see every service", func() bool {
			for other := range a.tokens {
				entries, _, err := c.Health().Service(other, "", false, nil)
				if err != nil || len(entries) != 1 {
					return false
				}
			}
			return true
		})
	}
}

func loadRepoCompose(t *testing.T, opts ...cli.ProjectOptionsFn) *types.Project {
	t.Helper()
	root, err := repo.Root()
	if err != nil {
		t.Fatal(err)
	}
	o, err := cli.NewProjectOptions([]string{filepath.Join(root, "docker-compose.yml")},
		append([]cli.ProjectOptionsFn{cli.WithWorkingDirectory(root), cli.WithName("grpckit")}, opts...)...)
	if err != nil {
		t.Fatal(err)
	}
	project, err := o.LoadProject(t.Context())
	if err != nil {
		t.Fatalf("docker-compose.yml does not load: %v", err)
	}
	return project
}

// waitFor polls cond every 20ms until it holds, failing the test after
// 30s.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func isForbidden(err error) bool {
	var se api.StatusError
	return errors.As(err, &se) && se.Code == http.StatusForbidden
}
