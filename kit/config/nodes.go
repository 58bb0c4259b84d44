package config

import (
	"errors"
	"fmt"

	"go.yaml.in/yaml/v3"
)

// maxNodes bounds the nodes a document may expand to through aliases, so a
// "billion laughs" document is refused instead of exhausting memory.
const maxNodes = 100_000

// maxMappingKeys bounds the keys of one mapping: the strict typed decode
// checks a mapping's keys pairwise (yaml.v3), so 45,000 keys took 5.5 s
// under the store's lock; 10,000 take a fraction of a second.
const maxMappingKeys = 10_000

// nodeParser is the koanf.Parser of kit's YAML layers. It keeps scalars and
// sequences as *yaml.Node leaves and turns only mappings into maps, which
// koanf merges key by key: a leaf is never re-read on the way, so its text
// and tag reach the typed decode as written ("0123" stays a string, not the
// octal number 83). Aliases and merge keys are expanded.
type nodeParser struct{}

func (nodeParser) Unmarshal(b []byte) (map[string]any, error) {
	var doc yaml.Node
	if err := yaml.Unmarshal(b, &doc); err != nil {
		return nil, err
	}
	if doc.Kind == 0 || len(doc.Content) == 0 {
		return map[string]any{}, nil // an empty document
	}
	budget := maxNodes
	root, err := expand(doc.Content[0], &budget)
	if err != nil {
		return nil, err
	}
	if root.Kind == yaml.ScalarNode && root.Tag == "!!null" {
		return map[string]any{}, nil
	}
	if root.Kind != yaml.MappingNode {
		return nil, fmt.Errorf("line %d: the document must be a mapping of sections, not a %s", root.Line, kindName(root))
	}
	return toMap(root)
}

func (nodeParser) Marshal(map[string]any) ([]byte, error) {
	return nil, errors.New("config: nodeParser does not marshal")
}

// toMap turns a mapping node into a map whose mappings are maps and whose
// other values are *yaml.Node leaves. Duplicate keys are an error.
func toMap(n *yaml.Node) (map[string]any, error) {
	m := make(map[string]any, len(n.Content)/2)
	for i := 0; i+1 < len(n.Content); i += 2 {
		k, v := n.Content[i], n.Content[i+1]
		if k.Kind != yaml.ScalarNode {
			return nil, fmt.Errorf("line %d: a key must be a scalar, not a %s", k.Line, kindName(k))
		}
		if _, dup := m[k.Value]; dup {
			return nil, fmt.Errorf("line %d: key %q is defined twice", k.Line, k.Value)
		}
		if v.Kind == yaml.MappingNode {
			sub, err := toMap(v)
			if err != nil {
				return nil, err
			}
			m[k.Value] = sub
			continue
		}
		m[k.Value] = v
	}
	return m, nil
}

// expand returns a copy of n with aliases replaced by copies of what they
// name and merge keys (<<) resolved, spending budget on every node.
func expand(n *yaml.Node, budget *int) (*yaml.Node, error) {
	if *budget--; *budget < 0 {
		return nil, errors.New("the document expands to too many nodes (aliases?)")
	}
	if n.Kind == yaml.AliasNode {
		if n.Alias == nil {
			return nil, fmt.Errorf("line %d: unknown alias", n.Line)
		}
		return expand(n.Alias, budget)
	}
	c := *n
	c.Anchor = ""
	c.Content = nil
	if n.Kind != yaml.MappingNode {
		for _, child := range n.Content {
			e, err := expand(child, budget)
			if err != nil {
				return nil, err
			}
			c.Content = append(c.Content, e)
		}
		return &c, nil
	}
	// Merge keys first, so that the mapping's own keys override them.
	var own []*yaml.Node
	seen := map[string]bool{}
	for i := 0; i+1 < len(n.Content); i += 2 {
		k := n.Content[i]
		if k.Kind == yaml.ScalarNode && k.Tag != "!!merge" {
			if seen[k.Value] {
				return nil, fmt.Errorf("line %d: key %q is defined twice", k.Line, k.Value)
			}
			seen[k.Value] = true
		}
		v, err := expand(n.Content[i+1], budget)
		if err != nil {
			return nil, err
		}
		if k.Kind == yaml.ScalarNode && k.Tag == "!!merge" {
			sources := []*yaml.Node{v}
			if v.Kind == yaml.SequenceNode {
				sources = v.Content
			}
			for _, src := range sources {
				if src.Kind != yaml.MappingNode {
					return nil, fmt.Errorf("line %d: << merges a mapping, not a %s", k.Line, kindName(src))
				}
				c.Content = mergeInto(c.Content, src.Content)
			}
			continue
		}
		kc := *k
		own = append(own, &kc, v)
	}
	c.Content = mergeInto(c.Content, own)
	if keys := len(c.Content) / 2; keys > maxMappingKeys {
		return nil, fmt.Errorf("line %d: a mapping of %d keys, over the limit of %d", n.Line, keys, maxMappingKeys)
	}
	return &c, nil
}

// mergeInto sets the key/value pairs of add in pairs, replacing equal keys
// (the first pair of a key, where pairs has it twice). Linear in both: a
// mapping of tens of thousands of keys merges in milliseconds.
func mergeInto(pairs, add []*yaml.Node) []*yaml.Node {
	at := make(map[string]int, (len(pairs)+len(add))/2)
	for j := len(pairs) - 2; j >= 0; j -= 2 {
		at[pairs[j].Value] = j
	}
	for i := 0; i+1 < len(add); i += 2 {
		if j, ok := at[add[i].Value]; ok {
			pairs[j+1] = add[i+1]
			continue
		}
		at[add[i].Value] = len(pairs)
		pairs = append(pairs, add[i], add[i+1])
	}
	return pairs
}

func kindName(n *yaml.Node) string {
	switch n.Kind {
	case yaml.SequenceNode:
		return "list"
	case yaml.MappingNode:
		return "mapping"
	case yaml.ScalarNode:
		return "scalar"
	}
	return "node"
}
