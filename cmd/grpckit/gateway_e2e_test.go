package main

import (
	"bytes"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/grpckit/grpckit/internal/repo"
	"github.com/grpckit/grpckit/kit/registry/consul/consultest"
)

// TestGatewayServesAnAddedService: with this repository's stack running
// (grpckit dev in a copy of it), a service added with grpckit add is
// started by dev and, within 15 s of passing its health check, answered by
// the gateway at its annotated route POST /v1/orders/echo without a token
// (Echo is public) and listed in /openapi.json, with no gateway change;
// taken out of grpckit.yaml, it stops and its route goes.
func TestGatewayServesAnAddedService(t *testing.T) {
	if testing.Short() {
		t.Skip("copies the repository and runs its stack; skipped with -short")
	}
	root, err := repo.Root()
	if err != nil {
		t.Fatal(err)
	}
	copyDir := t.TempDir()
	copyRepo(t, root, copyDir)
	// The copy's own grpckit.yaml (which add appends to and dev watches),
	// with the gateway on a port of its own choosing.
	manifest := filepath.Join(copyDir, manifestFile)
	if err := os.Rename(portZeroManifest(t, copyDir), manifest); err != nil {
		t.Fatal(err)
	}
	original, err := os.ReadFile(manifest)
	if err != nil {
		t.Fatal(err)
	}
	grpckit := buildGrpckit(t)
	agent := consultest.Start(t)
	c := consultest.Client(t, agent)
	cmd := exec.Command(grpckit, "dev", "-project", copyDir, "-consul", agent.HTTPAddr(), "-dir", t.TempDir())
	cmd.Env = append(os.Environ(), "GOWORK="+filepath.Join(copyDir, "go.work"))
	dev := startGroup(t, "grpckit dev", cmd)
	dev.waitUntil(t, "the stack is up", func() bool { return strings.Contains(dev.logs.String(), "Ctrl-C stops everything") })
	m := regexp.MustCompile(`gateway: +http://(\S+)/v1/hello/world`).FindStringSubmatch(dev.logs.String())
	if m == nil {
		t.Fatalf("no gateway address in the summary:\n%s", dev.logs.String())
	}
	gw := "http://" + m[1]
	echo := func() (int, string) {
		resp, err := http.Post(gw+"/v1/orders/echo", "application/json", strings.NewReader(`{"message": "hi"}`))
		if err != nil {
			return 0, err.Error()
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}
	openapi := func() string {
		resp, err := http.Get(gw + "/openapi.json")
		if err != nil {
			return ""
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return string(b)
	}
	if st, body := echo(); st != http.StatusNotFound {
		t.Fatalf("POST /v1/orders/echo before orders exists: %d %s, want 404", st, body)
	}

	var out, errOut bytes.Buffer
	if err := runAdd(t.Context(), []string{"orders", "--dir", copyDir}, &out, &errOut); err != nil {
		t.Fatalf("grpckit add orders: %v\n%s", err, errOut.String())
	}
	// dev builds and starts it: give the build time, then count from the
	// moment it passes.
	dev.waitUntil(t, "orders passes in Consul", func() bool {
		entries, _, err := c.Health().Service("orders", "", true, nil)
		return err == nil && len(entries) == 1
	})
	passing := time.Now()
	var st int
	var body string
	for st, body = echo(); st != http.StatusOK; st, body = echo() {
		if time.Since(passing) > 15*time.Second {
			t.Fatalf("POST /v1/orders/echo 15s after orders passed: %d %s", st, body)
		}
		time.Sleep(50 * time.Millisecond)
	}
	t.Logf("orders answered through the gateway %v after it passed: %s", time.Since(passing).Round(time.Millisecond), body)
	if !strings.Contains(body, `"message":"hi"`) {
		t.Errorf("echo answer %s", body)
	}
	if doc := openapi(); !strings.Contains(doc, `"/v1/orders/echo"`) || !strings.Contains(doc, `"/v1/orders/echo:stream"`) {
		t.Errorf("/openapi.json does not list orders' routes")
	}

	// Out of grpckit.yaml: dev stops it, and the gateway drops its routes.
	if err := os.WriteFile(manifest, original, 0o644); err != nil {
		t.Fatal(err)
	}
	dev.waitUntil(t, "orders' route goes", func() bool {
		st, _ := echo()
		return st == http.StatusNotFound && !strings.Contains(openapi(), `"/v1/orders/echo"`)
	})
	if exited, err := dev.interrupt(); !exited || err != nil {
		t.Fatalf("grpckit dev after Ctrl-C: exited %v, %v", exited, err)
	}
	for _, svc := range []string{"user", "greeter", "gateway", "orders"} {
		if entries, _, err := c.Health().Service(svc, "", false, nil); err != nil || len(entries) != 0 {
			t.Errorf("after Ctrl-C Consul still has %d %s instances (%v)", len(entries), svc, err)
		}
	}
}
