package config

import (
	"fmt"
	"strings"
	"testing"

	yaml "go.yaml.in/yaml/v3"
)

func scalar(v string) *yaml.Node { return &yaml.Node{Kind: yaml.ScalarNode, Value: v} }

// mergeInto replaces the value of a key both sides have and appends the
// others, in order.
func TestMergeIntoReplacesAndAppends(t *testing.T) {
	pairs := []*yaml.Node{scalar("a"), scalar("1"), scalar("b"), scalar("2")}
	add := []*yaml.Node{scalar("b"), scalar("20"), scalar("c"), scalar("3"), scalar("c"), scalar("30")}
	got := mergeInto(pairs, add)
	var parts []string
	for i := 0; i+1 < len(got); i += 2 {
		parts = append(parts, got[i].Value+"="+got[i+1].Value)
	}
	if s := strings.Join(parts, " "); s != "a=1 b=20 c=30" {
		t.Errorf("merged %s, want a=1 b=20 c=30", s)
	}
}

// largeTable is a file document whose extra.table has n keys.
func largeTable(n int) []byte {
	var b strings.Builder
	b.WriteString("extra:\n  table:\n")
	for i := range n {
		fmt.Fprintf(&b, "    k%d: %d\n", i, i)
	}
	return []byte(b.String())
}

// A mapping of maxMappingKeys keys is read whole; one more is refused with
// an error naming the limit (the strict decode compares a mapping's keys
// pairwise: 45,000 keys took 5.5 s). BenchmarkLargeMapping times the
// largest.
func TestLargeMapping(t *testing.T) {
	s, base := fuzzStore(t)
	v, err := s.build(layers{defaults: base, file: largeTable(maxMappingKeys)})
	if err != nil {
		t.Fatal(err)
	}
	last := fmt.Sprintf("k%d", maxMappingKeys-1)
	if len(v.Extra.Table) != maxMappingKeys || v.Extra.Table[last] != maxMappingKeys-1 {
		t.Errorf("table of %d keys, %s = %d", len(v.Extra.Table), last, v.Extra.Table[last])
	}
	if _, err := s.build(layers{defaults: base, file: largeTable(maxMappingKeys + 1)}); err == nil || !strings.Contains(err.Error(), "over the limit") {
		t.Errorf("a mapping of %d keys: %v, want an error naming the limit", maxMappingKeys+1, err)
	}
}

func BenchmarkLargeMapping(b *testing.B) {
	s, base := fuzzStore(b)
	doc := largeTable(maxMappingKeys)
	for b.Loop() {
		if _, err := s.build(layers{defaults: base, file: doc}); err != nil {
			b.Fatal(err)
		}
	}
}

// A document over MaxDocument is refused, naming the limit, from a file as
// from Consul.
func TestDocumentSizeLimit(t *testing.T) {
	s, base := fuzzStore(t)
	big := []byte("extra: {name: " + strings.Repeat("x", MaxDocument) + "}\n")
	if _, err := s.build(layers{defaults: base, file: big}); err == nil || !strings.Contains(err.Error(), "limit") || !strings.Contains(err.Error(), "fuzz.yaml") {
		t.Errorf("a %d-byte file: %v, want an error naming the file and the limit", len(big), err)
	}
	if _, err := s.build(layers{defaults: base, kv: big}); err == nil || !strings.Contains(err.Error(), "limit") || !strings.Contains(err.Error(), "consul") {
		t.Errorf("a %d-byte Consul document: %v, want an error naming the key and the limit", len(big), err)
	}
}

// fuzzStore returns a store of fuzzConfig and its defaults document.
func fuzzStore(t testing.TB) (*Store[fuzzConfig], []byte) {
	t.Helper()
	defaults := fuzzConfig{Standard: DefaultStandard()}
	defaults.Telemetry.ServiceName = "fuzz"
	base, err := yaml.Marshal(defaults)
	if err != nil {
		t.Fatal(err)
	}
	s := &Store[fuzzConfig]{name: "fuzz", o: defaultOptions("fuzz")}
	s.o.file = "fuzz.yaml"
	return s, base
}
