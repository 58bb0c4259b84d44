package kittest_test

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

// repo is the path of the repository's root module (the examples, the CLI,
// the test rigs); the kit is the module repo + "/kit".
const repo = "github.com/grpckit/grpckit"

// importers runs `go list -deps` with args and returns every package it
// lists, by import path, with the packages of the list that import it
// directly. Test variants ("p [q.test]") count under their import path p
// and are named in full as importers.
func importers(t *testing.T, args ...string) map[string][]string {
	t.Helper()
	args = append([]string{"list", "-deps", "-f", "{{.ImportPath}}{{range .Imports}}\t{{.}}{{end}}"}, args...)
	out, err := exec.CommandContext(t.Context(), "go", args...).Output()
	if err != nil {
		var ee *exec.ExitError
		if errors.As(err, &ee) {
			t.Fatalf("go %s: %v\n%s", strings.Join(args, " "), err, ee.Stderr)
		}
		t.Fatalf("go %s: %v", strings.Join(args, " "), err)
	}
	byPath := map[string][]string{}
	for line := range strings.Lines(string(out)) {
		fields := strings.Split(strings.TrimRight(line, "\n"), "\t")
		pkg := fields[0]
		path, _, _ := strings.Cut(pkg, " ")
		if _, ok := byPath[path]; !ok {
			byPath[path] = nil
		}
		for _, imp := range fields[1:] {
			imp, _, _ = strings.Cut(imp, " ")
			byPath[imp] = append(byPath[imp], pkg)
		}
	}
	if len(byPath) == 0 {
		t.Fatalf("go %s listed nothing", strings.Join(args, " "))
	}
	return byPath
}

// forbidden reports, as test errors, every package of deps that is one of
// roots or below one, with its importers.
func forbidden(t *testing.T, what string, deps map[string][]string, roots []string) {
	t.Helper()
	var bad []string
	for path := range deps {
		for _, r := range roots {
			if path == r || strings.HasPrefix(path, r+"/") {
				bad = append(bad, path)
				break
			}
		}
	}
	slices.Sort(bad)
	for _, path := range bad {
		by := slices.Compact(slices.Sorted(slices.Values(deps[path])))
		t.Errorf("%s depend on %s (imported by %s)", what, path, strings.Join(by, ", "))
	}
}

// TestKitImportsNoExamples: the kit and its tests build without the example
// services, their protos and the database drivers of their stores, so a
// business service importing the kit gets none of them, and the kit's
// tests prove the kit on its own test proto.
func TestKitImportsNoExamples(t *testing.T) {
	forbidden(t, "the kit or its tests", importers(t, "-test", repo+"/kit/..."), []string{
		repo + "/services", // the example services
		repo + "/proto",    // their protos
		"modernc.org/sqlite",
		"github.com/mattn/go-sqlite3",
		"github.com/jackc/pgx",
		"github.com/lib/pq",
	})
}

// TestBalancerImportsNoRegistry: kit/balancer is the kit_weighted policy
// only; the consul:/// resolver, the registry it reads and Consul's client
// live elsewhere, so a program that uses the balancer with another resolver
// does not link them.
func TestBalancerImportsNoRegistry(t *testing.T) {
	forbidden(t, "kit/balancer must not", importers(t, "-test", repo+"/kit/balancer"), []string{
		"github.com/hashicorp/consul",
		repo + "/kit/registry",
	})
}

// TestKitModuleStandsAlone: the kit is a module of its own that requires
// nothing of the repository's root module (which would bring the examples'
// dependencies back to every importer) and replaces nothing (a replace
// binds only this repository's builds, never an importer's).
func TestKitModuleStandsAlone(t *testing.T) {
	out, err := exec.CommandContext(t.Context(), "go", "mod", "edit", "-json", "../../go.mod").Output()
	if err != nil {
		t.Fatalf("go mod edit -json ../../go.mod: %v", err)
	}
	var mod struct {
		Module  struct{ Path string }
		Require []struct{ Path string }
		Replace []struct{ Old struct{ Path string } }
	}
	if err := json.Unmarshal(out, &mod); err != nil {
		t.Fatal(err)
	}
	if mod.Module.Path != repo+"/kit" {
		t.Fatalf("../../go.mod is module %q, want %s/kit", mod.Module.Path, repo)
	}
	for _, r := range mod.Require {
		if r.Path == repo || strings.HasPrefix(r.Path, repo+"/") {
			t.Errorf("the kit module requires %s", r.Path)
		}
	}
	for _, r := range mod.Replace {
		t.Errorf("the kit module replaces %s", r.Old.Path)
	}
}

// moduleBudget is the most modules a program importing the kit may get in
// its module graph (`go list -m all`, the program's own module included).
// What the count is made of (README, "Modules"): Consul's API client about
// 50 (its go.mod and serf's list Consul's own tooling), the Prometheus
// client about 23, the OTLP trace exporters about 9, and about 70 for the
// rest: grpc-go (whose go.mod alone lists 34 modules), OpenTelemetry,
// koanf, YAML, JWT, gobreaker. Raise it only for a dependency worth that
// many modules to every importer.
const moduleBudget = 162

// TestImporterModuleGraph: a new module whose program imports the kit's
// main packages (kit, config, registry/consul, resolver, middleware/auth)
// has at most moduleBudget modules in its graph. The test's log gives the
// count; `go test -v -run TestImporterModuleGraph ./kit/internal/kittest`
// prints it.
func TestImporterModuleGraph(t *testing.T) {
	if testing.Short() {
		t.Skip("resolves a new module's dependencies (from the module cache or the proxy); skipped with -short")
	}
	kitDir, err := filepath.Abs("../..")
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	files := map[string]string{
		"go.mod": fmt.Sprintf("module example.com/importer\n\ngo 1.26\n\nrequire %s/kit v0.0.0\n\nreplace %s/kit => %s\n",
			repo, repo, kitDir),
		"main.go": `package main

import (
	_ "` + repo + `/kit"
	_ "` + repo + `/kit/config"
	_ "` + repo + `/kit/middleware/auth"
	_ "` + repo + `/kit/registry/consul"
	_ "` + repo + `/kit/resolver"
)

func main() {}
`,
	}
	for name, text := range files {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(text), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	goCmd := func(args ...string) string {
		t.Helper()
		cmd := exec.CommandContext(t.Context(), "go", args...)
		cmd.Dir = dir
		cmd.Env = append(os.Environ(), "GOWORK=off", "GOFLAGS=-mod=mod")
		out, err := cmd.Output()
		if err != nil {
			var ee *exec.ExitError
			if errors.As(err, &ee) {
				t.Fatalf("go %s: %v\n%s", strings.Join(args, " "), err, ee.Stderr)
			}
			t.Fatalf("go %s: %v", strings.Join(args, " "), err)
		}
		return string(out)
	}
	goCmd("mod", "tidy")
	modules := strings.Fields(goCmd("list", "-m", "-f", "{{.Path}}", "all"))
	t.Logf("a module importing the kit has %d modules in its graph (budget %d)", len(modules), moduleBudget)
	if len(modules) > moduleBudget {
		t.Errorf("%d modules, over the budget of %d:\n%s", len(modules), moduleBudget, strings.Join(modules, "\n"))
	}
	for _, m := range modules {
		if m == repo || strings.HasPrefix(m, "modernc.org/") || strings.HasPrefix(m, "github.com/jackc/") ||
			strings.HasPrefix(m, "github.com/compose-spec/") {
			t.Errorf("the importer's graph holds %s, a dependency of the examples or the test rigs", m)
		}
	}
}
