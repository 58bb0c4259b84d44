package main

import (
	"bytes"
	"context"
	"embed"
	"errors"
	"fmt"
	"io/fs"
	"maps"
	"os"
	"os/exec"
	"path"
	"path/filepath"
	"runtime/debug"
	"slices"
	"strings"

	"golang.org/x/mod/modfile"
)

// googleAPIs holds google/api/annotations.proto and http.proto (googleapis,
// Apache 2.0), copies of this repository's proto/google/api (a test holds
// them equal). Every project gets them under proto/google/api, so that its
// protos carry google.api.http annotations, the routes the gateway serves,
// with no remote buf dependency. Their Go code is genproto's
// ([googleAPIModule]), so buf lint, breaking and generate leave
// proto/google alone.
//
//go:embed googleapis/google/api/*.proto
var googleAPIs embed.FS

// googleAPIModule provides the Go package of the annotations
// (google.golang.org/genproto/googleapis/api/annotations), which the code
// generated from an annotated .proto imports.
const googleAPIModule = "google.golang.org/genproto/googleapis/api"

// googleAPIFiles returns the vendored protos, slash paths relative to the
// proto root (google/api/annotations.proto, google/api/http.proto), and
// their contents.
func googleAPIFiles() map[string][]byte {
	files := map[string][]byte{}
	err := fs.WalkDir(googleAPIs, "googleapis", func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		b, err := fs.ReadFile(googleAPIs, p)
		files[strings.TrimPrefix(p, "googleapis/")] = b
		return err
	})
	if err != nil {
		panic(err) // the embedded tree is part of the binary
	}
	return files
}

// bufConfigs are the buf files of a project, by path, and their templates
// under templates/project/.
var bufConfigs = []struct{ path, tmpl string }{
	{"buf.yaml", "buf.yaml.tmpl"},
	{"buf.gen.yaml", "buf.gen.yaml.tmpl"},
}

// planGoogleAPIs plans what a project made before its protos carried
// google.api.http annotations needs for an annotated service: the vendored
// protos it lacks, the buf.yaml and buf.gen.yaml that leave them alone, and
// the requirement of [googleAPIModule] in go.mod. It adds the protos the
// compiler reads (the project's own copies when it has them) to src, keyed
// by path relative to the proto root. This repository has them already.
func (p *servicePlan) planGoogleAPIs(src map[string][]byte) error {
	vendored := googleAPIFiles()
	for _, name := range slices.Sorted(maps.Keys(vendored)) {
		embedded := vendored[name]
		rel := path.Join("proto", name)
		b, err := os.ReadFile(filepath.Join(p.proj.root, filepath.FromSlash(rel)))
		switch {
		case errors.Is(err, fs.ErrNotExist):
			p.vendored = append(p.vendored, rel)
			p.contents[rel] = embedded
			b = embedded
		case err != nil:
			return err
		}
		src[name] = b
	}
	if p.proj.inRepo() {
		return nil
	}
	for _, f := range bufConfigs {
		old, err := os.ReadFile(filepath.Join(p.proj.root, f.path))
		if errors.Is(err, fs.ErrNotExist) {
			continue
		}
		if err != nil {
			return err
		}
		data := projectData{Module: p.proj.module}
		now, err := render(path.Join("project", f.tmpl), data)
		if err != nil {
			return err
		}
		before, err := render(path.Join("project", "pre-annotations", f.tmpl), data)
		if err != nil {
			return err
		}
		switch {
		case bytes.Equal(old, before):
			p.edits = append(p.edits, fileEdit{f.path, old, now})
		case !bytes.Contains(old, []byte("proto/google")):
			p.notes = append(p.notes, fmt.Sprintf("%s: leave proto/google alone (its Go code is genproto's), as grpckit new writes it:\n%s", f.path, now))
		}
	}
	gomod, err := os.ReadFile(filepath.Join(p.proj.root, "go.mod"))
	if err != nil {
		return err
	}
	f, err := modfile.ParseLax("go.mod", gomod, nil)
	if err != nil {
		return fmt.Errorf("go.mod: %w", err)
	}
	p.goGet = true
	for _, r := range f.Require {
		if r.Mod.Path == googleAPIModule {
			p.goGet = false
		}
	}
	return nil
}

// requireGoogleAPIs makes the project at root require [googleAPIModule]
// with go get: at the version its module graph selects already (through
// the kit), else at the version this grpckit was built with, so that no
// other module moves.
func requireGoogleAPIs(ctx context.Context, root string) error {
	goCmd := func(args ...string) ([]byte, error) {
		cmd := exec.CommandContext(ctx, "go", args...)
		cmd.Dir = root
		cmd.Env = append(os.Environ(), "GOWORK=off", "GOFLAGS=-mod=mod")
		var stderr bytes.Buffer
		cmd.Stderr = &stderr
		out, err := cmd.Output()
		if err != nil {
			return nil, fmt.Errorf("go %s: %w\n%s", strings.Join(args, " "), err, stderr.Bytes())
		}
		return out, nil
	}
	version := builtWith(googleAPIModule)
	if out, err := goCmd("list", "-m", "-f", "{{.Version}}", googleAPIModule); err == nil && len(bytes.TrimSpace(out)) > 0 {
		version = string(bytes.TrimSpace(out))
	}
	_, err := goCmd("get", googleAPIModule+"@"+version)
	return err
}

// builtWith returns the version of module this binary was built with, or
// "latest" when it does not know.
func builtWith(module string) string {
	if bi, ok := debug.ReadBuildInfo(); ok {
		for _, d := range bi.Deps {
			if d.Path == module {
				if d.Replace != nil && d.Replace.Version != "" {
					return d.Replace.Version
				}
				return d.Version
			}
		}
	}
	return "latest"
}
