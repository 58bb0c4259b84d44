package main

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io/fs"
	"maps"
	"net/http"
	"os"
	"os/exec"
	"path"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"syscall"
	"time"

	"github.com/hashicorp/consul/api"

	"github.com/grpckit/grpckit/kit/middleware/auth"
	"github.com/grpckit/grpckit/kit/registry/consul"
	"github.com/grpckit/grpckit/kit/registry/consul/consultest"
	"github.com/grpckit/grpckit/kit/service"
)

// proc is one service instance run by the dev stack.
type proc struct {
	service   string // e.g. user
	name      string // e.g. user-1
	addr      string // gRPC address, from its ready report
	admin     string // admin HTTP address, from its ready report
	listeners map[string]string
	log       string // log file
	ready     string // its ready report (service.WithReadyFile)
	cmd       *exec.Cmd
	exited    chan struct{} // closed when the process exited
	err       error         // exit status; read after exited is closed
}

const devUsage = `usage: grpckit dev [-project DIR] [-consul ADDR] [-dir DIR] [-manifest FILE]

Runs the local stack of the grpckit project at or above DIR (the nearest
folder holding grpckit.yaml) in the foreground: Consul (the agent at ADDR
when one answers there, else a dev agent started on ADDR: consul from
$CONSUL_BIN or PATH, else Consul ` + consulVersion + ` built once from the Go module
proxy and cached per user), then every service of grpckit.yaml, in order,
with its instance count.

The agent it starts runs ACLs with the default policy deny and a
management token made for the run: grpckit dev prints it and saves it in
DIR/consul.token (mode 0600; log in to the Consul UI with it, or
consul kv put -token-file .cache/dev/consul.token ...). Every service gets a
token of its own in CONSUL_HTTP_TOKEN that may register the service, read
the catalog and read its key grpckit/<name>, nothing else. An agent that
was running already is used as it is: with ACLs on, CONSUL_HTTP_TOKEN must
hold a token that may write ACLs. Every instance listens on 127.0.0.1 ports it picks
itself and reports them. It waits until every instance passes its Consul
health check, prints where everything runs, and on Ctrl-C stops the
instances in the reverse order (they deregister and drain first), then the
Consul agent it started.

While it runs it reads grpckit.yaml (or FILE) every second: a service
added to it (grpckit add does that) gets its token, is built and started
like the first ones and is waited for; a service removed from it is
stopped. A file that does not parse is reported and ignored; a change to a
running service applies when grpckit dev starts again.

flags:
`

func runDev(ctx context.Context, args []string) error {
	fs := flag.NewFlagSet("dev", flag.ContinueOnError)
	projectDir := fs.String("project", ".", "a folder of the project to run")
	consulAddr := fs.String("consul", "127.0.0.1:8500", "HTTP address of the Consul agent to use or start")
	dir := fs.String("dir", "", "working folder for binaries, data and logs (default <project>/.cache/dev)")
	manifestPath := fs.String("manifest", "", "the services to run, in grpckit.yaml's format (default: the project's grpckit.yaml)")
	fs.Usage = func() {
		fmt.Fprint(fs.Output(), devUsage)
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return nil
		}
		return err
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("unexpected arguments %q", fs.Args())
	}
	proj, err := findProject(*projectDir)
	if err != nil {
		return err
	}
	listing := filepath.Join(proj.root, manifestFile)
	if *manifestPath != "" {
		b, err := os.ReadFile(*manifestPath)
		if err != nil {
			return err
		}
		if proj.manifest, err = parseManifest(b); err != nil {
			return fmt.Errorf("%s: %w", *manifestPath, err)
		}
		listing = *manifestPath
	}
	if len(proj.manifest.Services) == 0 {
		return fmt.Errorf("%s lists no services: add one with grpckit add NAME", listing)
	}
	if *dir == "" {
		*dir = filepath.Join(proj.root, ".cache", "dev")
	}
	// The build runs in the project root and the instances here: one
	// absolute folder for both.
	if *dir, err = filepath.Abs(*dir); err != nil {
		return err
	}
	logs := filepath.Join(*dir, "logs")
	if err := os.MkdirAll(logs, 0o755); err != nil {
		return err
	}
	step("running the project %s (%s)", proj.module, proj.root)
	// interrupted turns the error of a start-up step cut short by Ctrl-C
	// into a clean stop: what started is stopped by the deferred calls.
	interrupted := func(err error) error {
		if ctx.Err() != nil {
			step("interrupted during start-up: stopping what started")
			return nil
		}
		return err
	}

	// 1. Consul: use the agent at the address, else start a dev agent there,
	// with ACLs on (default deny) and a management token made for the run.
	var agent *consultest.Agent
	var acl *devACL
	if leader(*consulAddr) {
		step("using the Consul agent already at %s", *consulAddr)
		if acl, err = probeACL(ctx, *consulAddr); err != nil {
			return err
		}
	} else {
		acl = &devACL{operator: newUUID(), enabled: true, tokens: map[string]*api.ACLToken{}}
		bin, err := ensureConsul(ctx, os.Stdout)
		if err != nil {
			return interrupted(err)
		}
		logFile, err := os.Create(filepath.Join(logs, "consul.log"))
		if err != nil {
			return err
		}
		defer logFile.Close()
		step("starting consul agent -dev on %s with ACLs on, default deny (%s)", *consulAddr, bin)
		if agent, err = consultest.StartAgent(ctx, consultest.Config{Binary: bin, HTTPAddr: *consulAddr, Output: logFile,
			ManagementToken: acl.operator}); err != nil {
			return interrupted(err)
		}
		defer func() {
			step("stopping Consul")
			agent.Interrupt(10 * time.Second)
		}()
	}
	// Everything grpckit dev asks Consul goes with the operator token; each
	// service gets a token of its own (CONSUL_HTTP_TOKEN).
	oc, closeIdle, err := acl.operatorClient(*consulAddr)
	if err != nil {
		return err
	}
	defer closeIdle()
	tokenPath := filepath.Join(*dir, tokenFile)
	if acl.enabled {
		if err := acl.saveOperator(tokenPath); err != nil {
			return err
		}
		step("Consul ACLs are on (default deny); operator token %s, saved in %s", acl.operator, tokenPath)
		// The services' tokens are made as they start (stack.launch).
		if agent == nil { // the agent outlives the run: take the tokens back
			defer acl.deleteTokens(oc)
		}
	} else if err := os.Remove(tokenPath); err != nil && !errors.Is(err, os.ErrNotExist) {
		return err
	}

	// 2. Build and start the services, and stop them (deregistered) on
	// the way out. Every service checks tokens with a secret made for this
	// run (through the environment, which ps does not show) and serves
	// reflection (for grpcurl).
	secret, err := devSecret()
	if err != nil {
		return err
	}
	reg := consul.New(oc)
	defer reg.Close()
	st := &stack{
		root: proj.root, consulAddr: *consulAddr, dir: *dir, logs: logs, bin: filepath.Join(*dir, "bin"),
		secret: secret, acl: acl, oc: oc, reg: reg,
		running: map[string]manifestService{}, exits: make(chan *proc), done: make(chan struct{}),
	}
	defer close(st.done) // after stopAll, below: the instances' exit reports stop waiting
	defer func() { stopAll(st.procs) }()
	if _, err := st.launch(ctx, proj.manifest.Services); err != nil {
		return interrupted(err)
	}
	// A token every service of the stack accepts, an admin's: for grpcurl,
	// curl and scripts (also in the data folder).
	token, err := auth.IssueHS256(secret, "dev", 24*time.Hour, auth.WithClaim(auth.AdminClaim, true))
	if err != nil {
		return err
	}
	tokenFile := filepath.Join(*dir, "dev.token")
	if err := writeSecretFile(tokenFile, token); err != nil {
		return err
	}
	summary(*consulAddr, st.procs, *dir, acl, tokenPath, token, tokenFile)
	if proj.inRepo() {
		if err := repoDemo(ctx, reg, st.procs, token); err != nil {
			return fmt.Errorf("demo call: %w", err)
		}
	}
	fmt.Printf("    %s is watched: services added to it (e.g. with grpckit add) start while this runs, removed ones stop.\n", listing)
	fmt.Println("    Ctrl-C stops everything; instances deregister from Consul first.")

	// 3. Stay in the foreground: report instances that exit, and follow
	// the services the manifest lists.
	w := &manifestWatch{path: listing}
	tick := time.NewTicker(time.Second)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			fmt.Println()
			step("shutting down: instances deregister, drain and stop (Ctrl-C again to kill)")
			return nil
		case p := <-st.exits:
			if slices.Contains(st.procs, p) { // not one stopped on purpose
				step("%s exited (%v); log: %s", p.name, p.err, p.log)
				st.procs = remove(st.procs, p)
			}
		case <-tick.C:
			st.follow(ctx, w)
		}
	}
}

// stack is the local stack of one grpckit dev run: the instances it runs
// and what starting more takes. Only the run's goroutine uses it.
type stack struct {
	root       string // the project root, where the services are built
	consulAddr string
	dir        string // the working folder: {data}
	logs       string // the folder of the instances' logs and ready reports
	bin        string // the folder of the binaries
	secret     string // the HMAC secret of the run: {secret}
	acl        *devACL
	oc         *api.Client // the operator's
	reg        *consul.Registry

	procs   []*proc                    // the running instances, in the order they started
	running map[string]manifestService // the services started, by name, as the manifest listed them
	exits   chan *proc                 // every instance that exits, unless done is closed first
	done    chan struct{}              // closed when the run ends
}

// launch makes the Consul tokens of services, builds them, starts their
// instances and waits until every one passes its Consul health check. The
// instances it started are in s.procs, also when it fails.
func (s *stack) launch(ctx context.Context, services []manifestService) ([]*proc, error) {
	var names []string
	for _, svc := range services {
		names = append(names, svc.Name)
	}
	if err := s.acl.serviceTokens(ctx, s.oc, names); err != nil {
		return nil, fmt.Errorf("consul service tokens: %w", err)
	}
	step("compiling %s into %s", strings.Join(names, ", "), s.bin)
	buildArgs := []string{"build", "-o", s.bin + string(filepath.Separator)}
	for _, svc := range services {
		buildArgs = append(buildArgs, svc.mainPath())
	}
	build := exec.CommandContext(ctx, "go", buildArgs...)
	build.Dir, build.Stdout, build.Stderr = s.root, os.Stderr, os.Stderr
	if err := build.Run(); err != nil {
		return nil, fmt.Errorf("go build: %w", err)
	}

	// A service's variables and flags may name the working folder and the
	// secret ({data}, {secret}), and override the stack's own.
	expand := strings.NewReplacer("{data}", s.dir, "{secret}", s.secret).Replace
	var started []*proc
	want := map[string]int{}
	for _, svc := range services {
		var extra []string
		env := []string{"GRPCKIT_AUTH_HMAC_SECRET=" + s.secret, "GRPCKIT_SERVER_REFLECTION=true"}
		for _, a := range svc.Args {
			extra = append(extra, expand(a))
		}
		var own []string
		for k, v := range svc.Env {
			own = append(own, k+"="+expand(v))
		}
		slices.Sort(own)
		env = append(env, own...)                 // the last value of a variable wins
		env = append(env, s.acl.env(svc.Name)...) // last: wins over the operator's own CONSUL_HTTP_TOKEN
		exe := filepath.Join(s.bin, path.Base(svc.mainPath()))
		s.running[svc.Name] = svc
		for i := 1; i <= svc.instances(); i++ {
			p, err := s.start(exe, svc.Name, fmt.Sprintf("%s-%d", svc.Name, i), extra, env)
			if err != nil {
				return started, err
			}
			s.procs = append(s.procs, p)
			started = append(started, p)
		}
		want[svc.Name] = svc.instances()
	}
	if err := awaitReady(ctx, started); err != nil {
		return started, err
	}
	step("waiting until every instance passes its Consul health check")
	if err := waitPassing(ctx, s.reg.Client(), started, want); err != nil {
		return started, err
	}
	return started, nil
}

// stopServices stops the instances of the named services (see [stopAll]) and
// forgets the services.
func (s *stack) stopServices(names []string) {
	var stopping []*proc
	s.procs = slices.DeleteFunc(s.procs, func(p *proc) bool {
		if slices.Contains(names, p.service) {
			stopping = append(stopping, p)
			return true
		}
		return false
	})
	for _, n := range names {
		delete(s.running, n)
	}
	stopAll(stopping)
}

// manifestWatch is what [stack.follow] remembers of the manifest between
// two looks.
type manifestWatch struct {
	path     string
	last     []byte // the content last read
	reported string // the error last reported, to report it once
}

// follow reads the manifest and, when its content changed, stops the
// services it no longer lists and starts the ones it newly lists the way
// the first ones started (token, build, instances, wait until passing). A manifest that cannot be read or parsed is
// reported (once) and ignored: the stack runs on as it is. A service that
// fails to start is stopped and reported; the stack runs on without it.
func (s *stack) follow(ctx context.Context, w *manifestWatch) {
	b, err := os.ReadFile(w.path)
	if err == nil && bytes.Equal(b, w.last) {
		return
	}
	var m *manifest
	if err == nil {
		w.last = b
		m, err = parseManifest(b)
	}
	if err != nil {
		if err.Error() != w.reported {
			step("%s: %v; ignored: the stack runs on as it is", w.path, err)
			w.reported = err.Error()
		}
		return
	}
	w.reported = ""
	listed := map[string]bool{}
	var added []manifestService
	var addedNames []string
	for _, svc := range m.Services {
		listed[svc.Name] = true
		old, ok := s.running[svc.Name]
		switch {
		case !ok:
			added = append(added, svc)
			addedNames = append(addedNames, svc.Name)
		case !reflect.DeepEqual(old, svc):
			step("%s changed in %s: grpckit dev applies that when it starts again", svc.Name, w.path)
		}
	}
	var removed []string
	for name := range s.running {
		if !listed[name] {
			removed = append(removed, name)
		}
	}
	slices.Sort(removed)
	if len(removed) > 0 {
		step("%s no longer lists %s: stopping it", w.path, strings.Join(removed, ", "))
		s.stopServices(removed)
	}
	if len(added) == 0 {
		return
	}
	step("%s lists %s: starting it", w.path, strings.Join(addedNames, ", "))
	started, err := s.launch(ctx, added)
	if err != nil {
		s.stopServices(addedNames)
		if ctx.Err() == nil {
			step("could not start %s: %v\n    grpckit dev runs on without it; to try again, remove it from %s and list it again (or restart grpckit dev)",
				strings.Join(addedNames, ", "), err, w.path)
		}
		return
	}
	step("%s up", strings.Join(addedNames, ", "))
	printInstances(started)
}

func step(format string, args ...any) {
	fmt.Printf("==> "+format+"\n", args...)
}

// leader reports whether a Consul agent at addr answers with a leader.
func leader(addr string) bool {
	c := http.Client{Timeout: time.Second}
	resp, err := c.Get("http://" + addr + "/v1/status/leader")
	if err != nil {
		return false
	}
	defer resp.Body.Close()
	var b [128]byte
	n, _ := resp.Body.Read(b[:])
	return resp.StatusCode == http.StatusOK && len(strings.Trim(string(b[:n]), "\"\n ")) > 0
}

// start runs one instance; it is sent on s.exits when it exits.
func (s *stack) start(binary, service, name string, extra, env []string) (*proc, error) {
	// The instance listens on port 0 itself and reports the addresses it
	// got: no port is picked here and bound later by someone else.
	p := &proc{service: service, name: name, log: filepath.Join(s.logs, name+".log"), ready: filepath.Join(s.logs, name+".ready.json"),
		exited: make(chan struct{})}
	if err := os.Remove(p.ready); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return nil, err
	}
	f, err := os.Create(p.log)
	if err != nil {
		return nil, err
	}
	args := append([]string{"-server.listen", "127.0.0.1:0", "-server.admin", "127.0.0.1:0", "-registry.address", s.consulAddr, "-server.drain", "2s"}, extra...)
	p.cmd = exec.Command(binary, args...)
	p.cmd.Env = append(append(os.Environ(), env...), "GRPCKIT_READY_FILE="+p.ready)
	p.cmd.Stdout, p.cmd.Stderr = f, f
	setProcAttr(p.cmd)
	if err := p.cmd.Start(); err != nil {
		f.Close()
		return nil, fmt.Errorf("start %s: %w", name, err)
	}
	go func() {
		p.err = p.cmd.Wait()
		f.Close()
		close(p.exited)
		select {
		case s.exits <- p:
		case <-s.done:
		}
	}()
	step("started %s (pid %d)", name, p.cmd.Process.Pid)
	return p, nil
}

// awaitReady waits until every instance wrote its ready report, and takes
// its addresses from it.
func awaitReady(ctx context.Context, procs []*proc) error {
	ctx, cancel := context.WithTimeout(ctx, 60*time.Second)
	defer cancel()
	for _, p := range procs {
		for {
			if b, err := os.ReadFile(p.ready); err == nil {
				var r service.Ready
				if err := json.Unmarshal(b, &r); err != nil {
					return fmt.Errorf("%s: ready report %s: %w", p.name, p.ready, err)
				}
				if r.Service != p.service {
					return fmt.Errorf("%s registers as service %q, but %s lists it as %q: grpckit dev would wait for %s in vain (fix its name or main in %s)",
						p.name, r.Service, manifestFile, p.service, p.service, manifestFile)
				}
				p.addr, p.admin, p.listeners = r.GRPC, r.Admin, r.Listeners
				break
			}
			select {
			case <-p.exited:
				return fmt.Errorf("%s exited during start-up (%v); its log %s ends with:\n%s", p.name, p.err, p.log, tail(p.log, 15))
			case <-ctx.Done():
				return fmt.Errorf("%s did not report its addresses: %w", p.name, ctx.Err())
			case <-time.After(20 * time.Millisecond):
			}
		}
	}
	return nil
}

// waitPassing polls Consul until every service has its count of passing instances.
func waitPassing(ctx context.Context, c *api.Client, procs []*proc, want map[string]int) error {
	ctx, cancel := context.WithTimeout(ctx, 60*time.Second)
	defer cancel()
	for {
		ready := true
		for svc, n := range want {
			entries, _, err := c.Health().Service(svc, "", true, (&api.QueryOptions{}).WithContext(ctx))
			if err != nil || len(entries) < n {
				ready = false
			}
		}
		if ready {
			return nil
		}
		for _, p := range procs {
			select {
			case <-p.exited:
				return fmt.Errorf("%s exited during start-up (%v); its log %s ends with:\n%s", p.name, p.err, p.log, tail(p.log, 15))
			default:
			}
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("instances not passing in Consul: %w", ctx.Err())
		case <-time.After(100 * time.Millisecond):
		}
	}
}

// devSecret returns a random HMAC secret for the services that ask for one ({secret} in grpckit.yaml).
func devSecret() (string, error) {
	b := make([]byte, 32)
	if _, err := rand.Read(b); err != nil {
		return "", err
	}
	return hex.EncodeToString(b), nil
}

// summary prints where everything runs, the operator token and the dev
// token.
func summary(consulAddr string, procs []*proc, dir string, acl *devACL, tokenPath, token, tokenFile string) {
	step("the local stack is up")
	fmt.Printf("    Consul UI:  http://%s/ui/\n", consulAddr)
	if acl.enabled {
		fmt.Printf("    Consul ACLs on, default deny; operator token %s (log in to the UI with it)\n", acl.operator)
		fmt.Printf("    consul:     CONSUL_HTTP_ADDR=%s consul kv put -token-file %s grpckit/<service> @config.yaml\n", consulAddr, tokenPath)
	}
	printInstances(procs)
	fmt.Printf("    dev token:  %s\n", token)
	fmt.Printf("                (24h, subject dev, admin: every service of the stack accepts it; also in %s)\n", tokenFile)
	if len(procs) > 0 {
		fmt.Printf("    try:        grpcurl -plaintext %s list   (server reflection)\n", procs[0].addr)
		fmt.Printf("                grpcurl -plaintext -H \"authorization: Bearer $(cat %s)\" %s describe\n", tokenFile, procs[0].addr)
	}
	fmt.Printf("    data:       %s\n", dir)
}

// printInstances prints where each instance runs and its log.
func printInstances(procs []*proc) {
	for _, p := range procs {
		fmt.Printf("    %-12s  gRPC %-21s  admin http://%s/debug/kit", p.name, p.addr, p.admin)
		names := slices.Sorted(maps.Keys(p.listeners))
		for _, n := range names {
			fmt.Printf("  %s http://%s", n, p.listeners[n])
		}
		fmt.Printf("  log %s\n", p.log)
	}
}

func remove(procs []*proc, p *proc) []*proc {
	out := procs[:0]
	for _, q := range procs {
		if q != p {
			out = append(out, q)
		}
	}
	return out
}

// stopAll stops the instances callers first, in the reverse order of
// their start (the gateway, then the greeters, then the users), so that no
// instance loses its backends while it drains. Each group gets SIGTERM at
// once and is waited for; an instance that takes longer than 20s is killed.
func stopAll(procs []*proc) {
	service := func(p *proc) string { return p.service }
	for end := len(procs); end > 0; {
		start := end - 1
		for start > 0 && service(procs[start-1]) == service(procs[end-1]) {
			start--
		}
		group := procs[start:end]
		for _, p := range group {
			p.cmd.Process.Signal(syscall.SIGTERM)
		}
		deadline := time.After(20 * time.Second)
		for _, p := range group {
			select {
			case <-p.exited:
				step("%s stopped", p.name)
			case <-deadline:
				p.cmd.Process.Kill()
				<-p.exited
				step("%s killed after 20s", p.name)
			}
		}
		end = start
	}
}

func tail(path string, n int) string {
	b, err := os.ReadFile(path)
	if err != nil {
		return err.Error()
	}
	lines := strings.Split(strings.TrimRight(string(b), "\n"), "\n")
	return strings.Join(lines[max(0, len(lines)-n):], "\n")
}
