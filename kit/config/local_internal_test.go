package config

import (
	"errors"
	"reflect"
	"testing"

	"github.com/google/go-cmp/cmp"
)

// localConfig has local settings three ways: a local section, a local
// field in a plain section, and the standard sections' own.
type localConfig struct {
	Standard `yaml:",inline"`
	Edge     edgeSection  `yaml:"edge"`
	Guard    guardSection `yaml:"guard" kit:"local"`
}

type edgeSection struct {
	Trust bool   `yaml:"trust" kit:"local"`
	Name  string `yaml:"name"`
	Token string `yaml:"token" kit:"secret"` // a secret is local too
}

type guardSection struct {
	Key   string      `yaml:"key" kit:"secret"`
	Inner innerSecret `yaml:"inner"`
}

type innerSecret struct {
	Level int `yaml:"level"`
}

func TestFieldsOfTags(t *testing.T) {
	fields, err := fieldsOf(reflect.TypeFor[localConfig]())
	if err != nil {
		t.Fatal(err)
	}
	got := map[string][2]bool{}
	for _, f := range fields {
		got[f.key()] = [2]bool{f.secret, f.local}
	}
	for key, want := range map[string][2]bool{ // {secret, local}
		"edge.trust":               {false, true},
		"edge.name":                {false, false},
		"edge.token":               {true, true},
		"guard.key":                {true, true}, // the section's local, the field's secret
		"guard.inner.level":        {false, true},
		"server.admin":             {false, true},
		"server.pprof":             {false, true},
		"server.listen":            {false, true},
		"registry.address":         {false, true},
		"registry.token":           {true, true},
		"registry.weights.passing": {false, true},
		"ratelimit.rps":            {false, false},
		"log.level":                {false, false},
	} {
		g, ok := got[key]
		if !ok {
			t.Errorf("no field %s", key)
			continue
		}
		if g != want {
			t.Errorf("%s: secret, local = %v, want %v", key, g, want)
		}
	}
}

// TestKVLocalRefused: a Consul document that sets a local setting, however
// it sets it, is refused as a whole with an error naming the settings; one
// that sets none is applied.
func TestKVLocalRefused(t *testing.T) {
	s, err := Load("svc", localConfig{Standard: DefaultStandard()}, WithoutConsul(),
		WithEnv(func(string) (string, bool) { return "", false }))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(s.Close)
	for _, tc := range []struct {
		doc  string
		want []string // the local fields named; none: accepted
	}{
		{"ratelimit: {rps: 5}\nedge: {name: x}\n", nil},
		{"guard: {}\nedge: {}\n", nil}, // empty sections set nothing
		{"server: {admin: 0.0.0.0:9100}\n", []string{"server.admin"}},
		{"server: {pprof: true, drain: 1s}\nratelimit: {rps: 5}\n", []string{"server.pprof"}},
		{"registry: {token: x, address: y}\n", []string{"registry.address", "registry.token"}},
		{"registry: {weights: {passing: 3}}\n", []string{"registry.weights.passing"}},
		{"edge: {trust: true, name: x}\n", []string{"edge.trust"}},
		{"guard: {inner: {level: 2}}\n", []string{"guard.inner.level"}},
		{"guard: ~\n", []string{"guard.key", "guard.inner.level"}}, // replaces the whole section
		{"base: &b {admin: 0.0.0.0:1}\nserver: {<<: *b}\n", []string{"server.admin"}},
	} {
		t.Run(tc.doc, func(t *testing.T) {
			err := s.checkLocal([]byte(tc.doc))
			var le *LocalError
			if len(tc.want) == 0 {
				if err != nil {
					t.Fatalf("refused: %v", err)
				}
				return
			}
			if !errors.As(err, &le) {
				t.Fatalf("error %v, want a *LocalError", err)
			}
			if diff := cmp.Diff(tc.want, le.Fields); diff != "" || le.Key != "grpckit/svc" {
				t.Errorf("key %q, fields (-want +got):\n%s", le.Key, diff)
			}
		})
	}
}

func TestLocalErrorMessage(t *testing.T) {
	for _, tc := range []struct {
		e    LocalError
		want string
	}{
		{LocalError{Key: "grpckit/gateway", Fields: []string{"server.admin"}},
			"consul kv grpckit/gateway: server.admin cannot be set from Consul KV (it changes the security boundary); set it in the file, environment or flags"},
		{LocalError{Key: "grpckit/a", Fields: []string{"server.admin", "registry.token"}},
			"consul kv grpckit/a: server.admin, registry.token cannot be set from Consul KV (it changes the security boundary); set them in the file, environment or flags"},
	} {
		if got := tc.e.Error(); got != tc.want {
			t.Errorf("got  %s\nwant %s", got, tc.want)
		}
	}
}
