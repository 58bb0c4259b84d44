// Package auth authenticates gRPC calls with bearer JSON Web Tokens and
// secures connections with TLS and mutual TLS.
//
// Server side, an [Authenticator] built by [New] from a [Config] gives unary
// and stream server interceptors. Each call to a method that is not public
// must carry the metadata "authorization: Bearer <jwt>"; the token is
// verified with github.com/golang-jwt/jwt/v5 (signature, exp, nbf, iat, and
// iss and aud when configured, with a leeway for clock skew), and the
// handler then sees the token's subject as [middleware.Caller] and its
// claims through [Claims]. A rejected call ends with codes.Unauthenticated
// and a short reason (one of the Err* values of this package); the token is
// never echoed or logged. An exp, nbf or iat claim beyond the year 9999
// either way is refused ([ErrInvalidToken]).
//
// The accepted signing algorithms follow the configured keys: HS256, HS384
// and HS512 with [Config.HMACSecret]; RS256..RS512 and PS256..PS512 with RSA
// public keys; ES256, ES384 or ES512 with ECDSA P-256, P-384 or P-521 keys;
// EdDSA with Ed25519 keys. Any other algorithm, "none" included, is rejected,
// and a key is only ever used with its own algorithm family, so a token
// "signed" with HS256 using an RSA public key as the secret is refused.
//
// Methods named in [Config.PublicMethods] ("/pkg.Service/Method", or
// "/pkg.Service/*" for a whole service) need no token; a valid token sent
// to one still names the caller, an invalid one is ignored. The gRPC health
// service (grpc.health.v1.Health) and server reflection (grpc.reflection.v1
// and v1alpha) are always public.
//
// Client side, [BearerToken] and [TokenSource] attach a token to every call
// (grpc.WithPerRPCCredentials); they refuse to send it over a connection
// without transport security unless [AllowInsecure] is given. [IssueHS256]
// makes HS256 tokens for development and tests.
//
// [ServerTLS] and [ClientTLS] build TLS transport credentials (TLS 1.2 at
// least) from PEM files; given a client CA file, ServerTLS requires and
// verifies client certificates (mutual TLS).
package auth
