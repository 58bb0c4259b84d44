package resolver

import (
	"cmp"
	"fmt"
	"net/url"
	"regexp"
	"slices"
	"strings"

	"github.com/grpckit/grpckit/kit/registry"
)

// Scheme is the resolver scheme:
// consul://[agent]/<service>[?tag=...&dc=...&failover=...].
const Scheme = "consul"

// LocalDatacenter names, in logs and balancer statistics, the datacenter of
// a target without dc=: the agent's own, whatever its name.
const LocalDatacenter = "local"

// datacenterName is what Consul accepts as a datacenter name.
var datacenterName = regexp.MustCompile(`^[A-Za-z0-9_-]+$`)

// Target is a parsed consul target.
type Target struct {
	// Service is the service name.
	Service string
	// Agent is the Consul agent address from the authority, if any.
	Agent string
	// Options are the tag and datacenter filters of the local watch.
	Options []registry.WatchOption
	// Datacenter is the dc= parameter: the local datacenter of the target;
	// empty means the agent's own.
	Datacenter string
	// Failover lists the datacenters of the failover= parameter in order:
	// where calls go when the local datacenter has no passing instance.
	// Empty: no failover.
	Failover []string
}

// Datacenters returns the target's datacenters in failover order, the
// local one first, named as in logs and statistics: Datacenter, or
// [LocalDatacenter] without one, then Failover.
func (t Target) Datacenters() []string {
	return append([]string{cmp.Or(t.Datacenter, LocalDatacenter)}, t.Failover...)
}

// watchOptions returns the options of the watch of the i-th datacenter of
// [Target.Datacenters].
func (t Target) watchOptions(i int) []registry.WatchOption {
	if i == 0 {
		return t.Options
	}
	return append(slices.Clone(t.Options), registry.WithDatacenter(t.Failover[i-1]))
}

// ParseTarget parses consul://[agent]/<service>[?tag=...&dc=...&failover=...].
// failover is a comma-separated list of datacenter names, each once and
// none the dc= one ([LocalDatacenter] only with a dc=). Unknown query parameters are an error, so a typo is not
// silently ignored.
func ParseTarget(u url.URL) (Target, error) {
	t := Target{Service: strings.TrimPrefix(u.Path, "/"), Agent: u.Host}
	if u.Opaque != "" {
		t.Service = u.Opaque
	}
	if t.Service == "" || strings.Contains(t.Service, "/") {
		return Target{}, fmt.Errorf("consul resolver: target %q: want consul:///<service>", u.String())
	}
	q, err := url.ParseQuery(u.RawQuery)
	if err != nil {
		return Target{}, fmt.Errorf("consul resolver: target %q: %w", u.String(), err)
	}
	for k, v := range q {
		if len(v) != 1 {
			return Target{}, fmt.Errorf("consul resolver: target %q: parameter %q given %d times", u.String(), k, len(v))
		}
		switch k {
		case "tag":
			t.Options = append(t.Options, registry.WithTag(v[0]))
		case "dc":
			t.Datacenter = v[0]
			t.Options = append(t.Options, registry.WithDatacenter(v[0]))
		case "failover":
			t.Failover = strings.Split(v[0], ",")
		default:
			return Target{}, fmt.Errorf("consul resolver: target %q: unknown parameter %q (want tag, dc, failover)", u.String(), k)
		}
	}
	if err := t.checkFailover(); err != nil {
		return Target{}, fmt.Errorf("consul resolver: target %q: %w", u.String(), err)
	}
	return t, nil
}

// checkFailover validates the failover list against dc=.
func (t Target) checkFailover() error {
	for i, dc := range t.Failover {
		switch {
		case dc == "":
			return fmt.Errorf("failover: empty datacenter name at position %d (want failover=dc2,dc3)", i+1)
		case !datacenterName.MatchString(dc):
			return fmt.Errorf("failover: datacenter %q: want letters, digits, '-' and '_' only", dc)
		case dc == t.Datacenter:
			return fmt.Errorf("failover: datacenter %q is the local one (dc=); list only the others", dc)
		case dc == LocalDatacenter && t.Datacenter == "":
			return fmt.Errorf("failover: %q names the agent's own datacenter here; give dc= to fail over to a datacenter called %q", dc, dc)
		case slices.Contains(t.Failover[:i], dc):
			return fmt.Errorf("failover: datacenter %q listed twice", dc)
		}
	}
	return nil
}
