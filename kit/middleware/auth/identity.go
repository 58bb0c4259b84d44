package auth

import (
	"context"

	"github.com/golang-jwt/jwt/v5"
)

// AdminClaim is the claim that makes a token an administrator's: a token
// whose "admin" claim is the JSON value true may act on every subject's
// resources ([MayActFor]).
const AdminClaim = "admin"

// identity is what an authenticated call carries in its context: the token
// that authenticated it, for forwarding, and what verifying it found.
type identity struct {
	token string
	v     *verified
}

type identityKey struct{}

func identityOf(ctx context.Context) *identity {
	id, _ := ctx.Value(identityKey{}).(*identity)
	return id
}

// Claims returns the claims of the token that authenticated the incoming
// call whose ctx this is, and false for calls that were not authenticated
// (public methods, or no Authenticator). The map must not be modified: it
// is shared by every call made with the same token.
func Claims(ctx context.Context) (jwt.MapClaims, bool) {
	if id := identityOf(ctx); id != nil {
		return id.v.claims, true
	}
	return nil, false
}

// Subject returns the subject (sub claim) of the token that authenticated
// the incoming call whose ctx this is, and false for calls that were not
// authenticated.
func Subject(ctx context.Context) (string, bool) {
	if id := identityOf(ctx); id != nil {
		return id.v.subject, true
	}
	return "", false
}

// IsAdmin reports whether the incoming call was authenticated by a token
// carrying [AdminClaim] true.
func IsAdmin(ctx context.Context) bool {
	c, ok := Claims(ctx)
	if !ok {
		return false
	}
	admin, _ := c[AdminClaim].(bool)
	return admin
}

// MayActFor reports whether the incoming call may act on the resources of
// subject: its token's subject is subject, or it carries [AdminClaim]
// true. A call that was not authenticated may act for nobody.
func MayActFor(ctx context.Context, subject string) bool {
	sub, ok := Subject(ctx)
	return ok && (sub == subject || IsAdmin(ctx))
}

// incomingToken returns the bearer token that authenticated the incoming
// call whose ctx this is.
func incomingToken(ctx context.Context) (string, bool) {
	if id := identityOf(ctx); id != nil {
		return id.token, true
	}
	return "", false
}
