//go:build !unix

package consultest

import "os/exec"

func setProcAttr(cmd *exec.Cmd) {}
