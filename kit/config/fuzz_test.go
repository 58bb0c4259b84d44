package config

import (
	"bytes"
	"testing"

	"go.yaml.in/yaml/v3"
)

type fuzzConfig struct {
	Standard `yaml:",inline"`
	Extra    struct {
		Name  string         `yaml:"name"`
		Items []string       `yaml:"items"`
		Table map[string]int `yaml:"table"`
	} `yaml:"extra"`
}

// FuzzFileDocument feeds arbitrary documents to the file layer: a document
// is accepted or refused with an error, never a panic, and an accepted one
// is valid and survives a round trip through YAML unchanged.
func FuzzFileDocument(f *testing.F) {
	for _, seed := range []string{
		"", "ratelimit: {rps: 5}", "ratelimit: {per_method: {/a.B/C: {rps: 1}}}", "timeout: {default: 1s}",
		"balancer: {failure_codes: [UNAVAILABLE], window: 20s}", "log: {level: debug, access: {slow_threshold: 2s}}",
		"extra: {name: x, items: [a, b], table: {k: 1}}", "registry: {tags: [a], meta: {k: v}, weights: {passing: 3}}",
		"- a\n- b", "just text", "ratelimit: [1, 2]", "{a: {b: {c: {d: 1}}}}", "timeout: {default: -1s}",
		"&a [*a]", "ratelimit: !!binary aGk=", "server: {listen: ''}",
	} {
		f.Add([]byte(seed))
	}
	s, base := fuzzStore(f)
	f.Fuzz(func(t *testing.T, doc []byte) {
		v, err := s.build(layers{defaults: base, file: doc})
		if err != nil {
			return
		}
		if err := validate(&v); err != nil {
			t.Fatalf("accepted an invalid config: %v", err)
		}
		out, err := yaml.Marshal(v)
		if err != nil {
			t.Fatalf("accepted config does not marshal: %v", err)
		}
		again, err := s.build(layers{defaults: base, file: out})
		if err != nil {
			t.Fatalf("accepted config does not load back: %v\n%s", err, out)
		}
		out2, _ := yaml.Marshal(again)
		if !bytes.Equal(out, out2) {
			t.Fatalf("round trip changed the config:\n%s\n---\n%s", out, out2)
		}
	})
}
