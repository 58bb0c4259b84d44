package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/compose-spec/compose-go/v2/cli"
	"github.com/google/go-cmp/cmp"
	"github.com/hashicorp/consul/api"
	"go.uber.org/goleak"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/protobuf/types/known/wrapperspb"

	"github.com/grpckit/grpckit/internal/repo"
	"github.com/grpckit/grpckit/kit/registry/consul/consultest"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

func TestValidateName(t *testing.T) {
	for _, tc := range []struct {
		name string
		want string // substring of the error; "" for a valid name
	}{
		{"demo", ""},
		{"orders2", ""},
		{"ab", ""},
		{"a23456789012345678901234567890", ""},
		{"a", "2 to 30"},
		{"a234567890123456789012345678901", "2 to 30"},
		{"", "2 to 30"},
		{"Demo", "lowercase"},
		{"2fa", "starting with a letter"},
		{"my-svc", "lowercase letters and digits"},
		{"my_svc", "lowercase letters and digits"},
		{"dém", "lowercase letters and digits"},
		{"func", "Go keyword"},
		{"go", "Go keyword"},
		{"type", "Go keyword"},
		{"v1", "API version"},
		{"v22", "API version"},
		{"greeter", "reserved (an example service"},
		{"user", "reserved (an example service"},
		{"gateway", "reserved (an example service"},
		{"grpckit", "reserved"},
		{"kit", "reserved"},
		{"internal", "reserved"},
		{"proto", "reserved"},
		{"consul", "reserved"},
		{"server", "standard configuration section"},
		{"ratelimit", "standard configuration section"},
		{"config", "reserved"},
		{"service", "reserved"},
		{"main", "reserved"},
		{"fmt", "reserved"},  // the generated config.go imports fmt
		{"init", "reserved"}, // no package may be imported as init
		{"status", "reserved"},
		{"string", "predeclared"},
		{"len", "predeclared"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := validateName(tc.name)
			switch {
			case tc.want == "" && err != nil:
				t.Errorf("validateName(%q) = %v, want nil", tc.name, err)
			case tc.want != "" && (err == nil || !strings.Contains(err.Error(), tc.want)):
				t.Errorf("validateName(%q) = %v, want an error containing %q", tc.name, err, tc.want)
			}
		})
	}
}

func TestAddComposeService(t *testing.T) {
	d := newScaffoldData(grpckitModule, "demo")
	for _, tc := range []struct {
		file     string
		crlf     bool
		wantNext string // first line after the inserted entry
		wantPort int
		wantErr  string
	}{
		{file: "anchors.yml", wantNext: "volumes:", wantPort: 9003},
		{file: "plain.yml", wantNext: "# the volumes of the stack", wantPort: 9005},
		{file: "plain.yml", crlf: true, wantNext: "# the volumes of the stack", wantPort: 9005},
		{file: "last.yml", wantNext: "", wantPort: 9001},
		{file: "empty.yml", wantErr: "does not load before the change: services must be a mapping"},
		{file: "flow.yml", wantErr: "no top-level `services:` block mapping"},
		{file: "exists.yml", wantErr: `already has a service "demo"`},
	} {
		t.Run(fmt.Sprintf("%s/crlf=%v", tc.file, tc.crlf), func(t *testing.T) {
			src, err := os.ReadFile(filepath.Join("testdata", "compose", tc.file))
			if err != nil {
				t.Fatal(err)
			}
			if tc.crlf {
				src = bytes.ReplaceAll(src, []byte("\n"), []byte("\r\n"))
			}
			root := t.TempDir()
			out, port, err := addComposeService(t.Context(), root, filepath.Join(root, "docker-compose.yml"), src, d)
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("error %v, want one containing %q", err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if port != tc.wantPort {
				t.Errorf("port %d, want %d", port, tc.wantPort)
			}
			nl := "\n"
			if tc.crlf {
				nl = "\r\n"
			}
			// The change is one inserted block: a blank line, then the entry.
			srcLines := strings.SplitAfter(strings.TrimSuffix(string(src), nl)+nl, nl)
			outLines := strings.SplitAfter(string(out), nl)
			i := 0
			for i < len(srcLines) && i < len(outLines) && srcLines[i] == outLines[i] {
				i++
			}
			k := len(outLines) - len(srcLines)
			if k <= 0 || !slices.Equal(outLines[i+k:], srcLines[i:]) {
				t.Fatalf("not a pure insertion:\n%s", out)
			}
			block := outLines[i : i+k]
			// The entry is separated by a blank line, which shows as the first or
			// the last line of the block depending on what follows it. last.yml
			// instead gets the newline its last line lacked.
			if tc.file != "last.yml" && block[0] != nl && block[len(block)-1] != nl {
				t.Errorf("inserted block %q has no blank line before the entry", block)
			}
			if !slices.ContainsFunc(block, func(l string) bool { return strings.TrimSpace(l) == "demo:" }) {
				t.Errorf("inserted block has no demo: key:\n%s", strings.Join(block, ""))
			}
			next := ""
			if i+k < len(outLines) {
				next = strings.TrimRight(outLines[i+k], "\r\n")
				for j := i + k; next == "" && j+1 < len(outLines); j++ {
					next = strings.TrimRight(outLines[j+1], "\r\n")
				}
			}
			if next != tc.wantNext {
				t.Errorf("the entry is followed by %q, want %q:\n%s", next, tc.wantNext, out)
			}
		})
	}
}

// fakeBuf is a buf stand-in: lint passes, generate writes placeholder files
// for the service in proto/NAME (its third argument).
const fakeBuf = `#!/bin/sh
case "$1" in
lint) exit 0 ;;
generate)
	name=$(basename "$3")
	echo "package ${name}v1" > "$3/v1/${name}.pb.go"
	echo "package ${name}v1" > "$3/v1/${name}_grpc.pb.go"
	;;
esac
`

// fakeRoot returns a directory that looks like the grpckit module root to
// `grpckit new`, with buf stand-in bufScript and the anchors.yml compose
// file.
func fakeRoot(t *testing.T, bufScript string) string {
	t.Helper()
	if runtime.GOOS == "windows" {
		t.Skip("the fake tools are shell scripts")
	}
	root := t.TempDir()
	compose, err := os.ReadFile(filepath.Join("testdata", "compose", "anchors.yml"))
	if err != nil {
		t.Fatal(err)
	}
	files := map[string]string{
		"go.mod":                        "module " + grpckitModule + " // the module\n\ngo 1.26\n",
		"buf.yaml":                      "version: v2\n",
		"buf.gen.yaml":                  "version: v2\n",
		"docker-compose.yml":            string(compose),
		".cache/bin/buf":                bufScript,
		".cache/bin/protoc-gen-go":      "#!/bin/sh\n",
		".cache/bin/protoc-gen-go-grpc": "#!/bin/sh\n",
		"services/other/doc.go":         "package other\n",
	}
	for name, content := range files {
		p := filepath.Join(root, filepath.FromSlash(name))
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(content), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	return root
}

// tree returns every file (its content) and directory ("dir") under root,
// but for root/.cache (the tools).
func tree(t *testing.T, root string) map[string]string {
	t.Helper()
	m := map[string]string{}
	err := filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil || p == root {
			return err
		}
		rel, _ := filepath.Rel(root, p)
		if rel == ".cache" {
			return filepath.SkipDir
		}
		if d.IsDir() {
			m[filepath.ToSlash(rel)] = "dir"
			return nil
		}
		b, err := os.ReadFile(p)
		m[filepath.ToSlash(rel)] = string(b)
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	return m
}

// checkChanges checks that after is before with the demo service added
// (newDirs are the directories the service's own ones were created in)
// and docker-compose.yml changed.
func checkChanges(t *testing.T, before, after map[string]string, newDirs ...string) {
	t.Helper()
	var added, changed, removed []string
	for p, c := range after {
		switch old, ok := before[p]; {
		case !ok:
			added = append(added, p)
		case old != c:
			changed = append(changed, p)
		}
	}
	for p := range before {
		if _, ok := after[p]; !ok {
			removed = append(removed, p)
		}
	}
	slices.Sort(added)
	want := append(newDirs, "proto/demo", "proto/demo/v1", "services/demo", "services/demo/cmd", "services/demo/cmd/demo")
	for _, f := range serviceFiles("demo") {
		want = append(want, f.path)
	}
	slices.Sort(want)
	if diff := cmp.Diff(want, added); diff != "" {
		t.Errorf("added (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff([]string{"docker-compose.yml"}, changed); diff != "" {
		t.Errorf("changed (-want +got):\n%s", diff)
	}
	if len(removed) > 0 {
		t.Errorf("removed %v", removed)
	}
}

func TestNewWithFakeTools(t *testing.T) {
	root := fakeRoot(t, fakeBuf)
	before := tree(t, root)
	var stdout, stderr bytes.Buffer
	if err := runNew(t.Context(), []string{"demo", "--dir", root}, &stdout, &stderr); err != nil {
		t.Fatalf("new: %v\n%s", err, stderr.String())
	}
	after := tree(t, root)
	checkChanges(t, before, after, "proto")
	if !strings.Contains(after["docker-compose.yml"], "\n  demo:\n    <<: *service\n") {
		t.Errorf("docker-compose.yml has no demo service merging *service:\n%s", after["docker-compose.yml"])
	}
	for _, s := range []string{
		"services/demo/cmd/demo/main.go",
		"go run ./services/demo/cmd/demo -registry.address 127.0.0.1:8500",
		"go test -race ./services/demo/...",
		"127.0.0.1:9003",
	} {
		if !strings.Contains(stdout.String(), s) {
			t.Errorf("summary does not mention %q:\n%s", s, stdout.String())
		}
	}
	// A second run finds everything in place and writes nothing.
	before = tree(t, root)
	err := runNew(t.Context(), []string{"-dir", root, "demo"}, io.Discard, io.Discard)
	if err == nil || !strings.Contains(err.Error(), "already exist") {
		t.Errorf("second run: %v, want an already exists error", err)
	}
	if diff := cmp.Diff(before, tree(t, root)); diff != "" {
		t.Errorf("second run changed the tree (-before +after):\n%s", diff)
	}
}

// TestNewBuildsMissingTools runs new where .cache/bin is empty, with a make
// stand-in that installs the fake tools.
func TestNewBuildsMissingTools(t *testing.T) {
	root := fakeRoot(t, fakeBuf)
	if err := os.RemoveAll(filepath.Join(root, ".cache")); err != nil {
		t.Fatal(err)
	}
	bin := t.TempDir()
	script := "#!/bin/sh\n" + `[ "$1" = -C ] && [ "$3" = tools ] || exit 2
mkdir -p "$2/.cache/bin" && cd "$2/.cache/bin" || exit 1
printf '#!/bin/sh\n' > protoc-gen-go
printf '#!/bin/sh\n' > protoc-gen-go-grpc
cat > buf <<'EOF'
` + fakeBuf + `EOF
chmod +x buf protoc-gen-go protoc-gen-go-grpc
echo "fake make: built the tools"
`
	if err := os.WriteFile(filepath.Join(bin, "make"), []byte(script), 0o755); err != nil {
		t.Fatal(err)
	}
	t.Setenv("PATH", bin+string(os.PathListSeparator)+os.Getenv("PATH"))
	var stderr bytes.Buffer
	if err := runNew(t.Context(), []string{"demo", "-dir", root}, io.Discard, &stderr); err != nil {
		t.Fatalf("new: %v\n%s", err, stderr.String())
	}
	for _, want := range []string{"building the pinned proto tools with `make tools`", "fake make: built the tools"} {
		if !strings.Contains(stderr.String(), want) {
			t.Errorf("progress does not say %q:\n%s", want, stderr.String())
		}
	}
	if _, err := os.Stat(filepath.Join(root, "proto", "demo", "v1", "demo_grpc.pb.go")); err != nil {
		t.Errorf("generated code: %v", err)
	}
}

func TestNewRefusesToOverwrite(t *testing.T) {
	type setup struct {
		name    string
		prepare func(t *testing.T, root string)
		want    string
	}
	var cases []setup
	writeFile := func(rel string) func(t *testing.T, root string) {
		return func(t *testing.T, root string) {
			p := filepath.Join(root, filepath.FromSlash(rel))
			if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(p, []byte("keep me\n"), 0o644); err != nil {
				t.Fatal(err)
			}
		}
	}
	for _, f := range serviceFiles("demo") {
		// The error names the service's directory the file is in.
		dir := strings.Join(strings.SplitN(f.path, "/", 3)[:2], "/")
		cases = append(cases, setup{f.path, writeFile(f.path), dir + " already exists"})
	}
	for _, d := range serviceDirs("demo") {
		cases = append(cases, setup{d + "/", func(t *testing.T, root string) {
			if err := os.MkdirAll(filepath.Join(root, d), 0o755); err != nil {
				t.Fatal(err)
			}
		}, d + " already exists"})
	}
	cases = append(cases,
		setup{"compose service", func(t *testing.T, root string) {
			p := filepath.Join(root, "docker-compose.yml")
			b, err := os.ReadFile(p)
			if err != nil {
				t.Fatal(err)
			}
			b = bytes.Replace(b, []byte("\nvolumes:\n"), []byte("  demo:\n    image: x/demo\n\nvolumes:\n"), 1)
			if err := os.WriteFile(p, b, 0o644); err != nil {
				t.Fatal(err)
			}
		}, `already has a service "demo"`},
		setup{"other module", func(t *testing.T, root string) {
			if err := os.WriteFile(filepath.Join(root, "go.mod"), []byte("module example.com/other\n"), 0o644); err != nil {
				t.Fatal(err)
			}
		}, "is the root of module example.com/other, not of " + grpckitModule},
		setup{"no module line", writeFile("go.mod"), "has no module line"},
	)
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			root := fakeRoot(t, fakeBuf)
			tc.prepare(t, root)
			before := tree(t, root)
			err := runNew(t.Context(), []string{"demo", "-dir", root}, io.Discard, io.Discard)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("error %v, want one containing %q", err, tc.want)
			}
			if diff := cmp.Diff(before, tree(t, root)); diff != "" {
				t.Errorf("the refused run changed the tree (-before +after):\n%s", diff)
			}
		})
	}
	t.Run("not a module root", func(t *testing.T) {
		root := t.TempDir()
		err := runNew(t.Context(), []string{"demo", "-dir", root}, io.Discard, io.Discard)
		if err == nil || !strings.Contains(err.Error(), "not a Go module root") {
			t.Fatalf("error %v, want not a Go module root", err)
		}
		if diff := cmp.Diff(map[string]string{}, tree(t, root)); diff != "" {
			t.Errorf("wrote (-want +got):\n%s", diff)
		}
	})
}

// TestNewRollsBack fails the steps after the first write and checks that
// the run leaves nothing behind.
func TestNewRollsBack(t *testing.T) {
	for _, tc := range []struct {
		name string
		buf  string
		want string
		// wantCompose edits the expected docker-compose.yml, for a buf that
		// changes it behind the command's back.
		wantCompose func(string) string
	}{
		{name: "lint fails", buf: "#!/bin/sh\necho 'demo.proto:1:1: bad' >&2\nexit 1\n", want: "buf lint --path proto/demo"},
		{
			name: "generate fails half way",
			buf: `#!/bin/sh
[ "$1" = lint ] && exit 0
echo partial > "$3/v1/demo.pb.go"
echo 'plugin crashed' >&2
exit 1
`,
			want: "plugin crashed",
		},
		{name: "generate writes nothing", buf: "#!/bin/sh\nexit 0\n", want: "buf generate did not write proto/demo/v1/demo.pb.go"},
		{
			name:        "compose changed meanwhile",
			buf:         fakeBuf + "echo '# edited' >> docker-compose.yml\n",
			want:        "docker-compose.yml changed while grpckit new ran",
			wantCompose: func(s string) string { return s + "# edited\n" },
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			root := fakeRoot(t, tc.buf)
			want := tree(t, root)
			if tc.wantCompose != nil {
				want["docker-compose.yml"] = tc.wantCompose(want["docker-compose.yml"])
			}
			err := runNew(t.Context(), []string{"demo", "-dir", root}, io.Discard, io.Discard)
			if err == nil || !strings.Contains(err.Error(), tc.want) || !strings.Contains(err.Error(), "nothing was left behind") {
				t.Fatalf("error %v, want one containing %q and saying nothing was left behind", err, tc.want)
			}
			if diff := cmp.Diff(want, tree(t, root)); diff != "" {
				t.Errorf("the failed run left (-want +got):\n%s", diff)
			}
		})
	}
}

func TestNewUsage(t *testing.T) {
	for _, tc := range []struct {
		args []string
		want string // substring of the error; "" for none
	}{
		{args: nil, want: "want one service name, got 0"},
		{args: []string{"a1", "b1"}, want: "want one service name, got 2"},
		{args: []string{"-nope"}, want: "flag provided but not defined"},
		{args: []string{"Bad", "-dir", "."}, want: "invalid service name"},
		{args: []string{"-h"}},
	} {
		var stderr bytes.Buffer
		err := runNew(t.Context(), tc.args, io.Discard, &stderr)
		switch {
		case tc.want == "" && err != nil:
			t.Errorf("new %q = %v, want nil", tc.args, err)
		case tc.want != "" && (err == nil || !strings.Contains(err.Error(), tc.want)):
			t.Errorf("new %q = %v, want an error containing %q", tc.args, err, tc.want)
		}
		if tc.want == "" && !strings.Contains(stderr.String(), "usage: grpckit new <name>") {
			t.Errorf("new %q printed no usage:\n%s", tc.args, stderr.String())
		}
	}
}

// TestNewEndToEnd scaffolds demo in a copy of the repository, builds, vets
// and tests it there, checks the compose file, and runs the service against
// a real Consul agent.
func TestNewEndToEnd(t *testing.T) {
	if testing.Short() {
		t.Skip("copies the repository, builds it and runs the scaffolded service against Consul; skipped with -short")
	}
	root, err := repo.Root()
	if err != nil {
		t.Fatal(err)
	}
	if m, err := readModule(root); err != nil || m != grpckitModule {
		t.Fatalf("%s: module %q, %v; want the %s module", root, m, err, grpckitModule)
	}
	copyDir := t.TempDir()
	copyRepo(t, root, copyDir)
	before := tree(t, copyDir)

	var stdout, stderr bytes.Buffer
	if err := runNew(t.Context(), []string{"demo", "--dir", copyDir}, &stdout, &stderr); err != nil {
		t.Fatalf("grpckit new demo: %v\n%s", err, stderr.String())
	}
	t.Logf("grpckit new demo:\n%s", stdout.String())
	checkChanges(t, before, tree(t, copyDir))

	goCmd(t, copyDir, "build", "./...")
	// Without the workspace, the root module finds the kit through its replace.
	goCmdEnv(t, copyDir, "GOWORK=off", "build", "-o", os.DevNull, "./services/demo/cmd/demo")
	goCmd(t, copyDir, "vet", "./services/demo/...")
	goCmd(t, copyDir, "test", "-race", "-count=1", "./services/demo/...")
	bin := filepath.Join(t.TempDir(), "demo")
	goCmd(t, copyDir, "build", "-o", bin, "./services/demo/cmd/demo")

	checkCopiedCompose(t, root, copyDir, bin)
	runDemoAgainstConsul(t, bin)
}

// copyRepo copies the files of root that git knows or would add (tracked,
// and untracked but not ignored: the working tree as it is), plus the
// proto tools in .cache/bin, to dst.
func copyRepo(t *testing.T, root, dst string) {
	t.Helper()
	out, err := exec.Command("git", "-C", root, "ls-files", "-z", "--cached", "--others", "--exclude-standard").Output()
	if err != nil {
		t.Fatalf("git ls-files: %v", err)
	}
	files := strings.Split(strings.TrimRight(string(out), "\x00"), "\x00")
	for _, tool := range protoTools {
		files = append(files, filepath.ToSlash(filepath.Join(".cache", "bin", tool.bin)))
	}
	n := 0
	for _, f := range files {
		src := filepath.Join(root, filepath.FromSlash(f))
		fi, err := os.Lstat(src)
		if errors.Is(err, fs.ErrNotExist) {
			continue // deleted in the working tree, or a tool make tools will build
		}
		if err != nil {
			t.Fatal(err)
		}
		if !fi.Mode().IsRegular() {
			continue
		}
		b, err := os.ReadFile(src)
		if err != nil {
			t.Fatal(err)
		}
		p := filepath.Join(dst, filepath.FromSlash(f))
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, b, fi.Mode().Perm()); err != nil {
			t.Fatal(err)
		}
		n++
	}
	t.Logf("copied %d files of %s to %s", n, root, dst)
}

// goCmd runs the go command in dir, in the workspace of dir's go.work (as
// a developer in that checkout does), and fails the test with its output if
// it fails.
func goCmd(t *testing.T, dir string, args ...string) {
	t.Helper()
	goCmdEnv(t, dir, "GOWORK="+filepath.Join(dir, "go.work"), args...)
}

// goCmdEnv is goCmd with env (NAME=value) set for the go command instead.
func goCmdEnv(t *testing.T, dir, env string, args ...string) {
	t.Helper()
	start := time.Now()
	cmd := exec.CommandContext(t.Context(), "go", args...)
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), env)
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("go %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	t.Logf("go %s: %v", strings.Join(args, " "), time.Since(start).Round(time.Millisecond))
}

var (
	goBuildRe    = regexp.MustCompile(`go build .*-o /out/(\S+) (\./\S+)`)
	entrypointRe = regexp.MustCompile(`(?m)^ENTRYPOINT \["/([^"]+)"\]`)
	envRe        = regexp.MustCompile(`env ([A-Z0-9_, ]+)\)`)
)

// checkCopiedCompose checks the copy's docker-compose.yml the way
// internal/e2e's compose test does: it loads, has the services of the
// original plus demo, and demo's image runs the binary its environment
// and health check are made for.
func checkCopiedCompose(t *testing.T, root, copyDir, bin string) {
	t.Helper()
	load := func(dir string) []string {
		opts, err := cli.NewProjectOptions([]string{filepath.Join(dir, "docker-compose.yml")},
			cli.WithWorkingDirectory(dir), cli.WithName("grpckit"))
		if err != nil {
			t.Fatal(err)
		}
		p, err := opts.LoadProject(t.Context())
		if err != nil {
			t.Fatalf("%s/docker-compose.yml does not load: %v", dir, err)
		}
		if dir != copyDir {
			return p.ServiceNames()
		}
		svc, ok := p.Services["demo"]
		if !ok {
			t.Fatalf("no demo service in %v", p.ServiceNames())
		}
		if svc.Build == nil {
			t.Fatal("demo has no build section")
		}
		df, err := os.ReadFile(filepath.Join(svc.Build.Context, svc.Build.Dockerfile))
		if err != nil {
			t.Fatal(err)
		}
		m, e := goBuildRe.FindStringSubmatch(string(df)), entrypointRe.FindStringSubmatch(string(df))
		if m == nil || e == nil || m[1] != "demo" || m[2] != "./services/demo/cmd/demo" || e[1] != "demo" {
			t.Errorf("%s: build line %q, entrypoint %q; want demo built from ./services/demo/cmd/demo and run", svc.Build.Dockerfile, m, e)
		}
		if hc := svc.HealthCheck; hc == nil || len(hc.Test) < 4 || hc.Test[1] != "/demo" || hc.Test[2] != "-probe" {
			t.Errorf("demo health check %v, want /demo -probe URL", svc.HealthCheck)
		}
		if dep, ok := svc.DependsOn["consul"]; !ok || dep.Condition != "service_healthy" {
			t.Errorf("demo depends on %v, want consul healthy", svc.DependsOn)
		}
		help, _ := exec.Command(bin, "-h").CombinedOutput() // -h exits 0 or 2 depending on the flag package
		var names []string
		for _, m := range envRe.FindAllStringSubmatch(string(help), -1) {
			for n := range strings.SplitSeq(m[1], ",") {
				names = append(names, strings.TrimSpace(n))
			}
		}
		for key := range svc.Environment {
			// OTEL_* are the OpenTelemetry SDK's own variables.
			if !slices.Contains(names, key) && !strings.HasPrefix(key, "OTEL_") {
				t.Errorf("demo sets %s, which the binary does not read (it reads %v)", key, names)
			}
		}
		return p.ServiceNames()
	}
	want := append(load(root), "demo")
	slices.Sort(want)
	got := load(copyDir)
	slices.Sort(got)
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("services of the copy (-want +got):\n%s", diff)
	}
}

// lockedBuffer is a bytes.Buffer safe for concurrent use.
type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer // guarded by mu
}

func (b *lockedBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.Write(p)
}

func (b *lockedBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.String()
}

// runDemoAgainstConsul starts bin against a Consul agent, waits until it
// is a passing demo instance, calls Echo on it, stops it with SIGTERM and
// waits until it left Consul and exited cleanly.
func runDemoAgainstConsul(t *testing.T, bin string) {
	t.Helper()
	agent := consultest.Start(t)
	c := consultest.Client(t, agent)
	var logs lockedBuffer
	cmd := exec.Command(bin, "-registry.address", agent.HTTPAddr(),
		"-server.listen", "127.0.0.1:0", "-server.admin", "127.0.0.1:0", "-server.drain", "100ms")
	cmd.Stdout, cmd.Stderr = &logs, &logs
	setProcAttr(cmd)
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan struct{})
	var waitErr error
	go func() {
		waitErr = cmd.Wait()
		close(exited)
	}()
	t.Cleanup(func() {
		select {
		case <-exited:
		default:
			cmd.Process.Kill()
			<-exited
		}
		if t.Failed() {
			t.Logf("demo's log:\n%s", logs.String())
		}
	})

	// poll calls cond every 50ms until it is true, the process exits or the
	// deadline passes.
	poll := func(what string, exitOK bool, cond func() bool) {
		t.Helper()
		deadline := time.After(60 * time.Second)
		tick := time.NewTicker(50 * time.Millisecond)
		defer tick.Stop()
		exit := exited
		for !cond() {
			select {
			case <-exit:
				if !exitOK {
					t.Fatalf("demo exited (%v) while waiting until %s", waitErr, what)
				}
				exit = nil
			case <-deadline:
				t.Fatalf("timed out waiting until %s", what)
			case <-tick.C:
			}
		}
	}
	var entries []*api.ServiceEntry
	poll("a passing demo instance is in Consul", false, func() bool {
		var err error
		entries, _, err = c.Health().Service("demo", "", true, (&api.QueryOptions{}).WithContext(t.Context()))
		return err == nil && len(entries) == 1
	})
	addr := net.JoinHostPort(entries[0].Service.Address, strconv.Itoa(entries[0].Service.Port))
	t.Logf("demo registered as %s at %s", entries[0].Service.ID, addr)

	// Echo's request and response start with the message as field 1, as
	// StringValue does: the call needs no generated code here.
	cc, err := grpc.NewClient("passthrough:///"+addr, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
	var reply wrapperspb.StringValue
	err = cc.Invoke(ctx, "/demo.v1.DemoService/Echo", wrapperspb.String("hello"), &reply)
	cancel()
	cc.Close()
	if err != nil || reply.GetValue() != "hello" {
		t.Errorf("Echo(hello) = %q, %v; want hello", reply.GetValue(), err)
	}

	if err := cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	poll("demo left Consul", true, func() bool {
		entries, _, err := c.Health().Service("demo", "", false, (&api.QueryOptions{}).WithContext(t.Context()))
		return err == nil && len(entries) == 0
	})
	select {
	case <-exited:
	case <-time.After(30 * time.Second):
		t.Fatal("demo did not exit within 30s of SIGTERM")
	}
	if waitErr != nil {
		t.Errorf("demo exited with %v after SIGTERM, want status 0", waitErr)
	}
}
