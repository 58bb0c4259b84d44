package main

import (
	"bytes"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"

	"go.yaml.in/yaml/v3"
)

// manifestFile marks the root of a grpckit project and lists its services
// for `grpckit add` and `grpckit dev`.
const manifestFile = "grpckit.yaml"

// Limits of a manifest, to keep a mistyped file from starting a thousand
// processes or reading a huge file.
const (
	maxManifestBytes = 64 << 10
	maxInstances     = 20
	maxServices      = 100
)

// manifest is grpckit.yaml: the services `grpckit dev` runs, in the order
// it starts them (it stops them in the reverse order).
type manifest struct {
	Services []manifestService `yaml:"services"`
}

// manifestService is one service of a [manifest].
type manifestService struct {
	// Name is the service's name: its Consul service and the folder of its
	// main package, services/<name>/cmd/<name>, unless Main says otherwise.
	Name string `yaml:"name"`
	// Main is the import path of the main package relative to the project
	// root (./services/<name>/cmd/<name> when empty).
	Main string `yaml:"main,omitempty"`
	// Instances is how many instances `grpckit dev` runs; 0 means 1.
	Instances int `yaml:"instances,omitempty"`
	// Args and Env are extra flags and environment variables for every
	// instance. In both, {data} stands for the dev stack's working folder
	// and {secret} for a random secret made for the run.
	Args []string          `yaml:"args,omitempty"`
	Env  map[string]string `yaml:"env,omitempty"`
}

// mainPath returns the relative import path of s's main package.
func (s manifestService) mainPath() string {
	if s.Main != "" {
		return s.Main
	}
	return "./services/" + s.Name + "/cmd/" + s.Name
}

func (s manifestService) instances() int { return max(s.Instances, 1) }

var (
	// envNameRe is the shape of an environment variable name.
	envNameRe = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]*$`)
	// mainRe is a relative import path inside the project.
	mainRe = regexp.MustCompile(`^\./[A-Za-z0-9_.\-/]+$`)
)

// parseManifest decodes and checks a grpckit.yaml.
func parseManifest(b []byte) (*manifest, error) {
	if len(b) > maxManifestBytes {
		return nil, fmt.Errorf("%d bytes, more than the %d a manifest may have", len(b), maxManifestBytes)
	}
	var m manifest
	dec := yaml.NewDecoder(bytes.NewReader(b))
	dec.KnownFields(true)
	if err := dec.Decode(&m); err != nil && !errors.Is(err, errEOF) {
		return nil, err
	}
	if len(m.Services) > maxServices {
		return nil, fmt.Errorf("%d services, more than %d", len(m.Services), maxServices)
	}
	seen := map[string]bool{}
	for i, s := range m.Services {
		where := fmt.Sprintf("services[%d]", i)
		if s.Name != "" {
			where = fmt.Sprintf("service %q", s.Name)
		}
		switch {
		case !nameRe.MatchString(s.Name):
			return nil, fmt.Errorf("%s: name %q: want 2 to 30 lowercase letters and digits, starting with a letter", where, s.Name)
		case seen[s.Name]:
			return nil, fmt.Errorf("%s is listed twice", where)
		case s.Main != "" && (!mainRe.MatchString(s.Main) || slices.Contains(strings.Split(s.Main, "/"), "..")):
			return nil, fmt.Errorf("%s: main %q: want a path inside the project, like ./services/%s/cmd/%s", where, s.Main, s.Name, s.Name)
		case s.Instances < 0 || s.Instances > maxInstances:
			return nil, fmt.Errorf("%s: instances %d: want 1 to %d (0 means 1)", where, s.Instances, maxInstances)
		}
		for k := range s.Env {
			if !envNameRe.MatchString(k) {
				return nil, fmt.Errorf("%s: env %q is not a variable name", where, k)
			}
		}
		seen[s.Name] = true
	}
	return &m, nil
}

// errEOF is what the decoder returns for an empty document.
var errEOF = func() error {
	var v any
	return yaml.NewDecoder(bytes.NewReader(nil)).Decode(&v)
}()

// appendService returns manifest src with the service name appended to its
// services list. It edits the text, keeping comments and layout, and
// checks that the result parses to the old services plus the new one.
func appendService(src []byte, name string) ([]byte, error) {
	old, err := parseManifest(src)
	if err != nil {
		return nil, err
	}
	var out []byte
	if len(old.Services) == 0 {
		// No list yet: write one, replacing an empty `services:` key.
		lines := strings.Split(string(src), "\n")
		lines = slices.DeleteFunc(lines, func(l string) bool { return servicesKeyRe.MatchString(strings.TrimRight(l, "\r")) })
		out = []byte(strings.TrimRight(strings.Join(lines, "\n"), "\n"))
		if len(out) > 0 {
			out = append(out, '\n')
		}
		out = append(out, "services:\n  - name: "+name+"\n"...)
	} else {
		indent := "  "
		if m := itemIndentRe.FindAllSubmatch(src, -1); len(m) > 0 {
			indent = string(m[len(m)-1][1])
		}
		out = append(bytes.TrimRight(src, "\n"), '\n')
		out = append(out, indent+"- name: "+name+"\n"...)
	}
	got, err := parseManifest(out)
	if err != nil || len(got.Services) != len(old.Services)+1 || got.Services[len(old.Services)].Name != name {
		return nil, fmt.Errorf("cannot append the service to it (is services the last key?); add `- name: %s` under services yourself", name)
	}
	return out, nil
}

// itemIndentRe finds the `- name:` items of a services list and their indentation.
var itemIndentRe = regexp.MustCompile(`(?m)^([ \t]*)- name:`)

// project is a grpckit project: a Go module root holding grpckit.yaml.
type project struct {
	root     string
	module   string
	manifest *manifest
}

// inRepo reports whether p is this repository, whose services also use
// the workspace and whose Dockerfiles copy the kit module.
func (p *project) inRepo() bool { return p.module == grpckitModule }

// errNoProject is wrapped by findProject's error outside any project.
var errNoProject = errors.New("no grpckit project")

// findProject returns the project whose root is dir or its nearest parent
// holding grpckit.yaml.
func findProject(dir string) (*project, error) {
	start, err := filepath.Abs(dir)
	if err != nil {
		return nil, err
	}
	if fi, err := os.Stat(start); err != nil || !fi.IsDir() {
		return nil, fmt.Errorf("%s is not a folder", dir)
	}
	for d := start; ; d = filepath.Dir(d) {
		b, err := os.ReadFile(filepath.Join(d, manifestFile))
		switch {
		case err == nil:
			m, err := parseManifest(b)
			if err != nil {
				return nil, fmt.Errorf("%s: %w", filepath.Join(d, manifestFile), err)
			}
			module, err := readModule(d)
			if err != nil {
				return nil, err
			}
			return &project{root: d, module: module, manifest: m}, nil
		case !errors.Is(err, fs.ErrNotExist):
			return nil, err
		}
		if filepath.Dir(d) == d {
			return nil, fmt.Errorf("%w at or above %s: grpckit add and grpckit dev run in a project made by grpckit new (a folder holding %s and go.mod)", errNoProject, start, manifestFile)
		}
	}
}
