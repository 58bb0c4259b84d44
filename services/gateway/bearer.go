package gateway

import (
	"errors"
	"net/http"
	"strings"

	"google.golang.org/grpc/codes"

	"github.com/grpckit/grpckit/kit/middleware/auth"
)

// realm is the realm of the gateway's WWW-Authenticate challenges.
const realm = "grpckit"

// caller is the verified bearer token of a request.
type caller struct {
	token   string
	subject string
	admin   bool // the token carries auth.AdminClaim true
}

// authenticate checks the bearer token of r and returns its caller, or a
// 401 answer whose WWW-Authenticate challenge follows RFC 6750: no error
// code for a request without credentials, invalid_request for a malformed
// Authorization header, invalid_token for a token that fails verification.
func (g *Gateway) authenticate(r *http.Request) (caller, *apiError) {
	tok, err := bearerToken(r.Header)
	if err == nil {
		var claims map[string]any
		if claims, err = g.auth.Verify(tok); err == nil {
			sub, _ := claims["sub"].(string) // Verify requires a sub
			admin, _ := claims[auth.AdminClaim].(bool)
			return caller{token: tok, subject: sub, admin: admin}, nil
		}
	}
	reason := strings.TrimPrefix(err.Error(), "auth: ")
	challenge := `Bearer realm="` + realm + `"`
	switch {
	case errors.Is(err, auth.ErrMissingToken):
	case errors.Is(err, auth.ErrMalformedHeader):
		challenge += `, error="invalid_request", error_description="` + reason + `"`
	default:
		challenge += `, error="invalid_token", error_description="` + reason + `"`
	}
	e := newError(http.StatusUnauthorized, codes.Unauthenticated, reason)
	e.header = http.Header{"Www-Authenticate": {challenge}}
	return caller{}, e
}

// bearerToken returns the token of the request's Authorization header: the
// scheme "Bearer" (any case), one or more spaces, and a token without white
// space. It returns [auth.ErrMissingToken] without the header and
// [auth.ErrMalformedHeader] when the header is malformed or repeated.
func bearerToken(h http.Header) (string, error) {
	vals := h.Values("Authorization")
	switch len(vals) {
	case 0:
		return "", auth.ErrMissingToken
	case 1:
	default:
		return "", auth.ErrMalformedHeader
	}
	const scheme = "bearer "
	v := vals[0]
	if len(v) < len(scheme) || !strings.EqualFold(v[:len(scheme)], scheme) {
		return "", auth.ErrMalformedHeader
	}
	tok := strings.TrimLeft(v[len(scheme):], " ")
	if tok == "" || strings.ContainsAny(tok, " \t") {
		return "", auth.ErrMalformedHeader
	}
	return tok, nil
}
