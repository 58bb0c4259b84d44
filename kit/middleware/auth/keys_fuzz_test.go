package auth

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"math/big"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// pemSeeds returns PEM documents for the seed corpora of the key and
// certificate fuzzers: good keys of every kind, a certificate, keys that
// are refused, and broken PEM.
func pemSeeds(f *testing.F) [][]byte {
	f.Helper()
	edPub, edKey, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		f.Fatal(err)
	}
	ecKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		f.Fatal(err)
	}
	ec224, err := ecdsa.GenerateKey(elliptic.P224(), rand.Reader)
	if err != nil {
		f.Fatal(err)
	}
	rsaSmall, err := rsa.GenerateKey(rand.Reader, 1024)
	if err != nil {
		f.Fatal(err)
	}
	enc := func(typ string, der []byte) []byte { return pem.EncodeToMemory(&pem.Block{Type: typ, Bytes: der}) }
	pkixPEM := func(pub any) []byte {
		der, err := x509.MarshalPKIXPublicKey(pub)
		if err != nil {
			f.Fatal(err)
		}
		return enc("PUBLIC KEY", der)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "fuzz CA"}, IsCA: true,
		NotBefore: time.Unix(0, 0), NotAfter: time.Unix(1<<32, 0), BasicConstraintsValid: true}
	certDER, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, edPub, edKey)
	if err != nil {
		f.Fatal(err)
	}
	cert := enc("CERTIFICATE", certDER)
	edPEM := pkixPEM(edPub)
	return [][]byte{
		edPEM,
		pkixPEM(&ecKey.PublicKey),
		pkixPEM(&ec224.PublicKey), // unsupported curve
		pkixPEM(&rsaSmall.PublicKey),
		enc("RSA PUBLIC KEY", x509.MarshalPKCS1PublicKey(&rsaSmall.PublicKey)), // too small
		cert,
		append(append([]byte("comment\n"), edPEM...), cert...),
		enc("PRIVATE KEY", []byte{1, 2, 3}),
		enc("PUBLIC KEY", []byte{0x30, 0x03, 0x02, 0x01, 0x01}),
		enc("CERTIFICATE", certDER[:len(certDER)/2]),
		[]byte("-----BEGIN PUBLIC KEY-----\nnot base64\n-----END PUBLIC KEY-----\n"),
		edPEM[:len(edPEM)/2],
		[]byte("-----BEGIN CERTIFICATE-----\nProc-Type: 4,ENCRYPTED\n\n" + string(cert[28:])),
		{},
	}
}

// FuzzPublicKeyFile gives arbitrary bytes as a public key file of the
// config: loading either fails with an error that names the file, or
// yields at least one key, each of a supported kind, that survives a
// round trip through PKIX DER; and an Authenticator's SetConfig with the
// file either makes it current or fails and leaves the config in force
// (an HMAC token still verifies).
func FuzzPublicKeyFile(f *testing.F) {
	for _, seed := range pemSeeds(f) {
		f.Add(seed)
	}
	path := filepath.Join(f.TempDir(), "keys.pem")
	a, err := New(hmacConfig())
	if err != nil {
		f.Fatal(err)
	}
	// Valid whether or not the issuer and audience that provider keys need
	// are checked.
	tok, err := IssueHS256(secret, "alice", time.Hour, WithIssuer("https://idp.test"), WithAudience("user"))
	if err != nil {
		f.Fatal(err)
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		if err := os.WriteFile(path, data, 0o600); err != nil {
			t.Fatal(err)
		}
		cfg := DefaultConfig()
		cfg.PublicKeyFiles = []string{path}
		ks, err := loadKeys(cfg)
		if err != nil {
			if !strings.HasPrefix(err.Error(), "auth: public_key_files: "+path+": ") {
				t.Fatalf("loadKeys error %q does not name the file", err)
			}
		} else {
			n := len(ks.rsa) + len(ks.ed25519)
			for _, keys := range ks.ecdsa {
				n += len(keys)
			}
			if n == 0 || len(ks.algorithms()) == 0 || ks.hmac != nil {
				t.Fatalf("loadKeys accepted the file but holds %d keys, algorithms %v", n, ks.algorithms())
			}
			keys, err := parsePublicKeys(data)
			if err != nil || len(keys) != n {
				t.Fatalf("loadKeys kept %d keys, parsePublicKeys gives %d, %v", n, len(keys), err)
			}
			for _, k := range keys {
				der, err := x509.MarshalPKIXPublicKey(k)
				if err != nil {
					t.Fatalf("accepted a %T key that does not marshal: %v", k, err)
				}
				back, err := x509.ParsePKIXPublicKey(der)
				if err != nil || !back.(interface{ Equal(crypto.PublicKey) bool }).Equal(k) {
					t.Fatalf("%T key does not round-trip: %v", k, err)
				}
			}
		}

		withFile := hmacConfig()
		withFile.PublicKeyFiles = []string{path}
		withFile.Issuer, withFile.Audience = "https://idp.test", "user"
		before := a.Config()
		setErr := a.SetConfig(withFile)
		if (setErr == nil) != (err == nil) {
			t.Fatalf("SetConfig = %v but loadKeys = %v", setErr, err)
		}
		if setErr != nil {
			if got := a.Config(); len(got.PublicKeyFiles) != len(before.PublicKeyFiles) {
				t.Fatalf("a refused SetConfig changed the config: %v", got.PublicKeyFiles)
			}
		} else if got := a.Config(); len(got.PublicKeyFiles) != 1 {
			t.Fatalf("an accepted SetConfig left public_key_files %v", got.PublicKeyFiles)
		}
		if _, err := a.Verify(tok); err != nil {
			t.Fatalf("after SetConfig (%v), the HMAC token fails: %v", setErr, err)
		}
		if err := a.SetConfig(hmacConfig()); err != nil {
			t.Fatal(err)
		}
	})
}

// FuzzCAFile gives arbitrary bytes as the CA file of [ClientTLS] and
// [ServerTLS]'s client CAs: it is accepted exactly when it holds a PEM
// CERTIFICATE block (without headers) that parses, and otherwise refused
// with an error that names the file.
func FuzzCAFile(f *testing.F) {
	for _, seed := range pemSeeds(f) {
		f.Add(seed)
	}
	path := filepath.Join(f.TempDir(), "ca.pem")
	f.Fuzz(func(t *testing.T, data []byte) {
		if err := os.WriteFile(path, data, 0o600); err != nil {
			t.Fatal(err)
		}
		want := false
		for rest := data; ; {
			var b *pem.Block
			if b, rest = pem.Decode(rest); b == nil {
				break
			}
			if b.Type == "CERTIFICATE" && len(b.Headers) == 0 {
				if _, err := x509.ParseCertificate(b.Bytes); err == nil {
					want = true
				}
			}
		}
		pool, err := loadCertPool(path)
		if (err == nil) != want || (err == nil) != (pool != nil) {
			t.Fatalf("loadCertPool = %v, %v; want a pool: %v", pool, err, want)
		}
		creds, err := ClientTLS(path, "", "", "")
		switch {
		case want && (err != nil || creds == nil):
			t.Fatalf("ClientTLS refused a CA file with a certificate: %v", err)
		case !want && (err == nil || !strings.HasPrefix(err.Error(), "auth: server CA: "+path+": ")):
			t.Fatalf("ClientTLS = %v for a file without a certificate", err)
		}
	})
}
