package main

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"strings"
	"testing/fstest"

	"github.com/grpckit/grpckit/cmd/grpckit/internal/codegen"
)

// grpckitModule is the module path of this repository.
const grpckitModule = "github.com/grpckit/grpckit"

const addUsage = `usage: grpckit add <name> [-dir DIR]

Adds the service <name> to the grpckit project at DIR (default: the current
directory; the project is the nearest folder at or above it holding
grpckit.yaml and go.mod):

  proto/<name>/v1/<name>.proto          Echo (unary) and StreamEcho (server streaming)
  proto/<name>/v1/<name>{,_grpc}.pb.go  the generated code (what make generate writes)
  services/<name>/                      doc.go, server.go (the handler), server_test.go,
                                        Dockerfile
  services/<name>/cmd/<name>/           main.go (on kit/service) and config.go (a <name> section)
  docker-compose.yml                    a service <name> appended
  grpckit.yaml                          the service appended: grpckit dev runs it
                                        (one that runs already starts it)

The proto carries google.api.http annotations (the routes of the gateway).
A project made before grpckit vendored them also gets
proto/google/api/{annotations,http}.proto, buf.yaml and buf.gen.yaml that
leave proto/google alone (when they are as grpckit wrote them), and a
requirement of ` + googleAPIModule + ` in go.mod.

<name> is 2 to 30 lowercase letters and digits starting with a letter, not a
Go keyword and not a name the generated code or the project already uses.
Nothing is overwritten: every target is checked before anything is written,
and what was written is removed when a later step fails.

flags:
`

// runAdd is `grpckit add`: it writes progress to stderr and the summary to
// stdout.
func runAdd(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("add", flag.ContinueOnError)
	fs.SetOutput(stderr)
	dir := fs.String("dir", ".", "a folder of the project to add the service to")
	name, ok, err := parseOne(fs, addUsage, args, "one service name")
	if !ok {
		return err // -h, or bad arguments
	}
	proj, err := findProject(*dir)
	if err != nil {
		return err
	}
	p, err := planService(ctx, proj, name)
	if err != nil {
		return err
	}
	fmt.Fprintf(stderr, "==> writing the %s service into %s\n", p.data.Name, proj.root)
	if err := p.apply(ctx); err != nil {
		return err
	}
	p.summary(stdout)
	return nil
}

// parseOne parses the arguments of a command that takes flags and one
// positional argument (want names it in the error): it returns that
// argument and ok, or not ok and the error; after -h, not ok and no error.
// The usage is printed on -h and on a wrong argument count.
func parseOne(fs *flag.FlagSet, usage string, args []string, want string) (arg string, ok bool, err error) {
	fs.Usage = func() {
		fmt.Fprint(fs.Output(), usage)
		fs.PrintDefaults()
	}
	pos, err := parseInterspersed(fs, args)
	if errors.Is(err, flag.ErrHelp) {
		return "", false, nil
	}
	if err != nil {
		return "", false, err
	}
	if len(pos) != 1 {
		fs.Usage()
		return "", false, fmt.Errorf("want %s, got %d arguments", want, len(pos))
	}
	return pos[0], true, nil
}

// parseInterspersed parses args with fs, allowing flags after positional
// arguments (`add demo -dir x`), and returns the positional ones.
func parseInterspersed(fs *flag.FlagSet, args []string) ([]string, error) {
	var pos []string
	for {
		if err := fs.Parse(args); err != nil {
			return nil, err
		}
		if fs.NArg() == 0 {
			return pos, nil
		}
		pos = append(pos, fs.Arg(0))
		args = fs.Args()[1:]
	}
}

// servicePlan is a service ready to be written: every check that can be
// made before writing has passed and every file is rendered.
type servicePlan struct {
	proj     *project
	data     scaffoldData
	files    []scaffoldFile
	contents map[string][]byte // by path
	vendored []string          // the google/api protos the project lacks, written after files
	edits    []fileEdit        // docker-compose.yml, grpckit.yaml, and buf.yaml and buf.gen.yaml of an older project
	goGet    bool              // go.mod does not require googleAPIModule: go get it
	notes    []string          // what the developer has to change by hand
	port     int               // host port the compose service publishes; 0 for none
	compose  bool              // docker-compose.yml gets the service
}

// fileEdit is a planned change of an existing file.
type fileEdit struct {
	path     string // relative to the project root
	old, new []byte
}

// planService checks that the service name can join proj, that none of
// the service's files exists, renders them (with the generated code), and
// prepares the docker-compose.yml and grpckit.yaml changes, and what a
// project made before the google.api.http annotations needs (see
// [servicePlan.planGoogleAPIs]). It writes nothing.
func planService(ctx context.Context, proj *project, name string) (*servicePlan, error) {
	if err := validateName(name); err != nil {
		return nil, err
	}
	if proj.inRepo() {
		if reason, ok := repoReserved[name]; ok {
			return nil, fmt.Errorf("invalid service name %q: it is reserved (%s)", name, reason)
		}
	}
	for _, s := range proj.manifest.Services {
		if s.Name == name {
			return nil, fmt.Errorf("service %q: %s already lists it", name, manifestFile)
		}
	}
	p := &servicePlan{
		proj:     proj,
		data:     newScaffoldData(proj.module, name, proj.inRepo()),
		files:    serviceFiles(name),
		contents: map[string][]byte{},
	}
	if err := p.checkTargets(); err != nil {
		return nil, err
	}
	for _, f := range p.files {
		if f.tmpl == "" {
			continue
		}
		c, err := render(f.tmpl, p.data)
		if err != nil {
			return nil, fmt.Errorf("render %s: %w", f.path, err)
		}
		p.contents[f.path] = c
	}
	src := map[string][]byte{}
	if err := p.planGoogleAPIs(src); err != nil {
		return nil, err
	}
	if err := p.generate(src); err != nil {
		return nil, err
	}

	mf, err := os.ReadFile(filepath.Join(proj.root, manifestFile))
	if err != nil {
		return nil, err
	}
	mfNew, err := appendService(mf, name)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", manifestFile, err)
	}
	p.edits = append(p.edits, fileEdit{manifestFile, mf, mfNew})

	composePath := filepath.Join(proj.root, "docker-compose.yml")
	compose, err := os.ReadFile(composePath)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		// A project without a compose file gets no compose entry.
	case err != nil:
		return nil, err
	default:
		composeNew, port, err := addComposeService(ctx, proj.root, composePath, compose, p.data)
		if err != nil {
			return nil, err
		}
		p.edits = append(p.edits, fileEdit{"docker-compose.yml", compose, composeNew})
		p.port, p.compose = port, true
	}
	return p, nil
}

// generate compiles the service's rendered .proto file, with the protos it
// imports in imports (by path relative to proto/), and adds the Go code
// protoc-gen-go and protoc-gen-go-grpc write for it.
func (p *servicePlan) generate(imports map[string][]byte) error {
	protoPath := path.Join(p.data.Name, "v1", p.data.Name+".proto") // relative to proto/
	src := fstest.MapFS{protoPath: {Data: p.contents[path.Join("proto", protoPath)]}}
	for name, b := range imports {
		src[name] = &fstest.MapFile{Data: b}
	}
	out, err := codegen.Generate(src, []string{protoPath}, p.proj.module)
	if err != nil {
		return fmt.Errorf("generate the code of %s: %w", protoPath, err)
	}
	for _, f := range p.files {
		if f.tmpl != "" {
			continue
		}
		c, ok := out[f.path]
		if !ok {
			return fmt.Errorf("generating the code of %s gave no %s", protoPath, f.path)
		}
		p.contents[f.path] = c
		delete(out, f.path)
	}
	for extra := range out {
		return fmt.Errorf("generating the code of %s gave an unexpected %s", protoPath, extra)
	}
	return nil
}

// checkTargets reports the service's directories and files that exist
// (a file only when its directory is not reported already).
func (p *servicePlan) checkTargets() error {
	var exist []string
	check := func(rel string) {
		for _, e := range exist {
			if strings.HasPrefix(rel, e+"/") {
				return
			}
		}
		if _, err := os.Lstat(filepath.Join(p.proj.root, filepath.FromSlash(rel))); !errors.Is(err, fs.ErrNotExist) {
			exist = append(exist, rel)
		}
	}
	for _, d := range serviceDirs(p.data.Name) {
		check(d)
	}
	for _, f := range p.files {
		check(f.path)
	}
	switch len(exist) {
	case 0:
		return nil
	case 1:
		return fmt.Errorf("service %q: %s already exists in %s; grpckit never overwrites (choose another name or remove it)",
			p.data.Name, exist[0], p.proj.root)
	}
	return fmt.Errorf("service %q: %s already exist in %s; grpckit never overwrites (choose another name or remove them)",
		p.data.Name, strings.Join(exist, " and "), p.proj.root)
}

// apply writes the service's files and the vendored protos, makes go.mod
// require googleAPIModule when it has to, then edits the existing files,
// grpckit.yaml among them: a running grpckit dev starts the service once it
// is listed, so it is listed last. On error it removes what it wrote and
// restores what it edited.
func (p *servicePlan) apply(ctx context.Context) (err error) {
	w := &undoWriter{root: p.proj.root}
	defer func() {
		if err != nil {
			if rerr := w.rollback(); rerr != nil {
				err = fmt.Errorf("%w\nand undoing what was written failed: %v", err, rerr)
			} else {
				err = fmt.Errorf("%w\n(nothing was left behind: what this run wrote was removed)", err)
			}
		}
	}()
	for _, f := range p.files {
		if err := w.create(f.path, p.contents[f.path]); err != nil {
			return err
		}
	}
	for _, rel := range p.vendored {
		if err := w.create(rel, p.contents[rel]); err != nil {
			return err
		}
	}
	if p.goGet {
		for _, f := range []string{"go.mod", "go.sum"} {
			if err := w.keep(f); err != nil {
				return err
			}
		}
		if err := requireGoogleAPIs(ctx, p.proj.root); err != nil {
			return fmt.Errorf("go.mod must require %s, which the generated code imports: %w", googleAPIModule, err)
		}
	}
	for _, e := range p.edits {
		if err := w.replace(e.path, e.old, e.new); err != nil {
			return err
		}
	}
	return nil
}

func (p *servicePlan) summary(w io.Writer) {
	n := p.data.Name
	width := 0
	for _, f := range p.files {
		width = max(width, len(f.path))
	}
	fmt.Fprintf(w, "created the %s service in %s:\n", n, p.proj.root)
	for _, f := range p.files {
		if f.tmpl == "" {
			fmt.Fprintf(w, "  %-*s  generated\n", width, f.path)
		} else {
			fmt.Fprintf(w, "  %s\n", f.path)
		}
	}
	for _, rel := range p.vendored {
		fmt.Fprintf(w, "  %-*s  vendored: the google.api.http annotations the proto imports\n", width, rel)
	}
	for _, e := range p.edits {
		if e.path != manifestFile && e.path != "docker-compose.yml" {
			fmt.Fprintf(w, "  %-*s  leaves proto/google alone (its Go code is genproto's)\n", width, e.path)
		}
	}
	if p.goGet {
		fmt.Fprintf(w, "  %-*s  requires %s (the generated code imports its annotations)\n", width, "go.mod", googleAPIModule)
	}
	fmt.Fprintf(w, "  %-*s  service %s added: grpckit dev runs it (a running one starts it now)\n", width, manifestFile, n)
	if p.compose {
		fmt.Fprintf(w, "  %-*s  service %s added", width, "docker-compose.yml", n)
		if p.port != 0 {
			fmt.Fprintf(w, ", gRPC published on 127.0.0.1:%d", p.port)
		}
		fmt.Fprintln(w)
	}
	fmt.Fprintf(w, `
next steps, from %[1]s:
  # test it
  go test ./services/%[2]s/...
  # run the project's local stack (Consul and every service of %[4]s)
  make dev
  # call it at the gRPC address make dev prints for %[2]s-1: Echo is public
  # (auth.public_methods in services/%[2]s/cmd/%[2]s/config.go), StreamEcho
  # needs the dev token
  grpcurl -plaintext -d '{"message":"hi"}' ADDRESS %[2]s.v1.%[3]s/Echo
  grpcurl -plaintext -H "authorization: Bearer $(cat .cache/dev/dev.token)" -d '{"message":"hi"}' ADDRESS %[2]s.v1.%[3]s/StreamEcho
  # make it yours: edit proto/%[2]s/v1/%[2]s.proto, run make generate, and
  # implement the methods in services/%[2]s/server.go
`, p.proj.root, n, p.data.Service, manifestFile)
	for _, note := range p.notes {
		fmt.Fprintf(w, "\nto do by hand, %s", note)
	}
}

// readModule returns the module path of root/go.mod.
func readModule(root string) (string, error) {
	f, err := os.Open(filepath.Join(root, "go.mod"))
	if err != nil {
		return "", fmt.Errorf("%s is not a Go module root: %w", root, err)
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if rest, ok := strings.CutPrefix(line, "module"); ok && (rest == "" || rest[0] == ' ' || rest[0] == '\t' || rest[0] == '"') {
			rest, _, _ = strings.Cut(rest, "//")
			return strings.Trim(strings.TrimSpace(rest), `"`), nil
		}
	}
	if err := sc.Err(); err != nil {
		return "", err
	}
	return "", fmt.Errorf("%s has no module line", filepath.Join(root, "go.mod"))
}

// undoWriter creates files and directories under root, and replaces
// files, undoing all of it on rollback. It is not safe for concurrent use.
type undoWriter struct {
	root     string
	files    []string   // created files, relative to root
	dirs     []string   // created directories, parents first
	replaced []fileEdit // replaced files, to restore
}

// mkdirAll creates the missing directories of rel, recording each.
func (w *undoWriter) mkdirAll(rel string) error {
	if rel == "." {
		return nil
	}
	if err := w.mkdirAll(filepath.Dir(rel)); err != nil {
		return err
	}
	err := os.Mkdir(filepath.Join(w.root, rel), 0o755)
	switch {
	case err == nil:
		w.dirs = append(w.dirs, rel)
		return nil
	case errors.Is(err, fs.ErrExist):
		return nil
	}
	return err
}

// create writes a new file; it fails if the file exists.
func (w *undoWriter) create(slashPath string, data []byte) error {
	rel := filepath.FromSlash(slashPath)
	if err := w.mkdirAll(filepath.Dir(rel)); err != nil {
		return err
	}
	f, err := os.OpenFile(filepath.Join(w.root, rel), os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o644)
	if err != nil {
		return err
	}
	w.files = append(w.files, rel)
	if _, err := f.Write(data); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}

// keep records the file at slashPath as it is now (or its absence), for
// rollback to restore, before something else changes it.
func (w *undoWriter) keep(slashPath string) error {
	p := filepath.Join(w.root, filepath.FromSlash(slashPath))
	cur, err := os.ReadFile(p)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		w.files = append(w.files, filepath.FromSlash(slashPath))
		return nil
	case err != nil:
		return err
	}
	w.replaced = append(w.replaced, fileEdit{path: slashPath, old: cur})
	return nil
}

// replace replaces the file at slashPath, which must still hold old, with
// new, atomically (a rename), keeping its permissions.
func (w *undoWriter) replace(slashPath string, old, new []byte) error {
	p := filepath.Join(w.root, filepath.FromSlash(slashPath))
	cur, err := os.ReadFile(p)
	if err != nil {
		return err
	}
	if !bytes.Equal(cur, old) {
		return fmt.Errorf("%s changed while grpckit ran; run it again", slashPath)
	}
	if err := writeAtomic(p, new); err != nil {
		return err
	}
	w.replaced = append(w.replaced, fileEdit{slashPath, old, new})
	return nil
}

// writeAtomic replaces the file at p with data through a rename, keeping
// its permissions.
func writeAtomic(p string, data []byte) error {
	fi, err := os.Stat(p)
	if err != nil {
		return err
	}
	tmp, err := os.CreateTemp(filepath.Dir(p), "."+filepath.Base(p)+".grpckit-*")
	if err != nil {
		return err
	}
	defer os.Remove(tmp.Name()) // fails harmlessly after the rename
	if _, err := tmp.Write(data); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Chmod(fi.Mode().Perm()); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Close(); err != nil {
		return err
	}
	return os.Rename(tmp.Name(), p)
}

// rollback restores the replaced files and removes the created files and
// directories, newest first.
func (w *undoWriter) rollback() error {
	var errs []error
	for i := len(w.replaced) - 1; i >= 0; i-- {
		e := w.replaced[i]
		if err := writeAtomic(filepath.Join(w.root, filepath.FromSlash(e.path)), e.old); err != nil {
			errs = append(errs, err)
		}
	}
	for i := len(w.files) - 1; i >= 0; i-- {
		if err := os.Remove(filepath.Join(w.root, w.files[i])); err != nil && !errors.Is(err, fs.ErrNotExist) {
			errs = append(errs, err)
		}
	}
	for i := len(w.dirs) - 1; i >= 0; i-- {
		if err := os.Remove(filepath.Join(w.root, w.dirs[i])); err != nil && !errors.Is(err, fs.ErrNotExist) {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}
