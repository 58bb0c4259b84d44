package consultest

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"syscall"
	"time"
)

// ErrNoBinary is returned by [Find] when no consul binary can be found.
var ErrNoBinary = errors.New("consultest: no consul binary: set CONSUL_BIN or put consul on PATH")

// ensureScript is the script [Find] runs as its last resort, relative to a
// project's root.
const ensureScript = "scripts/ensure-consul.sh"

// Find returns the path of a consul binary, trying in order:
//
//  1. $CONSUL_BIN;
//  2. consul on PATH;
//  3. the output of scripts/ensure-consul.sh, found in the working directory
//     or one of its parents, else above this package's source (in a grpckit
//     checkout): a script that prints the path of a consul binary on stdout,
//     installing or building it first if need be. It runs with ctx, its
//     stderr (progress) going to progress, which may be nil.
//
// Without any of them Find returns an error wrapping [ErrNoBinary]. It is
// safe for concurrent use, but each call may run the script.
func Find(ctx context.Context, progress io.Writer) (string, error) {
	if p := os.Getenv("CONSUL_BIN"); p != "" {
		return p, nil
	}
	if p, err := exec.LookPath("consul"); err == nil {
		return p, nil
	}
	script, ok := findScript()
	if !ok {
		return "", ErrNoBinary
	}
	cmd := exec.CommandContext(ctx, script)
	cmd.Dir = filepath.Dir(filepath.Dir(script))
	cmd.Stderr = progress
	// On cancellation let the script stop its work, rather than orphan it.
	cmd.Cancel = func() error { return cmd.Process.Signal(syscall.SIGTERM) }
	cmd.WaitDelay = 10 * time.Second
	out, err := cmd.Output()
	if err != nil {
		return "", fmt.Errorf("%w (%s failed: %w)", ErrNoBinary, script, err)
	}
	return strings.TrimSpace(string(out)), nil
}

// findScript returns the first scripts/ensure-consul.sh found upward from
// the working directory, then from this source file.
func findScript() (string, bool) {
	var starts []string
	if wd, err := os.Getwd(); err == nil {
		starts = append(starts, wd)
	}
	if _, file, _, ok := runtime.Caller(0); ok {
		starts = append(starts, filepath.Dir(file))
	}
	for _, dir := range starts {
		for d := dir; ; d = filepath.Dir(d) {
			p := filepath.Join(d, filepath.FromSlash(ensureScript))
			if fi, err := os.Stat(p); err == nil && fi.Mode().IsRegular() {
				return p, true
			}
			if filepath.Dir(d) == d {
				break
			}
		}
	}
	return "", false
}
