package main

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"runtime/debug"
	"strings"

	"golang.org/x/mod/module"
	"golang.org/x/mod/semver"
)

// kitModule is the module path of the kit, which projects require.
const kitModule = grpckitModule + "/kit"

// noVersion is the version a requirement names when a replace supplies
// the module.
const noVersion = "v0.0.0-00010101000000-000000000000"

// kitSource is where a new project gets the kit, and the grpckit tool its
// Makefile builds, from: a released version, or a checkout of this
// repository.
type kitSource struct {
	version  string // a release, e.g. v0.4.0; "" when checkout is set
	checkout string // root of a grpckit checkout, absolute; "" for a release
	why      string // how the source was chosen, for the summary
}

func (k kitSource) String() string {
	if k.checkout != "" {
		return fmt.Sprintf("the checkout %s (a replace in go.mod; %s)", k.checkout, k.why)
	}
	return fmt.Sprintf("%s %s (%s)", kitModule, k.version, k.why)
}

// resolveKit returns the kit source: flag when it is set (a version such
// as v0.4.0, or the folder of a grpckit checkout), else this binary's own
// source. A released grpckit (`go install …/cmd/grpckit@v0.4.0`) gives its
// version; a development build gives the checkout it was built from.
func resolveKit(flag string) (kitSource, error) {
	if flag != "" {
		if strings.HasPrefix(flag, "v") && !strings.ContainsAny(flag, `/\`) {
			if !semver.IsValid(flag) || semver.Canonical(flag) != flag {
				return kitSource{}, fmt.Errorf("-kit %s: not a version like v0.4.0, nor a folder", flag)
			}
			return kitSource{version: flag, why: "-kit"}, nil
		}
		root, err := checkoutRoot(flag)
		if err != nil {
			return kitSource{}, fmt.Errorf("-kit %s: %w", flag, err)
		}
		return kitSource{checkout: root, why: "-kit"}, nil
	}
	version := "(unknown)"
	if bi, ok := debug.ReadBuildInfo(); ok {
		version = bi.Main.Version
	}
	if released(version) {
		return kitSource{version: version, why: "the version of this grpckit"}, nil
	}
	_, file, _, ok := runtime.Caller(0)
	if ok {
		if root, err := checkoutRoot(filepath.Join(filepath.Dir(file), "..", "..")); err == nil {
			return kitSource{checkout: root, why: "this grpckit is a development build of it"}, nil
		}
	}
	return kitSource{}, fmt.Errorf("this grpckit is a development build (version %s) whose checkout is gone; "+
		"pass -kit DIR (a grpckit checkout) or -kit VERSION (a released kit, e.g. v0.4.0)", version)
}

// released reports whether version is a release: a semantic version that
// is neither a pseudo-version nor built from a modified tree.
func released(version string) bool {
	return semver.IsValid(version) && semver.Build(version) == "" && !module.IsPseudoVersion(version)
}

// checkoutRoot returns the absolute root of the grpckit checkout at dir,
// which may be the checkout or its kit folder.
func checkoutRoot(dir string) (string, error) {
	abs, err := filepath.Abs(dir)
	if err != nil {
		return "", err
	}
	for _, root := range []string{abs, filepath.Dir(abs)} {
		if m, err := readModule(filepath.Join(root, "kit")); err == nil && m == kitModule {
			if _, err := os.Stat(filepath.Join(root, "cmd", "grpckit")); err == nil {
				return root, nil
			}
		}
	}
	return "", errors.New("not a grpckit checkout (no kit/go.mod of " + kitModule + " with cmd/grpckit beside it)")
}
