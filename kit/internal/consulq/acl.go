package consulq

import (
	"errors"
	"fmt"
	"net/http"
	"strings"

	"github.com/hashicorp/consul/api"
)

// ErrACLRefused is the error Consul's ACLs refusing a request is reported
// as (wrapped); kit/registry/consul exports it as ErrACLRefused.
var ErrACLRefused = errors.New("consul: ACL token refused")

// aclError is a 403 answer of Consul, explained.
type aclError struct {
	reason string // "ACL not found", "Permission denied"
	hint   string // what to do about it
	err    error  // Consul's answer
}

func (e *aclError) Error() string {
	return fmt.Sprintf("%v (403 %s): set registry.token or CONSUL_HTTP_TOKEN; %s (Consul said: %s)",
		ErrACLRefused, e.reason, e.hint, statusBody(e.err))
}

func (e *aclError) Unwrap() []error { return []error{ErrACLRefused, e.err} }

// ACL returns err explained when it is Consul's 403 answer (the ACLs
// refused the request): an error wrapping [ErrACLRefused] and err that says
// to set a token, whether Consul does not know the token ("ACL not found":
// wrong, deleted, or of another cluster) or the token lacks a right, and
// need, the right the request takes (`service:write on "user"`). Any other
// err is returned as it is.
func ACL(err error, need string) error {
	var se api.StatusError
	if !errors.As(err, &se) || se.Code != http.StatusForbidden {
		return err
	}
	e := &aclError{err: err}
	switch {
	case strings.Contains(se.Body, "ACL not found"):
		e.reason = "ACL not found"
		e.hint = "Consul does not know the token (wrong, deleted or of another cluster)"
	default:
		e.reason = "Permission denied"
		e.hint = "the token (or, when none is set, Consul's anonymous token) lacks " + need
	}
	return e
}

// IsForbidden reports whether err is Consul's 403 answer.
func IsForbidden(err error) bool {
	var se api.StatusError
	return errors.As(err, &se) && se.Code == http.StatusForbidden
}

// IsACLDisabled reports whether err is Consul's answer to an ACL endpoint
// when the cluster runs without ACLs (401 "ACL support disabled").
func IsACLDisabled(err error) bool {
	var se api.StatusError
	return errors.As(err, &se) && strings.Contains(se.Body, "ACL support disabled")
}

func statusBody(err error) string {
	var se api.StatusError
	if errors.As(err, &se) {
		return se.Body
	}
	return err.Error()
}
