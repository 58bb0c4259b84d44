package auth

import (
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/grpckit/grpckit/kit/duration"

	"github.com/grpckit/grpckit/kit/middleware"
)

// MinHMACSecretLen is the shortest [Config.HMACSecret] accepted, in bytes:
// RFC 7518 section 3.2 asks for a key at least as long as the hash output
// (256 bits for HS256).
const MinHMACSecretLen = 32

// Config is the auth section of a service's configuration. It is plain data;
// keys are read from their files by [New] and [Authenticator.SetConfig].
//
// Every field carries the tag `kit:"local"`: who may call what is the
// security boundary, so kit/config takes these settings from the defaults,
// the file, the environment or the flags only, and refuses a Consul KV
// document that sets one.
type Config struct {
	// Disabled serves every method without a token. The service runtime
	// (kit/service) refuses to start a service whose auth section has
	// neither a key nor disabled: true, so that a service without
	// authentication is a choice, never an accident. It cannot be set
	// together with a key. Read at start. Default false.
	Disabled bool `yaml:"disabled" kit:"local" json:"disabled"`

	// Issuer, when set, must equal the token's iss claim. Required with
	// PublicKeyFiles (keys that are not the service's own: any token their
	// owner signs for another service would be accepted otherwise). Default
	// "" (any issuer).
	Issuer string `yaml:"issuer" kit:"local" json:"issuer"`

	// Audience, when set, must be one of the token's aud values. Required
	// with PublicKeyFiles, like Issuer. Default "" (any audience).
	Audience string `yaml:"audience" kit:"local" json:"audience"`

	// HMACSecret is the shared secret of HS256/HS384/HS512 tokens, at least
	// MinHMACSecretLen bytes. It is a secret: the field carries the tag
	// `kit:"secret"` so that kit/config's -print-config masks it, and it is never
	// logged. Default "" (no HMAC key).
	HMACSecret string `yaml:"hmac_secret" kit:"secret,local" json:"-"`

	// PublicKeyFiles are PEM files, each holding one or more RSA, ECDSA or
	// Ed25519 public keys ("PUBLIC KEY" or "RSA PUBLIC KEY" blocks) or
	// certificates whose keys are used. A token may be signed by any of
	// them, which allows key rotation. Default none.
	PublicKeyFiles []string `yaml:"public_key_files" kit:"local" json:"public_key_files"`

	// PublicMethods need no token: full method names "/pkg.Service/Method",
	// or "/pkg.Service/*" for every method of a service. The gRPC health
	// service and server reflection are always public. Default none.
	PublicMethods []string `yaml:"public_methods" kit:"local" json:"public_methods"`

	// Leeway is the clock skew tolerated on exp, nbf and iat. Default 30s;
	// at most 5m.
	Leeway duration.Duration `yaml:"leeway" kit:"local" json:"leeway"`
}

// alwaysPublic are the services callable without a token whatever the
// config says: health checks (Consul's included) and reflection.
var alwaysPublic = []string{
	"/grpc.health.v1.Health/*",
	"/grpc.reflection.v1.ServerReflection/*",
	"/grpc.reflection.v1alpha.ServerReflection/*",
}

// maxLeeway bounds Config.Leeway: a larger skew defeats exp.
const maxLeeway = 5 * time.Minute

// DefaultConfig returns the default configuration: no key (so every
// non-public call is rejected until one is configured), no issuer or
// audience check, a 30s leeway.
func DefaultConfig() Config {
	return Config{Leeway: duration.Duration(30 * time.Second)}
}

// Enabled reports whether c configures a verification key. An
// Authenticator without one rejects every call to a non-public method; a
// server that should not require tokens installs no auth interceptor.
func (c Config) Enabled() bool {
	return c.HMACSecret != "" || len(c.PublicKeyFiles) > 0
}

// Validate reports every invalid field of c, each error prefixed with
// "auth:" and naming the field. It does not read the key files.
func (c Config) Validate() error {
	var errs []error
	if c.HMACSecret != "" && len(c.HMACSecret) < MinHMACSecretLen {
		errs = append(errs, fmt.Errorf("auth: hmac_secret is %d bytes, want at least %d", len(c.HMACSecret), MinHMACSecretLen))
	}
	for i, f := range c.PublicKeyFiles {
		if strings.TrimSpace(f) == "" {
			errs = append(errs, fmt.Errorf("auth: public_key_files[%d] is empty", i))
		}
	}
	if len(c.PublicKeyFiles) > 0 {
		// A third party's keys sign tokens for other services too: only iss
		// and aud say that a token was meant for this one.
		if c.Issuer == "" {
			errs = append(errs, errors.New("auth: issuer is required with public_key_files (the keys of an identity provider sign tokens for other services too)"))
		}
		if c.Audience == "" {
			errs = append(errs, errors.New("auth: audience is required with public_key_files (the keys of an identity provider sign tokens for other services too)"))
		}
	}
	if c.Disabled && c.Enabled() {
		errs = append(errs, errors.New("auth: disabled is true but a key is configured (hmac_secret or public_key_files): remove one of them"))
	}
	for i, m := range c.PublicMethods {
		if err := middleware.CheckMethodPattern(m); err != nil {
			errs = append(errs, fmt.Errorf("auth: public_methods[%d] %q: %w", i, m, err))
		}
	}
	if c.Leeway < 0 || time.Duration(c.Leeway) > maxLeeway {
		errs = append(errs, fmt.Errorf("auth: leeway %v is outside [0, %v]", c.Leeway, maxLeeway))
	}
	return errors.Join(errs...)
}
