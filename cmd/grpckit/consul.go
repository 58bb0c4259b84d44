package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"time"

	"golang.org/x/mod/modfile"
)

// consulCandidates are where ensureConsul looks for a consul binary
// before building one: $CONSUL_BIN, PATH, the build a checkout's
// scripts/ensure-consul.sh cached, and the per-user build.
func consulCandidates() []string {
	var c []string
	if p := os.Getenv("CONSUL_BIN"); p != "" {
		c = append(c, p)
	}
	if p, err := exec.LookPath("consul"); err == nil {
		c = append(c, p)
	}
	if k, err := resolveKit(""); err == nil && k.checkout != "" {
		c = append(c, filepath.Join(k.checkout, ".cache", "consul", consulVersion, "consul"))
	}
	if p, err := userConsul(); err == nil {
		c = append(c, p)
	}
	return c
}

// userConsul is the path of the per-user build of the pinned Consul,
// shared by every project.
func userConsul() (string, error) {
	dir, err := os.UserCacheDir()
	if err != nil {
		return "", err
	}
	return filepath.Join(dir, "grpckit", "consul", consulVersion, "consul"), nil
}

// ensureConsul returns a consul binary: the first of [consulCandidates]
// that exists, else the pinned release built from the Go module proxy into
// the per-user cache (about 4 minutes on 2 cores, once).
func ensureConsul(ctx context.Context, progress io.Writer) (string, error) {
	for _, p := range consulCandidates() {
		if fi, err := os.Stat(p); err == nil && fi.Mode().IsRegular() && fi.Mode().Perm()&0o111 != 0 {
			return p, nil
		}
	}
	bin, err := userConsul()
	if err != nil {
		return "", fmt.Errorf("no consul on PATH and no cache folder to build one in: %w", err)
	}
	if err := os.MkdirAll(filepath.Dir(bin), 0o755); err != nil {
		return "", err
	}
	// One builder at a time: two projects may start their stacks together.
	lock, err := os.OpenFile(filepath.Join(filepath.Dir(bin), ".lock"), os.O_CREATE|os.O_RDWR, 0o644)
	if err != nil {
		return "", err
	}
	defer lock.Close()
	if err := lockFile(lock); err != nil {
		return "", err
	}
	if _, err := os.Stat(bin); err == nil {
		return bin, nil // built while we waited
	}
	fmt.Fprintf(progress, "==> no consul on PATH: building Consul %s from the Go module proxy into %s\n"+
		"    (about 4 minutes on 2 cores, once for every project)\n", consulVersion, filepath.Dir(bin))
	start := time.Now()
	if err := buildConsul(ctx, bin, progress); err != nil {
		return "", fmt.Errorf("build consul %s: %w", consulVersion, err)
	}
	fmt.Fprintf(progress, "==> built consul in %v\n", time.Since(start).Round(time.Second))
	return bin, nil
}

// buildConsul builds github.com/hashicorp/consul at consulVersion into bin.
func buildConsul(ctx context.Context, bin string, progress io.Writer) error {
	env := append(os.Environ(), "GOWORK=off", "GOFLAGS=-mod=mod")
	dl := exec.CommandContext(ctx, "go", "mod", "download", "-json", "github.com/hashicorp/consul@"+consulVersion)
	dl.Env, dl.Stderr = env, progress
	dl.Dir = os.TempDir() // outside any module
	out, err := dl.Output()
	if err != nil {
		return fmt.Errorf("go mod download: %w", err)
	}
	var mod struct{ Dir, Error string }
	if err := json.Unmarshal(out, &mod); err != nil || mod.Dir == "" {
		return fmt.Errorf("go mod download gave no module folder (%v %s)", err, mod.Error)
	}
	work, err := os.MkdirTemp("", "grpckit-consul-build-*")
	if err != nil {
		return err
	}
	defer os.RemoveAll(work)
	if err := os.CopyFS(work, os.DirFS(mod.Dir)); err != nil {
		return err
	}
	if err := filepath.WalkDir(work, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		mode := os.FileMode(0o644)
		if d.IsDir() {
			mode = 0o755
		}
		return os.Chmod(p, mode)
	}); err != nil {
		return err
	}
	// Consul's go.mod replaces its nested modules with folders of its
	// repository; they are published on the proxy too, so drop the replaces.
	gomod := filepath.Join(work, "go.mod")
	src, err := os.ReadFile(gomod)
	if err != nil {
		return err
	}
	f, err := modfile.Parse(gomod, src, nil)
	if err != nil {
		return err
	}
	for _, r := range append([]*modfile.Replace(nil), f.Replace...) {
		if err := f.DropReplace(r.Old.Path, r.Old.Version); err != nil {
			return err
		}
	}
	if src, err = f.Format(); err != nil {
		return err
	}
	if err := os.WriteFile(gomod, src, 0o644); err != nil {
		return err
	}
	tmp := bin + ".tmp"
	build := exec.CommandContext(ctx, "go", "build", "-trimpath", "-o", tmp, ".")
	build.Dir, build.Env, build.Stdout, build.Stderr = work, env, progress, progress
	if err := build.Start(); err != nil {
		return err
	}
	done := make(chan error, 1)
	go func() { done <- build.Wait() }()
	tick := time.NewTicker(30 * time.Second)
	defer tick.Stop()
	start := time.Now()
	for {
		select {
		case err := <-done:
			if err != nil {
				os.Remove(tmp)
				return errors.Join(errors.New("go build failed"), err)
			}
			return os.Rename(tmp, bin)
		case <-tick.C:
			fmt.Fprintf(progress, "    still building consul (%v)\n", time.Since(start).Round(time.Second))
		}
	}
}
