package consul

import (
	"context"
	"errors"
	"fmt"

	"github.com/hashicorp/consul/api"

	"github.com/grpckit/grpckit/kit/internal/consulq"
)

// ErrACLRefused is returned (wrapped) when Consul's ACLs refuse a request
// of kit: by [Registry.Register] and [Registry.CheckToken], by a watcher's
// Next (and so in the consul resolver's error state), and by kit/config's
// Load when the first read of the service's Consul key is refused. The
// error says whether Consul does not know the token (403 "ACL not found")
// or the token lacks a right (403 "Permission denied"), and which right.
var ErrACLRefused = consulq.ErrACLRefused

// ServiceRules returns the Consul ACL rules (HCL) of a kit service's token,
// the least it needs: service:write on its own name (register, keep and
// deregister its instances), service:read and node:read on every name
// (watch the services it calls: a health query filters out what the token
// may not read), and key:read on its configuration key grpckit/<name>.
// Writing the key takes another token (the operator's).
func ServiceRules(name string) string {
	return fmt.Sprintf(`service %[1]q {
  policy = "write"
}
service_prefix "" {
  policy = "read"
}
node_prefix "" {
  policy = "read"
}
key %[2]q {
  policy = "read"
}
`, name, "grpckit/"+name)
}

// PolicyName is the name of the Consul ACL policy [CreateServiceToken]
// makes for service name: "grpckit-<name>".
func PolicyName(name string) string { return "grpckit-" + name }

// CreateServiceToken makes a token for service name with the rules of
// [ServiceRules], through c, which needs acl:write (the management token):
// it creates the policy [PolicyName] or updates its rules, and creates a
// token with that policy only and the description given. secretID is the
// token's secret, "" for one Consul picks. It returns the token; its
// SecretID is what the service's registry.token or CONSUL_HTTP_TOKEN takes.
func CreateServiceToken(ctx context.Context, c *api.Client, name, description, secretID string) (*api.ACLToken, error) {
	if name == "" {
		return nil, errors.New("consul: service token: empty service name")
	}
	q := (&api.QueryOptions{}).WithContext(ctx)
	w := (&api.WriteOptions{}).WithContext(ctx)
	policy := &api.ACLPolicy{Name: PolicyName(name), Description: "grpckit service " + name, Rules: ServiceRules(name)}
	old, _, err := c.ACL().PolicyReadByName(policy.Name, q)
	switch {
	case err != nil && !isNotFound(err):
		return nil, fmt.Errorf("consul: read policy %s: %w", policy.Name, consulq.ACL(err, "acl:read"))
	case old != nil:
		policy.ID = old.ID
		_, _, err = c.ACL().PolicyUpdate(policy, w)
	default:
		_, _, err = c.ACL().PolicyCreate(policy, w)
	}
	if err != nil {
		return nil, fmt.Errorf("consul: write policy %s: %w", policy.Name, consulq.ACL(err, "acl:write"))
	}
	tok, _, err := c.ACL().TokenCreate(&api.ACLToken{
		SecretID:    secretID,
		Description: description,
		Policies:    []*api.ACLTokenPolicyLink{{Name: policy.Name}},
	}, w)
	if err != nil {
		return nil, fmt.Errorf("consul: create token for %s: %w", name, consulq.ACL(err, "acl:write"))
	}
	return tok, nil
}

// CheckToken asks Consul whether it accepts the registry's token. It
// returns nil when Consul runs without ACLs, knows the token, or (no token
// set) lets its anonymous token read the catalog; an error wrapping
// [ErrACLRefused] when Consul does not know the token (a wrong, deleted or
// foreign one) or no token is set while the anonymous token may not read
// the catalog (the default policy deny); and any other error (Consul
// unreachable) as it is. service.Run calls it at start.
//
// A token Consul knows may still lack a right; a refused registration or
// configuration read says so with an error wrapping [ErrACLRefused]. What
// no check can tell: a health query answers 200 with the instances the
// token may read, so a token without service:read on a service that has no
// instance at all looks like a service with none (when instances exist and
// the token may not see them, Consul flags the answer and the watch
// reports an error).
func (r *Registry) CheckToken(ctx context.Context) error {
	q := (&api.QueryOptions{}).WithContext(ctx)
	_, _, err := r.client.ACL().TokenReadSelf(q)
	switch {
	case err == nil, consulq.IsACLDisabled(err):
		r.tokenOK.Store(true)
		return nil
	case !consulq.IsForbidden(err):
		return err
	}
	// 403: a token Consul does not know, or none (Consul's anonymous token
	// cannot read itself). An unknown token is refused everywhere; without
	// one, the catalog's own consul service shows what anonymous may read.
	entries, _, err := r.client.Health().Service("consul", "", false, q)
	switch {
	case err != nil:
		return consulq.ACL(err, "a token Consul knows")
	case len(entries) == 0:
		return fmt.Errorf("%w (403 Permission denied): set registry.token or CONSUL_HTTP_TOKEN; no token is set, and Consul's anonymous token may not read the catalog (ACLs with the default policy deny)",
			ErrACLRefused)
	}
	r.tokenOK.Store(true)
	return nil
}
