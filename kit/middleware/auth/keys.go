package auth

import (
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rsa"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"os"
	"strings"

	"github.com/golang-jwt/jwt/v5"
)

// keySet holds the verification keys of one config, grouped by algorithm
// family so that a key is only ever used with its own algorithms.
type keySet struct {
	hmac    []byte
	rsa     []jwt.VerificationKey            // *rsa.PublicKey
	ecdsa   map[string][]jwt.VerificationKey // by alg: ES256, ES384, ES512
	ed25519 []jwt.VerificationKey            // ed25519.PublicKey
}

// minRSABits is the smallest RSA modulus accepted.
const minRSABits = 2048

// loadKeys reads cfg's keys.
func loadKeys(cfg Config) (keySet, error) {
	ks := keySet{ecdsa: map[string][]jwt.VerificationKey{}}
	if cfg.HMACSecret != "" {
		ks.hmac = []byte(cfg.HMACSecret)
	}
	for _, f := range cfg.PublicKeyFiles {
		data, err := os.ReadFile(f)
		if err != nil {
			return keySet{}, fmt.Errorf("auth: public_key_files: %w", err)
		}
		keys, err := parsePublicKeys(data)
		if err != nil {
			return keySet{}, fmt.Errorf("auth: public_key_files: %s: %w", f, err)
		}
		for _, k := range keys {
			if err := ks.add(k); err != nil {
				return keySet{}, fmt.Errorf("auth: public_key_files: %s: %w", f, err)
			}
		}
	}
	return ks, nil
}

func (ks *keySet) add(k any) error {
	switch k := k.(type) {
	case *rsa.PublicKey:
		if k.N.BitLen() < minRSABits {
			return fmt.Errorf("RSA key of %d bits, want at least %d", k.N.BitLen(), minRSABits)
		}
		ks.rsa = append(ks.rsa, k)
	case *ecdsa.PublicKey:
		var alg string
		switch k.Curve {
		case elliptic.P256():
			alg = "ES256"
		case elliptic.P384():
			alg = "ES384"
		case elliptic.P521():
			alg = "ES512"
		default:
			return fmt.Errorf("ECDSA key on unsupported curve %s", k.Curve.Params().Name)
		}
		ks.ecdsa[alg] = append(ks.ecdsa[alg], k)
	case ed25519.PublicKey:
		ks.ed25519 = append(ks.ed25519, k)
	default:
		return fmt.Errorf("unsupported key type %T", k)
	}
	return nil
}

// parsePublicKeys returns the public keys of every PEM block in data.
func parsePublicKeys(data []byte) ([]any, error) {
	var keys []any
	for {
		var block *pem.Block
		block, data = pem.Decode(data)
		if block == nil {
			break
		}
		var k any
		var err error
		switch block.Type {
		case "PUBLIC KEY":
			k, err = x509.ParsePKIXPublicKey(block.Bytes)
		case "RSA PUBLIC KEY":
			k, err = x509.ParsePKCS1PublicKey(block.Bytes)
		case "CERTIFICATE":
			var cert *x509.Certificate
			if cert, err = x509.ParseCertificate(block.Bytes); err == nil {
				k = cert.PublicKey
			}
		default:
			if strings.Contains(block.Type, "PRIVATE KEY") {
				return nil, errors.New("holds a private key; give the public key only")
			}
			continue
		}
		if err != nil {
			return nil, fmt.Errorf("%s block: %w", block.Type, err)
		}
		keys = append(keys, k)
	}
	if len(keys) == 0 {
		return nil, errors.New("no PEM public key or certificate found")
	}
	return keys, nil
}

// algorithms lists the signing algorithms the keys can verify.
func (ks keySet) algorithms() []string {
	var algs []string
	if ks.hmac != nil {
		algs = append(algs, "HS256", "HS384", "HS512")
	}
	if len(ks.rsa) > 0 {
		algs = append(algs, "RS256", "RS384", "RS512", "PS256", "PS384", "PS512")
	}
	for _, alg := range []string{"ES256", "ES384", "ES512"} {
		if len(ks.ecdsa[alg]) > 0 {
			algs = append(algs, alg)
		}
	}
	if len(ks.ed25519) > 0 {
		algs = append(algs, "EdDSA")
	}
	return algs
}

// keyFunc returns the keys of the token's algorithm family.
func (ks keySet) keyFunc(t *jwt.Token) (any, error) {
	switch m := t.Method.(type) {
	case *jwt.SigningMethodHMAC:
		if ks.hmac != nil {
			return ks.hmac, nil
		}
	case *jwt.SigningMethodRSA, *jwt.SigningMethodRSAPSS:
		if len(ks.rsa) > 0 {
			return jwt.VerificationKeySet{Keys: ks.rsa}, nil
		}
	case *jwt.SigningMethodECDSA:
		if keys := ks.ecdsa[m.Alg()]; len(keys) > 0 {
			return jwt.VerificationKeySet{Keys: keys}, nil
		}
	case *jwt.SigningMethodEd25519:
		if len(ks.ed25519) > 0 {
			return jwt.VerificationKeySet{Keys: ks.ed25519}, nil
		}
	}
	return nil, ErrAlgorithm
}
