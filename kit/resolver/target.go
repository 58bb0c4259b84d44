package resolver

import (
	"fmt"
	"net/url"
	"strings"

	"github.com/grpckit/grpckit/kit/registry"
)

// Scheme is the resolver scheme: consul://[agent]/<service>[?tag=...&dc=...].
const Scheme = "consul"

// Target is a parsed consul target.
type Target struct {
	// Service is the service name.
	Service string
	// Agent is the Consul agent address from the authority, if any.
	Agent string
	// Options are the tag and datacenter filters.
	Options []registry.WatchOption
}

// ParseTarget parses consul://[agent]/<service>[?tag=...&dc=...]. Unknown
// query parameters are an error, so a typo is not silently ignored.
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
			t.Options = append(t.Options, registry.WithDatacenter(v[0]))
		default:
			return Target{}, fmt.Errorf("consul resolver: target %q: unknown parameter %q (want tag, dc)", u.String(), k)
		}
	}
	return t, nil
}
