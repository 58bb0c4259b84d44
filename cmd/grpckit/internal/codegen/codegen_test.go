package codegen_test

import (
	"bytes"
	"io/fs"
	"maps"
	"os"
	"os/exec"
	"path"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"testing/fstest"
	"text/template"

	"github.com/google/go-cmp/cmp"

	"github.com/grpckit/grpckit/cmd/grpckit/internal/codegen"
	"github.com/grpckit/grpckit/internal/repo"
)

// The module of the repository's generated code (buf.gen.yaml's option).
const repoModule = "github.com/grpckit/grpckit"

// A protoTree is a proto root: the .proto files Generate compiles, and
// where the code generated from them goes.
type protoTree struct {
	name   string
	src    fs.FS    // the proto root
	files  []string // the files to generate; all of src's .proto files when nil
	module string
}

// TestGenerateCommitted compares Generate's output for the repository's
// protos with the generated code committed beside them.
func TestGenerateCommitted(t *testing.T) {
	root := repoRoot(t)
	for _, dir := range []string{"proto", "kit/internal"} {
		t.Run(dir, func(t *testing.T) {
			src := protoFiles(t, os.DirFS(filepath.Join(root, dir)))
			got, err := codegen.Generate(src, ownProtos(src), repoModule)
			if err != nil {
				t.Fatal(err)
			}
			want := committedCode(t, root, dir)
			if len(want) == 0 {
				t.Fatalf("no generated code committed under %s", dir)
			}
			compareFiles(t, want, got)
		})
	}
}

// TestGenerateMatchesBuf compares Generate's output with what buf generate
// writes with the pinned plugins, for the repository's protos, the proto of
// a service `grpckit new` scaffolds, and testdata/shop, a tree that has
// every kind of method and field, imports, options and editions.
func TestGenerateMatchesBuf(t *testing.T) {
	root := repoRoot(t)
	bin := toolBin(t, root)
	shop := os.DirFS("testdata/shop")
	repoProtos := protoFiles(t, os.DirFS(filepath.Join(root, "proto")))
	trees := []protoTree{
		{name: "repository protos", src: repoProtos, files: ownProtos(repoProtos), module: repoModule},
		{name: "kit test proto", src: protoFiles(t, os.DirFS(filepath.Join(root, "kit/internal"))), module: repoModule},
		scaffoldedProto(t, root, "orders", repoModule),
		scaffoldedProto(t, root, "inventory", "example.com/acme/inventory"),
		{name: "shop", src: shop, module: "example.com/shop"},
		{name: "shop, one file and not its imports", src: shop, files: []string{"shop/v1/shop.proto"}, module: "example.com/shop"},
		{name: "shop, proto2 and editions", src: shop, files: []string{"shop/v1/legacy.proto", "shop/v1/edition.proto"}, module: "example.com/shop/gen"},
	}
	for _, tree := range trees {
		t.Run(tree.name, func(t *testing.T) {
			files := tree.files
			if files == nil {
				files = protoNames(tree.src)
			}
			want := bufGenerate(t, bin, tree.src, files, tree.module)
			got, err := codegen.Generate(tree.src, files, tree.module)
			if err != nil {
				t.Fatal(err)
			}
			compareFiles(t, want, got)
		})
	}
}

// TestVersions checks that the plugin versions Generate writes in its
// headers are the ones the Makefile pins for buf generate.
func TestVersions(t *testing.T) {
	root := repoRoot(t)
	src := fstest.MapFS{"a/v1/a.proto": {Data: []byte(`syntax = "proto3";
package a.v1;
option go_package = "example.com/a/v1;av1";
message M {}
service S { rpc Do(M) returns (M); }
`)}}
	out, err := codegen.Generate(src, []string{"a/v1/a.proto"}, "example.com")
	if err != nil {
		t.Fatal(err)
	}
	for file, header := range map[string]string{
		"a/v1/a.pb.go":      "// \tprotoc-gen-go v" + makefilePin(t, root, "PROTOC_GEN_GO_VERSION") + "\n",
		"a/v1/a_grpc.pb.go": "// - protoc-gen-go-grpc v" + makefilePin(t, root, "PROTOC_GEN_GO_GRPC_VERSION") + "\n",
	} {
		if !bytes.Contains(out[file], []byte(header)) {
			t.Errorf("%s does not contain %q, the version the Makefile pins:\n%s", file, header, out[file])
		}
	}
}

func TestGenerateOnlyListedFiles(t *testing.T) {
	got, err := codegen.Generate(os.DirFS("testdata/shop"), []string{"shop/v1/money.proto", "shop/v1/money.proto"}, "example.com/shop")
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff([]string{"gen/shop/v1/money.pb.go"}, slices.Sorted(maps.Keys(got))); diff != "" {
		t.Errorf("generated files (-want +got):\n%s", diff)
	}
}

func TestGenerateErrors(t *testing.T) {
	const header = "syntax = \"proto3\";\npackage a.v1;\noption go_package = \"example.com/a/v1;av1\";\n"
	tests := []struct {
		name   string
		src    fstest.MapFS
		files  []string
		module string
		want   string // the error, a regular expression
	}{{
		name:  "syntax error",
		src:   mapFS("a/v1/a.proto", header+"message {}\n"),
		files: []string{"a/v1/a.proto"},
		want:  `^codegen: a/v1/a\.proto:4:9: syntax error: unexpected '\{'`,
	}, {
		name:  "every error, in order",
		src:   mapFS("a/v1/a.proto", header+"message A { B b = 1; }\nmessage C { D d = 1; }\n"),
		files: []string{"a/v1/a.proto"},
		want:  `^codegen: a/v1/a\.proto:4:13: field a\.v1\.A\.b: unknown type B\na/v1/a\.proto:5:13: field a\.v1\.C\.d: unknown type D$`,
	}, {
		name:  "missing import",
		src:   mapFS("a/v1/a.proto", header+"import \"b/v1/b.proto\";\n"),
		files: []string{"a/v1/a.proto"},
		want:  `^codegen: a/v1/a\.proto:4:8: open b/v1/b\.proto: file does not exist$`,
	}, {
		name:  "missing file",
		src:   mapFS("a/v1/a.proto", header),
		files: []string{"a/v1/b.proto"},
		want:  `^codegen: .*a/v1/b\.proto.*file does not exist`,
	}, {
		name:  "import cycle",
		src:   mapFS("a/v1/a.proto", header+"import \"a/v1/b.proto\";\n", "a/v1/b.proto", header+"import \"a/v1/a.proto\";\n"),
		files: []string{"a/v1/a.proto"},
		want:  `^codegen: a/v1/\w\.proto:4:8: cycle found in imports`,
	}, {
		name:  "no go_package",
		src:   mapFS("a/v1/a.proto", "syntax = \"proto3\";\npackage a.v1;\n"),
		files: []string{"a/v1/a.proto"},
		want:  `^codegen: protoc-gen-go: unable to determine Go import path for "a/v1/a\.proto"(.|\n)*go_package(.|\n)*information\.$`,
	}, {
		name:   "go_package outside the module",
		src:    mapFS("a/v1/a.proto", header),
		files:  []string{"a/v1/a.proto"},
		module: "example.org",
		want:   `^codegen: protoc-gen-go: example\.com/a/v1/a\.pb\.go: generated file does not match prefix "example\.org"$`,
	}, {
		name:  "two files generate one",
		src:   mapFS("a/v1/a.proto", header+"message M {}\nservice S { rpc Do(M) returns (M); }\n", "a/v1/a_grpc.proto", header+"message N {}\n"),
		files: []string{"a/v1/a.proto", "a/v1/a_grpc.proto"},
		want:  `^codegen: protoc-gen-go-grpc: two files generate a/v1/a_grpc\.pb\.go$`,
	}, {
		name: "no files",
		src:  mapFS("a/v1/a.proto", header),
		want: `^codegen: no files to generate$`,
	}, {
		name:  "path outside the root",
		src:   mapFS("a/v1/a.proto", header),
		files: []string{"../a/v1/a.proto"},
		want:  `^codegen: bad file name "\.\./a/v1/a\.proto"`,
	}, {
		name:  "not a .proto file",
		src:   mapFS("a/v1/a.proto", header),
		files: []string{"a/v1/a.txt"},
		want:  `^codegen: bad file name "a/v1/a\.txt"`,
	}, {
		name:   "no module",
		src:    mapFS("a/v1/a.proto", header),
		files:  []string{"a/v1/a.proto"},
		module: " ",
		want:   `^codegen: bad module path " "$`,
	}, {
		name:   "module with a comma",
		src:    mapFS("a/v1/a.proto", header),
		files:  []string{"a/v1/a.proto"},
		module: "example.com,paths=source_relative",
		want:   `^codegen: bad module path "example\.com,paths=source_relative"$`,
	}}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			module := tt.module
			if module == "" {
				module = "example.com"
			}
			out, err := codegen.Generate(tt.src, tt.files, module)
			if err == nil {
				t.Fatalf("Generate succeeded with %d files, want an error matching %s", len(out), tt.want)
			}
			if !regexp.MustCompile(tt.want).MatchString(err.Error()) {
				t.Errorf("Generate error:\n%v\nwant it to match %s", err, tt.want)
			}
		})
	}
}

func mapFS(nameAndData ...string) fstest.MapFS {
	m := fstest.MapFS{}
	for i := 0; i < len(nameAndData); i += 2 {
		m[nameAndData[i]] = &fstest.MapFile{Data: []byte(nameAndData[i+1])}
	}
	return m
}

// compareFiles fails t when got and want differ in their files or in a
// file's content.
func compareFiles(t *testing.T, want, got map[string][]byte) {
	t.Helper()
	if diff := cmp.Diff(slices.Sorted(maps.Keys(want)), slices.Sorted(maps.Keys(got))); diff != "" {
		t.Errorf("generated files (-want +got):\n%s", diff)
	}
	for _, name := range slices.Sorted(maps.Keys(want)) {
		if g, ok := got[name]; ok && !bytes.Equal(want[name], g) {
			t.Errorf("%s (-want +got):\n%s", name, cmp.Diff(string(want[name]), string(g)))
		}
	}
}

func repoRoot(t testing.TB) string {
	t.Helper()
	root, err := repo.Root()
	if err != nil {
		t.Fatal(err)
	}
	return root
}

// protoFiles returns the .proto files of fsys.
func protoFiles(t *testing.T, fsys fs.FS) fstest.MapFS {
	t.Helper()
	files := fstest.MapFS{}
	err := fs.WalkDir(fsys, ".", func(name string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() || path.Ext(name) != ".proto" {
			return err
		}
		data, err := fs.ReadFile(fsys, name)
		files[name] = &fstest.MapFile{Data: data}
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	return files
}

// protoNames lists the .proto files of fsys.
func protoNames(fsys fs.FS) []string {
	var names []string
	fs.WalkDir(fsys, ".", func(name string, d fs.DirEntry, err error) error {
		if err == nil && !d.IsDir() && path.Ext(name) == ".proto" {
			names = append(names, name)
		}
		return err
	})
	return names
}

// ownProtos is protoNames without the vendored googleapis protos
// (google/api), whose Go code is genproto's: buf.gen.yaml excludes them.
func ownProtos(fsys fs.FS) []string {
	return slices.DeleteFunc(protoNames(fsys), func(name string) bool { return strings.HasPrefix(name, "google/") })
}

// committedCode reads the generated Go files committed under dir, keyed by
// their path relative to root.
func committedCode(t *testing.T, root, dir string) map[string][]byte {
	t.Helper()
	files := make(map[string][]byte)
	err := filepath.WalkDir(filepath.Join(root, dir), func(name string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() || !strings.HasSuffix(name, ".pb.go") {
			return err
		}
		rel, err := filepath.Rel(root, name)
		if err != nil {
			return err
		}
		files[filepath.ToSlash(rel)], err = os.ReadFile(name)
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	return files
}

// scaffoldedProto is the proto `grpckit new name` writes into a module,
// from the CLI's template, with the google/api protos it imports, vendored
// as in the repository (only the scaffolded file is generated).
func scaffoldedProto(t *testing.T, root, name, module string) protoTree {
	t.Helper()
	tmpl, err := template.New("service.proto.tmpl").Option("missingkey=error").
		ParseFiles(filepath.Join(root, "cmd/grpckit/templates/service.proto.tmpl"))
	if err != nil {
		t.Fatal(err)
	}
	title := strings.ToUpper(name[:1]) + name[1:]
	data := struct{ Name, Service, GoPkg, Module string }{name, title + "Service", name + "v1", module}
	var b bytes.Buffer
	if err := tmpl.Execute(&b, data); err != nil {
		t.Fatal(err)
	}
	file := name + "/v1/" + name + ".proto"
	src := mapFS(file, b.String())
	googleAPIs := protoFiles(t, os.DirFS(filepath.Join(root, "proto")))
	for f, data := range googleAPIs {
		if strings.HasPrefix(f, "google/") {
			src[f] = data
		}
	}
	return protoTree{
		name:   "scaffolded " + name + " in " + module,
		src:    src,
		files:  []string{file},
		module: module,
	}
}

// toolBin returns the directory holding the pinned buf, protoc-gen-go and
// protoc-gen-go-grpc that `make tools` builds. It skips t in -short mode
// when they are missing, and fails it otherwise or when one's version is not
// the Makefile's pin.
func toolBin(t *testing.T, root string) string {
	t.Helper()
	bin := filepath.Join(root, ".cache", "bin")
	for tool, pin := range map[string]string{
		"buf":                "BUF_VERSION",
		"protoc-gen-go":      "PROTOC_GEN_GO_VERSION",
		"protoc-gen-go-grpc": "PROTOC_GEN_GO_GRPC_VERSION",
	} {
		exe := filepath.Join(bin, tool)
		if _, err := os.Stat(exe); err != nil {
			if testing.Short() {
				t.Skipf("%s is missing (run make tools)", exe)
			}
			t.Fatalf("%s is missing: run make tools (or go test -short to skip the comparison with buf)", exe)
		}
		out, err := exec.CommandContext(t.Context(), exe, "--version").Output()
		if err != nil {
			t.Fatalf("%s --version: %v", exe, err)
		}
		fields := strings.Fields(string(out))
		if want := makefilePin(t, root, pin); len(fields) == 0 || strings.TrimPrefix(fields[len(fields)-1], "v") != want {
			t.Fatalf("%s is %q, but the Makefile pins %s: rm it and run make tools", exe, strings.TrimSpace(string(out)), want)
		}
	}
	return bin
}

// makefilePin returns the version the Makefile assigns to variable, without
// its leading v.
func makefilePin(t *testing.T, root, variable string) string {
	t.Helper()
	makefile, err := os.ReadFile(filepath.Join(root, "Makefile"))
	if err != nil {
		t.Fatal(err)
	}
	m := regexp.MustCompile(`(?m)^` + variable + `\s*:?=\s*v?(\S+)`).FindSubmatch(makefile)
	if m == nil {
		t.Fatalf("the Makefile does not set %s", variable)
	}
	return string(m[1])
}

// bufGenerate runs buf generate with the plugins in bin on files of src and
// returns the files it writes, keyed by slash path relative to the output
// directory (the Go module root).
func bufGenerate(t *testing.T, bin string, src fs.FS, files []string, module string) map[string][]byte {
	t.Helper()
	dir := t.TempDir()
	if err := os.CopyFS(filepath.Join(dir, "protos"), src); err != nil {
		t.Fatal(err)
	}
	config := map[string]string{
		"buf.yaml": "version: v2\nmodules:\n  - path: protos\n",
		"buf.gen.yaml": "version: v2\nplugins:\n" +
			"  - local: protoc-gen-go\n    out: out\n    opt: module=" + module + "\n" +
			"  - local: protoc-gen-go-grpc\n    out: out\n    opt: module=" + module + "\n",
	}
	for name, data := range config {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(data), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	args := []string{"generate"}
	for _, f := range files {
		args = append(args, "--path", path.Join("protos", f))
	}
	cmd := exec.CommandContext(t.Context(), filepath.Join(bin, "buf"), args...)
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), "PATH="+bin+string(os.PathListSeparator)+os.Getenv("PATH"))
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("buf %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	out := os.DirFS(filepath.Join(dir, "out"))
	generated := make(map[string][]byte)
	err := fs.WalkDir(out, ".", func(name string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		generated[name], err = fs.ReadFile(out, name)
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	return generated
}
