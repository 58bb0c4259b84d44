//go:build !unix

package main

import (
	"os"
	"os/exec"
)

func setProcAttr(cmd *exec.Cmd) {}

// lockFile does nothing here: concurrent builds of Consul may both run.
func lockFile(f *os.File) error { return nil }
