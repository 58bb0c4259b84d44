package auth

import (
	"errors"
	"fmt"
	"time"

	"github.com/golang-jwt/jwt/v5"
)

// IssueOption configures [IssueHS256].
type IssueOption interface{ applyIssue(*issueOptions) }

type issueOptionFunc func(*issueOptions)

func (f issueOptionFunc) applyIssue(o *issueOptions) { f(o) }

type issueOptions struct {
	issuer    string
	audience  []string
	issuedAt  time.Time
	notBefore time.Time
	claims    map[string]any
}

// WithIssuer sets the iss claim.
func WithIssuer(iss string) IssueOption {
	return issueOptionFunc(func(o *issueOptions) { o.issuer = iss })
}

// WithAudience sets the aud claim.
func WithAudience(aud ...string) IssueOption {
	return issueOptionFunc(func(o *issueOptions) { o.audience = append([]string(nil), aud...) })
}

// WithIssuedAt sets the time the token is issued at (iat), from which exp
// counts; default now. A time in the past makes tokens that are already
// expired, for tests.
func WithIssuedAt(t time.Time) IssueOption {
	return issueOptionFunc(func(o *issueOptions) { o.issuedAt = t })
}

// WithNotBefore sets the nbf claim.
func WithNotBefore(t time.Time) IssueOption {
	return issueOptionFunc(func(o *issueOptions) { o.notBefore = t })
}

// WithClaim adds a claim; the registered claims (sub, exp, iat, nbf, iss,
// aud) cannot be overridden this way.
func WithClaim(key string, value any) IssueOption {
	return issueOptionFunc(func(o *issueOptions) {
		if o.claims == nil {
			o.claims = map[string]any{}
		}
		o.claims[key] = value
	})
}

// IssueHS256 returns a JWT for subject signed with HS256 under secret (at
// least [MinHMACSecretLen] bytes), valid for ttl (> 0) from its issue time.
// It is meant for development and tests; production tokens come from an
// identity provider.
func IssueHS256(secret, subject string, ttl time.Duration, opts ...IssueOption) (string, error) {
	switch {
	case len(secret) < MinHMACSecretLen:
		return "", fmt.Errorf("auth: secret is %d bytes, want at least %d", len(secret), MinHMACSecretLen)
	case subject == "":
		return "", errors.New("auth: empty subject")
	case ttl <= 0:
		return "", fmt.Errorf("auth: ttl %v is not positive", ttl)
	}
	o := issueOptions{issuedAt: time.Now()}
	for _, opt := range opts {
		opt.applyIssue(&o)
	}
	claims := jwt.MapClaims{}
	for k, v := range o.claims {
		claims[k] = v
	}
	claims["sub"] = subject
	claims["iat"] = jwt.NewNumericDate(o.issuedAt)
	claims["exp"] = jwt.NewNumericDate(o.issuedAt.Add(ttl))
	if !o.notBefore.IsZero() {
		claims["nbf"] = jwt.NewNumericDate(o.notBefore)
	}
	if o.issuer != "" {
		claims["iss"] = o.issuer
	}
	if len(o.audience) > 0 {
		claims["aud"] = jwt.ClaimStrings(o.audience)
	}
	return jwt.NewWithClaims(jwt.SigningMethodHS256, claims).SignedString([]byte(secret))
}
