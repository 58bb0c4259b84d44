package main

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
)

// protoTools are the code generation tools `make tools` builds into
// .cache/bin, with the Makefile variable that pins each one's version.
var protoTools = []struct{ bin, pin string }{
	{"buf", "BUF_VERSION"},
	{"protoc-gen-go", "PROTOC_GEN_GO_VERSION"},
	{"protoc-gen-go-grpc", "PROTOC_GEN_GO_GRPC_VERSION"},
}

func toolBin(root string) string { return filepath.Join(root, ".cache", "bin") }

// ensureTools makes the proto tools available in root/.cache/bin, running
// `make tools` when one is missing, and warns on progress when one's
// version differs from the Makefile's pin.
func ensureTools(ctx context.Context, root string, progress io.Writer) error {
	bin := toolBin(root)
	var missing []string
	for _, t := range protoTools {
		if _, err := os.Stat(filepath.Join(bin, t.bin)); err != nil {
			missing = append(missing, t.bin)
		}
	}
	if len(missing) > 0 {
		fmt.Fprintf(progress, "==> %s not in %s: building the pinned proto tools with `make tools` (this can take a few minutes)\n",
			strings.Join(missing, ", "), bin)
		cmd := exec.CommandContext(ctx, "make", "-C", root, "tools")
		cmd.Stdout, cmd.Stderr = progress, progress
		if err := cmd.Run(); err != nil {
			return fmt.Errorf("make tools: %w (nothing was written)", err)
		}
		for _, t := range protoTools {
			if _, err := os.Stat(filepath.Join(bin, t.bin)); err != nil {
				return fmt.Errorf("make tools did not build %s: %w", t.bin, err)
			}
		}
	}
	makefile, err := os.ReadFile(filepath.Join(root, "Makefile"))
	if err != nil {
		return nil // no pins to compare with
	}
	for _, t := range protoTools {
		m := regexp.MustCompile(`(?m)^` + t.pin + `\s*:?=\s*v?(\S+)`).FindSubmatch(makefile)
		if m == nil {
			continue
		}
		out, err := exec.CommandContext(ctx, filepath.Join(bin, t.bin), "--version").Output()
		if err != nil {
			fmt.Fprintf(progress, "==> warning: %s --version: %v\n", t.bin, err)
			continue
		}
		got := ""
		if fields := strings.Fields(string(out)); len(fields) > 0 {
			got = strings.TrimPrefix(fields[len(fields)-1], "v")
		}
		if got != string(m[1]) {
			fmt.Fprintf(progress, "==> warning: %s is %s but the Makefile pins %s; the generated code may differ from the committed code (rm %s and run make tools)\n",
				filepath.Join(bin, t.bin), strings.TrimSpace(string(out)), m[1], filepath.Join(bin, t.bin))
		}
	}
	return nil
}

// runBuf runs root/.cache/bin/buf with args in root, with the plugins of
// .cache/bin first on PATH (buf.gen.yaml names local plugins).
func runBuf(ctx context.Context, root string, args ...string) error {
	bin := toolBin(root)
	cmd := exec.CommandContext(ctx, filepath.Join(bin, "buf"), args...)
	cmd.Dir = root
	cmd.Env = append(os.Environ(), "PATH="+bin+string(os.PathListSeparator)+os.Getenv("PATH"))
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Run(); err != nil {
		return fmt.Errorf("buf %s: %w\n%s", strings.Join(args, " "), err, strings.TrimSpace(out.String()))
	}
	return nil
}
