package auth

import (
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/grpckit/grpckit/kit/duration"
)

func TestConfigValidate(t *testing.T) {
	for _, tc := range []struct {
		name    string
		edit    func(*Config)
		wantErr []string // substrings of the error, nil for valid
	}{
		{"defaults", func(*Config) {}, nil},
		{"hmac", func(c *Config) { c.HMACSecret = secret }, nil},
		{"short secret", func(c *Config) { c.HMACSecret = "short" }, []string{"auth: hmac_secret is 5 bytes"}},
		{"public methods", func(c *Config) { c.PublicMethods = []string{"/pkg.Svc/Get", "/pkg.Other/*"} }, nil},
		{"bad public methods", func(c *Config) {
			c.PublicMethods = []string{"pkg.Svc/Get", "/pkg.Svc", "/pkg.Svc/G*", "/*/Get", "/a/b/c", "/pkg.Svc/"}
		},
			[]string{"public_methods[0]", "public_methods[1]", "public_methods[2]", "public_methods[3]", "public_methods[4]", "public_methods[5]"}},
		{"empty key file", func(c *Config) { c.PublicKeyFiles = []string{""} }, []string{"auth: public_key_files[0] is empty"}},
		{"provider keys with issuer and audience", func(c *Config) {
			c.PublicKeyFiles, c.Issuer, c.Audience = []string{"idp.pem"}, "https://idp.example", "user"
		}, nil},
		{"provider keys without issuer and audience", func(c *Config) { c.PublicKeyFiles = []string{"idp.pem"} },
			[]string{"auth: issuer is required with public_key_files", "auth: audience is required with public_key_files"}},
		{"provider keys without audience", func(c *Config) { c.PublicKeyFiles, c.Issuer = []string{"idp.pem"}, "https://idp.example" },
			[]string{"auth: audience is required"}},
		{"disabled", func(c *Config) { c.Disabled = true }, nil},
		{"disabled with a key", func(c *Config) { c.Disabled, c.HMACSecret = true, secret }, []string{"auth: disabled is true but a key is configured"}},
		{"negative leeway", func(c *Config) { c.Leeway = duration.Duration(-time.Second) }, []string{"auth: leeway"}},
		{"huge leeway", func(c *Config) { c.Leeway = duration.Duration(time.Hour) }, []string{"auth: leeway"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := DefaultConfig()
			tc.edit(&c)
			err := c.Validate()
			if tc.wantErr == nil {
				if err != nil {
					t.Fatalf("Validate() = %v", err)
				}
				return
			}
			if err == nil {
				t.Fatal("Validate() = nil, want an error")
			}
			for _, s := range tc.wantErr {
				if !strings.Contains(err.Error(), s) {
					t.Errorf("Validate() = %q, want it to contain %q", err, s)
				}
			}
		})
	}
}

func TestConfigEnabled(t *testing.T) {
	c := DefaultConfig()
	if c.Enabled() {
		t.Error("DefaultConfig().Enabled() = true")
	}
	c.PublicKeyFiles = []string{"k.pem"}
	if !c.Enabled() {
		t.Error("Enabled() = false with a key file")
	}
}

// TestKitTags: kit/config masks the secret (kit:"secret") and takes no
// auth setting from Consul KV (kit:"local" on every field).
func TestKitTags(t *testing.T) {
	typ := reflect.TypeFor[Config]()
	for i := range typ.NumField() {
		f := typ.Field(i)
		opts := strings.Split(f.Tag.Get("kit"), ",")
		if !slices.Contains(opts, "local") {
			t.Errorf("Config.%s tag %q lacks kit:\"local\" (the auth settings are the security boundary)", f.Name, f.Tag)
		}
	}
	f, ok := reflectField(Config{}, "HMACSecret")
	if !ok || !slices.Contains(strings.Split(f.Tag.Get("kit"), ","), "secret") {
		t.Errorf("Config.HMACSecret tag = %q, want kit:\"secret\" (kit/config masks such fields)", f.Tag)
	}
}

func TestPublicMethods(t *testing.T) {
	a, err := New(Config{HMACSecret: strings.Repeat("k", MinHMACSecretLen), PublicMethods: []string{"/pkg.Svc/Get", "/pkg.Open/*"}, Leeway: duration.Duration(time.Second)})
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]bool{}
	for _, m := range []string{
		"/pkg.Svc/Get", "/pkg.Svc/Put", "/pkg.Open/Anything", "/pkg.OpenX/Anything", "/pkg.Svc/GetX",
		"/grpc.health.v1.Health/Check", "/grpc.health.v1.Health/Watch",
		"/grpc.reflection.v1.ServerReflection/ServerReflectionInfo",
		"/grpc.reflection.v1alpha.ServerReflection/ServerReflectionInfo",
		"", "/", "Get",
	} {
		got[m] = a.IsPublic(m)
	}
	want := map[string]bool{
		"/pkg.Svc/Get": true, "/pkg.Svc/Put": false, "/pkg.Open/Anything": true, "/pkg.OpenX/Anything": false,
		"/pkg.Svc/GetX": false, "/grpc.health.v1.Health/Check": true, "/grpc.health.v1.Health/Watch": true,
		"/grpc.reflection.v1.ServerReflection/ServerReflectionInfo":      true,
		"/grpc.reflection.v1alpha.ServerReflection/ServerReflectionInfo": true,
		"": false, "/": false, "Get": false,
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("public (-want +got):\n%s", diff)
	}
}

func TestKeyFiles(t *testing.T) {
	dir := t.TempDir()
	write := func(name, content string) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(content), 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	for _, tc := range []struct {
		name, content string
	}{
		{"empty", ""},
		{"not pem", "hello"},
		{"private key", "-----BEGIN PRIVATE KEY-----\nMC4CAQAwBQYDK2VwBCIEIA==\n-----END PRIVATE KEY-----\n"},
		{"bad public key", "-----BEGIN PUBLIC KEY-----\nAAAA\n-----END PUBLIC KEY-----\n"},
	} {
		cfg := DefaultConfig()
		cfg.PublicKeyFiles = []string{write(tc.name+".pem", tc.content)}
		cfg.Issuer, cfg.Audience = "https://idp.test", "user"
		if _, err := New(cfg); err == nil {
			t.Errorf("%s: New accepted the key file", tc.name)
		}
	}
}
