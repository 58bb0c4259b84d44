//go:build !linux

package consultest

import "os/exec"

func setProcAttr(cmd *exec.Cmd) {}
