package main

import (
	"bytes"
	"os"
	"path"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"golang.org/x/mod/modfile"

	"github.com/grpckit/grpckit/internal/repo"
)

// TestGoogleAPIsAreTheRepositorys holds the protos the CLI vendors into
// projects equal to this repository's proto/google/api.
func TestGoogleAPIsAreTheRepositorys(t *testing.T) {
	root, err := repo.Root()
	if err != nil {
		t.Fatal(err)
	}
	entries, err := os.ReadDir(filepath.Join(root, "proto", "google", "api"))
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]string{}
	for _, e := range entries {
		b, err := os.ReadFile(filepath.Join(root, "proto", "google", "api", e.Name()))
		if err != nil {
			t.Fatal(err)
		}
		want[path.Join("google", "api", e.Name())] = string(b)
	}
	got := map[string]string{}
	for name, b := range googleAPIFiles() {
		got[name] = string(b)
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("cmd/grpckit/googleapis differs from proto/google/api (-repository +embedded):\n%s", diff)
	}
}

// olderProject turns a fakeProject into one an earlier grpckit made: buf
// files as it wrote them (bufYAML replaces buf.yaml when set) and no
// requirement of googleAPIModule.
func olderProject(t *testing.T, bufYAML string) string {
	t.Helper()
	const module = "example.com/acme/shop"
	root := fakeProject(t, module)
	data := projectData{Module: module}
	for _, f := range bufConfigs {
		b, err := render(path.Join("project", "pre-annotations", f.tmpl), data)
		if err != nil {
			t.Fatal(err)
		}
		if f.path == "buf.yaml" && bufYAML != "" {
			b = []byte(bufYAML)
		}
		if err := os.WriteFile(filepath.Join(root, f.path), b, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	gomod := "module " + module + "\n\ngo 1.26\n"
	if err := os.WriteFile(filepath.Join(root, "go.mod"), []byte(gomod), 0o644); err != nil {
		t.Fatal(err)
	}
	return root
}

// TestAddToAnOlderProject adds a service to a project made before grpckit
// vendored the google.api.http annotations: add vendors them, upgrades the
// buf files it wrote (and only those; a changed one is left to the
// developer, with what to add), and makes go.mod require googleAPIModule.
func TestAddToAnOlderProject(t *testing.T) {
	if testing.Short() {
		t.Skip("runs go get; skipped with -short")
	}
	t.Run("as grpckit wrote it", func(t *testing.T) {
		root := olderProject(t, "")
		var stdout, stderr bytes.Buffer
		if err := runAdd(t.Context(), []string{"demo", "-dir", root}, &stdout, &stderr); err != nil {
			t.Fatalf("add: %v\n%s", err, stderr.String())
		}
		got := tree(t, root)
		for name, b := range googleAPIFiles() {
			if got["proto/"+name] != string(b) {
				t.Errorf("proto/%s is not the vendored copy", name)
			}
		}
		data := projectData{Module: "example.com/acme/shop"}
		for _, f := range bufConfigs {
			want, err := render(path.Join("project", f.tmpl), data)
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(string(want), got[f.path]); diff != "" {
				t.Errorf("%s is not what grpckit new writes now (-want +got):\n%s", f.path, diff)
			}
		}
		mf, err := modfile.ParseLax("go.mod", []byte(got["go.mod"]), nil)
		if err != nil {
			t.Fatal(err)
		}
		if !slices.ContainsFunc(mf.Require, func(r *modfile.Require) bool { return r.Mod.Path == googleAPIModule && r.Mod.Version != "" }) {
			t.Errorf("go.mod does not require %s:\n%s", googleAPIModule, got["go.mod"])
		}
		if !strings.Contains(got["go.sum"], googleAPIModule+" ") {
			t.Errorf("go.sum has no %s:\n%s", googleAPIModule, got["go.sum"])
		}
		for _, s := range []string{"proto/google/api/annotations.proto", "buf.gen.yaml", "go.mod", "requires " + googleAPIModule} {
			if !strings.Contains(stdout.String(), s) {
				t.Errorf("summary does not mention %q:\n%s", s, stdout.String())
			}
		}
		if strings.Contains(stdout.String(), "by hand") {
			t.Errorf("summary asks for a change by hand:\n%s", stdout.String())
		}
	})
	t.Run("buf.yaml changed by its developer", func(t *testing.T) {
		const mine = "version: v2\nmodules:\n  - path: proto\n# mine\n"
		root := olderProject(t, mine)
		var stdout bytes.Buffer
		if err := runAdd(t.Context(), []string{"demo", "-dir", root}, &stdout, os.Stderr); err != nil {
			t.Fatal(err)
		}
		if b, err := os.ReadFile(filepath.Join(root, "buf.yaml")); err != nil || string(b) != mine {
			t.Errorf("buf.yaml is now %q (%v), want it left as it was", b, err)
		}
		if !strings.Contains(stdout.String(), "to do by hand, buf.yaml: leave proto/google alone") {
			t.Errorf("summary does not say what buf.yaml needs:\n%s", stdout.String())
		}
	})
}
