package main

import (
	"bytes"
	"io"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/grpckit/grpckit/internal/repo"
)

func TestResolveKit(t *testing.T) {
	root, err := repo.Root()
	if err != nil {
		t.Fatal(err)
	}
	// A test binary is a development build: the kit is this checkout.
	k, err := resolveKit("")
	if err != nil || k.checkout != root || k.version != "" {
		t.Errorf(`resolveKit("") = %+v, %v; want the checkout %s`, k, err, root)
	}
	for _, dir := range []string{root, filepath.Join(root, "kit")} {
		if k, err := resolveKit(dir); err != nil || k.checkout != root {
			t.Errorf("resolveKit(%s) = %+v, %v; want the checkout %s", dir, k, err, root)
		}
	}
	if k, err := resolveKit("v0.4.0"); err != nil || k.version != "v0.4.0" || k.checkout != "" {
		t.Errorf("resolveKit(v0.4.0) = %+v, %v", k, err)
	}
	for _, bad := range []string{"v1", "v0.4.0+dirty", "vx.y", t.TempDir()} {
		if k, err := resolveKit(bad); err == nil {
			t.Errorf("resolveKit(%s) = %+v, want an error", bad, k)
		}
	}
	for v, want := range map[string]bool{
		"v1.2.3": true, "v0.4.0-rc.1": true, "(devel)": false, "": false, "v1.2.3+dirty": false,
		"v0.0.0-20261206051645-116c25412345": false, "v1.2.4-0.20261206051645-116c25412345": false,
	} {
		if got := released(v); got != want {
			t.Errorf("released(%q) = %v, want %v", v, got, want)
		}
	}
}

// TestPins checks that the versions grpckit writes into new projects are
// the ones this repository pins.
func TestPins(t *testing.T) {
	root, err := repo.Root()
	if err != nil {
		t.Fatal(err)
	}
	makefile, err := os.ReadFile(filepath.Join(root, "Makefile"))
	if err != nil {
		t.Fatal(err)
	}
	for _, tool := range protoTools {
		m := regexp.MustCompile(`(?m)^` + tool.pin + `\s*:?=\s*(\S+)`).FindSubmatch(makefile)
		if m == nil || string(m[1]) != tool.version {
			t.Errorf("Makefile pins %s to %q, grpckit to %s", tool.pin, m, tool.version)
		}
	}
	script, err := os.ReadFile(filepath.Join(root, "scripts", "ensure-consul.sh"))
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Contains(script, []byte(`CONSUL_VERSION="${CONSUL_VERSION:-`+consulVersion+`}"`)) {
		t.Errorf("scripts/ensure-consul.sh does not pin Consul %s", consulVersion)
	}
}

func TestProjectFolder(t *testing.T) {
	for path, want := range map[string]string{
		"example.com/acme/shop": "shop", "example.com/shop/v2": "shop", "shop": "shop", "example.com/my-shop": "my-shop",
	} {
		if got := projectFolder(path); got != want {
			t.Errorf("projectFolder(%s) = %s, want %s", path, got, want)
		}
	}
}

// TestNewRefuses runs new with bad input and checks that each gets a
// clear error and writes nothing.
func TestNewRefuses(t *testing.T) {
	for _, tc := range []struct {
		name    string
		args    []string
		prepare func(t *testing.T, dir string)
		want    string
	}{
		{name: "no path", want: "want one module path"},
		{name: "two paths", args: []string{"example.com/a", "example.com/b"}, want: "want one module path"},
		{name: "invalid path", args: []string{"example.com/a b"}, want: `invalid module path "example.com/a b"`},
		{name: "empty path", args: []string{""}, want: "invalid module path"},
		{name: "trailing slash", args: []string{"example.com/shop/"}, want: "invalid module path"},
		{name: "leading dash", args: []string{"-x"}, want: "flag provided but not defined"},
		{name: "dot element", args: []string{"example.com/../shop"}, want: "invalid module path"},
		{name: "invalid service from the path", args: []string{"example.com/acme/my-shop"}, want: "choose another with -service NAME"},
		{name: "reserved service from the path", args: []string{"example.com/acme/kit"}, want: `invalid service name "kit": it is reserved`},
		{name: "reserved service flag", args: []string{"example.com/acme/shop", "-service", "main"}, want: `invalid service name "main"`},
		{name: "keyword service", args: []string{"example.com/acme/func"}, want: "Go keyword"},
		{name: "bad kit", args: []string{"example.com/acme/shop", "-kit", "v1"}, want: "-kit v1"},
		{name: "kit not a checkout", args: []string{"example.com/acme/shop", "-kit", "/"}, want: "not a grpckit checkout"},
		{
			name: "target not empty", args: []string{"example.com/acme/shop"},
			prepare: func(t *testing.T, dir string) {
				if err := os.MkdirAll(filepath.Join(dir, "shop"), 0o755); err != nil {
					t.Fatal(err)
				}
				if err := os.WriteFile(filepath.Join(dir, "shop", "notes.txt"), []byte("keep me\n"), 0o644); err != nil {
					t.Fatal(err)
				}
			},
			want: "is not empty (it holds notes.txt)",
		},
		{
			name: "target a file", args: []string{"example.com/acme/shop"},
			prepare: func(t *testing.T, dir string) {
				if err := os.WriteFile(filepath.Join(dir, "shop"), []byte("keep me\n"), 0o644); err != nil {
					t.Fatal(err)
				}
			},
			want: "is not a folder",
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			if tc.prepare != nil {
				tc.prepare(t, dir)
			}
			before := tree(t, dir)
			err := runNew(t.Context(), append(tc.args, "-dir", dir), io.Discard, io.Discard)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("error %v, want one containing %q", err, tc.want)
			}
			if diff := cmp.Diff(before, tree(t, dir)); diff != "" {
				t.Errorf("the refused run changed %s (-before +after):\n%s", dir, diff)
			}
		})
	}
}

// TestNewInsideAnotherModule creates a project in the folder of another
// module (and of an empty target folder) and checks that it is a module
// of its own that builds and vets.
func TestNewInsideAnotherModule(t *testing.T) {
	if testing.Short() {
		t.Skip("resolves the new project's dependencies and builds it; skipped with -short")
	}
	outer := t.TempDir()
	if err := os.WriteFile(filepath.Join(outer, "go.mod"), []byte("module example.com/outer\n\ngo 1.26\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Mkdir(filepath.Join(outer, "billing"), 0o755); err != nil { // an empty target is fine
		t.Fatal(err)
	}
	var stdout, stderr bytes.Buffer
	if err := runNew(t.Context(), []string{"corp.example/platform/billing/v2", "-dir", outer}, &stdout, &stderr); err != nil {
		t.Fatalf("new: %v\n%s", err, stderr.String())
	}
	proj := filepath.Join(outer, "billing")
	got := tree(t, proj)
	for _, f := range []string{"go.mod", "go.sum", "Makefile", "README.md", ".gitignore", "buf.yaml", "buf.gen.yaml",
		"docker-compose.yml", "grpckit.yaml", "proto/billing/v1/billing.proto", "proto/billing/v1/billing.pb.go",
		"proto/billing/v1/billing_grpc.pb.go", "services/billing/server.go", "services/billing/server_test.go",
		"services/billing/Dockerfile", "services/billing/cmd/billing/main.go", "services/billing/cmd/billing/config.go"} {
		if _, ok := got[f]; !ok {
			t.Errorf("the project has no %s", f)
		}
	}
	entries, err := os.ReadDir(outer)
	if err != nil {
		t.Fatal(err)
	}
	if len(entries) != 2 {
		t.Errorf("the outer folder holds %d entries, want go.mod and billing (no staging folder left)", len(entries))
	}
	if fi, err := os.Stat(proj); err != nil || fi.Mode().Perm() != 0o755 {
		t.Errorf("the project folder: %v, %v; want mode 0755", fi.Mode(), err)
	}
	if !strings.HasPrefix(got["go.mod"], "module corp.example/platform/billing/v2\n") {
		t.Errorf("go.mod:\n%s", got["go.mod"])
	}
	if !strings.Contains(got["go.mod"], "replace "+kitModule+" => ") {
		t.Errorf("a development build's project does not replace the kit:\n%s", got["go.mod"])
	}
	if !strings.HasPrefix(got["README.md"], "# billing\n\n```sh\nmake dev ") || !strings.Contains(got["README.md"], "\nmake test ") {
		t.Errorf("README.md does not start with make dev and make test:\n%s", got["README.md"])
	}
	if got["grpckit.yaml"] == "" || !strings.HasSuffix(got["grpckit.yaml"], "services:\n  - name: billing\n") {
		t.Errorf("grpckit.yaml:\n%s", got["grpckit.yaml"])
	}
	for _, s := range []string{"cd " + proj, "make test", "make dev"} {
		if !strings.Contains(stdout.String(), s) {
			t.Errorf("summary does not say %q:\n%s", s, stdout.String())
		}
	}
	run(t, proj, []string{"GOWORK=off"}, "go", "build", "./...")
	run(t, proj, []string{"GOWORK=off"}, "go", "vet", "./...")
	// The project is its own module, not part of the outer one.
	out := run(t, proj, []string{"GOWORK=off"}, "go", "list", "-m")
	if strings.TrimSpace(out) != "corp.example/platform/billing/v2" {
		t.Errorf("go list -m in the project: %q", out)
	}
}
