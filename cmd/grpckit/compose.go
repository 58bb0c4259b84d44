package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"

	"github.com/compose-spec/compose-go/v2/loader"
	"github.com/compose-spec/compose-go/v2/types"
)

// aclInitScript is the shell script (in compose's escaping: $$ for $) of
// the one-shot consul-acl-<name> containers of a compose stack with Consul
// ACLs: run as `sh -ec SCRIPT acl-init NAME TOKEN` with the management
// token in CONSUL_HTTP_TOKEN, it creates or updates the policy
// grpckit-NAME with the rules of consul.ServiceRules(NAME), and the token
// TOKEN with that policy unless it exists. The repository's
// docker-compose.yml holds the same script (TestComposeACLScript).
const aclInitScript = `name="$$1" secret="$$2"
rules="/tmp/grpckit-$$name.hcl"
cat > "$$rules" <<EOF
service "$$name" {
  policy = "write"
}
service_prefix "" {
  policy = "read"
}
node_prefix "" {
  policy = "read"
}
key "grpckit/$$name" {
  policy = "read"
}
EOF
if consul acl policy read -name "grpckit-$$name" >/dev/null 2>&1; then
  consul acl policy update -name "grpckit-$$name" -rules "@$$rules" >/dev/null
else
  consul acl policy create -name "grpckit-$$name" -description "grpckit service $$name" -rules "@$$rules" >/dev/null
fi
if CONSUL_HTTP_TOKEN="$$secret" consul acl token read -self >/dev/null 2>&1; then
  echo "consul token of $$name: present"
else
  consul acl token create -secret "$$secret" -policy-name "grpckit-$$name" -description "grpckit service $$name" >/dev/null
  echo "consul token of $$name: created"
fi`

// composeData is what templates/compose.yml.tmpl sees.
type composeData struct {
	scaffoldData
	Merge  bool // the file defines the &service and &env anchors the entry can merge
	Deps   bool // the file defines the &deps anchor (x-service's depends_on)
	Consul bool // the file has a consul service to depend on
	Port   int  // host port on 127.0.0.1 published for the gRPC port; 0 for none
	// ACL is whether the file runs Consul with ACLs: it defines the
	// &acl-init anchor of the consul-acl-<name> containers. The service
	// then gets a consul-acl-<name> container and the token Token (the
	// default of the variable TokenVar) as CONSUL_HTTP_TOKEN.
	ACL      bool
	Token    string
	TokenVar string
}

var (
	// servicesKeyRe is the top-level services key of a block mapping.
	servicesKeyRe = regexp.MustCompile(`^services:[ \t]*(#.*)?$`)
	// serviceAnchorRe and envAnchorRe find the anchors of the repository's
	// shared service settings (x-service: &service, environment: &env).
	serviceAnchorRe = regexp.MustCompile(`(?m):[ \t]*&service[ \t]*$`)
	envAnchorRe     = regexp.MustCompile(`(?m)^[ \t]+environment:[ \t]*&env[ \t]*$`)
	depsAnchorRe    = regexp.MustCompile(`(?m)^[ \t]+depends_on:[ \t]*&deps[ \t]*$`)
	// aclInitAnchorRe finds the anchor of the consul-acl-<name> containers.
	aclInitAnchorRe = regexp.MustCompile(`(?m)^x-acl-init:[ \t]*&acl-init[ \t]*$`)
)

// First and last host port tried for a new service's published gRPC port.
const (
	firstHostPort = 9001
	lastHostPort  = 9099
)

// addComposeService returns the compose file src (path is its name, root
// the project directory) with a service for d appended to its services
// mapping, and the host port the service publishes. It edits the text, so
// comments, anchors and layout stay as they are, and checks with
// compose-go that the result loads and holds the new service as intended.
func addComposeService(ctx context.Context, root, path string, src []byte, d scaffoldData) ([]byte, int, error) {
	before, err := loadCompose(ctx, root, path, src)
	if err != nil {
		return nil, 0, fmt.Errorf("%s does not load before the change: %w", filepath.Base(path), err)
	}
	if _, ok := before.Services[d.Name]; ok {
		return nil, 0, fmt.Errorf("%s already has a service %q", filepath.Base(path), d.Name)
	}
	if _, ok := before.DisabledServices[d.Name]; ok {
		return nil, 0, fmt.Errorf("%s already has a service %q (disabled by a profile)", filepath.Base(path), d.Name)
	}
	_, consul := before.Services["consul"]
	cd := composeData{
		scaffoldData: d,
		Merge:        serviceAnchorRe.Match(src) && envAnchorRe.Match(src),
		Deps:         depsAnchorRe.Match(src),
		Consul:       consul,
		Port:         freeHostPort(before),
		ACL:          consul && aclInitAnchorRe.Match(src),
		Token:        newUUID(),
		TokenVar:     d.EnvPrefix + "_CONSUL_TOKEN",
	}
	if _, ok := before.Services["consul-acl-"+d.Name]; ok && cd.ACL {
		return nil, 0, fmt.Errorf("%s already has a service %q", filepath.Base(path), "consul-acl-"+d.Name)
	}
	entry, err := render("compose.yml.tmpl", cd)
	if err != nil {
		return nil, 0, err
	}
	out, err := insertService(src, string(entry))
	if err != nil {
		return nil, 0, fmt.Errorf("%s: %w", filepath.Base(path), err)
	}
	after, err := loadCompose(ctx, root, path, out)
	if err != nil {
		return nil, 0, fmt.Errorf("%s does not load with the %s service added (left unchanged): %w", filepath.Base(path), d.Name, err)
	}
	if err := checkComposeService(before, after, cd); err != nil {
		return nil, 0, fmt.Errorf("%s with the %s service added (left unchanged): %w", filepath.Base(path), d.Name, err)
	}
	return out, cd.Port, nil
}

// loadCompose loads a compose file from memory the way `docker compose`
// would, with the process environment for interpolation.
func loadCompose(ctx context.Context, root, path string, src []byte) (*types.Project, error) {
	return loader.LoadWithContext(ctx, types.ConfigDetails{
		WorkingDir:  root,
		ConfigFiles: []types.ConfigFile{{Filename: path, Content: src}},
		Environment: types.NewMapping(os.Environ()),
	}, func(o *loader.Options) { o.SetProjectName("grpckit", true) })
}

// freeHostPort returns the first port from firstHostPort no service
// publishes, or 0 when they are all taken.
func freeHostPort(p *types.Project) int {
	used := map[int]bool{}
	for _, svc := range p.AllServices() {
		for _, port := range svc.Ports {
			lo, hi, ok := strings.Cut(port.Published, "-")
			first, err := strconv.Atoi(lo)
			if err != nil {
				continue
			}
			last := first
			if ok {
				if last, err = strconv.Atoi(hi); err != nil {
					last = first
				}
			}
			for n := first; n <= last && n <= lastHostPort; n++ {
				used[n] = true
			}
		}
	}
	for n := firstHostPort; n <= lastHostPort; n++ {
		if !used[n] {
			return n
		}
	}
	return 0
}

// checkComposeService checks that after is before plus the service cd
// describes.
func checkComposeService(before, after *types.Project, cd composeData) error {
	want := append(before.ServiceNames(), cd.Name)
	if cd.ACL {
		want = append(want, "consul-acl-"+cd.Name)
	}
	slices.Sort(want)
	got := after.ServiceNames()
	slices.Sort(got)
	if !slices.Equal(want, got) {
		return fmt.Errorf("services are %v, want %v", got, want)
	}
	svc := after.Services[cd.Name]
	var problems []string
	if svc.Build == nil || filepath.ToSlash(svc.Build.Dockerfile) != "services/"+cd.Name+"/Dockerfile" {
		problems = append(problems, "its build does not use services/"+cd.Name+"/Dockerfile")
	}
	if hc := svc.HealthCheck; hc == nil || len(hc.Test) < 3 || hc.Test[1] != "/"+cd.Name || hc.Test[2] != "-probe" {
		problems = append(problems, "its health check does not run /"+cd.Name+" -probe")
	}
	for _, env := range []string{"GRPCKIT_SERVER_LISTEN", "GRPCKIT_SERVER_ADMIN", "GRPCKIT_REGISTRY_ADDRESS", cd.EnvPrefix + "_MAX_MESSAGE_BYTES"} {
		if _, ok := svc.Environment[env]; !ok {
			problems = append(problems, "it does not set "+env)
		}
	}
	if dep, ok := svc.DependsOn["consul"]; cd.Consul && (!ok || dep.Condition != types.ServiceConditionHealthy) {
		problems = append(problems, "it does not wait for consul to be healthy")
	}
	if cd.ACL {
		init := "consul-acl-" + cd.Name
		tok := svc.Environment["CONSUL_HTTP_TOKEN"]
		if tok == nil || *tok == "" {
			problems = append(problems, "it gets no CONSUL_HTTP_TOKEN")
		} else if cmd := after.Services[init].Command; len(cmd) != 2 || cmd[0] != cd.Name || cmd[1] != *tok {
			problems = append(problems, fmt.Sprintf("%s runs %q, not its name and token", init, cmd))
		}
		if dep, ok := svc.DependsOn[init]; !ok || dep.Condition != types.ServiceConditionCompletedSuccessfully {
			problems = append(problems, "it does not wait for "+init+" to complete")
		}
	}
	if len(problems) > 0 {
		return errors.New(strings.Join(problems, "; "))
	}
	return nil
}

// insertService inserts entry, a YAML mapping entry written at column 0,
// at the end of the block mapping under the top-level services key of src,
// indented like the mapping's other entries and after a blank line. Lines
// at column 0 that follow the mapping (comments, other keys) stay where
// they are.
func insertService(src []byte, entry string) ([]byte, error) {
	lines := strings.SplitAfter(string(src), "\n")
	start := slices.IndexFunc(lines, func(l string) bool { return servicesKeyRe.MatchString(strings.TrimRight(l, "\r\n")) })
	if start < 0 {
		return nil, errors.New("no top-level `services:` block mapping to add the service to")
	}
	indent, last := "", start
scan:
	for i := start + 1; i < len(lines); i++ {
		l := strings.TrimRight(lines[i], "\r\n")
		trimmed := strings.TrimLeft(l, " ")
		switch {
		case strings.TrimSpace(l) == "":
			continue
		case trimmed == l && strings.HasPrefix(l, "#"):
			continue // a comment at column 0: it belongs to what follows
		case trimmed == l:
			break scan // the next top-level key ends the mapping
		}
		if indent == "" && !strings.HasPrefix(trimmed, "#") {
			indent = l[:len(l)-len(trimmed)]
		}
		last = i
	}
	if indent == "" {
		indent = "  "
	}
	nl := "\n"
	if strings.HasSuffix(lines[start], "\r\n") {
		nl = "\r\n"
	}
	var b strings.Builder
	for _, l := range lines[:last+1] {
		b.WriteString(l)
	}
	if !strings.HasSuffix(lines[last], "\n") {
		b.WriteString(nl)
	}
	if last != start {
		b.WriteString(nl)
	}
	for _, l := range strings.Split(strings.TrimRight(entry, "\n"), "\n") {
		if l != "" {
			b.WriteString(indent + l)
		}
		b.WriteString(nl)
	}
	for _, l := range lines[last+1:] {
		b.WriteString(l)
	}
	return []byte(b.String()), nil
}
