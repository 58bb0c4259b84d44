package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"io/fs"
	"os"
	"os/exec"
	"path"
	"path/filepath"
	"strings"

	"golang.org/x/mod/module"
)

const newUsage = `usage: grpckit new <module path> [-dir DIR] [-service NAME] [-kit SOURCE]

Creates a standalone grpckit project in DIR/<last element of the module
path> (DIR defaults to the current folder, which may be inside another
module): go.mod (module <module path>, requiring the kit), a Makefile
(make dev runs the local stack, make test the tests), buf.yaml and
buf.gen.yaml (local plugins only), proto/google/api (the google.api.http
annotations, vendored), docker-compose.yml, grpckit.yaml (the project's
services), README.md and .gitignore, and its first service,
named after the last element, as grpckit add writes it: proto with Echo and
StreamEcho, generated code, handler, handler test, main, Dockerfile.

The kit comes from this grpckit's own source: a released grpckit makes the
project require its version; a development build (built from a checkout)
makes it use that checkout through a replace. -kit overrides that.

The target folder must not exist or be empty. Nothing is left behind when a
step fails: the project is assembled in a hidden folder beside the target
and renamed into place at the end.

flags:
`

// runNew is `grpckit new`: it writes progress to stderr and the summary to
// stdout.
func runNew(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("new", flag.ContinueOnError)
	fs.SetOutput(stderr)
	dir := fs.String("dir", ".", "folder to create the project folder in")
	svcName := fs.String("service", "", "name of the first service (default: the module path's last element)")
	kitFlag := fs.String("kit", "", "where the kit comes from: a version (v0.4.0) or a grpckit checkout folder (default: this grpckit's own source)")
	modPath, ok, err := parseOne(fs, newUsage, args, "one module path (like example.com/acme/shop)")
	if !ok {
		return err // -h, or bad arguments
	}
	// What go mod init accepts: example/hello as well as example.com/hello.
	if err := module.CheckImportPath(modPath); err != nil {
		return fmt.Errorf("invalid module path %q: %w", modPath, err)
	}
	folder := projectFolder(modPath)
	name := *svcName
	if name == "" {
		name = folder
		if err := validateName(name); err != nil {
			return fmt.Errorf("%w\n(the first service is named after the module path's last element; choose another with -service NAME)", err)
		}
	} else if err := validateName(name); err != nil {
		return err
	}
	kit, err := resolveKit(*kitFlag)
	if err != nil {
		return err
	}
	parent, err := filepath.Abs(*dir)
	if err != nil {
		return err
	}
	if fi, err := os.Stat(parent); err != nil || !fi.IsDir() {
		return fmt.Errorf("-dir %s is not a folder", *dir)
	}
	target := filepath.Join(parent, folder)
	if err := checkEmpty(target); err != nil {
		return err
	}

	fmt.Fprintf(stderr, "==> creating %s in %s; the kit comes from %s\n", modPath, target, kit)
	staging, err := os.MkdirTemp(parent, ".grpckit-new-"+folder+"-*")
	if err != nil {
		return err
	}
	if err := os.Chmod(staging, 0o755); err != nil { // MkdirTemp makes it 0700
		os.RemoveAll(staging)
		return err
	}
	done := false
	defer func() {
		if !done {
			os.RemoveAll(staging)
		}
	}()
	data := newProjectData(modPath, folder, name, kit)
	for _, f := range projectFiles {
		c, err := render(path.Join("project", f.tmpl), data)
		if err != nil {
			return fmt.Errorf("render %s: %w", f.path, err)
		}
		if err := os.WriteFile(filepath.Join(staging, f.path), c, 0o644); err != nil {
			return err
		}
	}
	proj, err := findProject(staging)
	if err != nil {
		return err
	}
	plan, err := planService(ctx, proj, name)
	if err != nil {
		return err
	}
	plan.goGet = false // go mod tidy, below, requires what the generated code imports
	if err := plan.apply(ctx); err != nil {
		return err
	}
	fmt.Fprintln(stderr, "==> go mod tidy: resolving the project's dependencies")
	tidy := exec.CommandContext(ctx, "go", "mod", "tidy")
	tidy.Dir = staging
	tidy.Env = append(os.Environ(), "GOWORK=off", "GOFLAGS=-mod=mod")
	if out, err := tidy.CombinedOutput(); err != nil {
		return fmt.Errorf("go mod tidy in the new project: %w\n%s(nothing was left behind)", err, out)
	}
	// os.Rename refuses an existing folder: remove the empty target first
	// (os.Remove fails, and so the run, if it is not empty any more).
	if err := os.Remove(target); err != nil && !errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("%s: %w (nothing was left behind)", target, err)
	}
	if err := os.Rename(staging, target); err != nil {
		return fmt.Errorf("move the project into place: %w (nothing was left behind)", err)
	}
	done = true
	data.summary(stdout, target)
	return nil
}

// projectFolder returns the last element of a module path, skipping a
// major version suffix (example.com/shop/v2 gives shop).
func projectFolder(modPath string) string {
	elems := strings.Split(modPath, "/")
	last := elems[len(elems)-1]
	if len(elems) > 1 && versionRe.MatchString(last) {
		return elems[len(elems)-2]
	}
	return last
}

// checkEmpty fails unless dir does not exist or is an empty folder.
func checkEmpty(dir string) error {
	fi, err := os.Lstat(dir)
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err != nil {
		return err
	}
	if !fi.IsDir() {
		return fmt.Errorf("%s exists and is not a folder; grpckit new never overwrites", dir)
	}
	entries, err := os.ReadDir(dir)
	if err != nil {
		return err
	}
	if len(entries) > 0 {
		return fmt.Errorf("%s exists and is not empty (it holds %s); grpckit new never overwrites: choose an empty or new folder", dir, entries[0].Name())
	}
	return nil
}

// projectFiles are the project-level files of a new project, rendered from
// templates/project/ with a [projectData].
var projectFiles = []struct{ path, tmpl string }{
	{"go.mod", "go.mod.tmpl"},
	{"Makefile", "Makefile.tmpl"},
	{"README.md", "README.md.tmpl"},
	{".gitignore", "gitignore.tmpl"},
	{"buf.yaml", "buf.yaml.tmpl"},
	{"buf.gen.yaml", "buf.gen.yaml.tmpl"},
	{"docker-compose.yml", "docker-compose.yml.tmpl"},
	{manifestFile, "grpckit.yaml.tmpl"},
}

// projectData is what the templates of templates/project/ see.
type projectData struct {
	Module   string // the module path
	Folder   string // the project folder's name
	Name     string // the first service
	Service  string // its proto service, e.g. ShopService
	KitMod   string // the kit's module path
	KitReq   string // the version go.mod requires
	Checkout string // a grpckit checkout the kit and the tool come from; "" for a release
	Version  string // the release the kit and the tool come from; "" with Checkout
	Pins     map[string]string
	// ManagementToken is the default management token of the compose
	// stack's Consul, made for the project.
	ManagementToken string
}

func newProjectData(modPath, folder, name string, kit kitSource) projectData {
	d := projectData{
		Module:   modPath,
		Folder:   folder,
		Name:     name,
		Service:  newScaffoldData(modPath, name, false).Service,
		KitMod:   kitModule,
		KitReq:   kit.version,
		Checkout: kit.checkout,
		Version:  kit.version,
		Pins:     map[string]string{},

		ManagementToken: newUUID(),
	}
	if kit.checkout != "" {
		d.KitReq = noVersion
	}
	for _, t := range protoTools {
		d.Pins[t.pin] = t.version
	}
	d.Pins["CONSUL_VERSION"] = consulVersion
	return d
}

func (d projectData) summary(w io.Writer, target string) {
	fmt.Fprintf(w, `created the project %s in %s, with the service %s:
  go.mod, Makefile, README.md, .gitignore, buf.yaml, buf.gen.yaml,
  docker-compose.yml, grpckit.yaml, proto/%[3]s/v1/, proto/google/api/
  (vendored), services/%[3]s/

next steps:
  cd %[2]s
  make test           # vet and test everything
  make dev            # Consul and every service, in the foreground; Ctrl-C stops it
  make add NAME=NAME  # another service
`, d.Module, target, d.Name)
}
