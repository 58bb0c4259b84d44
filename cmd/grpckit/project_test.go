package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

func TestParseManifest(t *testing.T) {
	for _, tc := range []struct {
		name, src string
		want      []manifestService
		wantErr   string
	}{
		{name: "empty", src: ""},
		{name: "no services", src: "services:\n"},
		{name: "one", src: "services:\n  - name: shop\n", want: []manifestService{{Name: "shop"}}},
		{
			name: "everything",
			src: "services:\n- name: user\n  instances: 2\n  args: [-user.db, '{data}/u.db']\n  env: {A_B: '{secret}'}\n" +
				"- name: api\n  main: ./cmd/api\n",
			want: []manifestService{
				{Name: "user", Instances: 2, Args: []string{"-user.db", "{data}/u.db"}, Env: map[string]string{"A_B": "{secret}"}},
				{Name: "api", Main: "./cmd/api"},
			},
		},
		{name: "bad name", src: "services:\n  - name: Shop\n", wantErr: `name "Shop"`},
		{name: "no name", src: "services:\n  - instances: 2\n", wantErr: `services[0]: name ""`},
		{name: "twice", src: "services:\n  - name: shop\n  - name: shop\n", wantErr: "listed twice"},
		{name: "too many instances", src: "services:\n  - name: shop\n    instances: 21\n", wantErr: "want 1 to 20"},
		{name: "negative instances", src: "services:\n  - name: shop\n    instances: -1\n", wantErr: "want 1 to 20"},
		{name: "main outside", src: "services:\n  - name: shop\n    main: ./../x\n", wantErr: "inside the project"},
		{name: "main absolute", src: "services:\n  - name: shop\n    main: /bin\n", wantErr: "inside the project"},
		{name: "bad env", src: "services:\n  - name: shop\n    env: {'A=B': x}\n", wantErr: "not a variable name"},
		{name: "unknown key", src: "services:\n  - name: shop\n    replicas: 2\n", wantErr: "field replicas not found"},
		{name: "not a list", src: "services: shop\n", wantErr: "cannot unmarshal"},
		{name: "too big", src: strings.Repeat("#", maxManifestBytes+1), wantErr: "more than"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			m, err := parseManifest([]byte(tc.src))
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("error %v, want one containing %q", err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(tc.want, m.Services); diff != "" {
				t.Errorf("services (-want +got):\n%s", diff)
			}
		})
	}
}

func TestManifestService(t *testing.T) {
	s := manifestService{Name: "shop"}
	if got := s.mainPath(); got != "./services/shop/cmd/shop" {
		t.Errorf("mainPath = %q", got)
	}
	if s.instances() != 1 {
		t.Errorf("instances = %d, want 1", s.instances())
	}
}

func TestAppendService(t *testing.T) {
	for _, tc := range []struct {
		name, src, want, wantErr string
	}{
		{name: "empty key", src: "# c\nservices:\n", want: "# c\nservices:\n  - name: orders\n"},
		{name: "empty file", src: "", want: "services:\n  - name: orders\n"},
		{name: "indented", src: "services:\n  - name: shop # first\n", want: "services:\n  - name: shop # first\n  - name: orders\n"},
		{name: "flush", src: "services:\n- name: shop\n  instances: 2\n\n\n", want: "services:\n- name: shop\n  instances: 2\n- name: orders\n"},
		{name: "flow list", src: "services: [{name: shop}]\n", wantErr: "add `- name: orders` under services yourself"},
		{name: "services not last", src: "services:\n  - name: shop\nother: 1\n", wantErr: "field other not found"},
		{name: "invalid before", src: "services:\n  - name: X\n", wantErr: `name "X"`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := appendService([]byte(tc.src), "orders")
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("error %v, want one containing %q", err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(tc.want, string(got)); diff != "" {
				t.Errorf("(-want +got):\n%s", diff)
			}
		})
	}
}

func TestFindProject(t *testing.T) {
	root := t.TempDir()
	write := func(rel, content string) {
		t.Helper()
		p := filepath.Join(root, rel)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := findProject(filepath.Join(root, "typo")); err == nil || !strings.Contains(err.Error(), "is not a folder") {
		t.Errorf("missing folder: %v, want is not a folder", err)
	}
	if _, err := findProject(root); err == nil || !strings.Contains(err.Error(), "no grpckit project at or above") {
		t.Errorf("empty folder: %v, want no grpckit project", err)
	}
	write("grpckit.yaml", "services:\n  - name: shop\n")
	if _, err := findProject(root); err == nil || !strings.Contains(err.Error(), "not a Go module root") {
		t.Errorf("no go.mod: %v, want not a Go module root", err)
	}
	write("go.mod", "module example.com/shop\n")
	write("services/shop/x.txt", "")
	p, err := findProject(filepath.Join(root, "services", "shop"))
	if err != nil {
		t.Fatal(err)
	}
	if p.root != root || p.module != "example.com/shop" || len(p.manifest.Services) != 1 || p.inRepo() {
		t.Errorf("project %+v", p)
	}
	write("grpckit.yaml", "services: 3\n")
	if _, err := findProject(root); err == nil || !strings.Contains(err.Error(), "grpckit.yaml") {
		t.Errorf("bad manifest: %v, want an error naming grpckit.yaml", err)
	}
}

// FuzzManifest checks that no manifest panics the parser or the appender,
// and that a successful append parses to the old services plus the new.
func FuzzManifest(f *testing.F) {
	f.Add("services:\n  - name: shop\n")
	f.Add("services:\n- name: user\n  instances: 2\n  args: [a]\n  env: {A: b}\n")
	f.Add("# c\nservices:\n")
	f.Add("services: [{name: x}]")
	f.Fuzz(func(t *testing.T, src string) {
		m, err := parseManifest([]byte(src))
		if err != nil {
			return
		}
		out, err := appendService([]byte(src), "orders")
		if err != nil {
			return
		}
		got, err := parseManifest(out)
		if err != nil {
			t.Fatalf("appended manifest does not parse: %v\n%s", err, out)
		}
		if len(got.Services) != len(m.Services)+1 || got.Services[len(m.Services)].Name != "orders" {
			t.Fatalf("appended manifest has %d services, want %d ending with orders:\n%s", len(got.Services), len(m.Services)+1, out)
		}
	})
}
