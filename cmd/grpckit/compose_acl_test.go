package main

import (
	"os"
	"path"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/grpckit/grpckit/internal/repo"
)

var (
	denyRe = regexp.MustCompile(`acl \{ enabled = true, default_policy = "deny",.*initial_management = "([0-9a-f-]{36})"`)
)

// TestNewProjectComposeRunsACLs: a new project's compose stack runs Consul
// with ACLs on and the default policy deny, with a management token of its
// own, and its first service gets a consul-acl-<name> container and a
// token of its own.
func TestNewProjectComposeRunsACLs(t *testing.T) {
	tokens := map[string]bool{}
	for range 2 {
		d := newProjectData("example.com/acme/shop", "shop", "shop", kitSource{version: "v0.1.0"})
		src, err := render(path.Join("project", "docker-compose.yml.tmpl"), d)
		if err != nil {
			t.Fatal(err)
		}
		root := t.TempDir()
		out, _, err := addComposeService(t.Context(), root, filepath.Join(root, "docker-compose.yml"), src, newScaffoldData(d.Module, "shop", false))
		if err != nil {
			t.Fatalf("the first service: %v", err) // checkComposeService checks its token and init container
		}
		p, err := loadCompose(t.Context(), root, filepath.Join(root, "docker-compose.yml"), out)
		if err != nil {
			t.Fatal(err)
		}
		args := strings.Join(p.Services["consul"].Command, " ")
		m := denyRe.FindStringSubmatch(args)
		if m == nil || !slices.Contains(p.Services["consul"].Command, "-dev") {
			t.Fatalf("consul runs %q: want agent -dev with ACLs on, default deny, a management token", args)
		}
		tokens[m[1]] = true
		if _, ok := p.Services["consul-acl-shop"]; !ok {
			t.Errorf("no consul-acl-shop service: %v", p.ServiceNames())
		}
		if tok := p.Services["shop"].Environment["CONSUL_HTTP_TOKEN"]; tok == nil || *tok == m[1] {
			t.Errorf("shop's CONSUL_HTTP_TOKEN %v: want one of its own", tok)
		}
	}
	if len(tokens) != 2 {
		t.Error("two projects got the same management token")
	}
}

// TestComposeACLScript: the consul-acl-<name> containers of the
// repository's docker-compose.yml (run against a real Consul by
// internal/e2e's TestComposeACLWorks) run the script new projects and
// grpckit add get.
func TestComposeACLScript(t *testing.T) {
	root, err := repo.Root()
	if err != nil {
		t.Fatal(err)
	}
	src, err := os.ReadFile(filepath.Join(root, "docker-compose.yml"))
	if err != nil {
		t.Fatal(err)
	}
	want := "    - |\n" + templateFuncs["indent"].(func(int, string) string)(6, aclInitScript) + "\n    - acl-init\n"
	if !strings.Contains(string(src), want) {
		t.Errorf("docker-compose.yml's x-acl-init does not run the script of aclInitScript:\n%s", want)
	}
}
