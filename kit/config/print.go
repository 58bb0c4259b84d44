package config

import (
	"fmt"
	"io"

	"go.yaml.in/yaml/v3"
)

// mask replaces a secret's value in printed configurations.
const mask = "****"

// Print writes the current configuration as YAML, with the values of
// secret fields (tag `kit:"secret"`) masked, after a comment naming its
// version and sources.
func (s *Store[T]) Print(w io.Writer) error {
	cur := s.Current()
	var root yaml.Node
	if err := root.Encode(cur.Value); err != nil {
		return fmt.Errorf("config: print: %w", err)
	}
	for _, f := range s.fields {
		if f.secret {
			maskPath(&root, f.path)
		}
	}
	out, err := yaml.Marshal(&root)
	if err != nil {
		return fmt.Errorf("config: print: %w", err)
	}
	info := s.Info()
	if _, err := fmt.Fprintf(w, "# %s configuration, version %d (%s); sources, lowest first: %v\n%s",
		s.name, info.Version, info.Source, info.Sources, out); err != nil {
		return fmt.Errorf("config: print: %w", err)
	}
	return nil
}

// maskPath masks the value at path in the mapping n.
func maskPath(n *yaml.Node, path []string) {
	for _, key := range path {
		if n.Kind != yaml.MappingNode {
			return
		}
		var next *yaml.Node
		for i := 0; i+1 < len(n.Content); i += 2 {
			if n.Content[i].Value == key {
				next = n.Content[i+1]
				break
			}
		}
		if next == nil {
			return
		}
		n = next
	}
	maskAll(n)
}

// maskAll masks every non-empty scalar value at or under n (a secret may be
// a list or a map of secrets); map keys stay readable.
func maskAll(n *yaml.Node) {
	switch n.Kind {
	case yaml.ScalarNode:
		if n.Value != "" && n.Tag != "!!null" {
			n.Value, n.Tag, n.Style = mask, "!!str", yaml.SingleQuotedStyle
		}
	case yaml.MappingNode:
		for i := 1; i < len(n.Content); i += 2 {
			maskAll(n.Content[i])
		}
	default:
		for _, c := range n.Content {
			maskAll(c)
		}
	}
}
