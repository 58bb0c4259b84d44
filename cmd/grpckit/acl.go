package main

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"net/http"
	"os"
	"strings"
	"time"

	"github.com/hashicorp/consul/api"

	"github.com/grpckit/grpckit/kit/registry/consul"
)

// tokenFile is the name of the file, in the dev stack's folder, that holds
// the operator (management) token of the Consul agent grpckit dev started.
const tokenFile = "consul.token"

// devACL is the Consul ACL setup of one grpckit dev run.
type devACL struct {
	// operator is the token grpckit dev talks to Consul with: the
	// management token of the agent it started, or $CONSUL_HTTP_TOKEN for
	// an agent already running. "" when that agent runs without ACLs.
	operator string
	// enabled is whether the agent runs ACLs.
	enabled bool
	// tokens are the service tokens made for this run, by service name.
	tokens map[string]*api.ACLToken
}

// newUUID returns a random UUID (version 4), the form Consul's token
// secrets take.
func newUUID() string {
	var b [16]byte
	rand.Read(b[:])
	b[6] = b[6]&0x0f | 0x40
	b[8] = b[8]&0x3f | 0x80
	return fmt.Sprintf("%x-%x-%x-%x-%x", b[0:4], b[4:6], b[6:8], b[8:10], b[10:])
}

// operatorClient returns a Consul client for addr with the operator token.
func (a *devACL) operatorClient(addr string) (*api.Client, func(), error) {
	cfg := api.DefaultConfig()
	cfg.Address = addr
	cfg.Token, cfg.TokenFile = a.operator, ""
	c, err := api.NewClient(cfg)
	if err != nil {
		return nil, nil, err
	}
	return c, cfg.Transport.CloseIdleConnections, nil
}

// probeACL finds out how the agent at addr, which grpckit dev did not
// start, runs ACLs: with them on it needs a token in $CONSUL_HTTP_TOKEN
// that may write ACLs (the management token, or one with acl:write).
func probeACL(ctx context.Context, addr string) (*devACL, error) {
	a := &devACL{operator: os.Getenv("CONSUL_HTTP_TOKEN"), tokens: map[string]*api.ACLToken{}}
	c, closeIdle, err := a.operatorClient(addr)
	if err != nil {
		return nil, err
	}
	defer closeIdle()
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	_, _, err = c.ACL().TokenReadSelf((&api.QueryOptions{}).WithContext(ctx))
	var se api.StatusError
	switch {
	case err == nil:
		a.enabled = true
	case errors.As(err, &se) && strings.Contains(se.Body, "ACL support disabled"):
		a.operator = "" // no ACLs: the services need no token
	case errors.As(err, &se) && se.Code == http.StatusForbidden && a.operator == "":
		return nil, fmt.Errorf("the Consul agent at %s runs ACLs: set CONSUL_HTTP_TOKEN to a token that may write ACLs (its management token) so that grpckit dev can make the services' tokens", addr)
	case errors.As(err, &se) && se.Code == http.StatusForbidden:
		return nil, fmt.Errorf("the Consul agent at %s refuses the token in CONSUL_HTTP_TOKEN (%s): set it to a token that may write ACLs (its management token)", addr, se.Body)
	default:
		return nil, fmt.Errorf("Consul at %s: %w", addr, err)
	}
	return a, nil
}

// saveOperator writes the operator token to path, readable by its owner
// only, for scripts and the Consul UI.
func (a *devACL) saveOperator(path string) error {
	if err := os.Remove(path); err != nil && !errors.Is(err, os.ErrNotExist) {
		return err
	}
	return writeSecretFile(path, a.operator)
}

// serviceTokens makes a token for every service, with the rules of
// consul.ServiceRules (register itself, read the catalog, read its own
// key grpckit/<name>). The agent grpckit dev started forgets them when it
// stops; on an agent that was running already they are deleted by
// [devACL.deleteTokens].
func (a *devACL) serviceTokens(ctx context.Context, c *api.Client, names []string) error {
	if !a.enabled {
		return nil
	}
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	for _, name := range names {
		if _, ok := a.tokens[name]; ok {
			continue
		}
		desc := fmt.Sprintf("grpckit dev: service %s (pid %d, %s)", name, os.Getpid(), time.Now().Format(time.RFC3339))
		tok, err := consul.CreateServiceToken(ctx, c, name, desc, "")
		if err != nil {
			return err
		}
		a.tokens[name] = tok
	}
	return nil
}

// env returns the environment entry that gives service name its token;
// nil without ACLs.
func (a *devACL) env(name string) []string {
	if tok, ok := a.tokens[name]; ok {
		return []string{"CONSUL_HTTP_TOKEN=" + tok.SecretID}
	}
	return nil
}

// deleteTokens deletes the service tokens of the run (on an agent that
// outlives it).
func (a *devACL) deleteTokens(c *api.Client) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	for name, tok := range a.tokens {
		if _, err := c.ACL().TokenDelete(tok.AccessorID, (&api.WriteOptions{}).WithContext(ctx)); err != nil {
			step("could not delete the Consul token of %s: %v", name, err)
		}
	}
}

// writeSecretFile writes secret and a newline to path, readable by its
// owner only, also when path already existed with wider permissions.
func writeSecretFile(path, secret string) error {
	if err := os.WriteFile(path, []byte(secret+"\n"), 0o600); err != nil {
		return err
	}
	return os.Chmod(path, 0o600)
}
