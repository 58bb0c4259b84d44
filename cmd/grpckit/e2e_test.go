package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net"
	"os"
	"os/exec"
	"path"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/compose-spec/compose-go/v2/cli"
	"github.com/google/go-cmp/cmp"
	"github.com/hashicorp/consul/api"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/metadata"
	reflectionpb "google.golang.org/grpc/reflection/grpc_reflection_v1"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protodesc"
	"google.golang.org/protobuf/reflect/protoreflect"
	"google.golang.org/protobuf/types/descriptorpb"
	"google.golang.org/protobuf/types/dynamicpb"

	"github.com/grpckit/grpckit/internal/repo"
	"github.com/grpckit/grpckit/kit/middleware/auth"
	"github.com/grpckit/grpckit/kit/registry/consul/consultest"
)

// TestAddInRepoEndToEnd adds demo to a copy of the repository, builds,
// vets and tests it there, checks the compose file, and runs the service
// against a real Consul agent.
func TestAddInRepoEndToEnd(t *testing.T) {
	if testing.Short() {
		t.Skip("copies the repository, builds it and runs the scaffolded service against Consul; skipped with -short")
	}
	root, err := repo.Root()
	if err != nil {
		t.Fatal(err)
	}
	if m, err := readModule(root); err != nil || m != grpckitModule {
		t.Fatalf("%s: module %q, %v; want the %s module", root, m, err, grpckitModule)
	}
	copyDir := t.TempDir()
	copyRepo(t, root, copyDir)
	before := tree(t, copyDir)

	var stdout, stderr bytes.Buffer
	if err := runAdd(t.Context(), []string{"demo", "--dir", copyDir}, &stdout, &stderr); err != nil {
		t.Fatalf("grpckit add demo: %v\n%s", err, stderr.String())
	}
	t.Logf("grpckit add demo:\n%s", stdout.String())
	checkChanges(t, before, tree(t, copyDir))

	// In the workspace of the copy's go.work, as a developer in that checkout.
	work := []string{"GOWORK=" + filepath.Join(copyDir, "go.work")}
	run(t, copyDir, work, "go", "build", "./...")
	// Without the workspace, the root module finds the kit through its replace.
	run(t, copyDir, []string{"GOWORK=off"}, "go", "build", "-o", os.DevNull, "./services/demo/cmd/demo")
	run(t, copyDir, work, "go", "vet", "./services/demo/...")
	run(t, copyDir, work, "go", "test", "-race", "-count=1", "./services/demo/...")
	bin := filepath.Join(t.TempDir(), "demo")
	run(t, copyDir, work, "go", "build", "-o", bin, "./services/demo/cmd/demo")

	checkCopiedCompose(t, root, copyDir, bin)
	runDemoAgainstConsul(t, bin)
}

// copyRepo copies the files of root that git knows or would add (tracked,
// and untracked but not ignored: the working tree as it is) to dst.
func copyRepo(t *testing.T, root, dst string) {
	t.Helper()
	out, err := exec.Command("git", "-C", root, "ls-files", "-z", "--cached", "--others", "--exclude-standard").Output()
	if err != nil {
		t.Fatalf("git ls-files: %v", err)
	}
	files := strings.Split(strings.TrimRight(string(out), "\x00"), "\x00")
	n := 0
	for _, f := range files {
		src := filepath.Join(root, filepath.FromSlash(f))
		fi, err := os.Lstat(src)
		if errors.Is(err, fs.ErrNotExist) {
			continue // deleted in the working tree
		}
		if err != nil {
			t.Fatal(err)
		}
		if !fi.Mode().IsRegular() {
			continue
		}
		b, err := os.ReadFile(src)
		if err != nil {
			t.Fatal(err)
		}
		p := filepath.Join(dst, filepath.FromSlash(f))
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, b, fi.Mode().Perm()); err != nil {
			t.Fatal(err)
		}
		n++
	}
	t.Logf("copied %d files of %s to %s", n, root, dst)
}

var (
	goBuildRe    = regexp.MustCompile(`go build .*-o /out/(\S+) (\./\S+)`)
	entrypointRe = regexp.MustCompile(`(?m)^ENTRYPOINT \["/([^"]+)"\]`)
	envRe        = regexp.MustCompile(`env ([A-Z0-9_, ]+)\)`)
)

// checkCopiedCompose checks the copy's docker-compose.yml the way
// internal/e2e's compose test does: it loads, has the services of the
// original plus demo, and demo's image runs the binary its environment
// and health check are made for.
func checkCopiedCompose(t *testing.T, root, copyDir, bin string) {
	t.Helper()
	load := func(dir string) []string {
		opts, err := cli.NewProjectOptions([]string{filepath.Join(dir, "docker-compose.yml")},
			cli.WithWorkingDirectory(dir), cli.WithName("grpckit"))
		if err != nil {
			t.Fatal(err)
		}
		p, err := opts.LoadProject(t.Context())
		if err != nil {
			t.Fatalf("%s/docker-compose.yml does not load: %v", dir, err)
		}
		if dir != copyDir {
			return p.ServiceNames()
		}
		svc, ok := p.Services["demo"]
		if !ok {
			t.Fatalf("no demo service in %v", p.ServiceNames())
		}
		if svc.Build == nil {
			t.Fatal("demo has no build section")
		}
		df, err := os.ReadFile(filepath.Join(svc.Build.Context, svc.Build.Dockerfile))
		if err != nil {
			t.Fatal(err)
		}
		m, e := goBuildRe.FindStringSubmatch(string(df)), entrypointRe.FindStringSubmatch(string(df))
		if m == nil || e == nil || m[1] != "demo" || m[2] != "./services/demo/cmd/demo" || e[1] != "demo" {
			t.Errorf("%s: build line %q, entrypoint %q; want demo built from ./services/demo/cmd/demo and run", svc.Build.Dockerfile, m, e)
		}
		if hc := svc.HealthCheck; hc == nil || len(hc.Test) < 4 || hc.Test[1] != "/demo" || hc.Test[2] != "-probe" {
			t.Errorf("demo health check %v, want /demo -probe URL", svc.HealthCheck)
		}
		if dep, ok := svc.DependsOn["consul"]; !ok || dep.Condition != "service_healthy" {
			t.Errorf("demo depends on %v, want consul healthy", svc.DependsOn)
		}
		help, _ := exec.Command(bin, "-h").CombinedOutput() // -h exits 0 or 2 depending on the flag package
		var names []string
		for _, m := range envRe.FindAllStringSubmatch(string(help), -1) {
			for n := range strings.SplitSeq(m[1], ",") {
				names = append(names, strings.TrimSpace(n))
			}
		}
		for key := range svc.Environment {
			// OTEL_* are the OpenTelemetry SDK's own variables,
			// CONSUL_HTTP_TOKEN Consul's (read by kit's registry and config).
			if !slices.Contains(names, key) && !strings.HasPrefix(key, "OTEL_") && key != "CONSUL_HTTP_TOKEN" {
				t.Errorf("demo sets %s, which the binary does not read (it reads %v)", key, names)
			}
		}
		return p.ServiceNames()
	}
	want := append(load(root), "demo", "consul-acl-demo")
	slices.Sort(want)
	got := load(copyDir)
	slices.Sort(got)
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("services of the copy (-want +got):\n%s", diff)
	}
}

// lockedBuffer is a bytes.Buffer safe for concurrent use.
type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer // guarded by mu
}

func (b *lockedBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.Write(p)
}

func (b *lockedBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.String()
}

// runDemoAgainstConsul starts bin against a Consul agent, waits until it
// is a passing demo instance, calls Echo on it, stops it with SIGTERM and
// waits until it left Consul and exited cleanly.
func runDemoAgainstConsul(t *testing.T, bin string) {
	t.Helper()
	agent := consultest.Start(t)
	c := consultest.Client(t, agent)
	var logs lockedBuffer
	const secret = "0123456789abcdef0123456789abcdef"
	cmd := exec.Command(bin, "-registry.address", agent.HTTPAddr(),
		"-server.listen", "127.0.0.1:0", "-server.admin", "127.0.0.1:0", "-server.drain", "100ms")
	cmd.Env = append(os.Environ(), "GRPCKIT_AUTH_HMAC_SECRET="+secret, "GRPCKIT_SERVER_REFLECTION=true")
	cmd.Stdout, cmd.Stderr = &logs, &logs
	setProcAttr(cmd)
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan struct{})
	var waitErr error
	go func() {
		waitErr = cmd.Wait()
		close(exited)
	}()
	t.Cleanup(func() {
		select {
		case <-exited:
		default:
			cmd.Process.Kill()
			<-exited
		}
		if t.Failed() {
			t.Logf("demo's log:\n%s", logs.String())
		}
	})

	// poll calls cond every 50ms until it is true, the process exits or the
	// deadline passes.
	poll := func(what string, exitOK bool, cond func() bool) {
		t.Helper()
		deadline := time.After(60 * time.Second)
		tick := time.NewTicker(50 * time.Millisecond)
		defer tick.Stop()
		exit := exited
		for !cond() {
			select {
			case <-exit:
				if !exitOK {
					t.Fatalf("demo exited (%v) while waiting until %s", waitErr, what)
				}
				exit = nil
			case <-deadline:
				t.Fatalf("timed out waiting until %s", what)
			case <-tick.C:
			}
		}
	}
	var entries []*api.ServiceEntry
	poll("a passing demo instance is in Consul", false, func() bool {
		var err error
		entries, _, err = c.Health().Service("demo", "", true, (&api.QueryOptions{}).WithContext(t.Context()))
		return err == nil && len(entries) == 1
	})
	addr := net.JoinHostPort(entries[0].Service.Address, strconv.Itoa(entries[0].Service.Port))
	t.Logf("demo registered as %s at %s", entries[0].Service.ID, addr)

	tok, err := auth.IssueHS256(secret, "tester", time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	checkScaffoldedAuth(t, addr, "demo", tok)

	if err := cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	poll("demo left Consul", true, func() bool {
		entries, _, err := c.Health().Service("demo", "", false, (&api.QueryOptions{}).WithContext(t.Context()))
		return err == nil && len(entries) == 0
	})
	select {
	case <-exited:
	case <-time.After(30 * time.Second):
		t.Fatal("demo did not exit within 30s of SIGTERM")
	}
	if waitErr != nil {
		t.Errorf("demo exited with %v after SIGTERM, want status 0", waitErr)
	}
}

// buildGrpckit builds this command into a temporary folder, as a
// development build from this checkout, and returns its path.
func buildGrpckit(t *testing.T) string {
	t.Helper()
	bin := filepath.Join(t.TempDir(), "grpckit")
	cmd := exec.CommandContext(t.Context(), "go", "build", "-o", bin, ".")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("go build grpckit: %v\n%s", err, out)
	}
	return bin
}

// run runs name with args in dir, with env (NAME=value) added to the
// environment, fails the test with its output when it fails, and returns
// its standard output; its standard error is logged.
func run(t *testing.T, dir string, env []string, name string, args ...string) string {
	t.Helper()
	start := time.Now()
	cmd := exec.CommandContext(t.Context(), name, args...)
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), env...)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("%s %s in %s: %v\n%s%s", name, strings.Join(args, " "), dir, err, out, stderr.String())
	}
	t.Logf("%s %s: %v\n%s", name, strings.Join(args, " "), time.Since(start).Round(time.Millisecond), stderr.String())
	return string(out)
}

// TestProjectEndToEnd is what a new user does, outside this repository:
// grpckit new of a dotted module path in an empty folder, make dev against
// a real Consul with ACLs (default deny), make add of a second service
// while it runs, which gets a Consul token of its own (in a project
// whose buf files and vendored protos are as an earlier grpckit made
// them), which make dev then starts; both services pass in Consul and
// answer through server reflection (Echo without a token, StreamEcho only
// with one). A malformed grpckit.yaml changes nothing; a service removed
// from it leaves Consul, and comes back when listed again; Ctrl-C
// deregisters everything. Then build, vet, make test, and make generate
// (buf lint and buf generate with no remote dependency) changes nothing.
func TestProjectEndToEnd(t *testing.T) {
	if testing.Short() {
		t.Skip("creates a project, builds and tests it, and runs its local stack against Consul; skipped with -short")
	}
	root, err := repo.Root()
	if err != nil {
		t.Fatal(err)
	}
	grpckit := buildGrpckit(t)
	work := t.TempDir() // outside the repository (and any module)
	if strings.HasPrefix(work, root+string(filepath.Separator)) {
		t.Fatalf("temporary folder %s is inside the repository %s", work, root)
	}
	out := run(t, work, nil, grpckit, "new", "example.com/acme/shop")
	t.Logf("grpckit new:\n%s", out)
	proj := filepath.Join(work, "shop")
	made := tree(t, proj)
	makeOlder(t, proj)

	agent := consultest.StartACL(t)
	c := consultest.Client(t, agent)
	// passing returns the address of svc's one passing instance, or "".
	passing := func(svc string) string {
		entries, _, err := c.Health().Service(svc, "", true, (&api.QueryOptions{}).WithContext(t.Context()))
		if err != nil || len(entries) != 1 {
			return ""
		}
		return net.JoinHostPort(entries[0].Service.Address, strconv.Itoa(entries[0].Service.Port))
	}
	registered := func(svc string) int {
		entries, _, err := c.Health().Service(svc, "", false, (&api.QueryOptions{}).WithContext(t.Context()))
		if err != nil {
			return -1
		}
		return len(entries)
	}
	cmd := exec.Command("make", "dev", "DEV_FLAGS=-consul "+agent.HTTPAddr())
	cmd.Dir = proj
	cmd.Env = append(os.Environ(), "CONSUL_HTTP_TOKEN="+agent.ManagementToken())
	dev := startGroup(t, "make dev", cmd)
	logs := dev.logs
	dev.waitUntil(t, "shop passes in Consul", func() bool {
		return passing("shop") != "" && strings.Contains(logs.String(), "Ctrl-C stops everything")
	})
	if !strings.Contains(logs.String(), "grpckit.yaml is watched: services added to it (e.g. with grpckit add) start while this runs") {
		t.Errorf("make dev does not say that it starts the services added to grpckit.yaml")
	}
	m := regexp.MustCompile(`dev token:  (\S+)`).FindStringSubmatch(logs.String())
	if m == nil {
		t.Fatalf("make dev printed no dev token")
	}
	token := m[1]

	manifest := filepath.Join(proj, manifestFile)
	withoutOrders, err := os.ReadFile(manifest)
	if err != nil {
		t.Fatal(err)
	}
	out = run(t, proj, nil, "make", "add", "NAME=orders")
	t.Logf("make add NAME=orders:\n%s", out)
	for _, f := range []string{"buf.yaml", "buf.gen.yaml", "proto/google/api/annotations.proto", "proto/google/api/http.proto"} {
		if b, err := os.ReadFile(filepath.Join(proj, f)); err != nil || string(b) != made[f] {
			t.Errorf("after make add, %s is not what grpckit new writes (%v)", f, err)
		}
	}
	withOrders, err := os.ReadFile(manifest)
	if err != nil {
		t.Fatal(err)
	}
	dev.waitUntil(t, "make dev starts orders", func() bool { return passing("orders") != "" })
	for _, svc := range []string{"shop", "orders"} {
		checkScaffoldedAuth(t, passing(svc), svc, token)
	}

	// A malformed grpckit.yaml is reported and changes nothing.
	if err := os.WriteFile(manifest, []byte("services: [\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	dev.waitUntil(t, "make dev reports the malformed grpckit.yaml", func() bool {
		return strings.Contains(logs.String(), "ignored: the stack runs on as it is")
	})
	if passing("shop") == "" || passing("orders") == "" || strings.Contains(logs.String(), "stopping it") {
		t.Errorf("a malformed grpckit.yaml changed the stack: shop at %q, orders at %q", passing("shop"), passing("orders"))
	}
	// A service removed from it stops and leaves Consul; listed again, it
	// starts again.
	if err := os.WriteFile(manifest, withoutOrders, 0o644); err != nil {
		t.Fatal(err)
	}
	dev.waitUntil(t, "orders leaves Consul and stops", func() bool {
		return registered("orders") == 0 && strings.Contains(logs.String(), "orders-1 stopped")
	})
	if passing("shop") == "" {
		t.Errorf("removing orders stopped shop too")
	}
	if err := os.WriteFile(manifest, withOrders, 0o644); err != nil {
		t.Fatal(err)
	}
	dev.waitUntil(t, "make dev starts orders again", func() bool { return passing("orders") != "" })
	checkServiceTokens(t, c, []string{"shop", "orders"})

	// Ctrl-C, as a terminal sends it: to the whole foreground process group.
	stopped := strings.Count(logs.String(), "orders-1 stopped")
	exitedOK, err := dev.interrupt()
	if !exitedOK {
		t.Fatal("make dev did not stop within 60s of Ctrl-C")
	}
	// make dies of the SIGINT it got, as in a terminal, once grpckit dev
	// (which handles it) has stopped everything.
	var ee *exec.ExitError
	if err != nil && !(errors.As(err, &ee) && ee.Sys().(syscall.WaitStatus).Signal() == syscall.SIGINT) {
		t.Errorf("make dev exited with %v after Ctrl-C, want status 0 or make's own SIGINT", err)
	}
	for _, want := range []string{"shutting down", "shop-1 stopped"} {
		if !strings.Contains(logs.String(), want) {
			t.Errorf("make dev did not say %q on Ctrl-C", want)
		}
	}
	if strings.Count(logs.String(), "orders-1 stopped") != stopped+1 {
		t.Errorf("make dev did not stop the orders it started again on Ctrl-C")
	}
	for _, svc := range []string{"shop", "orders"} {
		if n := registered(svc); n != 0 {
			t.Errorf("after Ctrl-C Consul still has %d %s instances", n, svc)
		}
	}
	checkServiceTokens(t, c, nil)

	// The module cache is shared with this test's build; GOFLAGS=-mod=mod
	// is not needed: go mod tidy ran in new, and add needs no new module.
	run(t, proj, []string{"GOWORK=off"}, "go", "build", "./...")
	run(t, proj, []string{"GOWORK=off"}, "go", "vet", "./...")
	out = run(t, proj, nil, "make", "test")
	for _, pkg := range []string{"example.com/acme/shop/services/shop", "example.com/acme/shop/services/orders"} {
		if !regexp.MustCompile(`(?m)^ok\s+` + regexp.QuoteMeta(pkg) + `\s`).MatchString(out) {
			t.Errorf("make test did not pass %s:\n%s", pkg, out)
		}
	}
	n := strings.Count(run(t, proj, []string{"GOWORK=off"}, "go", "list", "-m", "all"), "\n")
	t.Logf("the project's module graph: %d modules (go list -m all | wc -l)", n)

	// make generate with the pinned tools of this repository: buf lint
	// passes and buf generate writes what grpckit wrote.
	for _, tool := range []string{"buf", "protoc-gen-go", "protoc-gen-go-grpc"} {
		bin := filepath.Join(root, ".cache", "bin", tool)
		if _, err := os.Stat(bin); err != nil {
			t.Fatalf("%s is missing: run make tools in %s", bin, root)
		}
		if err := os.MkdirAll(filepath.Join(proj, ".cache", "bin"), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.Symlink(bin, filepath.Join(proj, ".cache", "bin", tool)); err != nil {
			t.Fatal(err)
		}
	}
	generated := tree(t, proj)
	run(t, proj, nil, "make", "generate")
	if diff := cmp.Diff(generated, tree(t, proj)); diff != "" {
		t.Errorf("make generate changed the project (-grpckit +buf):\n%s", diff)
	}
}

// makeOlder turns the project at root into one an earlier grpckit made,
// as far as grpckit add can tell: no proto/google, buf files as it wrote
// them. (go.mod keeps requiring googleAPIModule: the first service's
// generated code imports it; TestAddToAnOlderProject covers that.)
func makeOlder(t *testing.T, root string) {
	t.Helper()
	if err := os.RemoveAll(filepath.Join(root, "proto", "google")); err != nil {
		t.Fatal(err)
	}
	module, err := readModule(root)
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range bufConfigs {
		b, err := render(path.Join("project", "pre-annotations", f.tmpl), projectData{Module: module})
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(root, f.path), b, 0o644); err != nil {
			t.Fatal(err)
		}
	}
}

// waitUntil polls cond every 50ms until it holds; it fails the test when
// the group's command exits first or after 3 minutes.
func (g *group) waitUntil(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.After(3 * time.Minute)
	tick := time.NewTicker(50 * time.Millisecond)
	defer tick.Stop()
	for !cond() {
		select {
		case <-g.end:
			t.Fatalf("exited (%v) while waiting until %s", g.err, what)
		case <-deadline:
			t.Fatalf("timed out waiting until %s", what)
		case <-tick.C:
		}
	}
}

// reflectCall calls service/method at addr with a JSON request the way
// grpcurl does: it learns the method's types through server reflection,
// with no generated code. It returns the JSON response; of a server
// streaming method, the responses, one a line.
func reflectCall(ctx context.Context, addr, service, method, request, token string) (string, error) {
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	cc, err := grpc.NewClient("passthrough:///"+addr, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		return "", err
	}
	defer cc.Close()
	stream, err := reflectionpb.NewServerReflectionClient(cc).ServerReflectionInfo(ctx)
	if err != nil {
		return "", err
	}
	err = stream.Send(&reflectionpb.ServerReflectionRequest{
		MessageRequest: &reflectionpb.ServerReflectionRequest_FileContainingSymbol{FileContainingSymbol: service},
	})
	if err != nil {
		return "", err
	}
	resp, err := stream.Recv()
	if err != nil {
		return "", err
	}
	stream.CloseSend()
	var set descriptorpb.FileDescriptorSet
	for _, b := range resp.GetFileDescriptorResponse().GetFileDescriptorProto() {
		fd := new(descriptorpb.FileDescriptorProto)
		if err := proto.Unmarshal(b, fd); err != nil {
			return "", err
		}
		set.File = append(set.File, fd)
	}
	files, err := protodesc.NewFiles(&set)
	if err != nil {
		return "", fmt.Errorf("reflection answered with unusable descriptors: %w", err)
	}
	d, err := files.FindDescriptorByName(protoreflect.FullName(service))
	if err != nil {
		return "", err
	}
	sd, ok := d.(protoreflect.ServiceDescriptor)
	if !ok {
		return "", fmt.Errorf("%s is not a service", service)
	}
	md := sd.Methods().ByName(protoreflect.Name(method))
	if md == nil {
		return "", fmt.Errorf("%s has no method %s", service, method)
	}
	in, out := dynamicpb.NewMessage(md.Input()), dynamicpb.NewMessage(md.Output())
	if err := protojson.Unmarshal([]byte(request), in); err != nil {
		return "", err
	}
	if token != "" {
		ctx = metadata.AppendToOutgoingContext(ctx, "authorization", "Bearer "+token)
	}
	fullMethod := "/" + service + "/" + method
	if !md.IsStreamingServer() {
		if err := cc.Invoke(ctx, fullMethod, in, out); err != nil {
			return "", err
		}
		b, err := protojson.Marshal(out)
		return string(b), err
	}
	cs, err := cc.NewStream(ctx, &grpc.StreamDesc{ServerStreams: true}, fullMethod)
	if err != nil {
		return "", err
	}
	if err := cs.SendMsg(in); err != nil {
		return "", err
	}
	if err := cs.CloseSend(); err != nil {
		return "", err
	}
	var lines []string
	for {
		err := cs.RecvMsg(out)
		if errors.Is(err, io.EOF) {
			return strings.Join(lines, "\n"), nil
		}
		if err != nil {
			return "", err
		}
		b, err := protojson.Marshal(out)
		if err != nil {
			return "", err
		}
		lines = append(lines, string(b))
	}
}

// checkScaffoldedAuth checks, through server reflection, how a service
// that grpckit scaffolded as name answers at addr: Echo is public (its
// auth.public_methods) and answers with or without a token; StreamEcho
// refuses a call without a token and streams with token.
func checkScaffoldedAuth(t *testing.T, addr, name, token string) {
	t.Helper()
	service := name + ".v1." + strings.ToUpper(name[:1]) + name[1:] + "Service"
	for _, tok := range []string{"", token} {
		got, err := reflectCall(t.Context(), addr, service, "Echo", `{"message":"hi `+name+`"}`, tok)
		if err != nil {
			t.Errorf("%s/Echo at %s (token %v): %v", service, addr, tok != "", err)
			continue
		}
		var reply struct{ Message, Instance string }
		if err := json.Unmarshal([]byte(got), &reply); err != nil || reply.Message != "hi "+name || !strings.HasPrefix(reply.Instance, name+"@") {
			t.Errorf("%s/Echo (token %v) = %s (%v), want the message back from a %s instance", service, tok != "", got, err, name)
		}
	}
	if _, err := reflectCall(t.Context(), addr, service, "StreamEcho", `{"message":"anonymous"}`, ""); status.Code(err) != codes.Unauthenticated {
		t.Errorf("%s/StreamEcho without a token = %v, want Unauthenticated", service, err)
	}
	got, err := reflectCall(t.Context(), addr, service, "StreamEcho", `{"message":"hi","count":2}`, token)
	want := `{"message":"hi","sequence":1}` + "\n" + `{"message":"hi","sequence":2}`
	if err != nil || strings.ReplaceAll(got, " ", "") != want {
		t.Errorf("%s/StreamEcho with a token = %q, %v; want %q", service, got, err, want)
	}
}

// TestDevStartsEveryTime starts this repository's full local stack (2
// user, 2 greeter, the gateway and the demo calls) ten times in a row,
// each against a real Consul, and stops it with Ctrl-C: it must come up
// every time. The gateway listens on a port of its own choosing here, not
// the README's 8080, which a running stack may hold.
func TestDevStartsEveryTime(t *testing.T) {
	if testing.Short() {
		t.Skip("starts the local stack ten times; skipped with -short")
	}
	root, err := repo.Root()
	if err != nil {
		t.Fatal(err)
	}
	grpckit := buildGrpckit(t)
	manifest := portZeroManifest(t, root)
	agent := consultest.Start(t)
	c := consultest.Client(t, agent)
	work := t.TempDir()
	for i := 1; i <= 10; i++ {
		start := time.Now()
		dev := startGroup(t, fmt.Sprintf("start %d", i),
			exec.Command(grpckit, "dev", "-project", root, "-manifest", manifest, "-consul", agent.HTTPAddr(), "-dir", work))
		logs := dev.logs
		dev.waitUntil(t, fmt.Sprintf("start %d is up", i), func() bool {
			return strings.Contains(logs.String(), "Ctrl-C stops everything")
		})
		for _, want := range []string{"demo call through consul:///greeter", "demo call through the gateway", "user-2", "greeter-2", "gateway-1"} {
			if !strings.Contains(logs.String(), want) {
				t.Errorf("start %d does not show %q:\n%s", i, want, logs.String())
			}
		}
		exitedOK, err := dev.interrupt()
		switch {
		case !exitedOK:
			t.Fatalf("start %d: grpckit dev did not stop within 60s of Ctrl-C", i)
		case err != nil:
			t.Fatalf("start %d: grpckit dev exited with %v after Ctrl-C", i, err)
		}
		for _, svc := range []string{"user", "greeter", "gateway"} {
			if entries, _, err := c.Health().Service(svc, "", false, nil); err != nil || len(entries) != 0 {
				t.Errorf("start %d: after Ctrl-C Consul still has %d %s instances (%v)", i, len(entries), svc, err)
			}
		}
		t.Logf("start %d: up and down in %v", i, time.Since(start).Round(time.Millisecond))
	}
}

// group is a command run in a process group of its own, as a terminal runs
// a foreground job, with its output in logs.
type group struct {
	cmd  *exec.Cmd
	logs *lockedBuffer
	end  chan struct{} // closed when the command has ended
	err  error         // how it ended; read after end is closed
}

// startGroup starts cmd in a process group of its own with its output in
// the group's logs. When the test ends the group is killed unless it
// exited, and its output is logged under name if the test failed.
func startGroup(t *testing.T, name string, cmd *exec.Cmd) *group {
	t.Helper()
	g := &group{cmd: cmd, logs: &lockedBuffer{}, end: make(chan struct{})}
	cmd.Stdout, cmd.Stderr = g.logs, g.logs
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() {
		g.err = cmd.Wait()
		close(g.end)
	}()
	t.Cleanup(func() {
		select {
		case <-g.end:
		default:
			syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
			<-g.end
		}
		if t.Failed() {
			t.Logf("%s:\n%s", name, g.logs.String())
		}
	})
	return g
}

// interrupt sends Ctrl-C to the whole group, as a terminal does, and
// returns whether the command exited within 60s and how.
func (g *group) interrupt() (exited bool, err error) {
	syscall.Kill(-g.cmd.Process.Pid, syscall.SIGINT)
	select {
	case <-g.end:
		return true, g.err
	case <-time.After(60 * time.Second):
		return false, nil
	}
}

// portZeroManifest writes the repository's grpckit.yaml with the gateway
// on a port of its own choosing instead of 127.0.0.1:8080 (another stack may
// hold it) and returns its path.
func portZeroManifest(t *testing.T, root string) string {
	t.Helper()
	src, err := os.ReadFile(filepath.Join(root, manifestFile))
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Contains(src, []byte(`"127.0.0.1:8080"`)) {
		t.Fatalf("%s does not put the gateway on 127.0.0.1:8080", manifestFile)
	}
	manifest := filepath.Join(t.TempDir(), manifestFile)
	if err := os.WriteFile(manifest, bytes.ReplaceAll(src, []byte(`"127.0.0.1:8080"`), []byte(`"127.0.0.1:0"`)), 0o644); err != nil {
		t.Fatal(err)
	}
	return manifest
}
