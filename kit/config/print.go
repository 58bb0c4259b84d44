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
	b, err := yaml.Marshal(cur.Value)
	if err != nil {
		return fmt.Errorf("config: print: %w", err)
	}
	var tree map[string]any
	if err := yaml.Unmarshal(b, &tree); err != nil {
		return fmt.Errorf("config: print: %w", err)
	}
	for _, f := range s.fields {
		if f.secret {
			maskPath(tree, f.path)
		}
	}
	out, err := yaml.Marshal(tree)
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

// maskPath masks the value at path in tree when it is set and not empty.
func maskPath(tree map[string]any, path []string) {
	for _, k := range path[:len(path)-1] {
		next, ok := tree[k].(map[string]any)
		if !ok {
			return
		}
		tree = next
	}
	last := path[len(path)-1]
	if v, ok := tree[last]; ok && v != nil && v != "" {
		tree[last] = mask
	}
}
