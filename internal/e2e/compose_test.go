package e2e

import (
	"net"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/compose-spec/compose-go/v2/cli"
	"github.com/compose-spec/compose-go/v2/types"

	"github.com/grpckit/grpckit/internal/repo"
)

// There is no Docker engine where the tests run, so this test checks
// docker-compose.yml and the Dockerfiles statically, and builds and runs the
// binaries the images are made of.
func TestComposeFile(t *testing.T) {
	root, err := repo.Root()
	if err != nil {
		t.Fatal(err)
	}
	project := loadRepoCompose(t)
	// The services the code expects: Consul for discovery and configuration,
	// an OTLP tracing backend, PostgreSQL for the user service, and the example
	// services (a scaffolded service may add more).
	for _, want := range []string{"consul", "jaeger", "postgres", "gateway", "greeter-1", "greeter-2", "user-1", "user-2"} {
		if _, ok := project.Services[want]; !ok {
			t.Errorf("no service %s (services: %v)", want, sorted(project.ServiceNames()))
		}
	}

	checkComposeACL(t, project)

	published := map[string]string{}
	envNames := map[string][]string{} // binary -> env names it reads
	for name, svc := range project.Services {
		for _, p := range svc.Ports {
			key := p.HostIP + ":" + p.Published
			if other, ok := published[key]; ok {
				t.Errorf("%s and %s both publish %s", name, other, key)
			}
			published[key] = name
		}
		for dep, cond := range svc.DependsOn {
			target, ok := project.Services[dep]
			if _, optional := project.DisabledServices[dep]; !ok && optional && !cond.Required {
				continue // a service of a profile that is not on (the cluster's agent)
			}
			if !ok {
				t.Errorf("%s depends on unknown service %s", name, dep)
			} else if cond.Condition == types.ServiceConditionHealthy && target.HealthCheck == nil {
				t.Errorf("%s waits for %s to be healthy, but %s has no health check", name, dep, dep)
			}
		}
		if svc.Build == nil {
			continue
		}
		if svc.HealthCheck == nil {
			t.Errorf("%s has no health check", name)
		}
		binary, pkg := checkDockerfile(t, root, name, svc.Build)
		if binary == "" {
			continue
		}
		if hc := svc.HealthCheck; hc != nil && (len(hc.Test) < 2 || hc.Test[1] != "/"+binary) {
			t.Errorf("%s: health check %v does not run /%s", name, hc.Test, binary)
		}
		if _, ok := envNames[binary]; !ok {
			envNames[binary] = readEnvNames(t, root, pkg)
		}
		for key, val := range svc.Environment {
			// The standard OpenTelemetry variables are read by kit's telemetry
			// layer in every service (kit/middleware/telemetry), Consul's own
			// by its registry and configuration (kit/config).
			if !slices.Contains(envNames[binary], key) && !strings.HasPrefix(key, "OTEL_") && key != "CONSUL_HTTP_TOKEN" {
				t.Errorf("%s sets %s, which %s does not read (it reads %v)", name, key, binary, envNames[binary])
			}
			if val == nil {
				continue
			}
			if host := hostIn(*val); host != "" && project.Services[host].Name == "" {
				t.Errorf("%s: %s=%s names host %s, which is not a service of the stack", name, key, *val, host)
			}
		}
	}
}

// hostIn returns the host a URL or host:port value names, "" for local
// addresses and anything else.
func hostIn(v string) string {
	host := ""
	if u, err := url.Parse(v); err == nil && u.Scheme != "" && strings.Contains(v, "://") {
		host = u.Hostname()
	} else if h, _, err := net.SplitHostPort(v); err == nil {
		host = h
	}
	switch host {
	case "", "0.0.0.0", "127.0.0.1", "localhost", "::":
		return ""
	}
	return host
}

var (
	goBuildRe    = regexp.MustCompile(`go build .*-o /out/(\S+) (\./\S+)`)
	entrypointRe = regexp.MustCompile(`(?m)^ENTRYPOINT \["/([^"]+)"\]`)
)

// checkDockerfile checks the build of one service and returns the binary
// name and the Go package the image is built from.
func checkDockerfile(t *testing.T, root, name string, b *types.BuildConfig) (binary, pkg string) {
	t.Helper()
	if fi, err := os.Stat(b.Context); err != nil || !fi.IsDir() {
		t.Errorf("%s: build context %s is not a directory", name, b.Context)
		return "", ""
	}
	df, err := os.ReadFile(filepath.Join(b.Context, b.Dockerfile))
	if err != nil {
		t.Errorf("%s: %v", name, err)
		return "", ""
	}
	m := goBuildRe.FindStringSubmatch(string(df))
	e := entrypointRe.FindStringSubmatch(string(df))
	if m == nil || e == nil {
		t.Errorf("%s: %s has no `go build -o /out/<bin> ./<pkg>` or no ENTRYPOINT", name, b.Dockerfile)
		return "", ""
	}
	if m[1] != e[1] {
		t.Errorf("%s: builds %s but runs %s", name, m[1], e[1])
	}
	if _, err := os.Stat(filepath.Join(root, m[2], "main.go")); err != nil {
		t.Errorf("%s: builds %s, which has no main.go", name, m[2])
	}
	checkModuleLayer(t, root, name, string(df))
	return m[1], m[2]
}

// checkModuleLayer checks the layer an image downloads its modules in: the
// files the Dockerfile copies before `RUN go mod download` must be enough
// for the go command to resolve the workspace (go.work, the go.mod and go.sum
// of every module it uses, the kit that the root module's replace names).
// It copies them alone into a directory and resolves the module graph there.
func checkModuleLayer(t *testing.T, root, name, dockerfile string) {
	t.Helper()
	dir := t.TempDir()
	download := false
	for line := range strings.Lines(dockerfile) {
		f := strings.Fields(line)
		if len(f) == 0 {
			continue
		}
		if f[0] == "RUN" && strings.Contains(line, "go mod download") {
			download = true
			break
		}
		if f[0] != "COPY" || len(f) < 3 || strings.HasPrefix(f[1], "--") {
			continue
		}
		dst := f[len(f)-1]
		for _, src := range f[1 : len(f)-1] {
			b, err := os.ReadFile(filepath.Join(root, filepath.FromSlash(src)))
			if err != nil {
				t.Errorf("%s: COPY %s: %v", name, src, err)
				return
			}
			to := filepath.Join(dir, filepath.FromSlash(dst))
			if strings.HasSuffix(dst, "/") {
				to = filepath.Join(to, filepath.Base(src))
			}
			if err := os.MkdirAll(filepath.Dir(to), 0o755); err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(to, b, 0o644); err != nil {
				t.Fatal(err)
			}
		}
	}
	if !download {
		t.Errorf("%s: the Dockerfile has no `RUN go mod download` layer", name)
		return
	}
	cmd := exec.Command("go", "list", "-m", "all")
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), "GOWORK=", "GOFLAGS=-mod=readonly")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Errorf("%s: the files copied before `go mod download` do not resolve the modules: %v\n%s", name, err, out)
	} else if !strings.Contains(string(out), "github.com/grpckit/grpckit/kit") {
		t.Errorf("%s: the modules resolved before `go mod download` lack the kit:\n%s", name, out)
	}
}

var envRe = regexp.MustCompile(`env ([A-Z0-9_, ]+)\)`)

// readEnvNames builds the service binary and collects the environment
// variables its -h output names.
func readEnvNames(t *testing.T, root, pkg string) []string {
	t.Helper()
	bin := filepath.Join(t.TempDir(), "svc")
	build := exec.Command("go", "build", "-o", bin, pkg)
	build.Dir = root
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("go build %s: %v\n%s", pkg, err, out)
	}
	out, _ := exec.Command(bin, "-h").CombinedOutput() // -h exits 0 or 2 depending on the flag package
	var names []string
	for _, m := range envRe.FindAllStringSubmatch(string(out), -1) {
		for _, n := range strings.Split(m[1], ",") {
			names = append(names, strings.TrimSpace(n))
		}
	}
	if len(names) == 0 {
		t.Fatalf("%s -h names no environment variables:\n%s", pkg, out)
	}
	return names
}

func sorted(s []string) []string {
	s = slices.Clone(s)
	slices.Sort(s)
	return s
}

// TestComposeClusterProfile: the cluster profile runs three Consul servers
// (bootstrap-expect 3, each joining the others) and a client agent joined
// to them, all with ACLs on (default deny, the management token) and a
// health check; with GRPCKIT_REGISTRY_ADDRESS=consul-agent:8500 every
// service and token-making container talks to the client agent and waits
// for it.
func TestComposeClusterProfile(t *testing.T) {
	t.Setenv("GRPCKIT_REGISTRY_ADDRESS", "consul-agent:8500")
	project := loadRepoCompose(t, cli.WithProfiles([]string{"cluster"}), cli.WithOsEnv)
	servers := []string{"consul-server-1", "consul-server-2", "consul-server-3"}
	for _, name := range append(slices.Clone(servers), "consul-agent") {
		svc, ok := project.Services[name]
		if !ok {
			t.Fatalf("the cluster profile has no %s (services: %v)", name, sorted(project.ServiceNames()))
		}
		cmd := strings.Join(svc.Command, " ")
		for _, s := range servers {
			if !strings.Contains(cmd, "-retry-join="+s) {
				t.Errorf("%s does not join %s: %s", name, s, cmd)
			}
		}
		isServer := strings.HasPrefix(name, "consul-server-")
		if slices.Contains(svc.Command, "-server") != isServer || isServer && !slices.Contains(svc.Command, "-bootstrap-expect=3") {
			t.Errorf("%s: %s", name, cmd)
		}
		if !strings.Contains(cmd, `default_policy = "deny"`) || !strings.Contains(cmd, "agent = ") ||
			strings.Contains(cmd, "initial_management") != isServer || slices.Contains(svc.Command, "-dev") {
			t.Errorf("%s does not run ACLs as the stack does: %s", name, cmd)
		}
		if svc.HealthCheck == nil {
			t.Errorf("%s has no health check", name)
		}
	}
	for name, svc := range project.Services {
		if v, ok := svc.Environment["GRPCKIT_REGISTRY_ADDRESS"]; ok && (v == nil || *v != "consul-agent:8500") {
			t.Errorf("%s registers with %v, want the client agent", name, v)
		}
		if v, ok := svc.Environment["CONSUL_HTTP_ADDR"]; ok && (v == nil || *v != "consul-agent:8500") {
			t.Errorf("%s talks to Consul at %v, want the client agent", name, v)
		}
		if _, ok := svc.Environment["GRPCKIT_REGISTRY_ADDRESS"]; ok || strings.HasPrefix(name, "consul-acl-") {
			if d, ok := svc.DependsOn["consul-agent"]; !ok || d.Condition != "service_healthy" {
				t.Errorf("%s does not wait for the client agent", name)
			}
		}
	}
}
