//go:build !linux

package consulagent

import "os/exec"

func setProcAttr(cmd *exec.Cmd) {}
