// Package repo locates the grpckit repository that a test, the dev stack
// or the chaos harness runs in, for the files they read or run from it
// (scripts/, docker-compose.yml, services/).
package repo

import (
	"errors"
	"os"
	"path/filepath"
	"runtime"
)

// ErrNotFound is returned by [Root] outside a grpckit checkout.
var ErrNotFound = errors.New("repo: cannot find the grpckit repository (a directory holding scripts/ensure-consul.sh)")

// Root returns the root of the grpckit repository: the first directory
// holding scripts/ensure-consul.sh, searched upward from the working
// directory, then from this source file.
func Root() (string, error) {
	var starts []string
	if wd, err := os.Getwd(); err == nil {
		starts = append(starts, wd)
	}
	if _, file, _, ok := runtime.Caller(0); ok {
		starts = append(starts, filepath.Dir(file))
	}
	for _, dir := range starts {
		for d := dir; ; d = filepath.Dir(d) {
			if _, err := os.Stat(filepath.Join(d, "scripts", "ensure-consul.sh")); err == nil {
				return d, nil
			}
			if filepath.Dir(d) == d {
				break
			}
		}
	}
	return "", ErrNotFound
}
