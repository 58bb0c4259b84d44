package main

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"go.uber.org/goleak"
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
		{"greeter", ""}, // reserved in this repository only (planService)
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
	d := newScaffoldData(grpckitModule, "demo", true)
	for _, tc := range []struct {
		file     string
		crlf     bool
		wantNext string // first line after the inserted entry
		wantPort int
		wantErr  string
		acl      bool // the file runs Consul with ACLs: demo gets a consul-acl-demo container
	}{
		{file: "anchors.yml", wantNext: "volumes:", wantPort: 9003},
		{file: "../../../../docker-compose.yml", wantNext: "volumes:", wantPort: 9003, acl: true},
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
			if hasInit := slices.ContainsFunc(block, func(l string) bool { return strings.TrimSpace(l) == "consul-acl-demo:" }); hasInit != tc.acl {
				t.Errorf("inserted block has a consul-acl-demo service: %v, want %v:\n%s", hasInit, tc.acl, strings.Join(block, ""))
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

// tree returns every file (its content) and directory ("dir") under root,
// but for root/.cache.
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

// fakeProject returns a folder that is a grpckit project to grpckit add:
// go.mod of module (requiring googleAPIModule, as grpckit new writes it),
// grpckit.yaml listing other, and the anchors.yml compose file.
func fakeProject(t *testing.T, module string) string {
	t.Helper()
	root := t.TempDir()
	compose, err := os.ReadFile(filepath.Join("testdata", "compose", "anchors.yml"))
	if err != nil {
		t.Fatal(err)
	}
	files := map[string]string{
		"go.mod":                "module " + module + " // the module\n\ngo 1.26\n\nrequire " + googleAPIModule + " v0.0.0-20261110000943-09e21b237f2c\n",
		"grpckit.yaml":          "# the services\nservices:\n  - name: other\n",
		"docker-compose.yml":    string(compose),
		"services/other/doc.go": "package other\n",
	}
	for name, content := range files {
		p := filepath.Join(root, filepath.FromSlash(name))
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return root
}

// checkChanges checks that after is before with the demo service added
// (added are the other files and folders expected, such as the folders
// the service's own ones were created in) and docker-compose.yml and
// grpckit.yaml changed.
func checkChanges(t *testing.T, before, after map[string]string, added ...string) {
	t.Helper()
	var got, changed, removed []string
	for p, c := range after {
		switch old, ok := before[p]; {
		case !ok:
			got = append(got, p)
		case old != c:
			changed = append(changed, p)
		}
	}
	for p := range before {
		if _, ok := after[p]; !ok {
			removed = append(removed, p)
		}
	}
	slices.Sort(got)
	slices.Sort(changed)
	want := append(added, "proto/demo", "proto/demo/v1", "services/demo", "services/demo/cmd", "services/demo/cmd/demo")
	for _, f := range serviceFiles("demo") {
		want = append(want, f.path)
	}
	slices.Sort(want)
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("added (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff([]string{"docker-compose.yml", "grpckit.yaml"}, changed); diff != "" {
		t.Errorf("changed (-want +got):\n%s", diff)
	}
	if len(removed) > 0 {
		t.Errorf("removed %v", removed)
	}
	if want := before["grpckit.yaml"] + "  - name: demo\n"; after["grpckit.yaml"] != want {
		t.Errorf("grpckit.yaml:\n%s\nwant demo appended:\n%s", after["grpckit.yaml"], want)
	}
}

func TestAdd(t *testing.T) {
	for _, module := range []string{grpckitModule, "example.com/acme/shop"} {
		t.Run(module, func(t *testing.T) {
			root := fakeProject(t, module)
			before := tree(t, root)
			var stdout, stderr bytes.Buffer
			// From a folder inside the project: add finds its root.
			if err := runAdd(t.Context(), []string{"demo", "--dir", filepath.Join(root, "services", "other")}, &stdout, &stderr); err != nil {
				t.Fatalf("add: %v\n%s", err, stderr.String())
			}
			after := tree(t, root)
			checkChanges(t, before, after, "proto", "proto/google", "proto/google/api",
				"proto/google/api/annotations.proto", "proto/google/api/http.proto")
			for name, b := range googleAPIFiles() {
				if after["proto/"+name] != string(b) {
					t.Errorf("proto/%s is not the vendored copy", name)
				}
			}
			if !strings.Contains(after["docker-compose.yml"], "\n  demo:\n    <<: *service\n") {
				t.Errorf("docker-compose.yml has no demo service merging *service:\n%s", after["docker-compose.yml"])
			}
			for _, s := range []string{"services/demo/cmd/demo/main.go", "make dev", "127.0.0.1:9003", "demo.v1.DemoService/Echo"} {
				if !strings.Contains(stdout.String(), s) {
					t.Errorf("summary does not mention %q:\n%s", s, stdout.String())
				}
			}
			for _, imp := range []string{module + "/proto/demo/v1", module + "/services/demo", kitModule + "/config"} {
				if !strings.Contains(after["services/demo/cmd/demo/main.go"]+after["services/demo/cmd/demo/config.go"], `"`+imp+`"`) {
					t.Errorf("the command does not import %s", imp)
				}
			}
			if gen := after["proto/demo/v1/demo_grpc.pb.go"]; !strings.Contains(gen, "func RegisterDemoServiceServer(") {
				t.Errorf("demo_grpc.pb.go has no RegisterDemoServiceServer:\n%s", gen)
			}
			if gen := after["proto/demo/v1/demo.pb.go"]; !strings.Contains(gen, `_ "google.golang.org/genproto/googleapis/api/annotations"`) {
				t.Errorf("demo.pb.go does not import the annotations:\n%s", gen)
			}
			for _, s := range []string{`post: "/v1/demo/echo"`, `post: "/v1/demo/echo:stream"`, `import "google/api/annotations.proto";`} {
				if !strings.Contains(after["proto/demo/v1/demo.proto"], s) {
					t.Errorf("demo.proto has no %s", s)
				}
			}
			if !strings.Contains(after["services/demo/cmd/demo/config.go"], "c.Auth.PublicMethods = []string{demov1.DemoService_Echo_FullMethodName}") {
				t.Errorf("config.go does not make Echo public:\n%s", after["services/demo/cmd/demo/config.go"])
			}
			// The Dockerfile copies the kit module only in this repository.
			if got := strings.Contains(after["services/demo/Dockerfile"], "COPY kit/go.mod"); got != (module == grpckitModule) {
				t.Errorf("Dockerfile copies kit/go.mod: %v, want %v", got, module == grpckitModule)
			}

			// A second run finds everything in place and writes nothing.
			before = tree(t, root)
			err := runAdd(t.Context(), []string{"-dir", root, "demo"}, io.Discard, io.Discard)
			if err == nil || !strings.Contains(err.Error(), "already lists it") {
				t.Errorf("second run: %v, want an already listed error", err)
			}
			if diff := cmp.Diff(before, tree(t, root)); diff != "" {
				t.Errorf("second run changed the tree (-before +after):\n%s", diff)
			}
		})
	}
}

func TestAddRefusesToOverwrite(t *testing.T) {
	type setup struct {
		name    string
		module  string
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
		cases = append(cases, setup{f.path, "", writeFile(f.path), dir + " already exists"})
	}
	for _, d := range serviceDirs("demo") {
		cases = append(cases, setup{d + "/", "", func(t *testing.T, root string) {
			if err := os.MkdirAll(filepath.Join(root, d), 0o755); err != nil {
				t.Fatal(err)
			}
		}, d + " already exists"})
	}
	editFile := func(rel, old, new string) func(t *testing.T, root string) {
		return func(t *testing.T, root string) {
			p := filepath.Join(root, rel)
			b, err := os.ReadFile(p)
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Contains(b, []byte(old)) {
				t.Fatalf("%s has no %q", rel, old)
			}
			if err := os.WriteFile(p, bytes.Replace(b, []byte(old), []byte(new), 1), 0o644); err != nil {
				t.Fatal(err)
			}
		}
	}
	cases = append(cases,
		setup{"compose service", "", editFile("docker-compose.yml", "\nvolumes:\n", "  demo:\n    image: x/demo\n\nvolumes:\n"), `already has a service "demo"`},
		setup{"listed", "", editFile("grpckit.yaml", "other", "demo"), "grpckit.yaml already lists it"},
		setup{"bad manifest", "", editFile("grpckit.yaml", "other", "Other"), `grpckit.yaml: service "Other"`},
		setup{"flow manifest", "", writeFile2("grpckit.yaml", "services: [{name: other}]\n"), "add `- name: demo` under services yourself"},
		setup{"no module line", "", writeFile("go.mod"), "has no module line"},
		setup{"example name in the repository", grpckitModule, nil, "reserved (an example service"},
	)
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			module := tc.module
			if module == "" {
				module = "example.com/shop"
			}
			root := fakeProject(t, module)
			name := "demo"
			if tc.prepare == nil {
				name = "greeter"
			} else {
				tc.prepare(t, root)
			}
			before := tree(t, root)
			err := runAdd(t.Context(), []string{name, "-dir", root}, io.Discard, io.Discard)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("error %v, want one containing %q", err, tc.want)
			}
			if diff := cmp.Diff(before, tree(t, root)); diff != "" {
				t.Errorf("the refused run changed the tree (-before +after):\n%s", diff)
			}
		})
	}
	t.Run("outside any project", func(t *testing.T) {
		root := t.TempDir()
		if err := os.WriteFile(filepath.Join(root, "go.mod"), []byte("module example.com/x\n"), 0o644); err != nil {
			t.Fatal(err)
		}
		before := tree(t, root)
		err := runAdd(t.Context(), []string{"demo", "-dir", root}, io.Discard, io.Discard)
		if !errors.Is(err, errNoProject) || !strings.Contains(err.Error(), "made by grpckit new") {
			t.Fatalf("error %v, want no grpckit project", err)
		}
		if diff := cmp.Diff(before, tree(t, root)); diff != "" {
			t.Errorf("wrote (-before +after):\n%s", diff)
		}
	})
}

// writeFile2 returns a setup that writes content to rel.
func writeFile2(rel, content string) func(t *testing.T, root string) {
	return func(t *testing.T, root string) {
		if err := os.WriteFile(filepath.Join(root, rel), []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
}

// TestAddRollsBack changes a file the plan edits between planning and
// writing, and checks that the run leaves the project as it was.
func TestAddRollsBack(t *testing.T) {
	for _, file := range []string{"grpckit.yaml", "docker-compose.yml"} {
		t.Run(file, func(t *testing.T) {
			root := fakeProject(t, "example.com/shop")
			proj, err := findProject(root)
			if err != nil {
				t.Fatal(err)
			}
			p, err := planService(t.Context(), proj, "demo")
			if err != nil {
				t.Fatal(err)
			}
			f, err := os.OpenFile(filepath.Join(root, file), os.O_APPEND|os.O_WRONLY, 0)
			if err != nil {
				t.Fatal(err)
			}
			if _, err := f.WriteString("# edited\n"); err != nil {
				t.Fatal(err)
			}
			f.Close()
			want := tree(t, root)
			err = p.apply(t.Context())
			if err == nil || !strings.Contains(err.Error(), file+" changed while grpckit ran") || !strings.Contains(err.Error(), "nothing was left behind") {
				t.Fatalf("error %v, want one saying %s changed and nothing was left behind", err, file)
			}
			if diff := cmp.Diff(want, tree(t, root)); diff != "" {
				t.Errorf("the failed run left (-want +got):\n%s", diff)
			}
		})
	}
}

func TestAddUsage(t *testing.T) {
	for _, tc := range []struct {
		args []string
		want string // substring of the error; "" for none
	}{
		{args: nil, want: "want one service name, got 0"},
		{args: []string{"a1", "b1"}, want: "want one service name, got 2"},
		{args: []string{"-nope"}, want: "flag provided but not defined"},
		{args: []string{"Bad", "-dir", "."}, want: "invalid service name"},
		{args: []string{"kit"}, want: "reserved"},
		{args: []string{""}, want: "invalid service name"},
		{args: []string{"-h"}},
	} {
		var stderr bytes.Buffer
		err := runAdd(t.Context(), tc.args, io.Discard, &stderr)
		switch {
		case tc.want == "" && err != nil:
			t.Errorf("add %q = %v, want nil", tc.args, err)
		case tc.want != "" && (err == nil || !strings.Contains(err.Error(), tc.want)):
			t.Errorf("add %q = %v, want an error containing %q", tc.args, err, tc.want)
		}
		if tc.want == "" && !strings.Contains(stderr.String(), "usage: grpckit add <name>") {
			t.Errorf("add %q printed no usage:\n%s", tc.args, stderr.String())
		}
	}
}
