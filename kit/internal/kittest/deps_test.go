package kittest_test

import (
	"errors"
	"os/exec"
	"slices"
	"strings"
	"testing"
)

// module is this module's path.
const module = "github.com/grpckit/grpckit"

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
	forbidden(t, "the kit or its tests", importers(t, "-test", module+"/kit/..."), []string{
		module + "/services", // the example services
		module + "/proto",    // their protos
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
	forbidden(t, "kit/balancer must not", importers(t, module+"/kit/balancer"), []string{
		"github.com/hashicorp/consul",
		module + "/kit/registry",
	})
}
