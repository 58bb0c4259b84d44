package auth

import "errors"

// Reasons a call or token is rejected, returned by [Authenticator.Verify]
// and, as the message of a codes.Unauthenticated status, by the
// interceptors.
var (
	// ErrMissingToken: the call carries no authorization metadata.
	ErrMissingToken = errors.New("auth: missing bearer token")
	// ErrMalformedHeader: the authorization metadata is not "Bearer <token>",
	// or appears more than once.
	ErrMalformedHeader = errors.New("auth: malformed authorization header")
	// ErrMalformedToken: the token is not a well-formed JWT.
	ErrMalformedToken = errors.New("auth: malformed token")
	// ErrAlgorithm: the token's signing algorithm does not match any
	// configured key ("none" included).
	ErrAlgorithm = errors.New("auth: token signing algorithm not accepted")
	// ErrBadSignature: no configured key verifies the token's signature.
	ErrBadSignature = errors.New("auth: bad token signature")
	// ErrExpired: the token's exp is past (beyond the leeway).
	ErrExpired = errors.New("auth: token expired")
	// ErrNotYetValid: the token's nbf or iat is in the future (beyond the
	// leeway).
	ErrNotYetValid = errors.New("auth: token not valid yet")
	// ErrWrongIssuer: the token's iss is not [Config.Issuer].
	ErrWrongIssuer = errors.New("auth: wrong token issuer")
	// ErrWrongAudience: the token's aud does not name [Config.Audience].
	ErrWrongAudience = errors.New("auth: wrong token audience")
	// ErrMissingClaim: the token lacks exp or sub, or iss or aud when
	// [Config.Issuer] or [Config.Audience] is set.
	ErrMissingClaim = errors.New("auth: token lacks a required claim")
	// ErrNoKey: the Authenticator has no verification key, so it rejects
	// every call to a non-public method.
	ErrNoKey = errors.New("auth: no verification key configured")
	// ErrInvalidToken: the token was rejected for another reason.
	ErrInvalidToken = errors.New("auth: invalid token")
)
