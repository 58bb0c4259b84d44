package main

import (
	"errors"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/hashicorp/consul/api"

	"github.com/grpckit/grpckit/internal/repo"
	"github.com/grpckit/grpckit/kit/registry/consul/consultest"
)

// devStack runs grpckit dev on this repository's stack (the gateway on a
// port of its own choosing) with args and env added, until it is up. The
// returned stop sends Ctrl-C and fails the test unless it exits 0.
func devStack(t *testing.T, args, env []string) (logs *lockedBuffer, stop func()) {
	t.Helper()
	root, err := repo.Root()
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(buildGrpckit(t), append([]string{"dev", "-project", root, "-manifest", portZeroManifest(t, root)}, args...)...)
	cmd.Env = append(os.Environ(), env...)
	dev := startGroup(t, "grpckit dev", cmd)
	dev.waitUntil(t, "the stack is up", func() bool { return strings.Contains(dev.logs.String(), "Ctrl-C stops everything") })
	return dev.logs, func() {
		t.Helper()
		exited, err := dev.interrupt()
		switch {
		case !exited:
			t.Fatal("grpckit dev did not stop within 60s of Ctrl-C")
		case err != nil:
			t.Errorf("grpckit dev exited with %v after Ctrl-C", err)
		}
	}
}

func tokenClient(t *testing.T, addr, token string) *api.Client {
	t.Helper()
	cfg := api.DefaultConfig()
	cfg.Address, cfg.Token, cfg.TokenFile = addr, token, ""
	c, err := api.NewClient(cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(cfg.Transport.CloseIdleConnections)
	return c
}

func forbidden(err error) bool {
	var se api.StatusError
	return errors.As(err, &se) && se.Code == http.StatusForbidden
}

var operatorRe = regexp.MustCompile(`operator token ([0-9a-f-]{36}), saved in (\S+)`)

// TestDevRunsConsulWithACLs: the Consul agent grpckit dev starts runs ACLs
// with the default policy deny; the operator token it prints is saved for
// its owner only; every service runs with a token of its own (the stack
// comes up and the demo calls pass), and nothing goes without a token.
func TestDevRunsConsulWithACLs(t *testing.T) {
	if testing.Short() {
		t.Skip("starts the local stack and its Consul agent; skipped with -short")
	}
	bin, err := consultest.Find(t.Context(), os.Stderr)
	if err != nil {
		t.Fatal(err)
	}
	l, err := net.Listen("tcp", "127.0.0.1:0") // Consul cannot listen on :0 itself
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()
	dir := t.TempDir()
	logs, stop := devStack(t, []string{"-consul", addr, "-dir", dir}, []string{"CONSUL_BIN=" + bin, "CONSUL_HTTP_TOKEN="})
	m := operatorRe.FindStringSubmatch(logs.String())
	if m == nil {
		t.Fatalf("grpckit dev printed no operator token")
	}
	operator, path := m[1], m[2]
	if path != filepath.Join(dir, tokenFile) {
		t.Errorf("operator token saved in %s, want %s", path, filepath.Join(dir, tokenFile))
	}
	fi, err := os.Stat(path)
	if err != nil || fi.Mode().Perm() != 0o600 {
		t.Errorf("token file: %v, %v; want mode 0600", fi, err)
	}
	if b, err := os.ReadFile(path); err != nil || strings.TrimSpace(string(b)) != operator {
		t.Errorf("token file holds %q (%v), want the operator token", b, err)
	}
	for _, want := range []string{"demo call through consul:///greeter", "demo call through the gateway"} {
		if !strings.Contains(logs.String(), want) {
			t.Errorf("grpckit dev does not show %q", want)
		}
	}
	anon, op := tokenClient(t, addr, ""), tokenClient(t, addr, operator)
	if _, err := anon.KV().Put(&api.KVPair{Key: "grpckit/greeter", Value: []byte("log: {level: debug}\n")}, nil); !forbidden(err) {
		t.Errorf("KV put without a token: %v, want 403", err)
	}
	if _, err := op.KV().Put(&api.KVPair{Key: "grpckit/greeter", Value: []byte("log: {level: debug}\n")}, nil); err != nil {
		t.Errorf("KV put with the operator token: %v", err)
	}
	entries, _, err := op.Health().Service("user", "", true, nil)
	if err != nil || len(entries) != 2 {
		t.Errorf("passing user instances: %d (%v), want 2", len(entries), err)
	}
	checkServiceTokens(t, op, []string{"user", "greeter", "gateway"})
	stop()
}

// checkServiceTokens checks that grpckit dev made one token for each
// service, with its policy only, and none for another service.
func checkServiceTokens(t *testing.T, op *api.Client, services []string) {
	t.Helper()
	list, _, err := op.ACL().TokenList(nil)
	if err != nil {
		t.Fatal(err)
	}
	for _, tok := range list {
		if svc, ok := strings.CutPrefix(tok.Description, "grpckit dev: service "); ok && !slices.Contains(services, strings.Fields(svc)[0]) {
			t.Errorf("a token for a service grpckit dev does not run: %q", tok.Description)
		}
	}
	for _, svc := range services {
		n := 0
		for _, tok := range list {
			if strings.HasPrefix(tok.Description, "grpckit dev: service "+svc+" ") {
				n++
				if len(tok.Policies) != 1 || tok.Policies[0].Name != "grpckit-"+svc {
					t.Errorf("%s's token has the policies %v, want grpckit-%s only", svc, tok.Policies, svc)
				}
			}
		}
		if n != 1 {
			t.Errorf("%d tokens for %s, want 1", n, svc)
		}
	}
}

// TestDevOnAnACLAgent: on an agent that runs already, with ACLs on,
// grpckit dev needs a token that may write ACLs in CONSUL_HTTP_TOKEN, makes
// the services' tokens with it, and deletes them when it stops.
func TestDevOnAnACLAgent(t *testing.T) {
	if testing.Short() {
		t.Skip("starts the local stack; skipped with -short")
	}
	agent := consultest.StartACL(t)
	op := consultest.Client(t, agent)
	_, stop := devStack(t, []string{"-consul", agent.HTTPAddr(), "-dir", t.TempDir()}, []string{"CONSUL_HTTP_TOKEN=" + agent.ManagementToken()})
	checkServiceTokens(t, op, []string{"user", "greeter", "gateway"})
	stop()
	list, _, err := op.ACL().TokenList(nil)
	if err != nil {
		t.Fatal(err)
	}
	for _, tok := range list {
		if strings.HasPrefix(tok.Description, "grpckit dev:") {
			t.Errorf("token %q left after grpckit dev stopped", tok.Description)
		}
	}

	cmd := exec.Command(buildGrpckit(t), "dev", "-consul", agent.HTTPAddr(), "-dir", t.TempDir())
	cmd.Env = append(os.Environ(), "CONSUL_HTTP_TOKEN=")
	out, err := cmd.CombinedOutput()
	if err == nil || !strings.Contains(string(out), "runs ACLs: set CONSUL_HTTP_TOKEN") {
		t.Errorf("grpckit dev without a token on an ACL agent: %v\n%s", err, out)
	}
}
