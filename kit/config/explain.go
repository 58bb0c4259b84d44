package config

import (
	"errors"
	"regexp"
	"strconv"
	"strings"

	"go.yaml.in/yaml/v3"
)

// lineRef matches yaml.v3's "line N: " prefix of a decoding error.
var lineRef = regexp.MustCompile(`^line (\d+): `)

// explain rewrites the line numbers of a decoding error of the merged
// document, which no user has seen, into the dotted paths of the settings
// ("ratelimit.rps: cannot unmarshal !!str `fast` into float64").
func explain(err error, merged []byte) error {
	var te *yaml.TypeError
	if !errors.As(err, &te) {
		return err
	}
	var root yaml.Node
	if yaml.Unmarshal(merged, &root) != nil {
		return err
	}
	paths := map[int]string{}
	var walk func(n *yaml.Node, path []string)
	walk = func(n *yaml.Node, path []string) {
		switch n.Kind {
		case yaml.DocumentNode, yaml.SequenceNode:
			for _, c := range n.Content {
				walk(c, path)
			}
		case yaml.MappingNode:
			for i := 0; i+1 < len(n.Content); i += 2 {
				p := append(append([]string(nil), path...), n.Content[i].Value)
				if _, ok := paths[n.Content[i].Line]; !ok {
					paths[n.Content[i].Line] = strings.Join(p, ".")
				}
				walk(n.Content[i+1], p)
			}
		}
	}
	walk(&root, nil)
	msgs := make([]string, len(te.Errors))
	for i, m := range te.Errors {
		msgs[i] = lineRef.ReplaceAllStringFunc(m, func(ref string) string {
			n, _ := strconv.Atoi(lineRef.FindStringSubmatch(ref)[1])
			if p, ok := paths[n]; ok {
				return p + ": "
			}
			return ref
		})
	}
	return errors.New(strings.Join(msgs, "; "))
}
